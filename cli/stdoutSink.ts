import type { Writable } from 'node:stream';
import type { ByteSink } from '../src-core/io/bytes.ts';
import { DiskFerryError, ErrorCode, UnsupportedError } from '../src-core/io/errors.ts';

const ZEROS = new Uint8Array(1024 * 1024);

/**
 * The output as a stream (standard output, a pipe): bytes leave front to back and never come
 * back. A write must start at or after the end of what is out already; a gap before it is sent
 * as zeros (a pipe has no holes), and a write that would go back is refused, so a writer that
 * seeks fails loudly instead of corrupting the stream. truncate() may only lengthen (zeros
 * again). Each write resolves once the stream has taken it (backpressure: the reader sets the
 * pace); a reader that went away (EPIPE) fails the conversion with one line.
 */
export class StdoutSink implements ByteSink {
  /** Bytes out so far: the only offset the next byte can have. */
  private end = 0;
  private failure: Error | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly stream: Writable = process.stdout,
    readonly name = 'stdout',
  ) {
    // Without a listener an EPIPE would crash the process instead of failing the command.
    stream.on('error', (e) => (this.failure ??= this.streamError(e)));
  }

  get position(): number {
    return this.end;
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.inTurn(async () => {
      if (offset < this.end)
        throw new UnsupportedError(
          this.name,
          `a write at byte ${offset} would go back (${this.end} bytes are out already); a pipe is written front to back`,
        );
      await this.zerosTo(offset);
      await this.push(data);
    });
  }

  /** Only forward: the rest of the length as zeros. Cutting what is out already is impossible. */
  truncate(size: number): Promise<void> {
    return this.inTurn(async () => {
      if (size < this.end) throw new UnsupportedError(this.name, `cannot cut the output to ${size} bytes: ${this.end} are out already`);
      await this.zerosTo(size);
    });
  }

  /** Every write was awaited until the stream took it: nothing is held here. Standard output stays open. */
  async close(): Promise<void> {
    await this.queue;
    if (this.failure) throw this.failure;
  }

  /** One operation at a time, in call order: the stream has a single position. */
  private inTurn(op: () => Promise<void>): Promise<void> {
    const p = this.queue.then(op);
    this.queue = p.catch(() => {});
    return p;
  }

  private async zerosTo(offset: number): Promise<void> {
    while (this.end < offset) await this.push(ZEROS.subarray(0, Math.min(offset - this.end, ZEROS.length)));
  }

  private push(data: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!data.length) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.stream.write(data, (e) => {
        if (e) return reject((this.failure ??= this.streamError(e)));
        this.end += data.length;
        resolve();
      });
    });
  }

  private streamError(e: Error): Error {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED')
      return new DiskFerryError(ErrorCode.Io, this.name, 'the reader closed the pipe before the output was complete');
    return new DiskFerryError(ErrorCode.Io, this.name, e.message.split('\n')[0] ?? String(e));
  }
}
