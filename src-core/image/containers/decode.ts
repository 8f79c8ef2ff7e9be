import * as fzstd from 'fzstd';
import { bunzip2Stream, Bzip2Error } from '../../codecs/bzip2.ts';
import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CancelledError, CorruptImageError, DiskFerryError, UnsupportedError } from '../../io/errors.ts';
import { Struct } from '../../io/struct.ts';
import type { ContainerKind } from './detect.ts';
import { ZIP_METHODS, zipMember } from './zip.ts';

/** Where an unpack is: compressed bytes consumed of the total, and bytes produced. */
export interface ContainerProgress {
  /** 'measure' = a first pass that only counts the size; 'unpack' = to a scratch file; 'stream' = straight into the conversion. */
  phase: 'measure' | 'unpack' | 'stream';
  compressedDone: number;
  compressedTotal: number;
  bytesOut: number;
}

export interface DecodeOptions {
  signal?: AbortSignal;
  onProgress?: (p: ContainerProgress) => void;
}

/** A compressed container, opened: what it holds and a way to stream it. */
export interface Container {
  kind: ContainerKind;
  /** The file inside, where the container names it (zip). */
  member?: string;
  /** The unpacked size, when the container's metadata states it (xz index, zstd frame headers, zip). */
  size?: number;
  /**
   * The last `n` unpacked bytes without unpacking the rest, where the container allows it
   * (a stored zip member; an xz file of several blocks); undefined otherwise.
   */
  tail?(n: number, signal?: AbortSignal): Promise<Uint8Array | undefined>;
  /** The unpacked bytes, front to back, in chunks of bounded size; each call starts over. */
  decode(opts?: DecodeOptions & { phase?: ContainerProgress['phase'] }): AsyncGenerator<Uint8Array>;
}

// ——— Minimal WHATWG stream types: src-core sees no DOM lib, but every platform has these. ———
interface WebReader<T> {
  read(): Promise<{ done: boolean; value?: T }>;
  cancel(reason?: unknown): Promise<void>;
}
interface WebReadable<T> {
  getReader(): WebReader<T>;
  pipeThrough<U>(t: { writable: unknown; readable: WebReadable<U> }): WebReadable<U>;
}
interface WebGlobals {
  ReadableStream: new <T>(
    src: { pull(c: { enqueue(v: T): void; close(): void }): Promise<void>; cancel?(): Promise<void> },
    strategy?: { highWaterMark: number },
  ) => WebReadable<T>;
  DecompressionStream?: new (format: string) => { writable: unknown; readable: WebReadable<Uint8Array> };
}
const web = globalThis as unknown as WebGlobals;

function toWeb(it: AsyncIterator<Uint8Array>): WebReadable<Uint8Array> {
  return new web.ReadableStream<Uint8Array>(
    {
      async pull(c) {
        const r = await it.next();
        if (r.done) c.close();
        else c.enqueue(r.value);
      },
      async cancel() {
        await it.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

async function* fromWeb(rs: WebReadable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = rs.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      if (value && value.length) yield value;
    }
  } finally {
    // Always release the decoder (the xz one serialises its users).
    if (!finished) await reader.cancel().catch(() => {});
  }
}

/** The compressed bytes [from, to) of `src`, in pieces of `piece` bytes, reporting progress. */
async function* compressed(
  src: ByteSource,
  from: number,
  to: number,
  piece: number,
  tick: (done: number) => void,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  for (let at = from; at < to;) {
    if (signal?.aborted) throw new CancelledError();
    const b = await src.read(at, Math.min(piece, to - at));
    if (!b.length) throw new CorruptImageError(src.name, `file ends at ${at} bytes, before its compressed data does (truncated file?)`);
    at += b.length;
    tick(at - from);
    yield b;
  }
}

/**
 * zstd input cut at block boundaries, so that each push into fzstd yields at most one block
 * (≤ 128 KiB) of output: a few bytes of an RLE block can otherwise stand for gigabytes.
 */
async function* zstdPieces(input: AsyncIterable<Uint8Array>, file: string): AsyncGenerator<Uint8Array> {
  let buf = new Uint8Array(0);
  let pos = 0;
  const it = input[Symbol.asyncIterator]();
  let ended = false;
  const need = async (n: number): Promise<boolean> => {
    while (buf.length - pos < n && !ended) {
      const r = await it.next();
      if (r.done) ended = true;
      else {
        const rest = buf.subarray(pos);
        const next = new Uint8Array(rest.length + r.value.length);
        next.set(rest);
        next.set(r.value, rest.length);
        buf = next;
        pos = 0;
      }
    }
    return buf.length - pos >= n;
  };
  const take = (n: number) => buf.subarray(pos, (pos += n));
  const short = () => new CorruptImageError(file, 'zstd data ends inside a frame (truncated file?)');
  while (await need(4)) {
    const v = new Struct(buf.subarray(pos, pos + 4), true);
    const magic = v.u32(0);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      if (!(await need(8))) throw short();
      const len = new Struct(buf.subarray(pos + 4, pos + 8), true).u32(0);
      pos += 8;
      for (let left = len; left > 0;) {
        if (!(await need(1))) throw short();
        const n = Math.min(left, buf.length - pos);
        pos += n;
        left -= n;
      }
      continue;
    }
    if (magic !== 0xfd2fb528) throw new CorruptImageError(file, 'zstd: data after the last frame is not a frame');
    if (!(await need(5))) throw short();
    const fhd = buf[pos + 4]!;
    const single = (fhd >> 5) & 1;
    const fcsFlag = fhd >> 6;
    const headerLen = 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]! + [single, 2, 4, 8][fcsFlag]!;
    if (!(await need(headerLen))) throw short();
    yield take(headerLen);
    for (;;) {
      if (!(await need(3))) throw short();
      const h = buf[pos]! | (buf[pos + 1]! << 8) | (buf[pos + 2]! << 16);
      const type = (h >> 1) & 3;
      if (type === 3) throw new CorruptImageError(file, 'zstd: reserved block type');
      const len = 3 + (type === 1 ? 1 : h >>> 3);
      if (!(await need(len))) throw short();
      yield take(len);
      if (h & 1) break;
    }
    if (fhd & 4) {
      if (!(await need(4))) throw short();
      yield take(4);
    }
  }
  if (buf.length - pos) throw short();
}

