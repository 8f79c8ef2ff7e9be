import type { ByteSink } from './bytes.ts';

/**
 * Coalesces contiguous small writes into large ones. Writers emit cluster-sized pieces in file
 * order; a File System Access stream pays heavily per call, so they reach the sink in runs.
 *
 * write() copies each piece once, into one staging buffer reused for every run (sinks are done
 * with a buffer when their write() resolves). writeOwned() copies nothing: pieces that follow
 * each other both in the file and in one underlying buffer (clusters of one read window) are
 * passed on as a single view of that buffer.
 */
export class SinkBuffer {
  private staging: Uint8Array | undefined;
  /** The pending run when it is a view of the caller's memory rather than staged bytes. */
  private view: Uint8Array | undefined;
  private start = 0;
  private length = 0;
  constructor(
    readonly sink: ByteSink,
    private readonly limit = 4 * 1024 * 1024,
  ) {}

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.length && (this.view || offset !== this.start + this.length)) await this.flush();
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

  /**
   * Like write(), but the caller promises never to change `data` afterwards, so it can be
   * held until the run is flushed instead of copied.
   */
  async writeOwned(offset: number, data: Uint8Array): Promise<void> {
    const v = this.view;
    if (
      v &&
      offset === this.start + this.length &&
      data.buffer === v.buffer &&
      data.byteOffset === v.byteOffset + v.length
    ) {
      this.view = new Uint8Array(v.buffer, v.byteOffset, v.length + data.length);
      this.length += data.length;
    } else {
      if (this.length) await this.flush();
      this.view = data;
      this.start = offset;
      this.length = data.length;
    }
    if (this.length >= this.limit) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.length) return;
    const at = this.start;
    const bytes = this.view ?? this.staging!.subarray(0, this.length);
    this.view = undefined;
    this.length = 0;
    await this.sink.write(at, bytes);
  }
}
