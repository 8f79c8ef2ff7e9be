import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError } from '../../io/errors.ts';
import { Int64RangeError } from '../../io/int64.ts';
import { readBig64Table } from '../../io/struct.ts';
import { infoBasics, setBackingInfo } from '../../image/info.ts';
import { readDataExtents } from '../../image/readPlan.ts';
import { DEFAULT_LIMITS, type BackingRef, type BlockDevice, type Extent, type ImageInfo, type OpenContext } from '../../image/types.ts';
import { batGeometry, bitmapIndex, entryOffset, entryState, payloadIndex, type BatGeometry } from './bat.ts';
import { guidToString } from '../../io/guid.ts';
import {
  assertVhdx,
  HEAD_BYTES,
  isVhdx,
  parseCreator,
  parseRegionTables,
  pickHeader,
  type Region,
  type RegionTable,
  type VhdxHeader,
} from './header.ts';
import { BAT, HEADER_SECTION_END, MiB, SB_PRESENT } from './layout.ts';
import { replayLog, type LogReplay } from './log.ts';
import { parentCandidates, readMetadata, type VhdxMetadata } from './metadata.ts';
import { BoundedCache } from '../../io/boundedCache.ts';

/** Sector-bitmap blocks (1 MiB each) kept for differencing reads. */
const BITMAP_CACHE = 4;

export interface VhdxStructure {
  header: VhdxHeader;
  regions: RegionTable;
  metadata: VhdxMetadata;
  geometry: BatGeometry;
  bat: BigUint64Array;
  creator: string;
  replay: LogReplay | undefined;
  /** Where every read goes: the file, or the file with the replayed log over it. */
  source: ByteSource;
}

/**
 * Reads everything but the data: headers, log (replayed in memory), region table, metadata
 * and BAT, in QEMU's order (vhdx_open). The BAT is read in one piece.
 */
export async function readStructure(src: ByteSource, ctx: Pick<OpenContext, 'limits'>): Promise<VhdxStructure> {
  try {
    return await readStructureUnchecked(src, ctx);
  } catch (e) {
    // A 64-bit field beyond 2^53 is corruption; say so with the file's name, as every error does.
    if (e instanceof Int64RangeError) throw new CorruptImageError(src.name, e.message);
    throw e;
  }
}

async function readStructureUnchecked(src: ByteSource, ctx: Pick<OpenContext, 'limits'>): Promise<VhdxStructure> {
  const limits = ctx.limits ?? DEFAULT_LIMITS;
  const head = await src.read(0, Math.min(src.size, HEAD_BYTES));
  assertVhdx(src.name, head);
  const header = pickHeader(src.name, head);
  const replay = await replayLog(src, header, limits.maxTableBytes);
  const source = replay?.source ?? src;
  const regionBytes = replay ? await readExact(source, 0, HEAD_BYTES) : head;
  const regions = parseRegionTables(src.name, regionBytes);
  const log: Region = { offset: header.logOffset, length: header.logLength };
  for (const [what, r] of [
    ['BAT', regions.bat],
    ['metadata', regions.metadata],
  ] as const) {
    if (overlaps(r, log)) throw new CorruptImageError(src.name, `VHDX ${what} region overlaps the log`);
  }
  const metadata = await readMetadata(src.name, source, regions.metadata);
  const geometry = batGeometry(metadata.virtualSize, metadata.blockSize, metadata.logicalSectorSize, metadata.hasParent);
  const batBytes = geometry.entries * 8;
  if (batBytes > regions.bat.length) {
    throw new CorruptImageError(
      src.name,
      `VHDX BAT region is ${regions.bat.length} bytes but ${geometry.entries} entries need ${batBytes}`,
    );
  }
  if (batBytes > limits.maxTableBytes)
    throw new CorruptImageError(src.name, `VHDX BAT of ${batBytes} bytes exceeds the ${limits.maxTableBytes}-byte limit`);
  const bat = readBig64Table(await readExact(source, regions.bat.offset, batBytes), geometry.entries, true);
  return { header, regions, metadata, geometry, bat, creator: parseCreator(head), replay, source };
}

export function overlaps(a: Region, b: Region): boolean {
  return a.offset < b.offset + b.length && b.offset < a.offset + a.length;
}

export interface BatProblem {
  index: number;
  message: string;
}

