import type { ByteSource } from '../../io/bytes.ts';
import { CancelledError, CorruptImageError, UnsupportedError, withFile } from '../../io/errors.ts';
import { isAllZero } from '../../io/struct.ts';
import { PROBE_BYTES, probeDetailed } from '../open.ts';
import type { FormatDriver } from '../types.ts';
import { CONTAINER_SUFFIX, detectContainer, type ContainerKind } from './detect.ts';
import { openContainerAs, type Container, type ContainerProgress, type DecodeOptions } from './decode.ts';

/**
 * Scratch space for a container whose image needs random access (qcow2, vmdk … inside a .xz):
 * the platform supplies it — a temporary file in the CLI, an OPFS file on the page.
 */
export interface ScratchFile {
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Writing is over and the file is `size` bytes long: a source reading it back. Closing that source removes the scratch file. */
  finish(size: number, name: string): Promise<ByteSource>;
  /** Removes the scratch file after a failure or cancellation. */
  discard(): Promise<void>;
}
export type ScratchFactory = (sizeHint: number | undefined) => Promise<ScratchFile>;

export interface UnwrapOptions extends DecodeOptions {
  /** The registry, to probe what the container holds. */
  drivers: readonly FormatDriver[];
  /** Where to unpack images that need random access; without it such containers are refused. */
  scratch?: ScratchFactory;
  /** Unpack even a raw image (it will be read more than once, e.g. convert --verify, compare). */
  randomAccess?: boolean;
}

/** `src`'s container kind, from its first bytes. */
export async function sniffContainer(src: ByteSource): Promise<ContainerKind | undefined> {
  return detectContainer(await src.read(0, Math.min(16, src.size)));
}

/** Opens `src` as a compressed container, or undefined when it is not one. */
export async function openContainer(src: ByteSource): Promise<Container | undefined> {
  const kind = await sniffContainer(src);
  return kind ? openContainerAs(src, kind) : undefined;
}

/**
 * The image inside a compressed container, as a ByteSource; `src` itself when it is no
 * container. A raw image whose size is known (from the container's metadata, or a first pass
 * that only counts) is streamed: the source serves reads front to back only, and memory stays
 * at a chunk or two. Anything else is unpacked to the platform's scratch file first. The
 * returned source owns `src` (closing it closes both).
 */
export async function unwrapContainer(src: ByteSource, opts: UnwrapOptions): Promise<ByteSource> {
  try {
    return await unwrap(src, opts);
  } catch (e) {
    // The caller handed `src` over: nothing stays open after a failure.
    await src.close?.();
    throw withFile(e, src.name);
  }
}

async function unwrap(src: ByteSource, opts: UnwrapOptions): Promise<ByteSource> {
  const kind = await sniffContainer(src);
  if (!kind) return src;
  // An image format that starts like a container (a DMG whose first chunk is bzip2 starts
  // "BZh") is that image: any driver but raw claiming the file wins over the magic.
  const direct = await probeDetailed(src, opts.drivers);
  if (direct.foreign || (direct.scored[0] && direct.scored[0].driver.name !== 'raw')) return src;
  const container = await openContainerAs(src, kind);
  const name = src.name;
  const label = container.member ? `${CONTAINER_SUFFIX[container.kind]} member "${container.member}"` : CONTAINER_SUFFIX[container.kind];
  // Streaming is worth it for raw only, and raw can be told only from the whole file: some
  // formats sit at its end (a fixed VHD's footer, a DMG's trailer, a cloop V4 header). So: the
  // head first (most formats say so there), then a pass that only counts and keeps the tail.
  // bzip2 in JavaScript is slow enough that one pass to a scratch file beats two.
  if (!opts.randomAccess && container.kind !== 'bzip2') {
    const head = await readHead(container, opts.signal);
    const guess = container.size ?? head.length + (head.length === PROBE_BYTES ? PROBE_BYTES : 0);
    if (await looksRaw(name, head, new Uint8Array(0), guess, opts.drivers)) {
      // The tail without a full pass where the container allows it (multi-block xz, stored zip).
      const quick = container.size !== undefined ? await container.tail?.(TAIL_BYTES, opts.signal) : undefined;
      const { size, tail } =
        quick && container.size !== undefined ? { size: container.size, tail: quick } : await measure(container, opts, name);
      if (await looksRaw(name, head, tail, size, opts.drivers)) return new StreamingSource(src, container, size, head, tail, label, opts);
    }
  }
  if (!opts.scratch)
    throw new UnsupportedError(name, `the image in this ${label} needs to be unpacked first, and no scratch space is available`);
  return unpackToScratch(src, container, opts.scratch, opts);
}

