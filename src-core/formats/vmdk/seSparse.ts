import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { readBig64Table, Struct } from '../../io/struct.ts';
import { readDataExtents } from '../../image/readPlan.ts';
import { DEFAULT_LIMITS, type Extent, type Limits } from '../../image/types.ts';
import type { ExtentInfo, VmdkExtent } from './extent.ts';
import { MAX_CAPACITY_SECTORS, SECTOR } from './sparseHeader.ts';
import { Int64RangeError } from '../../io/int64.ts';
import { BoundedCache } from '../../io/boundedCache.ts';

const CONST_MAGIC = 0xcafebaben;
const VOLATILE_MAGIC = 0xcafecafen;
const VERSION = 0x200000001n;
const GT_CACHE_TABLES = 1024;

export function isSeSparseMagic(head: Uint8Array): boolean {
  return head.length >= 8 && new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true) === CONST_MAGIC;
}

type Grain = { kind: 'unallocated' } | { kind: 'zero' } | { kind: 'data'; sector: number };

/**
 * An ESXi seSparse extent (QEMU reads it, read-only, with strict header checks: vmdk.c
 * check_se_sparse_const_header). 64-bit grain directory and table entries; the top nibble of a
 * GTE says unallocated (0), unmapped (1) or zero (2), or data (3) at a grain index scrambled
 * across the low 48 bits and bits 48-59.
 */
export class SeSparseExtent implements VmdkExtent {
  readonly size: number;
  private readonly grainBytes: number;
  private readonly gtEntries: number;
  private readonly gtCache = new BoundedCache<BigUint64Array>(GT_CACHE_TABLES);

  private constructor(
    readonly src: ByteSource,
    capacity: number,
    grainSectors: number,
    gtSectors: number,
    private readonly gd: BigUint64Array,
    private readonly tablesSector: number,
    private readonly grainsSector: number,
    private readonly infoName: string,
    private readonly typeName: string,
  ) {
    this.size = capacity * SECTOR;
    this.grainBytes = grainSectors * SECTOR;
    this.gtEntries = (gtSectors * SECTOR) / 8;
  }

  static async open(src: ByteSource, opts: { limits?: Limits; infoName: string; typeName: string }): Promise<SeSparseExtent> {
    try {
      return await SeSparseExtent.openChecked(src, opts);
    } catch (e) {
      if (e instanceof Int64RangeError) throw new CorruptImageError(src.name, `seSparse header: ${e.message}`);
      throw e;
    }
  }

  private static async openChecked(
    src: ByteSource,
    opts: { limits?: Limits; infoName: string; typeName: string },
  ): Promise<SeSparseExtent> {
    const s = new Struct(await readExact(src, 0, SECTOR), true);
    if (s.big64(0) !== CONST_MAGIC) throw new CorruptImageError(src.name, 'seSparse const header has a bad magic');
    if (s.big64(8) !== VERSION) throw new UnsupportedError(src.name, `seSparse version 0x${s.big64(8).toString(16)} is not supported`);
    const capacity = s.u64(16, 'capacity');
    const grainSectors = s.u64(24, 'grain size');
    const gtSectors = s.u64(32, 'grain table size');
    if (grainSectors !== 8) throw new UnsupportedError(src.name, `seSparse grain size ${grainSectors} is not supported (8 sectors)`);
    if (gtSectors !== 64) throw new UnsupportedError(src.name, `seSparse grain table size ${gtSectors} is not supported (64 sectors)`);
    if (capacity > MAX_CAPACITY_SECTORS)
      throw new CorruptImageError(src.name, `seSparse capacity of ${capacity} sectors is beyond what can be addressed`);
    if (s.big64(40) !== 0n) throw new UnsupportedError(src.name, `seSparse flags 0x${s.big64(40).toString(16)} are not supported`);
    const volatileSector = s.u64(80, 'volatile header offset');
    const gdSector = s.u64(128, 'grain directory offset');
    const gdSectors = s.u64(136, 'grain directory size');
    const tablesSector = s.u64(144, 'grain tables offset');
    const grainsSector = s.u64(192, 'grains offset');
    const v = new Struct(await readExact(src, volatileSector * SECTOR, SECTOR), true);
    if (v.big64(0) !== VOLATILE_MAGIC) throw new CorruptImageError(src.name, 'seSparse volatile header has a bad magic');
    if (v.big64(24) !== 0n) throw new UnsupportedError(src.name, 'seSparse image is dirty (its journal needs replaying)');
    const entries = (gdSectors * SECTOR) / 8;
    const limits = opts.limits ?? DEFAULT_LIMITS;
    if (entries * 8 > limits.maxTableBytes)
      throw new CorruptImageError(src.name, `seSparse grain directory of ${entries} entries exceeds the table limit`);
    const gtSpan = ((gtSectors * SECTOR) / 8) * grainSectors;
    if (Math.ceil(capacity / gtSpan) > entries)
      throw new CorruptImageError(src.name, 'seSparse grain directory is too small for the capacity');
    const gd = readBig64Table(await readExact(src, gdSector * SECTOR, entries * 8), entries, true);
    return new SeSparseExtent(src, capacity, grainSectors, gtSectors, gd, tablesSector, grainsSector, opts.infoName, opts.typeName);
  }

