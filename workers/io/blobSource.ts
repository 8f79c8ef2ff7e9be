import type { ByteSource } from '../../src-core/io/bytes.ts';
import { DiskFerryError, ErrorCode } from '../../src-core/io/errors.ts';

/**
 * A dropped or picked file as a ByteSource. Each read is one `Blob.slice()`: the file stays on
 * disk and only the requested range is copied. A slice costs 1–2 ms whatever its size
 * (docs/browser.md, Reading dropped files), so the core reads metadata tables whole and data in multi-MiB runs.
 */
export class BlobSource implements ByteSource {
  constructor(
    private readonly blob: Blob,
    readonly name: string,
  ) {}

  get size(): number {
    return this.blob.size;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
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