async function* zstdStream(input: AsyncIterable<Uint8Array>, file: string): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  const d = new fzstd.Decompress((chunk) => out.push(chunk));
  for await (const piece of zstdPieces(input, file)) {
    d.push(piece);
    while (out.length) yield out.shift()!;
  }
}

let xzModule: Promise<new (s: WebReadable<Uint8Array>) => WebReadable<Uint8Array>> | undefined;
/** xz-decompress (xz-embedded in wasm), loaded on first use. */
function xzStreamClass() {
  xzModule ??= import('xz-decompress').then((m) => {
    const mod = m as unknown as { XzReadableStream?: unknown; default?: { XzReadableStream?: unknown } };
    return (mod.XzReadableStream ?? mod.default?.XzReadableStream) as new (s: WebReadable<Uint8Array>) => WebReadable<Uint8Array>;
  });
  return xzModule;
}

function nativeDecompress(format: 'gzip' | 'deflate-raw', input: AsyncGenerator<Uint8Array>, file: string): AsyncGenerator<Uint8Array> {
  if (!web.DecompressionStream) throw new UnsupportedError(file, `this platform has no DecompressionStream for ${format}`);
  return fromWeb(toWeb(input).pipeThrough(new web.DecompressionStream(format)));
}

/** Turns a decoder's own errors into one-line typed errors that name the file. */
async function* typed(gen: AsyncGenerator<Uint8Array>, file: string, what: string): AsyncGenerator<Uint8Array> {
  try {
    yield* gen;
  } catch (e) {
    if (e instanceof DiskFerryError) throw e;
    if ((e as Error)?.name === 'AbortError') throw new CancelledError();
    const msg = e instanceof Bzip2Error ? e.message.replace(/^bzip2: /, '') : ((e as Error)?.message ?? String(e)).split('\n')[0];
    throw new CorruptImageError(file, `${what} data cannot be unpacked: ${msg}`);
  }
}

// ——— Sizes from metadata ———

interface XzLayout {
  size: number;
  /** The stream, when the file holds exactly one: where it starts, and its blocks. */
  single?: { start: number; blocks: { unpadded: number; size: number }[] };
}