/**
 * Payload entries that point where no block can be (QEMU vhdx_check_bat_entries): past the end
 * of the file, or into the header section, log, BAT or metadata. QEMU allows the last block to
 * be cut short by the end of the file.
 */
export function batProblems(s: VhdxStructure, fileSize: number, limit = Infinity, bitmaps = true): BatProblem[] {
  const out: BatProblem[] = [];
  const g = s.geometry;
  const reserved: Region[] = [
    { offset: 0, length: HEADER_SECTION_END },
    { offset: s.header.logOffset, length: s.header.logLength },
    s.regions.bat,
    s.regions.metadata,
  ];
  for (let block = 0; block < g.payloadBlocks && out.length < limit; block++) {
    const i = payloadIndex(g, block);
    const e = s.bat[i]!;
    const state = entryState(e);
    if (state !== BAT.FULLY_PRESENT && state !== BAT.PARTIALLY_PRESENT) continue;
    const offset = entryOffset(e);
    const length = Math.min(g.blockSize, s.metadata.virtualSize - block * g.blockSize);
    const where = `BAT entry ${i} (block ${block})`;
    if (offset >= fileSize)
      out.push({
        index: i,
        message: `${where} starts at ${offset}, past the end of the file (${fileSize} bytes); the image has probably been truncated`,
      });
    else if (offset + length > fileSize)
      out.push({
        index: i,
        message: `${where} ends at ${offset + length - 1}, past the end of the file (${fileSize} bytes); the image has probably been truncated`,
      });
    else if (reserved.some((r) => overlaps(r, { offset, length: g.blockSize })))
      out.push({ index: i, message: `${where} at ${offset} overlaps the VHDX metadata (header section, log, BAT or metadata region)` });
  }
  // Sector-bitmap blocks (1 MiB) must lie inside the file too (QEMU checks every entry in state 6).
  for (let chunk = 0; bitmaps && chunk * (g.chunkRatio + 1) + g.chunkRatio < g.entries && out.length < limit; chunk++) {
    const i = chunk * (g.chunkRatio + 1) + g.chunkRatio;
    const e = s.bat[i]!;
    if (entryState(e) !== SB_PRESENT) continue;
    const offset = entryOffset(e);
    if (offset + MiB > fileSize)
      out.push({
        index: i,
        message: `BAT entry ${i} (sector bitmap of chunk ${chunk}) at ${offset} reaches past the end of the file (${fileSize} bytes)`,
      });
  }
  return out;
}

/** Classifies the payload block's state the way QEMU's read path does, failing on nonsense. */
type BlockKind = 'data' | 'zero' | 'parent' | 'partial';

/**
 * An opened VHDX layer: fixed, dynamic or differencing. Differencing files set `backingRef` to
 * their parent's name from the parent locator; the chain reads through for blocks (and, in
 * partially present blocks, sectors) the file does not hold.
 */
export class VhdxDevice implements BlockDevice {
  readonly format = 'vhdx';
  readonly virtualSize: number;
  readonly backingRef: BackingRef | undefined;
  private readonly bitmaps = new BoundedCache<Uint8Array>(BITMAP_CACHE);

  private constructor(
    private readonly file: ByteSource,
    readonly s: VhdxStructure,
    private readonly parent: ParentChoice | undefined,
  ) {
    this.virtualSize = s.metadata.virtualSize;
    this.backingRef = parent ? { name: parent.name, format: 'vhdx' } : undefined;
  }

  static async open(src: ByteSource, ctx: OpenContext): Promise<VhdxDevice> {
    const s = await readStructure(src, ctx);
    // Only a differencing file ever reads its sector-bitmap slots; junk there in other files is
    // harmless (QEMU issue #727 left some), so opening ignores it where check reports it.
    const [problem] = batProblems(s, s.source.size, 1, s.metadata.hasParent);
    if (problem) throw new CorruptImageError(src.name, problem.message);
    const parent = s.metadata.parent ? await chooseParent(src, s, ctx) : undefined;
    return new VhdxDevice(src, s, parent);
  }

  get filename(): string {
    return this.file.name;
  }

