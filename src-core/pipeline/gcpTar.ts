import type { ByteSink } from '../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../io/errors.ts';
import type { FormatDriver, ImageWriter } from '../image/types.ts';

/**
 * Google Cloud's image tarball: a gzip-compressed tar in GNU `oldgnu` format holding one member,
 * `disk.raw` (what `tar --format=oldgnu -czf image.tar.gz disk.raw` makes). Written in one pass:
 * guest bytes arrive in order, the holes between them are sent as zeros, and everything goes
 * through a tar header and a streaming gzip into the sink, so memory stays at a window or two.
 */

/** A sequential byte stream whose compressed form lands in a sink. */
export interface StreamOut {
  write(data: Uint8Array): Promise<void>;
  /** Flushes the rest and resolves once every byte is in the sink. */
  end(): Promise<void>;
  /**
   * Optional: what the next bytes are, so the compressor can pick a faster way for long runs
   * of zeros (zlib's run-length strategy) and go back for data. Output stays valid gzip.
   */
  hint?(kind: 'zeros' | 'data'): Promise<void>;
}

/** Makes a gzip stream that writes its output from offset 0 of `sink`. */
export type GzipFactory = (sink: ByteSink) => StreamOut;

export const GCP_MEMBER = 'disk.raw';
const BLOCK = 512;
/** GNU tar's default record: 20 blocks. */
const RECORD = 20 * BLOCK;
const ZEROS = new Uint8Array(1024 * 1024);

function putString(h: Uint8Array, at: number, len: number, s: string): void {
  for (let i = 0; i < s.length && i < len; i++) h[at + i] = s.charCodeAt(i) & 0xff;
}

function putOctal(h: Uint8Array, at: number, len: number, n: number): void {
  putString(h, at, len - 1, n.toString(8).padStart(len - 1, '0'));
}

/** A numeric field: octal where it fits, else GNU's base-256 (first byte 0x80, big-endian). */
function putNumber(h: Uint8Array, at: number, len: number, n: number): void {
  if (n < 8 ** (len - 1)) return putOctal(h, at, len, n);
  let v = BigInt(n);
  for (let i = len - 1; i > 0; i--) {
    h[at + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  h[at] = 0x80;
}

/** One `oldgnu` header block for a regular file. */
export function oldGnuHeader(name: string, size: number, mtime: number): Uint8Array {
  if (name.length > 100) throw new InvalidArgumentError(`tar member name longer than 100 bytes: ${name}`);
  const h = new Uint8Array(BLOCK);
  putString(h, 0, 100, name);
  putOctal(h, 100, 8, 0o644);
  putOctal(h, 108, 8, 0);
  putOctal(h, 116, 8, 0);
  putNumber(h, 124, 12, size);
  putOctal(h, 136, 12, Math.max(0, Math.floor(mtime)));
  h[156] = 0x30; // '0': regular file
  putString(h, 257, 8, 'ustar  \0'); // GNU magic and version (oldgnu)
  putString(h, 265, 32, 'root');
  putString(h, 297, 32, 'root');
  // The checksum is computed with its own field as spaces, then stored as 6 digits, NUL, space.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  putString(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

/** The platform's own gzip (CompressionStream), for the browser and workers. */
export function compressionStreamGzip(sink: ByteSink): StreamOut {
  interface Reader {
    read(): Promise<{ done: boolean; value?: Uint8Array }>;
    cancel(reason?: unknown): Promise<void>;
  }
  interface Writer {
    readonly ready: Promise<void>;
    write(chunk: Uint8Array): Promise<void>;
    close(): Promise<void>;
    abort(reason?: unknown): Promise<void>;
  }
  type CS = new (format: 'gzip') => { readable: { getReader(): Reader }; writable: { getWriter(): Writer } };
  const Ctor = (globalThis as unknown as { CompressionStream?: CS }).CompressionStream;
  if (!Ctor) throw new UnsupportedError(sink.name, 'this platform has no CompressionStream to write gzip with');
  const cs = new Ctor('gzip');
  const writer = cs.writable.getWriter();
  const reader = cs.readable.getReader();
  let offset = 0;
  const pump = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      if (!value?.length) continue;
      await sink.write(offset, value);
      offset += value.length;
    }
  })();
  // A failed sink write stops the pump: abort the writer so a waiting write() gives up too.
  pump.catch((e) => writer.abort(e).catch(() => {}));
  return {
    async write(data) {
      await Promise.race([writer.ready.then(() => writer.write(data)), pump.then(() => undefined)]);
    },
    async end() {
      await Promise.race([writer.close(), pump]);
      await pump;
    },
  };
}

