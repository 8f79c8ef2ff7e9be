import { withFile } from '../io/errors.ts';
import type { BlockDevice, Extent, ImageInfo } from './types.ts';

/**
 * Makes every error a device raises name its file: parsers deep inside a driver (a checked
 * 64-bit field, a table entry) do not know which file they are reading, the device does.
 */
export class GuardedDevice implements BlockDevice {
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
  get backingRef() {
    return this.inner.backingRef;
  }
  info(): ImageInfo {
    try {
      return this.inner.info();
    } catch (e) {
      throw withFile(e, this.filename);
    }
  }
  async *extents(from?: number, to?: number): AsyncIterable<Extent> {
    try {
      yield* this.inner.extents(from, to);
    } catch (e) {
      throw withFile(e, this.filename);
    }
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    try {
      return await this.inner.read(offset, length);
    } catch (e) {
      throw withFile(e, this.filename);
    }
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
