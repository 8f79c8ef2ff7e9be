import { readPadded, type ByteSource } from '../../io/bytes.ts';
import type { Extent } from '../../image/types.ts';
import { fileBackedExtents } from '../../image/extents.ts';

/**
 * One extent of a VMDK disk, addressed in bytes from its own start. The device (reader.ts)
 * concatenates extents in descriptor order, as VMware does.
 */
export interface VmdkExtent {
  /** Guest bytes this extent covers. */
  readonly size: number;
  /** The file that holds it; absent for ZERO and NOACCESS extents. */
  readonly src?: ByteSource;
  extents(from: number, to: number): AsyncIterable<Extent>;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** qemu-img info's entry for this extent (format-specific.data.extents[]). */
  info(): ExtentInfo | undefined;
  close(): Promise<void>;
}

export interface ExtentInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'cluster-size'?: number;
  compressed?: boolean;
}

/** FLAT and VMFS extents: a plain byte range of a file, starting at a sector offset. */
export class FlatExtent implements VmdkExtent {
  constructor(
    readonly src: ByteSource,
    readonly size: number,
    private readonly start: number,
    private readonly typeName: string,
    private readonly displayName: string,
    private readonly isMainFile: boolean,
  ) {}
  async *extents(from: number, to: number): AsyncIterable<Extent> {
    for (const e of fileBackedExtents(this.src, from, to, this.start, true)) {
      if (!this.isMainFile) e.hostFile = this.src.name;
      yield e;
    }
  }
  // QEMU reads past the end of a short flat file as zeros; so do we.
  read(offset: number, length: number): Promise<Uint8Array> {
    return readPadded(this.src, this.start + offset, length);
  }
  info(): ExtentInfo {
    return { filename: this.displayName, format: this.typeName, 'virtual-size': this.size };
  }
  async close(): Promise<void> {
    await this.src.close?.();
  }
}

/** ZERO extents (and NOACCESS ones, which VMware never lets a guest read): zeros, no file. */
export class ZeroExtent implements VmdkExtent {
  constructor(readonly size: number) {}
  async *extents(from: number, to: number): AsyncIterable<Extent> {
    if (to > from) yield { offset: from, length: to - from, kind: 'zero' };
  }
  async read(_offset: number, length: number): Promise<Uint8Array> {
    return new Uint8Array(length);
  }
  info(): undefined {
    return undefined;
  }
  async close(): Promise<void> {}
}
