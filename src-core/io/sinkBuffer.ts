import type { ByteSink } from './bytes.ts';

/** Largest run sent as one view of the caller's memory (the page reads in 16 MiB windows). */
const VIEW_LIMIT = 16 * 1024 * 1024;

/**
 * Coalesces contiguous small writes into large ones. Writers emit cluster-sized pieces in file
 * order; a File System Access stream pays heavily per call, so they reach the sink in runs.
 *
 * write() copies each piece once, into one staging buffer reused for every run (sinks are done
 * with a buffer when their write() resolves). writeOwned() copies nothing: pieces that follow
 * each other both in the file and in one underlying buffer (clusters of one read window) are
 * passed on as a single view of that buffer, up to a whole read window (VIEW_LIMIT).
 *
 * With `inFlight` > 1 a full run is handed on without waiting for the sink, up to that many at
 * once (a File System Access stream writes ~20 % faster with several queued; the CLI's file
 * sinks ask for it through `queueDepth`). Runs then never share memory with the caller: each is
 * a fresh buffer or a view the caller gave away. A run that overlaps one still in flight waits
 * for it first: positioned writes on a thread pool may land in any order.
 */
export class SinkBuffer {
  private staging: Uint8Array | undefined;
  /** The pending run when it is a view of the caller's memory rather than staged bytes. */
  private view: Uint8Array | undefined;
  private start = 0;
  private length = 0;
  /** Writes handed to the sink and not yet done (only with inFlight > 1), oldest first. */
  private readonly pending: { start: number; end: number; done: Promise<void> }[] = [];
  private readonly inFlight: number;
  constructor(
    readonly sink: ByteSink,
    private readonly limit = 4 * 1024 * 1024,
    inFlight?: number,
  ) {
    this.inFlight = inFlight ?? sink.queueDepth ?? 1;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.length && (this.view || offset !== this.start + this.length)) await this.send();
    if (!this.length && data.length >= this.limit) {
      // A run at least as large as the buffer goes straight through: awaited, or a copy when
      // it may stay queued, so the caller can reuse `data` as soon as this resolves.
      await this.issue(offset, this.inFlight > 1 ? data.slice() : data, this.inFlight > 1);
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
      if (this.length >= this.limit) await this.send();
      if (!this.length) this.start = offset + done;
    }
  }

  /**
   * Like write(), but the caller promises never to change `data` afterwards, so it can be
   * held until the run is flushed instead of copied.
   */
  async writeOwned(offset: number, data: Uint8Array): Promise<void> {
    const v = this.view;
    if (v && offset === this.start + this.length && data.buffer === v.buffer && data.byteOffset === v.byteOffset + v.length) {
      this.view = new Uint8Array(v.buffer, v.byteOffset, v.length + data.length);
      this.length += data.length;
    } else {
      if (this.length) await this.send();
      this.view = data;
      this.start = offset;
      this.length = data.length;
    }
    // A view costs no memory of its own: it grows to a whole read window before it leaves
    // (fewer, larger writes: Chromium's createWritable pays per call).
    if (this.length >= Math.max(this.limit, VIEW_LIMIT)) await this.send();
  }

  /** Writes out everything held, and waits until the sink has it all. */
  async flush(): Promise<void> {
    await this.send();
    while (this.pending.length) await this.pending.shift()!.done;
  }

  /** Hands the pending run to the sink. */
  private async send(): Promise<void> {
    if (!this.length) return;
    const at = this.start;
    const owned = this.view !== undefined || this.inFlight > 1;
    const bytes = this.view ?? this.staging!.subarray(0, this.length);
    // A queued run keeps its staging buffer: the next run gets a new one.
    if (!this.view && this.inFlight > 1) this.staging = undefined;
    this.view = undefined;
    this.length = 0;
    await this.issue(at, bytes, owned);
  }

  /** `owned`: nobody changes `bytes` again, so the sink may keep them (writeOwned). */
  private async issue(at: number, bytes: Uint8Array, owned = false): Promise<void> {
    const end = at + bytes.length;
    if (this.inFlight > 1) {
      // An earlier run to the same bytes must land first (a table written twice, say).
      while (this.pending.some((p) => p.start < end && at < p.end)) await this.pending.shift()!.done;
    }
    const done = owned && this.sink.writeOwned ? this.sink.writeOwned(at, bytes) : this.sink.write(at, bytes);
    if (this.inFlight <= 1) return done;
    done.catch(() => {}); // a failure surfaces when it is awaited below or in flush()
    this.pending.push({ start: at, end, done });
    while (this.pending.length >= this.inFlight) await this.pending.shift()!.done;
  }
}
