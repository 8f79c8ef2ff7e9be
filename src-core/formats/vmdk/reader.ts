import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, MissingFileError, NotThisFormatError, UnsupportedError } from '../../io/errors.ts';
import type { BackingRef, BlockDevice, Extent, ImageInfo, OpenContext } from '../../image/types.ts';
import {
  decodeDescriptor,
  emptyDescriptor,
  looksLikeDescriptor,
  MAX_DESCRIPTOR_BYTES,
  NO_PARENT_CID,
  parseDescriptor,
  type Descriptor,
  type ExtentLine,
} from './descriptor.ts';
import { FlatExtent, ZeroExtent, type ExtentInfo, type VmdkExtent } from './extent.ts';
import { SparseExtent } from './sparseExtent.ts';
import { COWD, isSparseMagic, KDMV, SECTOR } from './sparseHeader.ts';
import { Struct } from '../../io/struct.ts';
import { Int64RangeError } from '../../io/int64.ts';
import { setBackingInfo } from '../../image/info.ts';
import { fullBackingName } from '../../image/names.ts';
import { openCowdExtent } from './cowd.ts';
import { SeSparseExtent, isSeSparseMagic } from './seSparse.ts';
import { hasOwnDescriptor, standaloneExtentError } from './standalone.ts';

/** Stand-alone descriptors VMware tools write for disks we can read (vmfsRDM and devices are not). */
const READABLE_TYPES = [
  'monolithicFlat',
  'vmfs',
  'vmfsSparse',
  'seSparse',
  'twoGbMaxExtentSparse',
  'twoGbMaxExtentFlat',
  'vmfsThin',
  'vmfsPreallocated',
  'vmfsEagerZeroedThick',
  'monolithicSparse',
  'streamOptimized',
  'custom',
];

export function magicOf(head: Uint8Array): number {
  return head.length >= 4 ? new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true) : 0;
}

/**
 * An opened VMDK: a descriptor (embedded in a sparse file, or stand-alone) and its extents,
 * concatenated in order. A delta disk names its parent in `parentFileNameHint`; the opener
 * resolves it; `open` first compares the parent's CID with our parentCID (vmdk_is_cid_valid).
 */
export class VmdkDevice implements BlockDevice {
  readonly format = 'vmdk';
  readonly virtualSize: number;
  private readonly starts: number[] = [];
  /** Set when the parent's CID is not our parentCID: reads through to it must fail. */
  private cidMismatch: string | undefined;

  private constructor(
    readonly src: ByteSource,
    readonly descriptor: Descriptor,
    readonly parts: VmdkExtent[],
    /** Sparse or COWD main file: the descriptor is embedded and the only extent is the file itself. */
    readonly embedded: boolean,
  ) {
    let pos = 0;
    for (const p of parts) {
      this.starts.push(pos);
      pos += p.size;
    }
    this.virtualSize = pos;
  }

  static async open(src: ByteSource, ctx: OpenContext): Promise<VmdkDevice> {
    let dev: VmdkDevice;
    try {
      dev = await VmdkDevice.openLayer(src, ctx);
    } catch (e) {
      if (e instanceof Int64RangeError) throw new CorruptImageError(src.name, e.message);
      throw e;
    }
    try {
      if (!ctx.noBacking) await dev.checkParentCid(ctx);
    } catch (e) {
      await dev.close();
      throw e;
    }
    return dev;
  }

  /**
   * A delta disk is only valid over the parent it was taken from: QEMU fails reads that fall
   * through to a parent whose CID differs from our parentCID (vmdk_is_cid_valid). We do the same:
   * the mismatch is noted here, and any range that would come from the parent fails with an error
   * naming both (so info still works, but no data from the wrong parent is ever exported).
   */
  private async checkParentCid(ctx: OpenContext): Promise<void> {
    const d = this.descriptor;
    if (!d.parentFileNameHint || d.parentCid === NO_PARENT_CID || !ctx.resolver) return;
    let parent: ByteSource;
    try {
      parent = await ctx.resolver.open(d.parentFileNameHint, this.src.name);
    } catch {
      return; // the opener reports a missing or refused parent with its own error
    }
    try {
      const pd = await readDescriptorOnly(parent);
      if (pd.cid !== d.parentCid) {
        this.cidMismatch = `parent "${d.parentFileNameHint}" has CID ${pd.cid.toString(16)} but this delta disk expects parentCID ${d.parentCid.toString(16)}: the parent changed after the child was made`;
      }
    } finally {
      await parent.close?.();
    }
  }