/** True when raw is the best any driver can say about a file of `size` bytes with this head and tail. */
async function looksRaw(
  name: string,
  head: Uint8Array,
  tail: Uint8Array,
  size: number,
  drivers: readonly FormatDriver[],
): Promise<boolean> {
  const tailAt = size - tail.length;
  const view: ByteSource = {
    name,
    size,
    read: async (o, l) => {
      const end = Math.min(o + l, size);
      const out = new Uint8Array(Math.max(0, end - o));
      if (o < head.length) out.set(head.subarray(o, Math.min(end, head.length)));
      if (end > tailAt && tail.length) {
        const from = Math.max(o, tailAt);
        out.set(tail.subarray(from - tailAt, end - tailAt), from - o);
      }
      return out;
    },
  };
  try {
    const { scored, foreign } = await probeDetailed(view, drivers);
    return !foreign && scored[0]?.driver.name === 'raw';
  } catch {
    return false;
  }
}

async function readHead(c: Container, signal?: AbortSignal): Promise<Uint8Array> {
  const out = new Uint8Array(PROBE_BYTES);
  let n = 0;
  const it = c.decode({ signal });
  try {
    for await (const chunk of it) {
      const take = Math.min(chunk.length, PROBE_BYTES - n);
      out.set(chunk.subarray(0, take), n);
      n += take;
      if (n === PROBE_BYTES) break;
    }
  } finally {
    await it.return(undefined);
  }
  return out.subarray(0, n);
}

const TAIL_BYTES = 64 * 1024;

/** A pass that decodes and drops everything: the exact size, and the last 64 KiB for probing. */
async function measure(c: Container, opts: DecodeOptions, name: string): Promise<{ size: number; tail: Uint8Array }> {
  let n = 0;
  const keep: Uint8Array[] = [];
  let kept = 0;
  for await (const chunk of c.decode({ ...opts, phase: 'measure' })) {
    n += chunk.length;
    keep.push(chunk);
    kept += chunk.length;
    while (keep.length > 1 && kept - keep[0]!.length >= TAIL_BYTES) kept -= keep.shift()!.length;
  }
  if (c.size !== undefined && n !== c.size)
    throw new CorruptImageError(name, `unpacks to ${n} bytes, but the ${c.kind} metadata says ${c.size}`);
  const all = new Uint8Array(kept);
  let o = 0;
  for (const k of keep) {
    all.set(k, o);
    o += k.length;
  }
  return { size: n, tail: all.slice(Math.max(0, all.length - TAIL_BYTES)) };
}

const ZERO_SKIP = 64 * 1024;

