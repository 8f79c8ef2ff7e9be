import type { BlockDevice, Extent, ImageInfo } from './types.ts';

/**
 * A device that stands in for another one: what a subclass does not override is the inner
 * device's own. The backing file is not passed through here: a wrapper that stands for the image
 * as opened says so itself, one made for a single job (a dry run) has none.
 */
export abstract class DelegatingDevice implements BlockDevice {
  constructor(readonly inner: BlockDevice) {}
  get format(): string {
    return this.inner.format;
  }
  get filename(): string {
    return this.inner.filename;
  }
  get virtualSize(): number {
    return this.inner.virtualSize;
  }
  extents(from?: number, to?: number): AsyncIterable<Extent> {
    return this.inner.extents(from, to);
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    return this.inner.read(offset, length);
  }
  info(): ImageInfo {
    return this.inner.info();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
