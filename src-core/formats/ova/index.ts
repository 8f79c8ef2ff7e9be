import { baseName, joinRelative, readExact, SliceSource, type ByteSource, type FileResolver } from '../../io/bytes.ts';
import { InvalidArgumentError, MissingFileError, NotThisFormatError, UnsupportedError } from '../../io/errors.ts';
import { utf8Decode } from '../../io/struct.ts';
import { openImage } from '../../image/open.ts';
import { DelegatingDevice } from '../../image/delegatingDevice.ts';
import type { BlockDevice, FormatDriver, ImageInfo, OpenContext } from '../../image/types.ts';
import { infoBasics } from '../../image/info.ts';
import { isTarHeader, listTar, type TarMember } from './tar.ts';

const MAX_OVF_BYTES = 4 * 1024 * 1024;

/**
 * The disks an OVF describes, in its <Disk> order (each names a <File> by id), as member names.
 * Without an OVF (or without <Disk> elements) every member that is not OVF metadata is a disk.
 */
export function disksFromOvf(ovf: string | undefined, members: TarMember[], compressed: Set<string> = new Set()): string[] {
  if (ovf) {
    const files = new Map<string, string>();
    for (const m of ovf.matchAll(/<(?:\w+:)?File\b([^>]*)>/g)) {
      const id = /\b(?:\w+:)?id="([^"]*)"/.exec(m[1]!)?.[1];
      const href = /\b(?:\w+:)?href="([^"]*)"/.exec(m[1]!)?.[1];
      if (id && href) files.set(id, href);
      // OVF 1.0 §5.2: ovf:compression="gzip" wraps the whole file; it cannot be read in place.
      const comp = /\b(?:\w+:)?compression="([^"]*)"/.exec(m[1]!)?.[1];
      if (href && comp && comp !== 'identity') compressed.add(href);
    }
    const disks: string[] = [];
    for (const m of ovf.matchAll(/<(?:\w+:)?Disk\b([^>]*)>/g)) {
      const ref = /\b(?:\w+:)?fileRef="([^"]*)"/.exec(m[1]!)?.[1];
      const href = ref ? files.get(ref) : undefined;
      if (href && !disks.includes(href)) disks.push(href);
    }
    if (disks.length) return disks;
  }
  return members.map((m) => m.name).filter((n) => !/\.(ovf|mf|cert|xml|sha1|sha256)$/i.test(n));
}

/** Member of an OVA opened as an image: its name inside the archive and the opened device. */
class OvaDevice extends DelegatingDevice {
  constructor(
    private readonly src: ByteSource,
    inner: BlockDevice,
    private readonly disks: { name: string; size: number }[],
    private readonly selected: string,
  ) {
    super(inner);
  }
  override get format(): string {
    return 'ova';
  }
  override get filename(): string {
    return this.src.name;
  }
  /** The container, its disks, and the chosen disk's own info under format-specific. */
  override info(): ImageInfo {
    return {
      ...infoBasics(this.src, 'ova', this.inner.virtualSize),
      'format-specific': {
        type: 'ova',
        data: {
          disks: this.disks.map((d, i) => ({ index: i + 1, name: d.name, size: d.size })),
          disk: this.selected,
          'disk-format': this.inner.format,
          'disk-info': this.inner.info(),
        },
      },
      'dirty-flag': false,
    };
  }
  override async close(): Promise<void> {
    await this.inner.close();
    await this.src.close?.();
  }
}

/** Resolves names an inner image gives (a flat extent, a parent) to other members of the tar. */
class TarResolver implements FileResolver {
  constructor(
    private readonly src: ByteSource,
    private readonly members: TarMember[],
  ) {}
  async open(name: string, relativeTo: string): Promise<ByteSource> {
    const prefix = `${this.src.name}/`;
    const rel = relativeTo.startsWith(prefix) ? relativeTo.slice(prefix.length) : relativeTo;
    const want = joinRelative(rel, name);
    const m = this.members.find((x) => x.name === want);
    if (!m || want.startsWith('../') || want.startsWith('/')) throw new MissingFileError(relativeTo, name, 'file in the OVA');
    return new SliceSource(this.src, m.offset, m.size, prefix + m.name);
  }
}