async function unpackToScratch(src: ByteSource, c: Container, factory: ScratchFactory, opts: DecodeOptions): Promise<ByteSource> {
  const scratch = await factory(c.size);
  let pos = 0;
  try {
    for await (const chunk of c.decode({ ...opts, phase: 'unpack' })) {
      // Whole zero pieces are not written: the scratch file stays sparse where the image is.
      for (let o = 0; o < chunk.length; o += ZERO_SKIP) {
        const part = chunk.subarray(o, o + ZERO_SKIP);
        if (!isAllZero(part)) await scratch.write(pos + o, part);
      }
      pos += chunk.length;
    }
    if (c.size !== undefined && pos !== c.size)
      throw new CorruptImageError(src.name, `unpacks to ${pos} bytes, but the ${c.kind} metadata says ${c.size}`);
    const out = await scratch.finish(pos, src.name);
    await src.close?.();
    return {
      name: src.name,
      size: out.size,
      allocatedSize: src.allocatedSize ?? src.size,
      read: (o, l) => out.read(o, l),
      close: () => out.close?.() ?? Promise.resolve(),
    };
  } catch (e) {
    await scratch.discard().catch(() => {});
    throw e;
  }
}

/**
 * A raw image read straight from its container: reads must move forward (the head, kept from
 * probing, can be read again). A read behind the stream is refused with a clear message.
 */
export class StreamingSource implements ByteSource {
  readonly name: string;
  readonly allocatedSize: number;
  private it: AsyncGenerator<Uint8Array> | undefined;
  /** The current chunk and the stream offset it starts at (the head is served from memory). */
  private chunk: Uint8Array = new Uint8Array(0);
  private chunkAt = 0;
  private queue: Promise<unknown> = Promise.resolve();
  readonly streaming = true;

  constructor(
    private readonly src: ByteSource,
    private readonly container: Container,
    readonly size: number,
    private readonly head: Uint8Array,
    private readonly tail: Uint8Array,
    private readonly label: string,
    private readonly opts: DecodeOptions,
  ) {
    this.name = src.name;
    this.allocatedSize = src.allocatedSize ?? src.size;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    // One read at a time, in call order: the stream has a single position.
    const p = this.queue.then(() => this.readNow(offset, length));
    this.queue = p.catch(() => {});
    return p;
  }

  private async readNow(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(offset + length, this.size);
    if (offset >= end) return new Uint8Array(0);
    if (end <= this.head.length) return this.head.slice(offset, end);
    // The tail, kept from measuring, serves probes that look at the end (footers, trailers).
    const tailAt = this.size - this.tail.length;
    if (offset >= tailAt && offset > this.chunkAt + this.chunk.length) return this.tail.slice(offset - tailAt, end - tailAt);
    if (offset < this.chunkAt) {
      throw new UnsupportedError(
        this.name,
        `the image in this ${this.label} is read as a stream, front to back, and cannot be read again here; unpack it first`,
      );
    }
    this.it ??= this.container.decode({ ...this.opts, phase: 'stream' });
    const out = new Uint8Array(end - offset);
    let filled = offset;
    while (filled < end) {
      const chunkEnd = this.chunkAt + this.chunk.length;
      if (filled < chunkEnd) {
        const n = Math.min(end, chunkEnd) - filled;
        out.set(this.chunk.subarray(filled - this.chunkAt, filled - this.chunkAt + n), filled - offset);
        filled += n;
        continue;
      }
      if (this.opts.signal?.aborted) throw new CancelledError();
      const r = await this.it.next();
      if (r.done)
        throw new CorruptImageError(this.name, `the ${this.label} ends at ${chunkEnd} bytes, but it was said to hold ${this.size}`);
      this.chunkAt = chunkEnd;
      this.chunk = r.value;
    }
    if (end === this.size) await this.expectEnd();
    return out;
  }

  /** After the last byte: the stream must be over, or its size was wrong. */
  private async expectEnd(): Promise<void> {
    const chunkEnd = this.chunkAt + this.chunk.length;
    let extra = chunkEnd - this.size;
    while (extra === 0) {
      const r = await this.it!.next();
      if (r.done) return;
      extra += r.value.length;
    }
    if (extra > 0) throw new CorruptImageError(this.name, `the ${this.label} holds more than the ${this.size} bytes it was said to`);
  }

  async close(): Promise<void> {
    await this.it?.return(undefined).catch(() => {});
    await this.src.close?.();
  }
}

export type { ContainerProgress };
