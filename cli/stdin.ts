import { fstatSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Codecs } from '../src-core/codecs/types.ts';
import type { ByteSource } from '../src-core/io/bytes.ts';
import { CancelledError } from '../src-core/io/errors.ts';
import { isAllZero } from '../src-core/io/struct.ts';
import type { BlockDevice } from '../src-core/image/types.ts';
import { ForwardStreamVmdk, isStreamVmdkHead, type ForwardBytes } from '../src-core/formats/vmdk/streamForward.ts';
import { NodeFileSource } from './nodeFiles.ts';
import { nodeScratch } from './nodeScratch.ts';

export const STDIN_NAME = 'stdin';
/** Zero pieces of this size are not written to the scratch file: it stays sparse where the disk is. */
const ZERO_SKIP = 64 * 1024;

/** A stream read front to back, with a look at its first bytes before deciding how to read it. */
export class StreamBytes implements ForwardBytes {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  private readonly it: AsyncIterator<Buffer>;
  /** Rejects when the command is cancelled: a pipe that sends nothing must not hold SIGTERM up. */
  private readonly cancelled: Promise<never> | undefined;

  constructor(
    private readonly input: Readable,
    signal?: AbortSignal,
  ) {
    this.it = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    if (signal) {
      this.cancelled = new Promise<never>((_, reject) => {
        if (signal.aborted) reject(new CancelledError());
        signal.addEventListener('abort', () => reject(new CancelledError()), { once: true });
      });
      this.cancelled.catch(() => {});
    }
  }

  private next(): Promise<IteratorResult<Buffer>> {
    const n = this.it.next();
    return this.cancelled ? Promise.race([n, this.cancelled]) : n;
  }

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.ended) {
      const r = await this.next();
      if (r.done) this.ended = true;
      else if (r.value.length) {
        this.chunks.push(new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.length));
        this.buffered += r.value.length;
      }
    }
  }

  /** The next `n` bytes (fewer at the end), left in place. */
  async peek(n: number): Promise<Uint8Array> {
    await this.fill(n);
    const out = this.take(n);
    if (out.length) {
      this.chunks.unshift(out);
      this.buffered += out.length;
    }
    return out;
  }

  async read(n: number): Promise<Uint8Array> {
    await this.fill(n);
    return this.take(n);
  }

  /** Everything not read yet, in the pieces it arrives in. */
  async *rest(): AsyncIterable<Uint8Array> {
    while (this.chunks.length) {
      const c = this.chunks.shift()!;
      this.buffered -= c.length;
      yield c;
    }
    for (;;) {
      const r = await this.next();
      if (r.done) return;
      yield new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.length);
    }
  }

  /**
   * Stops reading: the stream is destroyed, so nothing keeps the process waiting for input.
   * (Not the iterator's return(): while a read is pending it waits for the next chunk.)
   */
  async close(): Promise<void> {
    this.input.destroy();
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0];
    if (first && first.length >= n) {
      this.chunks[0] = first.subarray(n);
      if (!this.chunks[0].length) this.chunks.shift();
      this.buffered -= n;
      return first.subarray(0, n);
    }
    const out = new Uint8Array(Math.min(n, this.buffered));
    let o = 0;
    while (o < out.length) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, out.length - o);
      out.set(c.subarray(0, k), o);
      o += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= out.length;
    return out;
  }
}

export interface StdinOptions {
  scratchDir?: string;
  signal?: AbortSignal;
  /** The caller reads the disk once, front to back: a stream VMDK may be read as it arrives. */
  forward?: boolean;
  codecs: Codecs;
  input?: Readable;
}

/**
 * `-` as the source: standard input. A file redirected in (`< disk.qcow2`) is read in place,
 * like any file. From a pipe, a streamOptimized VMDK is read as it arrives when the caller reads
 * the disk once, front to back (its grain markers carry everything; formats/vmdk/streamForward.ts).
 * Anything else is copied to a hidden scratch file first (sparse: all-zero 64 KiB pieces are
 * skipped) and read from there, removed when the source is closed: a pipe has no size until it
 * ends and cannot be read twice, while every conversion plans from the source's size and
 * metadata (a raw disk's size, a fixed VHD's footer, a qcow2's tables) before it writes a byte.
 */
export async function openStdin(o: StdinOptions): Promise<{ file: ByteSource } | { device: BlockDevice }> {
  const input = o.input ?? process.stdin;
  if (input === process.stdin && fstatSync(0).isFile()) return { file: await NodeFileSource.open('/dev/stdin', STDIN_NAME) };
  const bytes = new StreamBytes(input, o.signal);
  try {
    if (o.forward && isStreamVmdkHead(await bytes.peek(512)))
      return { device: await ForwardStreamVmdk.open(bytes, STDIN_NAME, o.codecs, () => bytes.close()) };
    return { file: await spool(bytes, o.scratchDir, o.signal) };
  } catch (e) {
    await bytes.close();
    throw e;
  }
}

async function spool(bytes: StreamBytes, scratchDir: string | undefined, signal?: AbortSignal): Promise<ByteSource> {
  const scratch = await nodeScratch(scratchDir)(undefined);
  let pos = 0;
  try {
    for await (const chunk of bytes.rest()) {
      if (signal?.aborted) throw new CancelledError();
      for (let o = 0; o < chunk.length; o += ZERO_SKIP) {
        const part = chunk.subarray(o, o + ZERO_SKIP);
        if (!isAllZero(part)) await scratch.write(pos + o, part);
      }
      pos += chunk.length;
    }
    if (signal?.aborted) throw new CancelledError();
    return await scratch.finish(pos, STDIN_NAME);
  } catch (e) {
    await scratch.discard().catch(() => {});
    throw e;
  }
}