  private blockKind(block: number): { kind: BlockKind; offset: number } {
    const e = this.s.bat[payloadIndex(this.s.geometry, block)]!;
    const state = entryState(e);
    const diff = this.s.metadata.hasParent;
    switch (state) {
      case BAT.FULLY_PRESENT:
        return { kind: 'data', offset: entryOffset(e) };
      case BAT.NOT_PRESENT:
      case BAT.UNMAPPED:
      case BAT.UNMAPPED_V095:
      case BAT.UNDEFINED:
        // MS-VHDX 2.5.1.1: in a differencing file NOT_PRESENT defers to the parent; UNDEFINED and
        // UNMAPPED may read as anything, and the parent is what libvhdi returns. Without a
        // parent all of them read as zeros, as QEMU returns.
        return { kind: diff ? 'parent' : 'zero', offset: 0 };
      case BAT.ZERO:
        // Defined to be zeros in every file type: it hides the parent's data.
        return { kind: 'zero', offset: 0 };
      case BAT.PARTIALLY_PRESENT:
        if (!diff)
          throw new CorruptImageError(this.file.name, `block ${block} is partially present, which only a differencing VHDX may be`);
        return { kind: 'partial', offset: entryOffset(e) };
      default:
        throw new CorruptImageError(this.file.name, `BAT entry for block ${block} has the unknown state ${state}`);
    }
  }

  /** The 1 MiB sector bitmap of chunk `chunk` (LSB-first: bit k of byte b is sector 8b+k). */
  private async bitmap(chunk: number): Promise<Uint8Array> {
    return this.bitmaps.getOrLoad(chunk, async () => {
      const e = this.s.bat[bitmapIndex(this.s.geometry, chunk)] ?? 0n;
      if (entryState(e) !== SB_PRESENT)
        throw new CorruptImageError(this.file.name, `chunk ${chunk} has partially present blocks but no sector bitmap`);
      return readExact(this.s.source, entryOffset(e), MiB);
    });
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    to = Math.min(to, this.virtualSize);
    const bs = this.s.geometry.blockSize;
    let pos = from;
    while (pos < to) {
      const block = Math.floor(pos / bs);
      const { kind, offset } = this.blockKind(block);
      if (kind === 'partial') {
        const end = Math.min((block + 1) * bs, to);
        yield* this.partialExtents(block, offset, pos, end);
        pos = end;
        continue;
      }
      // Merge following blocks of the same kind (and, for data, contiguous in the file) into one
      // extent, without awaiting per block: a large sparse disk maps in few steps.
      let next = block + 1;
      while (next * bs < to) {
        const k = this.blockKind(next);
        if (k.kind !== kind || (kind === 'data' && k.offset !== offset + (next - block) * bs)) break;
        next++;
      }
      const end = Math.min(next * bs, to);
      const length = end - pos;
      if (kind === 'data') yield { offset: pos, length, kind: 'data', hostOffset: offset + (pos - block * bs) };
      else yield { offset: pos, length, kind: kind === 'zero' ? 'zero' : 'unallocated' };
      pos = end;
    }
  }

  /** Runs of sectors this file holds (data) or leaves to the parent (unallocated). */
  private async *partialExtents(block: number, hostBlock: number, from: number, to: number): AsyncIterable<Extent> {
    const g = this.s.geometry;
    const sector = g.logicalSectorSize;
    const chunk = Math.floor(block / g.chunkRatio);
    const bitmap = await this.bitmap(chunk);
    const chunkStart = chunk * g.chunkRatio * g.blockSize;
    const blockStart = block * g.blockSize;
    let pos = from;
    while (pos < to) {
      const bit = Math.floor((pos - chunkStart) / sector);
      const present = ((bitmap[bit >>> 3]! >>> (bit & 7)) & 1) === 1;
      let end = Math.min((bit + 1) * sector + chunkStart, to);
      // Extend over following sectors with the same bit.
      while (end < to) {
        const b = Math.floor((end - chunkStart) / sector);
        if ((((bitmap[b >>> 3]! >>> (b & 7)) & 1) === 1) !== present) break;
        end = Math.min(end + sector, to);
      }
      if (present) yield { offset: pos, length: end - pos, kind: 'data', hostOffset: hostBlock + (pos - blockStart) };
      else yield { offset: pos, length: end - pos, kind: 'unallocated' };
      pos = end;
    }
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return readDataExtents(this.s.source, this.extents(offset, Math.min(offset + length, this.virtualSize)), offset, length);
  }

