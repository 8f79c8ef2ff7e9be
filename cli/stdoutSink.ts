import { createWriteStream, fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import type { ByteSink } from '../src-core/io/bytes.ts';
import { CancelledError, DiskFerryError, ErrorCode, UnsupportedError } from '../src-core/io/errors.ts';

/**
 * File descriptor 1 as a stream of our own. Not process.stdout for a pipe: Node writes to pipes
 * synchronously on Linux, so a reader that stops reading would block the whole process, SIGTERM
 * included. A socket over the pipe waits in the event loop instead. A regular file (`> out.img`)
 * is written through fs at its current position; anything else (a terminal) is process.stdout.
 */
export function stdoutStream(): { stream: Writable; owned: boolean } {
  const st = fstatSync(1);
  if (st.isFIFO() || st.isSocket()) return { stream: new Socket({ fd: 1, readable: false, writable: true }), owned: true };
  if (st.isFile()) return { stream: createWriteStream('/dev/stdout', { fd: 1, autoClose: false }), owned: true };
  return { stream: process.stdout, owned: false };
}

const ZEROS = new Uint8Array(1024 * 1024);

/**
 * The output as a stream (standard output, a pipe): bytes leave front to back and never come
 * back. A write must start at or after the end of what is out already; a gap before it is sent
 * as zeros (a pipe has no holes), and a write that would go back is refused, so a writer that
 * seeks fails loudly instead of corrupting the stream. There is no truncate(): a stream's
 * length is what was sent, and writers finish without it (raw writes its last byte). Each write resolves once the stream has taken it (backpressure: the reader sets the
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
    opts: {
      /** The stream is this sink's: ended by close(), destroyed by destroy() or a cancel. */
      owned?: boolean;
      /** Cancels a write the reader is holding up (a full pipe nobody reads). */
      signal?: AbortSignal;
    } = {},
  ) {
    this.owned = !!opts.owned;
    // Without a listener an EPIPE would crash the process instead of failing the command.
    stream.on('error', (e) => (this.failure ??= this.streamError(e)));
    opts.signal?.addEventListener(
      'abort',
      () => {
        this.failure ??= new CancelledError();
        this.destroy();
      },
      { once: true },
    );
  }
  private readonly owned: boolean;

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

  /** Every write was awaited until the stream took it; a stream of our own is ended (process.stdout stays open). */
  async close(): Promise<void> {
    await this.queue;
    if (this.failure) throw this.failure;
    if (this.owned) await new Promise<void>((resolve) => this.stream.end(resolve));
  }

  /** Stops at once (failure, cancel): pending writes fail, and nothing keeps the process waiting for the reader. */
  destroy(): void {
    if (this.owned) this.stream.destroy();
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
