import { readExact, SliceSource, type ByteSource } from '../../io/bytes.ts';
import { utf8Decode } from '../../io/struct.ts';
import type { BlockDevice, ImageInfo } from '../../image/types.ts';
import { listTar, type TarMember } from '../../formats/ova/tar.ts';
import type { LintFacts, OvaFacts } from './types.ts';

const MAX_OVF_BYTES = 4 * 1024 * 1024;

/** The guest's first two sectors: GPT's "EFI PART" at LBA 1 wins over its protective MBR; else 0x55AA at 510. */
export function partitionTableOf(head: Uint8Array): LintFacts['partitionTable'] {
  if (head.length >= 520 && String.fromCharCode(...head.subarray(512, 520)) === 'EFI PART') return 'gpt';
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa) return 'mbr';
  return 'none';
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

/** The subformat in the names the rules use, from a driver's info. */
function subformatOf(info: ImageInfo): string | undefined {
  const data = info['format-specific']?.data ?? {};
  const extra = info.extra ?? {};
  switch (info.format) {
    case 'vmdk':
      return str(data['create-type']);
    case 'vpc':
      return str(extra['vhd-disk-type']);
    case 'vhdx':
      return str(extra.subformat);
    case 'vdi':
      return str(extra['vdi-type']);
    default:
      return undefined;
  }
}

/** The id a hypervisor registers the disk by. VMDK keeps it in the descriptor (VirtualBox's ddb.uuid.image). */
async function uuidOf(info: ImageInfo, disk: ByteSource): Promise<string | undefined> {
  const extra = info.extra ?? {};
  const id = str(extra['vdi-uuid']) ?? str(extra['vhd-uuid']) ?? str(extra['page83-id']);
  if (id) return id.toLowerCase();
  if (info.format !== 'vmdk') return undefined;
  const head = await readExact(disk, 0, Math.min(disk.size, 64 * 1024));
  const m = /ddb\.uuid\.image\s*=\s*"([0-9a-fA-F-]{36})"/.exec(String.fromCharCode(...head.subarray(0, 64 * 1024)));
  return m?.[1]?.toLowerCase();
}

/** A hosted sparse VMDK's header version ("KDMV", then the version, little-endian). */
async function vmdkVersionOf(disk: ByteSource): Promise<number | undefined> {
  if (disk.size < 8) return undefined;
  const h = await readExact(disk, 0, 8);
  if (String.fromCharCode(...h.subarray(0, 4)) !== 'KDMV') return undefined;
  return new DataView(h.buffer, h.byteOffset, 8).getUint32(4, true);
}

/** qcow2: every data cluster's host offset above the one before it in guest order. */
async function clustersInOrder(device: BlockDevice): Promise<boolean> {
  let last = -1;
  for await (const e of device.extents()) {
    if (e.kind !== 'data' || e.hostOffset === undefined || (e.depth ?? 0) > 0) continue;
    if (e.hostOffset <= last) return false;
    last = e.hostOffset + e.length - 1;
  }
  return true;
}

function manifestKind(text: string | undefined): OvaFacts['manifest'] {
  if (text === undefined) return 'none';
  const first = /^\s*(\w+)\s*\(/m.exec(text)?.[1]?.toUpperCase();
  return first === 'SHA256' ? 'sha256' : first === 'SHA1' ? 'sha1' : first === 'SHA512' ? 'sha512' : 'other';
}

async function memberText(src: ByteSource, m: TarMember | undefined): Promise<string | undefined> {
  if (!m || m.size > MAX_OVF_BYTES) return undefined;
  return utf8Decode(await readExact(src, m.offset, m.size));
}

/** The OVA's descriptor and manifest, read through the tar listing of formats/ova. */
async function ovaFacts(src: ByteSource, members: TarMember[]): Promise<OvaFacts> {
  const ovfMember = members.find((m) => m.name.toLowerCase().endsWith('.ovf'));
  const ovf = (await memberText(src, ovfMember)) ?? '';
  const families = [...ovf.matchAll(/<(?:\w+:)?VirtualSystemType>\s*([^<]*?)\s*</g)].flatMap((m) => m[1]!.split(/\s+/).filter(Boolean));
  const manifest = await memberText(
    src,
    members.find((m) => m.name.toLowerCase().endsWith('.mf')),
  );
  return {
    ovfFirst: members[0] === ovfMember && ovfMember !== undefined,
    families,
    virtualHardwareSection: /<(?:\w+:)?VirtualHardwareSection\b/.test(ovf),
    manifest: manifestKind(manifest),
  };
}

/**
 * Facts for the rules from an opened image and its file: the device's info and extents, the
 * guest's first sectors, the VMDK header, and for an OVA its descriptor, manifest and the disk
 * member inside. `src` is the file the device was opened from (the OVA for an OVA).
 */
export async function gatherFacts(file: string, device: BlockDevice, src: ByteSource): Promise<LintFacts> {
  let info = device.info();
  let disk: ByteSource = src;
  let ova: OvaFacts | undefined;
  if (device.format === 'ova') {
    const data = info['format-specific']?.data ?? {};
    const members = await listTar(src);
    ova = await ovaFacts(src, members);
    const m = members.find((x) => x.name === data.disk);
    if (m) disk = new SliceSource(src, m.offset, m.size, `${src.name}/${m.name}`);
    info = (data['disk-info'] as ImageInfo | undefined) ?? info;
  }
  let partitionTable: LintFacts['partitionTable'];
  try {
    partitionTable = partitionTableOf(await device.read(0, Math.min(1024, device.virtualSize)));
  } catch {
    partitionTable = 'unknown';
  }
  const data = info['format-specific']?.data ?? {};
  return {
    file,
    container: ova ? 'ova' : undefined,
    format: info.format,
    subformat: subformatOf(info),
    vmdkVersion: info.format === 'vmdk' ? await vmdkVersionOf(disk) : undefined,
    virtualSize: device.virtualSize,
    fileSize: disk.size,
    backingFile: info['backing-filename'],
    dataFile: str(data['data-file']),
    clustersInOrder: info.format === 'qcow2' && !ova ? await clustersInOrder(device) : undefined,
    partitionTable,
    uuid: await uuidOf(info, disk),
    ova,
  };
}
