/**
 * Builds Bochs growing redolog images from a guest disk, following the layout QEMU's
 * block/bochs.c reads (see src-core/formats/bochs/layout.ts). Extents that are all zero are
 * left out of the catalog; inside an allocated extent, zero sectors get a clear bitmap bit
 * unless `allBits` is set. Extents are stored in the order `order` gives (default: reversed,
 * so catalog entries and guest order differ).
 */
export interface BochsBuild {
  version?: 1 | 2;
  extentSize?: number;
  bitmapSize?: number;
  /** Catalog entries beyond what the disk needs. */
  spareEntries?: number;
  /** Header size field (where the catalog starts). */
  headerSize?: number;
  allBits?: boolean;
  order?: 'reverse' | 'forward';
  /** Disk size field; default the data's length. */
  diskSize?: number;
}

export function buildBochs(disk: Uint8Array, o: BochsBuild = {}): Uint8Array {
  const version = o.version ?? 2;
  const es = o.extentSize ?? 64 * 1024;
  const sectorsPerExtent = Math.ceil(es / 512);
  const bitmapSize = o.bitmapSize ?? Math.max(512, Math.ceil(sectorsPerExtent / 8));
  const bitmapBlocks = 1 + Math.floor((bitmapSize - 1) / 512);
  const extentBlocks = 1 + Math.floor((es - 1) / 512);
  const headerSize = o.headerSize ?? 512;
  const diskSize = o.diskSize ?? disk.length;
  const needed = Math.ceil(Math.floor(diskSize / 512) / Math.floor(es / 512));
  const entries = needed + (o.spareEntries ?? 0);
  const catalog = new Uint32Array(entries).fill(0xffffffff);
  const used: number[] = [];
  for (let e = 0; e < needed; e++) {
    const chunk = disk.subarray(Math.min(disk.length, e * es), Math.min(disk.length, (e + 1) * es));
    if (chunk.some((x) => x !== 0)) used.push(e);
  }
  const stored = o.order === 'forward' ? used : [...used].reverse();
  stored.forEach((e, k) => (catalog[e] = k));
  const dataOffset = headerSize + entries * 4;
  const slot = 512 * (bitmapBlocks + extentBlocks);
  const out = new Uint8Array(dataOffset + stored.length * slot);
  const v = new DataView(out.buffer);
  const ascii = (at: number, s: string) =>
    out.set(
      [...s].map((c) => c.charCodeAt(0)),
      at,
    );
  ascii(0, 'Bochs Virtual HD Image');
  ascii(32, 'Redolog');
  ascii(48, 'Growing');
  v.setUint32(64, version === 1 ? 0x10000 : 0x20000, true);
  v.setUint32(68, headerSize, true);
  v.setUint32(72, entries, true);
  v.setUint32(76, bitmapSize, true);
  v.setUint32(80, es, true);
  v.setBigUint64(version === 1 ? 84 : 88, BigInt(diskSize), true);
  for (let i = 0; i < entries; i++) v.setUint32(headerSize + i * 4, catalog[i]!, true);
  stored.forEach((e, k) => {
    const base = dataOffset + k * slot;
    // Guest sectors whose start lies in extent e, at the bit QEMU's seek_to_sector computes.
    for (let g = Math.ceil((e * es) / 512); g * 512 < (e + 1) * es; g++) {
      const s = Math.floor((g * 512 - e * es) / 512);
      const sector = disk.subarray(Math.min(disk.length, g * 512), Math.min(disk.length, g * 512 + 512));
      if (!o.allBits && !sector.some((x) => x !== 0)) continue;
      out[base + (s >>> 3)]! |= 1 << (s & 7);
      out.set(sector, base + 512 * (bitmapBlocks + s));
    }
  });
  return out;
}
