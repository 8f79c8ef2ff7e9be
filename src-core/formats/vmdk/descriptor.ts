import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { uuidToString } from '../../io/guid.ts';

/**
 * The VMDK text descriptor: header keys, extent lines and the disk database (VMDK spec §4;
 * QEMU block/vmdk.c vmdk_parse_extents / vmdk_open_desc_file). We parse the way VMware and
 * libvmdk do, not the way QEMU's sscanf does: RDONLY, NOACCESS and ZERO extents keep their place
 * (QEMU drops them and shifts the later extents), blank lines duplicate nothing, keys may have
 * spaces around `=` and createType may be unquoted (OVFTool writes it that way).
 */

export type ExtentAccess = 'RW' | 'RDONLY' | 'NOACCESS';
export const EXTENT_TYPES = ['FLAT', 'SPARSE', 'ZERO', 'VMFS', 'VMFSSPARSE', 'VMFSRDM', 'VMFSRAW', 'SESPARSE'] as const;
export type ExtentType = (typeof EXTENT_TYPES)[number];

export interface ExtentLine {
  access: ExtentAccess;
  sectors: number;
  type: ExtentType;
  /** File name as written (relative to the descriptor's folder); absent for ZERO. */
  file?: string;
  /** FLAT/VMFS: first sector of the data in the file. */
  offset: number;
}

export interface Descriptor {
  version: number;
  encoding: string;
  cid: number;
  parentCid: number;
  createType: string;
  parentFileNameHint?: string;
  extents: ExtentLine[];
  ddb: Record<string, string>;
}

export const NO_PARENT_CID = 0xffffffff;

/** Extent sizes whose byte count stays an exact JavaScript number. */
const MAX_EXTENT_LINE_SECTORS = Math.floor(Number.MAX_SAFE_INTEGER / 512);

/** The longest descriptor we read: VMware allows 20 sectors embedded; stand-alone ones are small too. */
export const MAX_DESCRIPTOR_BYTES = 1024 * 1024;

/** True when `head` looks like a descriptor: its first meaningful line is `version=` (as vmdk_probe). */
export function looksLikeDescriptor(head: Uint8Array): boolean {
  const text = latin1(head.subarray(0, Math.min(head.length, 4096)));
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    return /^version\s*=\s*"?[123]"?$/.test(line);
  }
  return false;
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** Decodes descriptor bytes: stop at the first NUL (QEMU pads with them), honour `encoding=`. */
export function decodeDescriptor(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  const b = nul < 0 ? bytes : bytes.subarray(0, nul);
  const enc = /^\s*encoding\s*=\s*"?([A-Za-z0-9_.:-]+)"?\s*$/m.exec(latin1(b.subarray(0, 4096)))?.[1];
  if (enc) {
    try {
      return new TextDecoder(enc.toLowerCase()).decode(b);
    } catch {
      // An encoding the platform does not know: names are usually ASCII anyway.
    }
  }
  return new TextDecoder('utf-8').decode(b);
}

function unquote(v: string): string {
  const t = v.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

const EXTENT_RE = /^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Z]+)(?:\s+(?:"([^"]*)"|(\S+))(?:\s+(\d+))?)?\s*$/;

/** A descriptor with nothing said: no parent, no extents (what a sparse file without an embedded descriptor has). */
export function emptyDescriptor(version: number, createType = ''): Descriptor {
  return { version, encoding: 'UTF-8', cid: NO_PARENT_CID, parentCid: NO_PARENT_CID, createType, extents: [], ddb: {} };
}

export function parseDescriptor(file: string, text: string): Descriptor {
  const d = emptyDescriptor(0);
  let sawVersion = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const ext = EXTENT_RE.exec(line);
    if (ext) {
      d.extents.push(parseExtentLine(file, ext));
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue; // VMware ignores lines it does not understand, and so do we
    const key = line.slice(0, eq).trim();
    const value = unquote(line.slice(eq + 1));
    if (key.startsWith('ddb.')) {
      d.ddb[key.slice(4)] = value;
      continue;
    }
    switch (key) {
      case 'version':
        d.version = Number(value);
        sawVersion = true;
        break;
      case 'encoding':
        d.encoding = value;
        break;
      case 'CID':
        d.cid = parseHex32(file, key, value);
        break;
      case 'parentCID':
        d.parentCid = parseHex32(file, key, value);
        break;
      case 'createType':
        d.createType = value;
        break;
      case 'parentFileNameHint':
        d.parentFileNameHint = value;
        break;
    }
  }
  // A missing version= line only matters to probing (vmdk_probe); with -f vmdk QEMU reads on.
  if (!sawVersion) d.version = 1;
  if (!(d.version >= 1 && d.version <= 3))
    throw new UnsupportedError(file, `VMDK descriptor version ${d.version} is not supported (1 to 3)`);
  return d;
}