  /** Fixed when every payload block is allocated and LeaveBlocksAllocated is set. */
  get subformat(): 'fixed' | 'dynamic' | 'differencing' {
    if (this.s.metadata.hasParent) return 'differencing';
    return this.s.metadata.leaveBlocksAllocated ? 'fixed' : 'dynamic';
  }

  info(): ImageInfo {
    const s = this.s;
    const info: ImageInfo = {
      ...infoBasics(this.file, 'vhdx', this.virtualSize),
      'cluster-size': s.metadata.blockSize,
      'dirty-flag': false,
      extra: {
        subformat: this.subformat,
        'block-size': s.metadata.blockSize,
        'logical-sector-size': s.metadata.logicalSectorSize,
        'physical-sector-size': s.metadata.physicalSectorSize,
        'page83-id': s.metadata.page83,
        'data-write-guid': guidToString(s.header.dataWriteGuid),
        'header-in-use': s.header.index,
        'header-sequence': s.header.sequence.toString(),
        'region-table-in-use': s.regions.copy,
        creator: s.creator,
        'log-size': s.header.logLength,
        'log-state': logState(s),
      },
    };
    if (s.replay) info.extra!['log-entries-replayed'] = s.replay.entries.length;
    if (s.metadata.parent) {
      info.extra!['parent-locator'] = s.metadata.parent.entries;
      if (this.parent?.linkage)
        info.extra!['parent-linkage'] =
          this.parent.linkage === 'matches'
            ? "matches the parent's DataWriteGuid"
            : `MISMATCH: the parent's DataWriteGuid is ${this.parent.parentDataWriteGuid}; it changed after this differencing disk was made (Hyper-V refuses such a chain)`;
      if (this.backingRef) {
        setBackingInfo(info, this.file.name, this.backingRef.name, 'vhdx');
      }
    }
    return info;
  }

  async close(): Promise<void> {
    this.bitmaps.clear();
    await this.file.close?.();
  }
}

export function logState(s: VhdxStructure): string {
  if (s.replay)
    return `dirty: ${s.replay.entries.length} log entr${s.replay.entries.length === 1 ? 'y' : 'ies'} replayed in memory (the file was not changed)`;
  if (!s.header.logGuid.every((b) => b === 0)) return 'clean (log GUID set, but no valid entries to replay)';
  return 'clean';
}

export interface ParentChoice {
  name: string;
  /** Whether the parent's DataWriteGuid is the one parent_linkage (or parent_linkage2) names; undefined when not opened. */
  linkage?: 'matches' | 'mismatch';
  parentDataWriteGuid?: string;
}

/**
 * The parent's name: the first locator path (relative, volume, absolute; MS-VHDX 2.6.2.6.3) the
 * resolver can open, preferring one whose DataWriteGuid matches parent_linkage as Hyper-V
 * requires. Without a resolver, or when none opens, the first candidate is named and the opener
 * reports it missing.
 */
async function chooseParent(src: ByteSource, s: VhdxStructure, ctx: OpenContext): Promise<ParentChoice> {
  const loc = s.metadata.parent!;
  const candidates = parentCandidates(loc);
  if (!candidates.length) throw new CorruptImageError(src.name, 'VHDX parent locator names no parent path');
  // Probed even with noBacking (plain `info`): reading 320 KiB tells whether the linkage holds.
  if (!ctx.resolver) return { name: candidates[0]! };
  const links = [loc.entries.parent_linkage, loc.entries.parent_linkage2].filter(Boolean).map((g) => g!.replace(/[{}]/g, '').toLowerCase());
  let fallback: ParentChoice | undefined;
  for (const name of candidates) {
    let guid: string | undefined;
    try {
      const p = await ctx.resolver.open(name, src.name);
      try {
        const head = await p.read(0, HEAD_BYTES);
        guid = isVhdx(head) && head.length >= HEAD_BYTES ? guidToString(pickHeader(p.name, head).dataWriteGuid) : undefined;
      } finally {
        await p.close?.();
      }
    } catch {
      continue; // not there (or not readable): try the next path
    }
    const choice: ParentChoice = { name, parentDataWriteGuid: guid };
    if (guid) choice.linkage = links.includes(guid) ? 'matches' : 'mismatch';
    if (choice.linkage === 'matches') return choice;
    fallback ??= choice;
  }
  return fallback ?? { name: candidates[0]! };
}
