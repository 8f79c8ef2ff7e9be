import { withFile } from '../io/errors.ts';
import { DelegatingDevice } from './delegatingDevice.ts';
import type { Extent, ImageInfo } from './types.ts';

/**
 * Makes every error a device raises name its file: parsers deep inside a driver (a checked
 * 64-bit field, a table entry) do not know which file they are reading, the device does.
 */
export class GuardedDevice extends DelegatingDevice {
  get backingRef() {
    return this.inner.backingRef;
  }
  override info(): ImageInfo {
    try {
      return this.inner.info();
    } catch (e) {
      throw withFile(e, this.filename);
    }
  }
  override async *extents(from?: number, to?: number): AsyncIterable<Extent> {
    try {
      yield* this.inner.extents(from, to);
    } catch (e) {
      throw withFile(e, this.filename);
    }
  }
  override async read(offset: number, length: number): Promise<Uint8Array> {
    try {
      return await this.inner.read(offset, length);
    } catch (e) {
      throw withFile(e, this.filename);
    }
  }
}