  private static async openLayer(src: ByteSource, ctx: OpenContext): Promise<VmdkDevice> {
    const head = await src.read(0, Math.min(src.size, 2048));
    const magic = magicOf(head);
    if (magic === KDMV) return VmdkDevice.openSparseMain(src, head, ctx);
    if (magic === COWD) return VmdkDevice.openCowdMain(src, ctx);
    if (!looksLikeDescriptor(head)) throw new NotThisFormatError(src.name, 'not a VMDK image (no KDMV/COWD magic and no descriptor)');
    if (src.size > MAX_DESCRIPTOR_BYTES)
      throw new CorruptImageError(src.name, `descriptor file is ${src.size} bytes; more than ${MAX_DESCRIPTOR_BYTES} is not a descriptor`);
    return VmdkDevice.openDescriptor(src, await readExact(src, 0, src.size), ctx);
  }

  /** A stand-alone descriptor (or one embedded in a zero-capacity sparse header) and its extent files. */
  private static async openDescriptor(src: ByteSource, bytes: Uint8Array, ctx: OpenContext): Promise<VmdkDevice> {
    const d = parseDescriptor(src.name, decodeDescriptor(bytes));
    if (d.createType && !READABLE_TYPES.includes(d.createType)) {
      throw new UnsupportedError(src.name, `VMDK create type "${d.createType}" (a raw device or partition mapping) cannot be read`);
    }
    if (!d.extents.length) throw new CorruptImageError(src.name, 'descriptor lists no extents');
    const parts: VmdkExtent[] = [];
    // Every missing extent is named at once, so a user can add them all in one go.
    const missing: string[] = [];
    try {
      for (const line of d.extents) {
        try {
          parts.push(await openExtent(src, line, ctx));
        } catch (e) {
          if (!(e instanceof MissingFileError)) throw e;
          missing.push(...e.names);
        }
      }
      if (missing.length) throw new MissingFileError(src.name, missing, missing.length > 1 ? 'extent files' : 'extent file');
    } catch (e) {
      for (const p of parts) await p.close();
      throw e;
    }
    if (parts.reduce((n, p) => n + p.size, 0) > Number.MAX_SAFE_INTEGER) {
      for (const p of parts) await p.close();
      throw new CorruptImageError(src.name, 'the extents add up to more bytes than can be addressed');
    }
    return new VmdkDevice(src, d, parts, false);
  }

  private static async openSparseMain(src: ByteSource, head: Uint8Array, ctx: OpenContext): Promise<VmdkDevice> {
    if (head.length < SECTOR) throw new CorruptImageError(src.name, 'sparse header is truncated');
    const raw = new Struct(head, true);
    // vmdk_open_vmdk4: a zero capacity with a descriptor means "this header only carries a descriptor".
    if (raw.big64(12) === 0n && raw.big64(28) !== 0n) {
      const at = raw.u64(28, 'descriptorOffset') * SECTOR;
      return VmdkDevice.openDescriptor(src, await src.read(at, Math.min(MAX_DESCRIPTOR_BYTES, Math.max(0, src.size - at))), ctx);
    }
    const ext = await SparseExtent.open(src, {
      codecs: ctx.codecs,
      limits: ctx.limits,
      infoName: src.name,
      typeName: '',
      isMainFile: true,
    });
    // As in vmdk_open, the header and tables are checked first, then the descriptor's CID.
    if (!(await hasOwnDescriptor(src))) throw await standaloneExtentError(src, ctx, 'sparse VMDK');
    const h = ext.header;
    let d: Descriptor = emptyDescriptor(1);
    if (h.descriptorOffset && h.descriptorSize) {
      const len = h.descriptorSize * SECTOR;
      if (len > MAX_DESCRIPTOR_BYTES)
        throw new CorruptImageError(src.name, `embedded descriptor of ${h.descriptorSize} sectors is too large`);
      const text = decodeDescriptor(await readExact(src, h.descriptorOffset * SECTOR, len));
      if (text.trim()) d = parseDescriptor(src.name, text);
    }
    // QEMU ignores an embedded createType: the header decides (compressed → streamOptimized).
    d.createType = ext.compressed ? 'streamOptimized' : 'monolithicSparse';
    return new VmdkDevice(src, d, [ext], true);
  }

