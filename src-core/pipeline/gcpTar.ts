import type { ByteSink } from '../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../io/errors.ts';
import type { FormatDriver, ImageWriter } from '../image/types.ts';
import { tarArchiveEnd, tarHeader, TAR_BLOCK } from './tarHeader.ts';
import { identityFor } from '../image/identity.ts';

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
const ZEROS = new Uint8Array(1024 * 1024);

/** One `oldgnu` header block for a regular file. */
export function oldGnuHeader(name: string, size: number, mtime: number): Uint8Array {
  return tarHeader(name, size, mtime, 'oldgnu');
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
    let pad = tarArchiveEnd(TAR_BLOCK + this.size) - (TAR_BLOCK + this.size);
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
export function gcpTarDriver(gzip: GzipFactory = compressionStreamGzip, mtime?: number): FormatDriver {
  return {
    name: 'gcp-tar',
    label: 'Google Cloud image (disk.raw in .tar.gz)',
    title: 'Google Cloud tarball',
    extensions: ['tar.gz'],
    probe: () => 0,
    open: () => Promise.reject(new UnsupportedError('', 'a Google Cloud tarball is opened as a tar, not as a disk')),
    async create(sink, opts) {
      if (opts.compress) throw new UnsupportedError(opts.filename, 'the tarball is gzip-compressed already; -c does not apply');
      if (opts.backing) throw new UnsupportedError(opts.filename, 'a Google Cloud tarball cannot have a backing file');
      const keys = Object.keys(opts.options);
      if (keys.length) throw new InvalidArgumentError(`a Google Cloud tarball takes no -o options (${keys.join(', ')})`, opts.filename);
      // The member's time: now, or reproducible mode's fixed time (image/identity.ts).
      const w = new GcpTarWriter(gzip(sink), opts.virtualSize, mtime ?? identityFor(opts, 'gcp-tar').time() / 1000);
      // gcloud compute images create --source-uri takes only a name ending in .tar.gz. `-` is a
      // stream (the CLI's standard output): whoever stores it gives it its name.
      if (opts.filename !== '-' && !/\.tar\.gz$/i.test(opts.filename))
        w.warnings.push(`Google Cloud imports a tarball only by a name ending in .tar.gz; ${opts.filename} does not`);
      return w;
    },
  };
}