function parseHex32(file: string, key: string, value: string): number {
  if (!/^[0-9a-fA-F]{1,8}$/.test(value)) throw new CorruptImageError(file, `descriptor ${key} "${value}" is not a 32-bit hex number`);
  return parseInt(value, 16);
}

function parseExtentLine(file: string, m: RegExpExecArray): ExtentLine {
  const type = m[3] as ExtentType;
  if (!EXTENT_TYPES.includes(type)) throw new UnsupportedError(file, `extent type ${m[3]} is not supported`);
  const sectors = Number(m[2]);
  if (!Number.isSafeInteger(sectors) || sectors > MAX_EXTENT_LINE_SECTORS)
    throw new CorruptImageError(file, `extent size ${m[2]} is out of range`);
  const name = m[4] ?? m[5];
  const offset = m[6] !== undefined ? Number(m[6]) : 0;
  if (!Number.isSafeInteger(offset)) throw new CorruptImageError(file, `extent offset ${m[6]} is out of range`);
  if (type !== 'ZERO' && !name) throw new CorruptImageError(file, `${type} extent line has no file name`);
  return { access: m[1] as ExtentAccess, sectors, type, file: type === 'ZERO' ? undefined : name, offset };
}

export interface DescriptorBuild {
  cid: number;
  /** -o uuid= (RFC 4122 bytes): written as ddb.uuid.image and ddb.uuid after qemu-img's lines. */
  uuid?: Uint8Array;
  parentCid: number;
  createType: string;
  parentFileNameHint?: string;
  extents: { access: ExtentAccess; sectors: number; type: ExtentType; file?: string; offset?: number }[];
  hwVersion: string;
  adapterType: string;
  cylinders: number;
  heads: number;
  toolsVersion: string;
}

/** A descriptor in the exact shape qemu-img writes (vmdk_co_do_create's template). */
export function buildDescriptor(b: DescriptorBuild): string {
  const extents = b.extents
    .map(
      (e) =>
        `${e.access} ${e.sectors} ${e.type}` +
        (e.file !== undefined ? ` "${e.file}"` : '') +
        (e.offset !== undefined ? ` ${e.offset}` : '') +
        '\n',
    )
    .join('');
  return (
    '# Disk DescriptorFile\n' +
    'version=1\n' +
    `CID=${b.cid.toString(16)}\n` +
    `parentCID=${b.parentCid.toString(16)}\n` +
    `createType="${b.createType}"\n` +
    (b.parentFileNameHint !== undefined ? `parentFileNameHint="${b.parentFileNameHint}"` : '') +
    '\n' +
    '# Extent description\n' +
    extents +
    '\n' +
    '# The Disk Data Base\n' +
    '#DDB\n' +
    '\n' +
    `ddb.virtualHWVersion = "${b.hwVersion}"\n` +
    `ddb.geometry.cylinders = "${b.cylinders}"\n` +
    `ddb.geometry.heads = "${b.heads}"\n` +
    'ddb.geometry.sectors = "63"\n' +
    `ddb.adapterType = "${b.adapterType}"\n` +
    `ddb.toolsVersion = "${b.toolsVersion}"\n` +
    (b.uuid ? uuidLines(b.uuid) : '')
  );
}

/** VirtualBox's ddb.uuid.image (text form) and VMware's ddb.uuid (16 hex bytes, a dash after the 8th). */
function uuidLines(u: Uint8Array): string {
  const hex = Array.from(u, (x) => x.toString(16).padStart(2, '0'));
  return `ddb.uuid.image = "${uuidToString(u)}"\n` + `ddb.uuid = "${hex.slice(0, 8).join(' ')}-${hex.slice(8).join(' ')}"\n`;
}
