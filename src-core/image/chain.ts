import { clip, extentEnd } from './extents.ts';
import { DelegatingDevice } from './delegatingDevice.ts';
import type { BlockDevice, Extent } from './types.ts';

/**
 * A layer composed with its backing file: unallocated ranges of the layer read through to the
 * backing device (itself possibly a chain); past the backing file's end they read as zeros.
 */
export class ChainDevice extends DelegatingDevice {
  constructor(
    readonly layer: BlockDevice,
    readonly backing: BlockDevice,
  ) {
    super(layer);
  }
  get backingRef() {
    return this.layer.backingRef;
  }

  override async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    for await (const e of this.layer.extents(from, to)) {
      if (e.kind !== 'unallocated') {
        yield { ...e, depth: e.depth ?? 0 };
        continue;
      }
      const backEnd = Math.min(extentEnd(e), this.backing.virtualSize);
      if (e.offset < backEnd) {
        for await (const b of this.backing.extents(e.offset, backEnd)) {
          const c = clip(b, e.offset, backEnd);
          if (c) yield { ...c, depth: (b.depth ?? 0) + 1 };
        }
      }
      if (backEnd < extentEnd(e)) {
        const start = Math.max(e.offset, backEnd);
        yield { offset: start, length: extentEnd(e) - start, kind: 'unallocated', depth: 1 };
      }
    }
  }

  override async read(offset: number, length: number): Promise<Uint8Array> {
    const out = await this.layer.read(offset, length);
    const end = offset + length;
    for await (const e of this.layer.extents(offset, end)) {
      if (e.kind !== 'unallocated') continue;
      const start = Math.max(e.offset, offset);
      const stop = Math.min(extentEnd(e), end, this.backing.virtualSize);
      if (stop > start) out.set(await this.backing.read(start, stop - start), start - offset);
    }
    return out;
  }

  override async close(): Promise<void> {
    await this.layer.close();
    await this.backing.close();
  }
}

/** The chain as a list, top first. */
export function chainLayers(dev: BlockDevice): BlockDevice[] {
  const out: BlockDevice[] = [];
  let cur: BlockDevice | undefined = dev;
  while (cur) {
    if (cur instanceof ChainDevice) {
      out.push(cur.layer);
      cur = cur.backing;
    } else {
      out.push(cur);
      cur = undefined;
    }
  }
  return out;
}
