import type { ByteSink } from './bytes.ts';

/**
 * Coalesces contiguous small writes into large ones. Writers emit cluster-sized pieces in file
 * order; a File System Access stream pays heavily per call, so they reach the sink in runs.
 */
export class SinkBuffer {
  private parts: Uint8Array[] = [];
  private start = 0;
  private length = 0;
  constructor(
    readonly sink: ByteSink,
    private readonly limit = 4 * 1024 * 1024,
  ) {}

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.length && offset !== this.start + this.length) await this.flush();
    if (!this.length) this.start = offset;
    // Copy: callers may reuse their buffers once this returns.
    this.parts.push(data.slice());
    this.length += data.length;
    if (this.length >= this.limit) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.length) return;
    const parts = this.parts;
    let buf: Uint8Array;
    if (parts.length === 1) buf = parts[0]!;
    else {
      buf = new Uint8Array(this.length);
      let o = 0;
      for (const p of parts) {
        buf.set(p, o);
        o += p.length;
      }
    }
    const at = this.start;
    this.parts = [];
    this.length = 0;
    await this.sink.write(at, buf);
  }
}