  private async grain(g: number): Promise<Grain> {
    const gdIndex = Math.floor(g / this.gtEntries);
    const gde = this.gd[gdIndex] ?? 0n;
    if (gde === 0n) return { kind: 'unallocated' };
    if (gde >> 32n !== 0x10000000n) throw new CorruptImageError(this.src.name, `seSparse grain directory entry ${gdIndex} is invalid`);
    const tableSector = this.tablesSector + Number(gde & 0xffffffffn) * ((this.gtEntries * 8) / SECTOR);
    const gt = await this.gtCache.getOrLoad(tableSector, async () =>
      readBig64Table(await readExact(this.src, tableSector * SECTOR, this.gtEntries * 8), this.gtEntries, true),
    );
    const e = gt[g % this.gtEntries]!;
    switch (e >> 60n) {
      case 0n:
        if (e !== 0n) throw new CorruptImageError(this.src.name, `seSparse grain ${g} has an invalid entry`);
        return { kind: 'unallocated' };
      case 1n: // unmapped (SCSI UNMAP): reads as zeros, as in QEMU
      case 2n:
        return { kind: 'zero' };
      case 3n: {
        const index = ((e >> 48n) & 0xfffn) | ((e & 0xffffffffffffn) << 12n);
        const sector = BigInt(this.grainsSector) + index * BigInt(this.grainBytes / SECTOR);
        if (sector > BigInt(Number.MAX_SAFE_INTEGER) / 512n)
          throw new CorruptImageError(this.src.name, `seSparse grain ${g} points beyond any file`);
        return { kind: 'data', sector: Number(sector) };
      }
      default:
        throw new CorruptImageError(this.src.name, `seSparse grain ${g} has an invalid entry type`);
    }
  }

  async *extents(from: number, to: number): AsyncIterable<Extent> {
    to = Math.min(to, this.size);
    for (let pos = from; pos < to;) {
      const g = Math.floor(pos / this.grainBytes);
      const gStart = g * this.grainBytes;
      const end = Math.min(gStart + this.grainBytes, to);
      const gr = await this.grain(g);
      if (gr.kind === 'data')
        yield { offset: pos, length: end - pos, kind: 'data', hostOffset: gr.sector * SECTOR + (pos - gStart), hostFile: this.src.name };
      else yield { offset: pos, length: end - pos, kind: gr.kind };
      pos = end;
    }
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return readDataExtents(this.src, this.extents(offset, offset + length), offset, length);
  }

  /** The first guest byte whose grain lies at or past the end of the file (vmdk_co_check), if any. */
  async findGrainPastEof(): Promise<number | undefined> {
    for await (const e of this.extents(0, this.size)) {
      if (e.kind === 'data' && e.hostOffset! >= this.src.size) return e.offset;
    }
    return undefined;
  }

  info(): ExtentInfo {
    return { filename: this.infoName, format: this.typeName, 'virtual-size': this.size, 'cluster-size': this.grainBytes };
  }

  async close(): Promise<void> {
    await this.src.close?.();
  }
}
