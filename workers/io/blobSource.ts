import type { ByteSource } from '../../src-core/io/bytes.ts';
import { DiskFerryError, ErrorCode } from '../../src-core/io/errors.ts';

/** Reads this large or larger are data runs (a conversion's windows), worth reading ahead. */
const READ_AHEAD_MIN = 1024 * 1024;
/**
 * Further runs of the same length fetched while the caller works on the current one. Chromium
 * serves a Blob slice on its own threads: measured here on a 5 GiB file in 16 MiB slices, one
 * read in flight at a time took 16–26 s, two or three at once 12–14 s.
 */
const READ_AHEAD = 2;

interface Ahead {
  offset: number;
  length: number;
  bytes: Promise<Uint8Array>;
}

/**
 * A dropped or picked file as a ByteSource. Each read is one `Blob.slice()`: the file stays on
 * disk and only the requested range is copied. A slice costs 1–2 ms whatever its size
 * (docs/browser.md, Reading dropped files), so the core reads metadata tables whole and data in
 * multi-MiB runs; when those runs follow each other, the next ones are already on their way.
 */
export class BlobSource implements ByteSource {
  private ahead: Ahead[] = [];
  constructor(
    private readonly blob: Blob,
    readonly name: string,
    /** Runs fetched ahead of a data run (0: none, for a reader that jumps, as the zero scout). */
    private readonly readAhead = READ_AHEAD,
  ) {}

  get size(): number {
    return this.blob.size;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    const first = this.ahead[0];
    let bytes: Promise<Uint8Array>;
    if (first && first.offset === offset && first.length === length) {
      bytes = first.bytes;
      this.ahead.shift();
    } else {
      // Not the run that was expected: whatever was read ahead is dropped.
      this.ahead = [];
      bytes = this.slice(offset, length);
    }
    if (length >= READ_AHEAD_MIN) {
      let next = this.ahead.length ? this.ahead[this.ahead.length - 1]!.offset + length : offset + length;
      while (this.ahead.length < this.readAhead && next < this.blob.size) {
        const run = this.slice(next, length);
        run.catch(() => {}); // a failure surfaces if and when this run is asked for
        this.ahead.push({ offset: next, length, bytes: run });
        next += length;
      }
    }
    return bytes;
  }

  private async slice(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(this.blob.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    try {
      return new Uint8Array(await this.blob.slice(offset, end).arrayBuffer());
    } catch (e) {
      // NotReadableError: the file was changed, moved or deleted after it was dropped.
      throw new DiskFerryError(ErrorCode.Io, this.name, `cannot be read any more (${(e as Error).message}); was it changed or moved?`);
    }
  }
}