/** xz: the index of every stream, read backwards from the end (xz file format 1.0.4 §2.1.2, §4). */
async function xzLayout(src: ByteSource): Promise<XzLayout | undefined> {
  let end = src.size;
  let total = 0;
  let streams = 0;
  let last: XzLayout['single'];
  for (; end > 0 && streams < 1000; streams++) {
    // Stream padding: zero bytes in groups of four.
    while (end >= 4) {
      const p = await src.read(end - 4, 4);
      if (p.some((x) => x !== 0)) break;
      end -= 4;
    }
    if (end < 24) return undefined;
    const f = await readExact(src, end - 12, 12);
    if (f[10] !== 0x59 || f[11] !== 0x5a) return undefined;
    const backward = (new Struct(f, true).u32(4) + 1) * 4;
    const indexAt = end - 12 - backward;
    if (indexAt < 12 || backward > 64 * 1024 * 1024) return undefined;
    const idx = await readExact(src, indexAt, backward);
    let p = 1;
    const vli = (): number => {
      let v = 0;
      for (let i = 0, mul = 1; i < 9; i++, mul *= 128) {
        if (p >= idx.length) throw new RangeError();
        const b = idx[p++]!;
        v += (b & 0x7f) * mul;
        if (!(b & 0x80)) return v;
      }
      throw new RangeError();
    };
    if (idx[0] !== 0) return undefined;
    let padded = 0;
    let size = 0;
    const blocks: { unpadded: number; size: number }[] = [];
    try {
      const n = vli();
      if (n > backward) return undefined;
      for (let i = 0; i < n; i++) {
        const unpadded = vli();
        const bsize = vli();
        padded += Math.ceil(unpadded / 4) * 4;
        size += bsize;
        blocks.push({ unpadded, size: bsize });
      }
    } catch {
      return undefined;
    }
    const start = indexAt - padded - 12;
    if (start < 0) return undefined;
    const h = await readExact(src, start, 6);
    if (h[0] !== 0xfd || h[1] !== 0x37 || h[2] !== 0x7a || h[3] !== 0x58 || h[4] !== 0x5a || h[5] !== 0) return undefined;
    total += size;
    end = start;
    last = { start, blocks };
  }
  if (end !== 0 || !Number.isSafeInteger(total)) return undefined;
  return streams === 1 ? { size: total, single: last } : { size: total };
}

const CRC32_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC32_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
function vliBytes(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/**
 * The last blocks of a one-stream xz file, rewrapped as an xz stream of their own (the stream
 * header, those blocks, a fresh index and footer), so that the tail decodes without the rest.
 */
async function xzTail(
  src: ByteSource,
  single: NonNullable<XzLayout['single']>,
  n: number,
  signal?: AbortSignal,
): Promise<Uint8Array | undefined> {
  const { start, blocks } = single;
  if (blocks.length < 2) return undefined;
  let k = blocks.length;
  let have = 0;
  while (k > 0 && have < n) have += blocks[--k]!.size;
  if (k === 0) return undefined;
  let at = start + 12;
  for (let i = 0; i < k; i++) at += Math.ceil(blocks[i]!.unpadded / 4) * 4;
  let bytes = 0;
  for (let i = k; i < blocks.length; i++) bytes += Math.ceil(blocks[i]!.unpadded / 4) * 4;
  if (bytes > 256 * 1024 * 1024) return undefined;
  const header = await readExact(src, start, 12);
  const body = await readExact(src, at, bytes);
  const rec: number[] = [0, ...vliBytes(blocks.length - k)];
  for (let i = k; i < blocks.length; i++) rec.push(...vliBytes(blocks[i]!.unpadded), ...vliBytes(blocks[i]!.size));
  while (rec.length % 4) rec.push(0);
  const index = new Uint8Array(rec.length + 4);
  index.set(rec);
  new DataView(index.buffer).setUint32(rec.length, crc32(index.subarray(0, rec.length)), true);
  const footer = new Uint8Array(12);
  const fv = new DataView(footer.buffer);
  fv.setUint32(4, index.length / 4 - 1, true);
  footer.set(header.subarray(6, 8), 8);
  footer[10] = 0x59;
  footer[11] = 0x5a;
  fv.setUint32(0, crc32(footer.subarray(4, 10)), true);
  const stream = new Uint8Array(12 + bytes + index.length + 12);
  stream.set(header);
  stream.set(body, 12);
  stream.set(index, 12 + bytes);
  stream.set(footer, 12 + bytes + index.length);
  const Xz = await xzStreamClass();
  const parts: Uint8Array[] = [];
  let got = 0;
  const input = (async function* () {
    yield stream;
  })();
  for await (const c of fromWeb(new Xz(toWeb(input)))) {
    if (signal?.aborted) throw new CancelledError();
    parts.push(c);
    got += c.length;
  }
  if (got !== have) throw new CorruptImageError(src.name, `xz: the last blocks unpack to ${got} bytes, not the ${have} the index says`);
  const all = new Uint8Array(got);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return all.subarray(Math.max(0, got - n));
}

/** zstd: the sum of every frame's content size, walking frames by their block headers; undefined when a frame omits it. */
async function zstdSize(src: ByteSource): Promise<number | undefined> {
  let pos = 0;
  let total = 0;
  const bytes = async (at: number, n: number) => (at + n <= src.size ? new Struct(await readExact(src, at, n), true) : undefined);
  while (pos < src.size) {
    const m = await bytes(pos, 8);
    if (!m) return undefined;
    const magic = m.u32(0);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      pos += 8 + m.u32(4);
      continue;
    }
    if (magic !== 0xfd2fb528) return undefined;
    const fhd = m.u8(4);
    const single = (fhd >> 5) & 1;
    const fcsFlag = fhd >> 6;
    const fcsLen = [single, 2, 4, 8][fcsFlag]!;
    if (!fcsLen) return undefined;
    const fcsAt = pos + 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]!;
    const f = await bytes(fcsAt, fcsLen);
    if (!f) return undefined;
    total += fcsLen === 1 ? f.u8(0) : fcsLen === 2 ? f.u16(0) + 256 : fcsLen === 4 ? f.u32(0) : Number(f.big64(0));
    pos = fcsAt + fcsLen;
    for (;;) {
      const b = await bytes(pos, 3);
      if (!b) return undefined;
      const h = b.u8(0) | (b.u8(1) << 8) | (b.u8(2) << 16);
      const type = (h >> 1) & 3;
      if (type === 3) return undefined;
      pos += 3 + (type === 1 ? 1 : h >>> 3);
      if (h & 1) break;
    }
    if (fhd & 4) pos += 4;
  }
  return pos === src.size && Number.isSafeInteger(total) ? total : undefined;
}

