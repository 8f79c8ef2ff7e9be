import { readFileSync, writeFileSync } from 'node:fs';
import zlib from 'node:zlib';

/**
 * Builds a stream-optimized VMDK the way VMware's ovftool lays it out (VMDK spec 5.0 §
 * "Stream-Optimized Compressed Sparse Extents"), written from the spec for tests and
 * independent of DiskFerry's writer: header with gdOffset = GD_AT_END, descriptor, grains each
 * behind a grain marker, a GT marker before every non-empty grain table, a GD marker before the
 * directory, then FOOTER marker, footer (header copy with the real gdOffset) and EOS marker.
 */
export interface StreamOptions {
  grainSectors?: number;
  /** OVFTool style: `createType=streamOptimized` unquoted and an RDONLY extent line. */
  ovftoolDescriptor?: boolean;
  /** Without grain/GT/GD markers: compressed grains start at the GTE sector; GD in the header. */
  noMarkers?: boolean;
  /** Zero sectors appended after the EOS marker (some exporters pad files). */
  trailingPadSectors?: number;
  level?: number;
}

const SECTOR = 512;
const GTES = 512;

function header(capacity: number, grainSectors: number, descSectors: number, gdOffset: bigint, flags: number): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.write('KDMV', 0, 'latin1');
  h.writeUInt32LE(3, 4);
  h.writeUInt32LE(flags, 8);
  h.writeBigUInt64LE(BigInt(capacity), 12);
  h.writeBigUInt64LE(BigInt(grainSectors), 20);
  h.writeBigUInt64LE(1n, 28);
  h.writeBigUInt64LE(BigInt(descSectors), 36);
  h.writeUInt32LE(GTES, 44);
  h.writeBigUInt64LE(0n, 48);
  h.writeBigUInt64LE(gdOffset, 56);
  h.writeBigUInt64LE(BigInt(Math.ceil((1 + descSectors) / grainSectors) * grainSectors), 64);
  h.write('\n \r\n', 73, 'latin1');
  h.writeUInt16LE(1, 77);
  return h;
}

function marker(numSectors: number, type: number): Buffer {
  const m = Buffer.alloc(SECTOR);
  m.writeBigUInt64LE(BigInt(numSectors), 0);
  m.writeUInt32LE(type, 12);
  return m;
}

function padSector(b: Buffer): Buffer {
  const n = Math.ceil(b.length / SECTOR) * SECTOR;
  return n === b.length ? b : Buffer.concat([b, Buffer.alloc(n - b.length)]);
}

export function buildStreamVmdk(raw: Uint8Array, opts: StreamOptions = {}): Buffer {
  const grainSectors = opts.grainSectors ?? 128;
  const grainBytes = grainSectors * SECTOR;
  const capacity = Math.ceil(raw.length / SECTOR);
  const grains = Math.ceil(capacity / grainSectors);
  const gtCount = Math.ceil(grains / GTES);
  const markers = !opts.noMarkers;
  const desc = padSector(
    Buffer.from(
      '# Disk DescriptorFile\nversion=1\nencoding="UTF-8"\nCID=7e3c2a11\nparentCID=ffffffff\n' +
        (opts.ovftoolDescriptor ? 'createType=streamOptimized\n' : 'createType="streamOptimized"\n') +
        '\n# Extent description\n' +
        `${opts.ovftoolDescriptor ? 'RDONLY' : 'RW'} ${capacity} SPARSE "disk.vmdk"\n` +
        '\n# The Disk Data Base\n#DDB\n\nddb.adapterType = "lsilogic"\nddb.geometry.cylinders = "10"\nddb.geometry.heads = "255"\n' +
        'ddb.geometry.sectors = "63"\nddb.toolsVersion = "10304"\nddb.virtualHWVersion = "8"\n',
      'latin1',
    ),
  );
  const descSectors = desc.length / SECTOR;
  const flags = 0x1 | 0x10000 | (markers ? 0x20000 : 0);
  const overhead = Math.ceil((1 + descSectors) / grainSectors) * grainSectors;
  const parts: Buffer[] = [];
  let sector = 0;
  const push = (b: Buffer) => {
    const p = padSector(b);
    parts.push(p);
    const at = sector;
    sector += p.length / SECTOR;
    return at;
  };
  // Without markers the GD and GTs must be findable from the header: put them right after it.
  const gdPlace = markers ? -1 : 1 + descSectors;
  const gtBase = markers ? -1 : gdPlace + Math.ceil((gtCount * 4) / SECTOR);
  const dataStart = markers ? overhead : Math.ceil((gtBase + gtCount * 4) / grainSectors) * grainSectors;
  push(header(capacity, grainSectors, descSectors, markers ? 0xffffffffffffffffn : BigInt(gdPlace), flags));
  push(desc);
  const gd = new Uint32Array(gtCount);
  const gts: Uint32Array[] = [];
  for (let k = 0; k < gtCount; k++) gts.push(new Uint32Array(GTES));
  if (!markers) {
    for (let k = 0; k < gtCount; k++) gd[k] = gtBase + k * 4;
    push(Buffer.alloc((dataStart - sector) * SECTOR)); // tables are filled in below
  } else push(Buffer.alloc((overhead - sector) * SECTOR));
  for (let k = 0; k < gtCount; k++) {
    for (let i = 0; i < GTES; i++) {
      const g = k * GTES + i;
      if (g >= grains) break;
      const chunk = raw.subarray(g * grainBytes, Math.min((g + 1) * grainBytes, raw.length));
      if (chunk.every((x) => x === 0)) continue;
      const z = zlib.deflateSync(chunk, { level: opts.level ?? 9 });
      if (markers) {
        const m = Buffer.alloc(12);
        m.writeBigUInt64LE(BigInt(g * grainSectors), 0);
        m.writeUInt32LE(z.length, 8);
        gts[k]![i] = push(Buffer.concat([m, z]));
      } else gts[k]![i] = push(z);
    }
    if (markers && gts[k]!.some((x) => x !== 0)) {
      push(marker(4, 1));
      gd[k] = push(Buffer.from(gts[k]!.buffer));
    }
  }
  if (markers) {
    const gdBytes = Buffer.from(gd.buffer);
    push(marker(Math.ceil(gdBytes.length / SECTOR), 2));
    const gdAt = push(gdBytes);
    push(marker(1, 3));
    push(header(capacity, grainSectors, descSectors, BigInt(gdAt), flags));
    push(Buffer.alloc(SECTOR)); // EOS
    if (opts.trailingPadSectors) push(Buffer.alloc(opts.trailingPadSectors * SECTOR));
  }
  const file = Buffer.concat(parts);
  if (!markers) {
    Buffer.from(gd.buffer).copy(file, gdPlace * SECTOR);
    for (let k = 0; k < gtCount; k++) Buffer.from(gts[k]!.buffer).copy(file, (gtBase + k * 4) * SECTOR);
  }
  return file;
}

export function writeStreamVmdk(rawFile: string, out: string, opts?: StreamOptions): void {
  writeFileSync(out, buildStreamVmdk(readFileSync(rawFile), opts));
}
