import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError } from '../../io/errors.ts';
import { utf8Decode } from '../../io/struct.ts';

/** One regular file inside a tar: its bytes are [offset, offset + size) of the archive. */
export interface TarMember {
  name: string;
  offset: number;
  size: number;
}

const BLOCK = 512;
/** An OVA holds an .ovf, a manifest, a certificate and a few disks; thousands means hostile input. */
const MAX_MEMBERS = 10000;
const MAX_META_BYTES = 1024 * 1024;

/** True when `head` starts with a POSIX ustar or GNU tar header. */
export function isTarHeader(head: Uint8Array): boolean {
  if (head.length < BLOCK) return false;
  const magic = String.fromCharCode(...head.subarray(257, 262));
  return magic === 'ustar' && checksumOk(head.subarray(0, BLOCK));
}

function field(h: Uint8Array, off: number, len: number): string {
  const f = h.subarray(off, off + len);
  const nul = f.indexOf(0);
  return utf8Decode(nul < 0 ? f : f.subarray(0, nul));
}

/** Octal numbers, or GNU base-256 (high bit of the first byte set) for sizes past 8 GiB. */
function number(h: Uint8Array, off: number, len: number): number {
  if (h[off]! & 0x80) {
    let v = h[off]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + h[off + i]!;
    return v;
  }
  const t = field(h, off, len).trim();
  if (!t) return 0;
  if (!/^[0-7]+$/.test(t)) return NaN;
  return parseInt(t, 8);
}

function checksumOk(h: Uint8Array): boolean {
  const stored = number(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return stored === sum;
}

/** pax extended header records: "LEN key=value\n". Only path and size matter here. */
function parsePax(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < text.length) {
    const sp = text.indexOf(' ', pos);
    if (sp < 0) break;
    const len = Number(text.slice(pos, sp));
    if (!Number.isInteger(len) || len <= 0) break;
    const rec = text.slice(sp + 1, pos + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
}

/**
 * Lists the regular files of a tar without reading their data: one 512-byte header read per
 * member (plus GNU long-name and pax records). Nothing is unpacked; members become byte ranges.
 */
export async function listTar(src: ByteSource): Promise<TarMember[]> {
  const members: TarMember[] = [];
  let pos = 0;
  let longName: string | undefined;
  let pax: Record<string, string> = {};
  while (pos + BLOCK <= src.size) {
    const h = await readExact(src, pos, BLOCK);
    if (h.every((b) => b === 0)) break; // end of archive
    if (!checksumOk(h)) throw new CorruptImageError(src.name, `tar header at offset ${pos} has a bad checksum`);
    const type = String.fromCharCode(h[156]!);
    let size = number(h, 124, 12);
    if (pax.size !== undefined) size = Number(pax.size);
    if (!Number.isSafeInteger(size) || size < 0) throw new CorruptImageError(src.name, `tar header at offset ${pos} has an invalid size`);
    const data = pos + BLOCK;
    if (data + size > src.size)
      throw new CorruptImageError(src.name, `tar member at offset ${pos} runs past the end of the file (truncated?)`);
    const next = data + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L' || type === 'x' || type === 'g') {
      if (size > MAX_META_BYTES) throw new CorruptImageError(src.name, `tar metadata record at offset ${pos} is too large`);
      const text = field(await readExact(src, data, size), 0, size);
      if (type === 'L') longName = text;
      else if (type === 'x') pax = parsePax(text);
      pos = next;
      continue;
    }
    if (type === '0' || type === '\0' || type === '7') {
      const prefix = field(h, 345, 155);
      const base = field(h, 0, 100);
      const name = pax.path ?? longName ?? (prefix ? `${prefix}/${base}` : base);
      members.push({ name: name.replace(/^\.\//, ''), offset: data, size });
      if (members.length > MAX_MEMBERS) throw new CorruptImageError(src.name, `tar holds more than ${MAX_MEMBERS} files`);
    }
    longName = undefined;
    pax = {};
    pos = next;
  }
  return members;
}
