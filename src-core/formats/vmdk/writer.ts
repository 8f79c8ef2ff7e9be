import { baseName, type ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { utf8Encode } from '../../io/struct.ts';
import { identityFor, parseUuidOption, uuidOption } from '../../image/identity.ts';
import { checkOptions, parseBool } from '../../image/options.ts';
import type { CreateOptions, CreateOptionSpec, ImageWriter } from '../../image/types.ts';
import { buildDescriptor, NO_PARENT_CID, type DescriptorBuild } from './descriptor.ts';
import { VmdkDevice } from './reader.ts';
import { SECTOR } from './sparseHeader.ts';
import { FlatPieceWriter, GRAIN_BYTES, SparseExtentWriter, type PieceWriter } from './sparseWriter.ts';
import { StreamWriter } from './streamWriter.ts';
import { WriteOrder } from '../../image/writeOrder.ts';

export const SUBFORMATS = [
  'monolithicSparse',
  'monolithicFlat',
  'twoGbMaxExtentSparse',
  'twoGbMaxExtentFlat',
  'streamOptimized',
  'vmfs',
] as const;
export type Subformat = (typeof SUBFORMATS)[number];
const ADAPTERS = ['ide', 'buslogic', 'lsilogic', 'legacyESX'];

export const VMDK_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  {
    name: 'subformat',
    type: 'enum',
    values: SUBFORMATS,
    default: 'monolithicSparse',
    help: 'file layout: one sparse file, descriptor + flat file, 2 GiB pieces, a compressed stream (OVA, ESXi, AWS), or vmfs (an ESXi datastore pair)',
  },
  { name: 'adapter_type', type: 'enum', values: ADAPTERS, default: 'ide', help: 'virtual controller recorded in the descriptor' },
  { name: 'hwversion', type: 'string', default: '4', help: 'virtual hardware version recorded in the descriptor' },
  { name: 'compat6', type: 'bool', default: 'off', help: 'VMware Workstation 6 compatibility (hardware version 6)' },
  { name: 'toolsversion', type: 'string', default: '2147483647', help: 'VMware Tools version recorded in the descriptor' },
  { name: 'zeroed_grain', type: 'bool', default: 'off', help: 'sparse formats: mark zero grains without storing them (version 2 header)' },
  uuidOption("the disk's UUID, written as ddb.uuid.image (VirtualBox) and ddb.uuid (VMware); the CID becomes its first 8 hex digits"),
];

/** QEMU splits at exactly 2 GiB (vmdk_co_do_create: split_size). */
export const SPLIT_BYTES = 2 * 1024 * 1024 * 1024;

interface Piece {
  start: number;
  size: number;
  writer: PieceWriter;
  sink: ByteSink;
}

/**
 * Writes a VMDK of any subformat qemu-img creates. Companion files (x-flat.vmdk, x-s001.vmdk …)
 * are named from the final output name, as qemu-img names them, and created through the resolver
 * next to it; the main file (sparse image or descriptor) goes to `sink`.
 */
export async function createVmdkWriter(sink: ByteSink, opts: CreateOptions): Promise<ImageWriter> {
  const o = opts.options;
  checkOptions('vmdk', o, VMDK_CREATE_OPTIONS);
  const sub = (o.subformat ?? (opts.compress ? 'streamOptimized' : 'monolithicSparse')) as Subformat;
  if (opts.compress && sub !== 'streamOptimized') {
    throw new InvalidArgumentError(`compression (-c) needs subformat=streamOptimized, not ${sub}`);
  }
  const adapter = o.adapter_type ?? 'ide';
  const compat6 = parseBool(o.compat6, 'compat6');
  if (compat6 && o.hwversion) throw new InvalidArgumentError('compat6 cannot be enabled with hwversion set');
  const hwVersion = o.hwversion ?? (compat6 ? '6' : '4');
  const toolsVersion = o.toolsversion ?? '2147483647';
  const zeroedGrain = parseBool(o.zeroed_grain, 'zeroed_grain');
  // vmfs: what an ESXi datastore runs (createType "vmfs", one VMFS extent, x-flat.vmdk); the
  // hosted types (monolithicFlat …) fail there with "disk type 7".
  const vmfs = sub === 'vmfs';
  const flat = sub === 'monolithicFlat' || sub === 'twoGbMaxExtentFlat' || vmfs;
  if (flat && opts.backing) throw new InvalidArgumentError("a flat VMDK can't have a backing file");
  if (flat && zeroedGrain) throw new InvalidArgumentError("a flat VMDK can't enable zeroed grains");
  if (sub === 'streamOptimized' && opts.backing) throw new InvalidArgumentError('a streamOptimized VMDK cannot have a backing file');
  if (!Number.isSafeInteger(Number(hwVersion)) || !/^\d+$/.test(toolsVersion))
    throw new InvalidArgumentError('hwversion and toolsversion must be numbers');

  const size = Math.ceil(opts.virtualSize / SECTOR) * SECTOR;
  const sectors = size / SECTOR;
  const heads = adapter === 'ide' ? 16 : 255;
  let parentCid = NO_PARENT_CID;
  if (opts.backing) parentCid = await readParentCid(opts);
  const uuid = parseUuidOption(opts);
  const desc: Omit<DescriptorBuild, 'extents' | 'createType'> = {
    cid: uuid ? cidFrom(uuid) : cidFrom(identityFor(opts, 'vmdk').uuid('vmdk cid')),
    uuid,
    parentCid,
    parentFileNameHint: opts.backing?.name,
    hwVersion,
    adapterType: adapter,
    heads,
    cylinders: Math.floor(sectors / (heads * 63)),
    toolsVersion,
  };
  const main = baseName(opts.filename);
  const dot = main.lastIndexOf('.');
  const stem = dot > 0 ? main.slice(0, dot) : main;
  const ext = dot > 0 ? main.slice(dot) : '';

  if (sub === 'monolithicSparse' || sub === 'streamOptimized') {
    const text = buildDescriptor({ ...desc, createType: sub, extents: [{ access: 'RW', sectors, type: 'SPARSE', file: main }] });
    const bytes = utf8Encode(text);
    const w: PieceWriter =
      sub === 'streamOptimized' ? new StreamWriter(sink, size, bytes, opts.codecs) : new SparseExtentWriter(sink, size, zeroedGrain, bytes);
    return new VmdkWriter(sink, [{ start: 0, size, writer: w, sink }], undefined, !!opts.backing);
  }

  if (!opts.resolver?.create)
    throw new UnsupportedError(opts.filename, `subformat ${sub} writes several files, which this platform cannot create`);
  const split = sub.startsWith('twoGb');
  const pieces: Piece[] = [];
  const lines: DescriptorBuild['extents'] = [];
  try {
    for (let start = 0, n = 1; start < size || n === 1; start += SPLIT_BYTES, n++) {
      const len = split ? Math.min(SPLIT_BYTES, size - start) : size;
      const name = flat ? (split ? `${stem}-f${pad3(n)}${ext}` : `${stem}-flat${ext}`) : `${stem}-s${pad3(n)}${ext}`;
      const pieceSink = await opts.resolver.create(name, opts.filename);
      const writer = flat ? new FlatPieceWriter(pieceSink, len) : new SparseExtentWriter(pieceSink, len, zeroedGrain, undefined);
      pieces.push({ start, size: len, writer, sink: pieceSink });
      lines.push(
        vmfs
          ? // A VMFS extent line has no offset (VMware writes none; QEMU refuses one).
            { access: 'RW', sectors: len / SECTOR, type: 'VMFS', file: name }
          : flat
            ? { access: 'RW', sectors: len / SECTOR, type: 'FLAT', file: name, offset: 0 }
            : { access: 'RW', sectors: len / SECTOR, type: 'SPARSE', file: name },
      );
      if (!split) break;
    }
  } catch (e) {
    for (const p of pieces) await p.sink.close().catch(() => {});
    throw e;
  }
  const text = buildDescriptor({ ...desc, createType: sub, extents: lines });
  return new VmdkWriter(sink, pieces, utf8Encode(text), !!opts.backing);
}