/** Receives the disk in order and streams it as the tar member; the gaps become zeros. */
class GcpTarWriter implements ImageWriter {
  readonly granularity = 64 * 1024;
  readonly warnings: string[] = [];
  private pos = 0;
  private started = false;

  constructor(
    private readonly out: StreamOut,
    private readonly size: number,
    private readonly mtime: number,
  ) {}

  private async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.out.write(oldGnuHeader(GCP_MEMBER, this.size, this.mtime));
  }

  private async zerosTo(end: number): Promise<void> {
    // Holes of a MiB or more are worth telling the compressor about (one flush each way).
    const long = end - this.pos >= ZEROS.length && this.out.hint;
    if (long) await this.out.hint!('zeros');
    while (this.pos < end) {
      const n = Math.min(ZEROS.length, end - this.pos);
      await this.out.write(ZEROS.subarray(0, n));
      this.pos += n;
    }
    if (long) await this.out.hint!('data');
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    await this.start();
    if (offset < this.pos) throw new InvalidArgumentError(`the tarball is written in order: ${offset} comes after ${this.pos}`);
    if (offset + data.length > this.size)
      throw new InvalidArgumentError(`write past the end of ${GCP_MEMBER}: ${offset + data.length} > ${this.size}`);
    await this.zerosTo(offset);
    await this.out.write(data);
    this.pos += data.length;
  }

  async finish(): Promise<void> {
    await this.start();
    await this.zerosTo(this.size);
    // The member's last block, two zero blocks ending the archive, then a whole record.
    const tarred = BLOCK + Math.ceil(this.size / BLOCK) * BLOCK;
    const end = Math.ceil((tarred + 2 * BLOCK) / RECORD) * RECORD;
    let pad = end - (BLOCK + this.size);
    while (pad > 0) {
      const n = Math.min(pad, ZEROS.length);
      await this.out.write(ZEROS.subarray(0, n));
      pad -= n;
    }
    await this.out.end();
  }
}

/**
 * A writer-only driver for the pipeline: `convert()` with it as the target makes the tarball.
 * `gzip` is the platform's compressor (CompressionStream on the page, zlib in the CLI).
 */
export function gcpTarDriver(gzip: GzipFactory = compressionStreamGzip, mtime = Date.now() / 1000): FormatDriver {
  return {
    name: 'gcp-tar',
    label: 'Google Cloud image (disk.raw in .tar.gz)',
    extensions: ['tar.gz'],
    probe: () => 0,
    open: () => Promise.reject(new UnsupportedError('', 'a Google Cloud tarball is opened as a tar, not as a disk')),
    async create(sink, opts) {
      if (opts.compress) throw new UnsupportedError(opts.filename, 'the tarball is gzip-compressed already; -c does not apply');
      if (opts.backing) throw new UnsupportedError(opts.filename, 'a Google Cloud tarball cannot have a backing file');
      const keys = Object.keys(opts.options);
      if (keys.length) throw new InvalidArgumentError(`a Google Cloud tarball takes no -o options (${keys.join(', ')})`, opts.filename);
      const w = new GcpTarWriter(gzip(sink), opts.virtualSize, mtime);
      // gcloud compute images create --source-uri takes only a name ending in .tar.gz. `-` is a
      // stream (the CLI's standard output): whoever stores it gives it its name.
      if (opts.filename !== '-' && !/\.tar\.gz$/i.test(opts.filename))
        w.warnings.push(`Google Cloud imports a tarball only by a name ending in .tar.gz; ${opts.filename} does not`);
      return w;
    },
  };
}