  private static async openCowdMain(src: ByteSource, ctx: OpenContext): Promise<VmdkDevice> {
    const ext = await openCowdExtent(src, { codecs: ctx.codecs, limits: ctx.limits, infoName: src.name, typeName: '', isMainFile: true });
    if (!(await hasOwnDescriptor(src))) throw await standaloneExtentError(src, ctx, 'COWD (vmfsSparse)');
    const d = emptyDescriptor(1, 'vmfsSparse');
    return new VmdkDevice(src, d, [ext], true);
  }

  get filename(): string {
    return this.src.name;
  }

  get backingRef(): BackingRef | undefined {
    const hint = this.descriptor.parentFileNameHint;
    // vmdk_parent_open: QEMU reports a vmdk parent as format "vmdk".
    return hint ? { name: hint, format: 'vmdk' } : undefined;
  }

  get cid(): number {
    return this.descriptor.cid;
  }

  private *overlapping(from: number, to: number): Iterable<{ part: VmdkExtent; start: number }> {
    for (let i = 0; i < this.parts.length; i++) {
      const start = this.starts[i]!;
      const part = this.parts[i]!;
      if (start + part.size <= from) continue;
      if (start >= to) break;
      yield { part, start };
    }
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    to = Math.min(to, this.virtualSize);
    for (const { part, start } of this.overlapping(from, to)) {
      const a = Math.max(from, start) - start;
      const b = Math.min(to, start + part.size) - start;
      for await (const e of part.extents(a, b)) {
        if (e.kind === 'unallocated' && this.cidMismatch) throw new CorruptImageError(this.src.name, this.cidMismatch);
        yield { ...e, offset: e.offset + start };
      }
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(offset + length, this.virtualSize);
    const parts = [...this.overlapping(offset, end)];
    // One extent covering the whole range (the usual case): its buffer is the answer, no copy.
    if (parts.length === 1 && end === offset + length) {
      const { part, start } = parts[0]!;
      if (start <= offset && offset + length <= start + part.size) {
        const b = await part.read(offset - start, length);
        if (b.length === length) return b;
      }
    }
    const out = new Uint8Array(length);
    for (const { part, start } of parts) {
      const a = Math.max(offset, start);
      const b = Math.min(end, start + part.size);
      out.set(await part.read(a - start, b - a), a - offset);
    }
    return out;
  }

  /** qemu-img info, including format-specific data as vmdk_get_specific_info prints it. */
  info(): ImageInfo {
    const d = this.descriptor;
    const extents = this.parts.map((p) => p.info()).filter((x): x is ExtentInfo => !!x);
    const info: ImageInfo = {
      filename: this.src.name,
      format: 'vmdk',
      'virtual-size': this.virtualSize,
      'actual-size': this.actualSize(),
      'format-specific': { type: 'vmdk', data: { cid: d.cid, 'parent-cid': d.parentCid, 'create-type': d.createType, extents } },
      'dirty-flag': false,
    };
    // The disk database (adapter, geometry, hardware and tools versions): shown, never in qemu-img's JSON.
    if (Object.keys(d.ddb).length) info.extra = { ddb: d.ddb };
    // vmdk_co_get_info: the first extent's cluster size, when it is not flat and every extent
    // has the same kind (flat, compressed) and grain size; otherwise none.
    const kind = (e: ExtentInfo) => `${e['cluster-size'] ?? 'flat'}/${!!e.compressed}`;
    if (extents.length && extents[0]!['cluster-size'] && extents.every((e) => kind(e) === kind(extents[0]!))) {
      info['cluster-size'] = extents[0]!['cluster-size'];
    }
    const b = this.backingRef;
    if (b) {
      setBackingInfo(info, this.src.name, b.name, 'vmdk');
    }
    return info;
  }

  /** The descriptor plus every extent file (vmdk_get_allocated_file_size). */
  private actualSize(): number {
    const seen = new Set<ByteSource>([this.src]);
    let n = this.src.allocatedSize ?? this.src.size;
    for (const p of this.parts) {
      if (!p.src || seen.has(p.src)) continue;
      seen.add(p.src);
      n += p.src.allocatedSize ?? p.src.size;
    }
    return n;
  }

  async close(): Promise<void> {
    for (const p of this.parts) if (p.src !== this.src) await p.close();
    await this.src.close?.();
  }
}

/** Opens one descriptor extent line through the resolver, relative to the descriptor. */
async function openExtent(desc: ByteSource, line: ExtentLine, ctx: OpenContext): Promise<VmdkExtent> {
  const size = line.sectors * SECTOR;
  if (line.type === 'ZERO' || line.access === 'NOACCESS') return new ZeroExtent(size);
  if (line.type === 'VMFSRDM' || line.type === 'VMFSRAW')
    throw new UnsupportedError(desc.name, `${line.type} extents map raw devices and cannot be read`);
  const name = line.file!;
  if (!ctx.resolver) throw new MissingFileError(desc.name, name, 'extent file');
  const src = await ctx.resolver.open(name, desc.name);
  const infoName = fullBackingName(desc.name, name);
  try {
    switch (line.type) {
      case 'FLAT':
      case 'VMFS':
        return new FlatExtent(src, size, line.offset * SECTOR, line.type, infoName, false);
      case 'SPARSE':
      case 'VMFSSPARSE': {
        const head = await readExact(src, 0, Math.min(src.size, SECTOR));
        if (isSparseMagic(head))
          return await SparseExtent.open(src, { codecs: ctx.codecs, limits: ctx.limits, infoName, typeName: line.type, isMainFile: false });
        if (magicOf(head) === COWD)
          return await openCowdExtent(src, { codecs: ctx.codecs, limits: ctx.limits, infoName, typeName: line.type, isMainFile: false });
        throw new CorruptImageError(src.name, `${line.type} extent has neither KDMV nor COWD magic`);
      }
      case 'SESPARSE': {
        const head = await readExact(src, 0, Math.min(src.size, SECTOR));
        if (!isSeSparseMagic(head)) throw new CorruptImageError(src.name, 'SESPARSE extent has no seSparse magic');
        return await SeSparseExtent.open(src, { limits: ctx.limits, infoName, typeName: line.type });
      }
    }
  } catch (e) {
    await src.close?.();
    throw e;
  }
  throw new UnsupportedError(desc.name, `extent type ${line.type} is not supported`);
}

/** Just the descriptor of a VMDK (embedded or stand-alone), without opening its extents: for CIDs. */
export async function readDescriptorOnly(src: ByteSource): Promise<Descriptor> {
  const head = await src.read(0, Math.min(src.size, 2048));
  if (magicOf(head) === KDMV) {
    if (head.length < SECTOR) throw new CorruptImageError(src.name, 'sparse header is truncated');
    const h = new Struct(head, true);
    const limit = BigInt(MAX_DESCRIPTOR_BYTES);
    if (h.big64(28) * 512n > limit * 64n) throw new CorruptImageError(src.name, 'embedded descriptor offset is out of range');
    const at = Number(h.big64(28)) * SECTOR;
    const len = Number(h.big64(36) * 512n > limit ? limit : h.big64(36) * 512n);
    if (!at || !len) throw new CorruptImageError(src.name, 'sparse file has no embedded descriptor (no CID)');
    return parseDescriptor(src.name, decodeDescriptor(await readExact(src, at, len)));
  }
  if (!looksLikeDescriptor(head)) throw new NotThisFormatError(src.name, 'not a VMDK image (no KDMV magic and no descriptor)');
  return parseDescriptor(src.name, decodeDescriptor(await src.read(0, Math.min(src.size, MAX_DESCRIPTOR_BYTES))));
}
