import type { ByteSink } from './bytes.ts';

/**
 * Coalesces contiguous small writes into large ones. Writers emit cluster-sized pieces in file
 * order; a File System Access stream pays heavily per call, so they reach the sink in runs.
 *
 * Pieces are copied once, into one staging buffer that is reused for every run (sinks are done
 * with a buffer when their write() resolves). Copying each piece and then joining them made
 * two copies and a fresh multi-MiB allocation per run, which kept a convert's heap large.
 */
export class SinkBuffer {
  private staging: Uint8Array | undefined;
  private start = 0;
  private length = 0;
  constructor(
    readonly sink: ByteSink,
    private readonly limit = 4 * 1024 * 1024,
  ) {}

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.length && offset !== this.start + this.length) await this.flush();
    if (!this.length && data.length >= this.limit) {
      // A run at least as large as the buffer goes straight through (awaited, so the caller
      // may reuse `data` afterwards).
      await this.sink.write(offset, data);
      return;
    }
    if (!this.length) this.start = offset;
    let done = 0;
    while (done < data.length) {
      this.staging ??= new Uint8Array(this.limit);
      const n = Math.min(data.length - done, this.limit - this.length);
      this.staging.set(n === data.length ? data : data.subarray(done, done + n), this.length);
      this.length += n;
      done += n;
      if (this.length >= this.limit) await this.flush();
      if (!this.length) this.start = offset + done;
    }
  }

  async flush(): Promise<void> {
    if (!this.length) return;
    const at = this.start;
    const len = this.length;
    this.length = 0;
    await this.sink.write(at, this.staging!.subarray(0, len));
  }
}
