/**
 * Builders for the ESXi extent formats qemu-img reads but cannot create: VMFSSPARSE ("COWD",
 * ESX redo logs) and SESPARSE. Written from the layouts in docs/formats/vmdk.md (COWD and seSparse extents) and QEMU's
 * vmdk.c structure definitions (VMDK3Header, VMDKSESparseConstHeader), independent of DiskFerry.
 */

const SECTOR = 512;

export type GrainState = 'data' | 'zero' | 'unmapped' | 'unallocated';

function allZero(b: Uint8Array): boolean {
  for (const x of b) if (x) return false;
  return true;
}

/** COWD extent: 2048-byte header, GD of u32 GT sectors, GTs of 4096 u32 grain sectors. */
export function buildCowd(raw: Uint8Array, grainSectors = 16, keep?: (grain: number) => boolean): Buffer {
  const capacity = Math.ceil(raw.length / SECTOR);
  const grainBytes = grainSectors * SECTOR;
  const grains = Math.ceil(capacity / grainSectors);
  const gtEntries = 4096;
  const gdEntries = Math.ceil(grains / gtEntries);
  const gdSector = 4;
  const gdSectors = Math.ceil((gdEntries * 4) / SECTOR);
  const gtSectors = (gtEntries * 4) / SECTOR;
  const firstGt = gdSector + gdSectors;
  let next = firstGt + gdEntries * gtSectors;
  const chunks: { at: number; data: Uint8Array }[] = [];
  const gts = Array.from({ length: gdEntries }, () => new Uint32Array(gtEntries));
  for (let g = 0; g < grains; g++) {
    const chunk = raw.subarray(g * grainBytes, Math.min((g + 1) * grainBytes, raw.length));
    if (keep ? !keep(g) : allZero(chunk)) continue;
    gts[Math.floor(g / gtEntries)]![g % gtEntries] = next;
    chunks.push({ at: next, data: chunk });
    next += grainSectors;
  }
  const file = Buffer.alloc(next * SECTOR);
  file.write('COWD', 0, 'latin1');
  file.writeUInt32LE(1, 4); // version
  file.writeUInt32LE(3, 8); // flags
  file.writeUInt32LE(capacity, 12);
  file.writeUInt32LE(grainSectors, 16);
  file.writeUInt32LE(gdSector, 20);
  file.writeUInt32LE(gdEntries, 24);
  file.writeUInt32LE(next, 28); // next free sector
  for (let k = 0; k < gdEntries; k++) {
    file.writeUInt32LE(firstGt + k * gtSectors, gdSector * SECTOR + k * 4);
    Buffer.from(gts[k]!.buffer).copy(file, (firstGt + k * gtSectors) * SECTOR);
  }
  for (const c of chunks) Buffer.from(c.data).copy(file, c.at * SECTOR);
  return file;
}

/**
 * seSparse extent: const header (0xCAFEBABE), volatile header (0xCAFECAFE), a GD of
 * 0x1000_0000_xxxx_xxxx entries, GTs of 4096 u64 entries, 4 KiB grains. `state(g)` chooses what
 * each grain becomes; by default non-zero grains are data and the rest unallocated.
 */
export function buildSeSparse(raw: Uint8Array, state?: (grain: number, chunk: Uint8Array) => GrainState): Buffer {
  const capacity = Math.ceil(raw.length / SECTOR);
  const grainSectors = 8;
  const grainBytes = grainSectors * SECTOR;
  const gtEntries = 4096;
  const gtSectors = (gtEntries * 8) / SECTOR; // 64
  const grains = Math.ceil(capacity / grainSectors);
  const gtCount = Math.ceil(grains / gtEntries);
  const gdSectors = Math.max(1, Math.ceil((gtCount * 8) / SECTOR));
  const volatileSector = 1;
  const gdSector = 2;
  const tablesSector = gdSector + gdSectors;
  const grainsSector = tablesSector + gtCount * gtSectors;
  const gts = Array.from({ length: gtCount }, () => new BigUint64Array(gtEntries));
  const data: Uint8Array[] = [];
  for (let g = 0; g < grains; g++) {
    const chunk = raw.subarray(g * grainBytes, Math.min((g + 1) * grainBytes, raw.length));
    const s = state ? state(g, chunk) : allZero(chunk) ? 'unallocated' : 'data';
    let e = 0n;
    if (s === 'zero') e = 0x2000000000000000n;
    else if (s === 'unmapped') e = 0x1000000000000000n;
    else if (s === 'data') {
      const index = BigInt(data.length);
      // Index bits 0-11 go to entry bits 48-59, the rest to bits 0-47 (vmdk.c get_cluster_offset).
      e = 0x3000000000000000n | ((index & 0xfffn) << 48n) | (index >> 12n);
      data.push(chunk);
    }
    gts[Math.floor(g / gtEntries)]![g % gtEntries] = e;
  }
  const total = grainsSector + data.length * grainSectors;
  const file = Buffer.alloc(total * SECTOR);
  const h = (off: number, v: bigint) => file.writeBigUInt64LE(v, off);
  h(0, 0xcafebaben);
  h(8, 0x200000001n);
  h(16, BigInt(capacity));
  h(24, BigInt(grainSectors));
  h(32, BigInt(gtSectors));
  h(80, BigInt(volatileSector));
  h(88, 1n);
  h(128, BigInt(gdSector));
  h(136, BigInt(gdSectors));
  h(144, BigInt(tablesSector));
  h(152, BigInt(gtCount * gtSectors));
  h(192, BigInt(grainsSector));
  h(200, BigInt(data.length * grainSectors));
  h(volatileSector * SECTOR, 0xcafecafen);
  for (let k = 0; k < gtCount; k++) {
    h(gdSector * SECTOR + k * 8, 0x1000000000000000n | BigInt(k));
    Buffer.from(gts[k]!.buffer).copy(file, (tablesSector + k * gtSectors) * SECTOR);
  }
  data.forEach((c, i) => Buffer.from(c).copy(file, (grainsSector + i * grainSectors) * SECTOR));
  return file;
}

/** A stand-alone descriptor with one extent, optionally a delta over `parent`. */
export function esxDescriptor(
  createType: string,
  extentType: string,
  sectors: number,
  file: string,
  parent?: { name: string; cid: number },
): string {
  return (
    '# Disk DescriptorFile\nversion=1\nencoding="UTF-8"\nCID=5a5a5a5a\n' +
    `parentCID=${parent ? parent.cid.toString(16) : 'ffffffff'}\n` +
    'isNativeSnapshot="no"\n' +
    `createType="${createType}"\n` +
    (parent ? `parentFileNameHint="${parent.name}"\n` : '') +
    '# Extent description\n' +
    `RW ${sectors} ${extentType} "${file}"\n` +
    '\n# The Disk Data Base\n#DDB\n\nddb.adapterType = "lsilogic"\nddb.virtualHWVersion = "14"\n'
  );
}