/** Opens `src` as a container of `kind`: finds what it holds and how large it is, where the format says. */
export async function openContainerAs(src: ByteSource, kind: ContainerKind): Promise<Container> {
  const file = src.name;
  let from = 0;
  let to = src.size;
  let size: number | undefined;
  let member: string | undefined;
  let method: ContainerKind | 'stored' | 'deflate-raw' = kind;
  let tail: Container['tail'];
  if (kind === 'xz') {
    const layout = await xzLayout(src);
    size = layout?.size;
    const single = layout?.single;
    if (single) tail = (n, signal) => xzTail(src, single, n, signal);
  } else if (kind === 'zstd') size = await zstdSize(src);
  else if (kind === 'zip') {
    const m = await zipMember(src);
    ({ size } = m);
    member = m.name;
    from = m.dataOffset;
    to = m.dataOffset + m.compressedSize;
    method = m.method === 0 ? 'stored' : m.method === 8 ? 'deflate-raw' : m.method === 12 ? 'bzip2' : 'zstd';
    if (method === 'stored') tail = async (n) => readExact(src, to - Math.min(n, m.size), Math.min(n, m.size));
  }
  const what = kind === 'zip' ? `zip (${ZIP_METHODS[{ stored: 0, 'deflate-raw': 8, bzip2: 12, zstd: 93 }[method as string] ?? 0]})` : kind;
  return {
    kind,
    member,
    size,
    tail,
    decode(opts: DecodeOptions & { phase?: ContainerProgress['phase'] } = {}) {
      const total = to - from;
      let done = 0;
      let out = 0;
      const phase = opts.phase ?? 'unpack';
      const report = () => opts.onProgress?.({ phase, compressedDone: done, compressedTotal: total, bytesOut: out });
      // Deflate expands at most ~1032×: 64 KiB of input stays under 64 MiB of output.
      const piece = method === 'gzip' || method === 'deflate-raw' ? 64 * 1024 : 1024 * 1024;
      const input = compressed(src, from, to, piece, (d) => (done = d), opts.signal);
      let gen: AsyncGenerator<Uint8Array>;
      if (method === 'stored') gen = input;
      else if (method === 'gzip' || method === 'deflate-raw') gen = nativeDecompress(method, input, file);
      else if (method === 'bzip2') gen = bunzip2Stream(input, opts.signal);
      else if (method === 'zstd') gen = zstdStream(input, file);
      else
        gen = (async function* () {
          const Xz = await xzStreamClass();
          yield* fromWeb(new Xz(toWeb(input)));
        })();
      return (async function* () {
        for await (const chunk of typed(gen, file, what)) {
          if (opts.signal?.aborted) throw new CancelledError();
          out += chunk.length;
          report();
          yield chunk;
        }
      })();
    },
  };
}
