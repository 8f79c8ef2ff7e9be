import { baseName, type ByteSink, type FileResolver } from '../../io/bytes.ts';
import { CorruptImageError, InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { utf8Encode } from '../../io/struct.ts';
import type { Codecs } from '../../codecs/types.ts';
import type { ImageWriter } from '../../image/types.ts';
import { WriteOrder } from '../../image/writeOrder.ts';
import { vmdkDriver } from '../../formats/vmdk/index.ts';
import { tarArchiveEnd, tarHeader, tarPadded, TAR_BLOCK } from '../tarHeader.ts';
import type { PackageIdentity } from './identity.ts';
import { MemberSink, sha256Hex } from './memberSink.ts';
import { buildOvf, type OvfDisk } from './ovf.ts';
import type { VmSettings } from './vmSettings.ts';

/**
 * Writes an OVF package in one pass over the guest data: `ova` (one tar) or `ovf` (the
 * descriptor, the disks and the manifest side by side).
 *
 * OVA layout (OVF 1.0 §5.3: descriptor first, manifest second, then the files in References
 * order), ustar members:
 *
 *   [hdr x.ovf][x.ovf, reserved][hdr x.mf][x.mf][hdr x-disk1.vmdk][disk 1]…[2 zero blocks, record]
 *
 * A tar header holds its member's size, and a stream VMDK's size is known only once it is
 * written, so the output must be seekable (every ByteSink is: the CLI's file, the page's picked
 * file and OPFS file take positioned writes). Each disk streams into its slot while its SHA-256
 * is taken; its header is written when it ends. The descriptor's size fields (ovf:size,
 * ovf:populatedSize) are known only at the very end, so its slot is reserved for the longest
 * descriptor those numbers could give and the final text is padded with trailing whitespace
 * (allowed after the root element) to exactly that length. The manifest's length is known from
 * the start (fixed-length lines), so it sits in its own slot right after the descriptor.
 */

export type PackageKind = 'ova' | 'ovf';

/** Stream VMDK grains: the unit the disk writers take. */
const GRAIN = 64 * 1024;
/** Where each disk of several starts in the combined address space convert() writes. */
export const DISK_ALIGN = 1024 * 1024;

export interface DiskSpan {
  start: number;
  /** The disk's virtual size, a whole number of sectors (VMDK capacity is in sectors). */
  size: number;
}

/** Each disk at an aligned start, one after another; `end` is the combined size. */
export function diskLayout(sizes: number[]): { spans: DiskSpan[]; end: number } {
  const spans: DiskSpan[] = [];
  let pos = 0;
  for (const s of sizes) {
    const size = alignUp(s, 512);
    spans.push({ start: pos, size });
    pos = alignUp(pos + size, DISK_ALIGN);
  }
  const last = spans[spans.length - 1]!;
  return { spans, end: last.start + last.size };
}

/** Member names from the output's name: x.ova → x.ovf, x.mf, x-disk1.vmdk … (tar names: printable ASCII). */
export function packageNames(filename: string, kind: PackageKind, disks: number): { ovf: string; mf: string; disks: string[] } {
  // Standard output ("-") has no name to take the members' names from.
  const main = filename === '-' ? 'vm.ova' : baseName(filename);
  const dot = main.lastIndexOf('.');
  let stem = dot > 0 ? main.slice(0, dot) : main;
  if (kind === 'ova') stem = stem.replace(/[^\x21-\x7e]/g, '_').slice(0, 80) || 'vm';
  return {
    ovf: kind === 'ovf' ? main : `${stem}.ovf`,
    mf: `${stem}.mf`,
    disks: Array.from({ length: disks }, (_, i) => `${stem}-disk${i + 1}.vmdk`),
  };
}

function manifestLine(name: string, hex: string): string {
  return `SHA256(${name})= ${hex}\n`;
}

interface OpenDisk {
  index: number;
  writer: ImageWriter;
  member: MemberSink;
  /** -O ovf: the .vmdk file beside the descriptor, closed when the disk ends. */
  file?: ByteSink;
  /** -O ova: where the member's header goes. */
  headerAt: number;
  populated: number;
}

/**
 * What a first pass over the source learned about each disk's VMDK, so that a second pass can
 * write the OVA strictly front to back (to a pipe): the descriptor and the manifest go first,
 * each disk's tar header before its data. Stream VMDKs are deterministic, so the second pass
 * makes the same bytes; a disk that comes out otherwise (the source changed) is an error.
 */
export interface PackagePlan {
  disks: { fileSize: number; populatedSize: number; digest: string }[];
}

export interface PackageWriterOptions {
  kind: PackageKind;
  sink: ByteSink;
  filename: string;
  resolver: FileResolver | undefined;
  codecs: Codecs;
  settings: VmSettings;
  spans: DiskSpan[];
  identity: PackageIdentity;
  /** -O ova to a stream: the first pass's findings; everything is then written in file order. */
  plan?: PackagePlan;
}

export class PackageWriter implements ImageWriter {
  readonly granularity = GRAIN;
  readonly warnings: string[] = [];
  private readonly order: WriteOrder;
  private readonly names: { ovf: string; mf: string; disks: string[] };
  private readonly ovfSlot: number;
  private readonly mfLength: number;
  /** -O ova: where the next member header goes. */
  private pos = 0;
  private next = 0;
  private cur: OpenDisk | undefined;
  private readonly done: (OvfDisk & { digest: string })[] = [];

  constructor(private readonly o: PackageWriterOptions) {
    const { spans } = o;
    this.order = new WriteOrder(o.kind, GRAIN, spans[spans.length - 1]!.start + spans[spans.length - 1]!.size);
    this.names = packageNames(o.filename, o.kind, spans.length);
    // The longest the descriptor can be: every size field at its widest.
    const widest = spans.map((s, i) => ({
      href: this.names.disks[i]!,
      capacity: s.size,
      fileSize: Number.MAX_SAFE_INTEGER,
      populatedSize: Number.MAX_SAFE_INTEGER,
    }));
    this.ovfSlot = tarPadded(utf8Encode(buildOvf(o.settings, widest, o.identity)).length);
    const hex = '0'.repeat(64);
    this.mfLength = [this.names.ovf, ...this.names.disks].reduce((n, name) => n + utf8Encode(manifestLine(name, hex)).length, 0);
    // Front to back, the descriptor and manifest are written at their exact lengths first.
    this.pos = o.plan ? 0 : TAR_BLOCK + this.ovfSlot + TAR_BLOCK + tarPadded(this.mfLength);
    if (o.plan && (o.kind !== 'ova' || o.plan.disks.length !== spans.length))
      throw new RangeError('a package plan is for an OVA with as many disks as the plan has');
  }

  /** What this pass found (each disk's size, populated bytes and digest), for a second pass to write in order. */
  get planned(): PackagePlan {
    return { disks: this.done.map((d) => ({ fileSize: d.fileSize, populatedSize: d.populatedSize, digest: d.digest })) };
  }

  /** The descriptor as it ends up: for a planned package known from the start. */
  private descriptor(disks: OvfDisk[]): Uint8Array {
    return utf8Encode(buildOvf(this.o.settings, disks, this.o.identity));
  }

  private manifest(ovf: Uint8Array, digests: string[]): Uint8Array {
    return utf8Encode(manifestLine(this.names.ovf, sha256Hex(ovf)) + this.names.disks.map((n, i) => manifestLine(n, digests[i]!)).join(''));
  }

  /** One tar member, header and data padded to whole blocks, at the front of what is left. */
  private async appendMember(name: string, data: Uint8Array): Promise<void> {
    const block = new Uint8Array(TAR_BLOCK + tarPadded(data.length));
    block.set(tarHeader(name, data.length, this.o.identity.mtime, 'ustar'));
    block.set(data, TAR_BLOCK);
    await this.o.sink.write(this.pos, block);
    this.pos += block.length;
  }

  /** Planned: the descriptor and the manifest, written before the first disk. */
  private async writeFront(): Promise<void> {
    const plan = this.o.plan!;
    const disks: OvfDisk[] = plan.disks.map((d, i) => ({
      href: this.names.disks[i]!,
      capacity: this.o.spans[i]!.size,
      fileSize: d.fileSize,
      populatedSize: d.populatedSize,
    }));
    const ovf = this.descriptor(disks);
    await this.appendMember(this.names.ovf, ovf);
    await this.appendMember(
      this.names.mf,
      this.manifest(
        ovf,
        plan.disks.map((d) => d.digest),
      ),
    );
  }

  private diskOptions(): Record<string, string> {
    // The descriptor's ddb.adapterType; VMware's own OVAs say lsilogic for every non-IDE controller.
    return { subformat: 'streamOptimized', adapter_type: this.o.settings.controller === 'ide' ? 'ide' : 'lsilogic' };
  }

  private async open(index: number): Promise<void> {
    const name = this.names.disks[index]!;
    let file: ByteSink | undefined;
    let member: MemberSink;
    if (this.o.plan) {
      // In file order: the header (its size known from the plan) before the disk's data.
      if (index === 0) await this.writeFront();
      await this.o.sink.write(this.pos, tarHeader(name, this.o.plan.disks[index]!.fileSize, this.o.identity.mtime, 'ustar'));
    }
    if (this.o.kind === 'ova') member = new MemberSink(this.o.sink, this.pos + TAR_BLOCK, `${this.o.filename}/${name}`);
    else {
      if (!this.o.resolver?.create)
        throw new UnsupportedError(this.o.filename, 'an OVF package writes several files, which this platform cannot create');
      file = await this.o.resolver.create(name, this.o.filename);
      member = new MemberSink(file, 0, name);
    }
    const writer = await vmdkDriver.create!(member, {
      virtualSize: this.o.spans[index]!.size,
      options: this.diskOptions(),
      codecs: this.o.codecs,
      filename: name,
      reproducible: this.o.identity.diskSeed(index + 1),
    });
    this.cur = { index, writer, member, file, headerAt: this.pos, populated: 0 };
  }

  private async closeCurrent(): Promise<void> {
    const c = this.cur;
    if (!c) return;
    this.cur = undefined;
    await c.writer.finish();
    const size = c.member.size;
    const name = this.names.disks[c.index]!;
    const digest = c.member.digestHex(); // once: taking it ends the hash
    const planned = this.o.plan?.disks[c.index];
    if (planned && (planned.fileSize !== size || planned.digest !== digest))
      throw new CorruptImageError(name, 'the source changed between the two passes of a package written in order (a pipe)');
    if (this.o.kind === 'ova') {
      if (!planned) await this.o.sink.write(c.headerAt, tarHeader(name, size, this.o.identity.mtime, 'ustar'));
      const end = c.headerAt + TAR_BLOCK + size;
      const padded = c.headerAt + TAR_BLOCK + tarPadded(size);
      if (padded > end) await this.o.sink.write(end, new Uint8Array(padded - end));
      this.pos = padded;
    } else await c.file!.close();
    this.done.push({
      href: name,
      fileSize: size,
      capacity: this.o.spans[c.index]!.size,
      populatedSize: c.populated,
      digest,
    });
  }

  /** Makes disk `index` the current one, ending (and creating, if nothing was written to them) the ones before. */
  private async enter(index: number): Promise<void> {
    while (this.next <= index) {
      await this.closeCurrent();
      await this.open(this.next++);
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    for (let i = 0; i < this.o.spans.length; i++) {
      const s = this.o.spans[i]!;
      const a = Math.max(offset, s.start);
      const b = Math.min(offset + data.length, s.start + s.size);
      if (a >= b) continue;
      await this.enter(i);
      const piece = data.subarray(a - offset, b - offset);
      await this.cur!.writer.write(a - s.start, piece);
      this.cur!.populated += piece.length;
    }
    // Bytes between one disk's end and the next start are the sequence's zero padding: dropped.
  }

  // A stream VMDK has no parent: what is not written reads as zeros.
  async writeZeroes(): Promise<void> {}

  async finish(): Promise<void> {
    await this.enter(this.o.spans.length - 1);
    await this.closeCurrent();
    if (this.o.plan) {
      // Front to back: only the archive's end is left.
      const end = tarArchiveEnd(this.pos);
      await this.o.sink.write(this.pos, new Uint8Array(end - this.pos));
      return;
    }
    const ovfText = buildOvf(this.o.settings, this.done, this.o.identity);
    let ovf = utf8Encode(ovfText);
    if (this.o.kind === 'ova') {
      if (ovf.length > this.ovfSlot) throw new RangeError(`the OVF descriptor outgrew its slot (${ovf.length} > ${this.ovfSlot})`);
      const pad = this.ovfSlot - ovf.length;
      ovf = utf8Encode(pad ? ovfText + ' '.repeat(pad - 1) + '\n' : ovfText);
    }
    const mf = this.manifest(
      ovf,
      this.done.map((d) => d.digest),
    );
    if (this.o.kind === 'ovf') {
      await this.o.sink.write(0, ovf);
      if (this.o.sink.truncate) await this.o.sink.truncate(ovf.length);
      const mfSink = await this.o.resolver!.create!(this.names.mf, this.o.filename);
      try {
        await mfSink.write(0, mf);
      } finally {
        await mfSink.close();
      }
      return;
    }
    if (mf.length !== this.mfLength) throw new RangeError(`the manifest is ${mf.length} bytes, not the ${this.mfLength} reserved`);
    const { mtime } = this.o.identity;
    await this.o.sink.write(0, tarHeader(this.names.ovf, ovf.length, mtime, 'ustar'));
    await this.o.sink.write(TAR_BLOCK, ovf);
    const mfAt = TAR_BLOCK + this.ovfSlot;
    const mfBlock = new Uint8Array(TAR_BLOCK + tarPadded(mf.length));
    mfBlock.set(tarHeader(this.names.mf, mf.length, mtime, 'ustar'));
    mfBlock.set(mf, TAR_BLOCK);
    await this.o.sink.write(mfAt, mfBlock);
    // Two zero blocks end the archive; GNU tar pads it to a whole record.
    const end = tarArchiveEnd(this.pos);
    await this.o.sink.write(this.pos, new Uint8Array(end - this.pos));
    if (this.o.sink.truncate) await this.o.sink.truncate(end);
  }
}

export function checkPackageCreate(kind: PackageKind, filename: string, compress: boolean | undefined, backing: unknown): void {
  if (compress)
    throw new InvalidArgumentError(
      `an ${kind.toUpperCase()}'s disks are stream-optimized VMDKs, compressed already; -c does not apply`,
      filename,
    );
  if (backing) throw new UnsupportedError(filename, `an ${kind.toUpperCase()} cannot have a backing file`);
}