export async function openOva(src: ByteSource, ctx: OpenContext): Promise<BlockDevice> {
  const head = await src.read(0, 512);
  if (!isTarHeader(head)) throw new NotThisFormatError(src.name, 'not an OVA (no tar header)');
  if (!ctx.drivers) throw new UnsupportedError(src.name, 'an OVA can only be opened through openImage (no driver registry)');
  const members = await listTar(src);
  const ovfMember = members.find((m) => m.name.toLowerCase().endsWith('.ovf'));
  let ovf: string | undefined;
  if (ovfMember && ovfMember.size <= MAX_OVF_BYTES) ovf = utf8Decode(await readExact(src, ovfMember.offset, ovfMember.size));
  const compressed = new Set<string>();
  const names = disksFromOvf(ovf, members, compressed);
  const disks: TarMember[] = [];
  for (const n of names) {
    const m = members.find((x) => x.name === n) ?? members.find((x) => baseName(x.name) === baseName(n));
    if (m) disks.push(m);
    else if (members.some((x) => x.name.startsWith(`${n}.`)))
      throw new UnsupportedError(src.name, `disk "${n}" is stored in chunks or compressed inside the OVA; that is not supported`);
    else throw new MissingFileError(src.name, n, 'disk named by the OVF');
  }
  if (!disks.length) throw new InvalidArgumentError('the OVA holds no disk', src.name);
  const chosen = pickDisk(src.name, disks, ctx.member);
  const magic = await src.read(chosen.offset, Math.min(2, chosen.size));
  if (compressed.has(chosen.name) || (magic[0] === 0x1f && magic[1] === 0x8b)) {
    throw new UnsupportedError(src.name, `disk "${chosen.name}" is gzip-compressed inside the OVA (ovf:compression); unpack it first`);
  }
  const slice = new SliceSource(src, chosen.offset, chosen.size, `${src.name}/${chosen.name}`);
  // The disk is probed like any file; its companions (extents, parents) are other members.
  const inner = await openImage(slice, ctx.drivers, {
    ...ctx,
    format: undefined,
    member: undefined,
    resolver: new TarResolver(src, members),
  } as OpenContext);
  return new OvaDevice(
    src,
    inner,
    disks.map((d) => ({ name: d.name, size: d.size })),
    chosen.name,
  );
}

/** `--disk N` (1-based, in OVF order) or `--disk NAME` (the member name); the first disk by default. */
function pickDisk(file: string, disks: TarMember[], want: string | undefined): TarMember {
  if (want === undefined || want === '') return disks[0]!;
  if (/^\d+$/.test(want)) {
    const d = disks[Number(want) - 1];
    if (!d) throw new InvalidArgumentError(`the OVA has ${disks.length} disk(s); there is no disk ${want}`, file);
    return d;
  }
  const d = disks.find((x) => x.name === want) ?? disks.find((x) => baseName(x.name) === want);
  if (!d) throw new InvalidArgumentError(`the OVA has no disk "${want}" (it has: ${disks.map((x) => x.name).join(', ')})`, file);
  return d;
}

export const ovaDriver: FormatDriver = {
  name: 'ova',
  label: 'Open Virtual Appliance (OVA: a tar of an OVF and its disks)',
  title: 'OVA',
  extensions: ['ova'],
  probe: (head, _size, filename) => {
    if (!isTarHeader(head)) return 0;
    // OVF 1.0 §5.3: the descriptor is the first member of an OVA.
    const first = String.fromCharCode(...head.subarray(0, 100)).replace(/\0.*$/s, '');
    if (first.toLowerCase().endsWith('.ovf')) return 100;
    return filename.toLowerCase().endsWith('.ova') ? 90 : 0;
  },
  open: openOva,
};