function pad3(n: number): string {
  return String(n).padStart(3, '0');
}

/**
 * The CID from a UUID's first four bytes (its first 8 hex digits), never the "no parent"
 * values (QEMU's rule for its random CIDs). Without -o uuid= the UUID is the identity
 * source's: random, or derived in reproducible mode.
 */
function cidFrom(uuid: Uint8Array): number {
  const v = new DataView(uuid.buffer, uuid.byteOffset, 4).getUint32(0, false);
  return v >= 0xfffffffe ? 0x12345678 : v;
}

/** vmdk_co_do_create: a backing file must be a VMDK; the child records its CID as parentCID. */
async function readParentCid(opts: CreateOptions): Promise<number> {
  const b = opts.backing!;
  if (b.format && b.format !== 'vmdk')
    throw new InvalidArgumentError(`invalid backing file format ${b.format}: a VMDK backing file must be vmdk`);
  if (!opts.resolver) throw new UnsupportedError(opts.filename, `backing file "${b.name}" cannot be opened here`);
  const src = await opts.resolver.open(b.name, opts.filename);
  const parent = await VmdkDevice.open(src, { codecs: opts.codecs, resolver: opts.resolver, noBacking: true });
  try {
    if (parent.virtualSize > opts.virtualSize) throw new InvalidArgumentError(`backing file "${b.name}" is larger than the new disk`);
    return parent.cid;
  } finally {
    await parent.close();
  }
}

class VmdkWriter implements ImageWriter {
  readonly granularity = GRAIN_BYTES;
  /** Pieces are filled front to back; a write past the last one would otherwise vanish. */
  private readonly order: WriteOrder;
  constructor(
    private readonly sink: ByteSink,
    private readonly pieces: Piece[],
    /** The stand-alone descriptor written to `sink`, for multi-file subformats. */
    private readonly descriptor: Uint8Array | undefined,
    private readonly hasBacking: boolean,
  ) {
    const last = pieces[pieces.length - 1]!;
    this.order = new WriteOrder('vmdk', GRAIN_BYTES, last.start + last.size);
  }

  private async each(
    offset: number,
    length: number,
    fn: (p: Piece, at: number, from: number, len: number) => Promise<void>,
  ): Promise<void> {
    this.order.check(offset, length);
    for (const p of this.pieces) {
      const a = Math.max(offset, p.start);
      const b = Math.min(offset + length, p.start + p.size);
      if (b > a) await fn(p, a - p.start, a - offset, b - a);
    }
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.each(offset, data.length, (p, at, from, len) => p.writer.write(at, data.subarray(from, from + len)));
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    if (!this.hasBacking) return; // unallocated grains already read as zeros
    await this.each(offset, length, (p, at, _from, len) => p.writer.writeZeroes(at, len));
  }

  async finish(): Promise<void> {
    for (const p of this.pieces) {
      await p.writer.finish();
      if (p.sink !== this.sink) await p.sink.close();
    }
    if (this.descriptor) {
      await this.sink.write(0, this.descriptor);
      if (this.sink.truncate) await this.sink.truncate(this.descriptor.length);
    }
  }
}
