import { readFileSync, writeFileSync } from 'node:fs';
import { qemuImg } from './sys.ts';

/**
 * Builds a differencing VHDX, which neither qemu-img nor any Debian tool can make: start from a
 * qemu-img dynamic image of the parent's size (1 MiB blocks, NOT_PRESENT entries), set HasParent,
 * add a parent locator item, and fill the BAT with every state a differencing file can hold.
 * Byte-level and self-contained (MS-VHDX 2.5, 2.6), so it does not lean on the reader under test.
 */

const MiB = 1 << 20;
const SECTOR = 512;
const SECTORS_PER_BLOCK = MiB / SECTOR;
const CHUNK_RATIO = 4096; // 2^23 sectors · 512 / 1 MiB

/** Mixed-endian GUID bytes from text. */
function guid(text: string): Buffer {
  const h = Buffer.from(text.replace(/-/g, ''), 'hex');
  h.subarray(0, 4).reverse();
  h.subarray(4, 6).reverse();
  h.subarray(6, 8).reverse();
  return h;
}

function guidText(b: Buffer): string {
  const c = Buffer.from(b);
  c.subarray(0, 4).reverse();
  c.subarray(4, 6).reverse();
  c.subarray(6, 8).reverse();
  const h = c.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const FILE_PARAMS = guid('CAA16737-FA36-4D43-B3B6-33F0AA44E76B');
const PARENT_LOCATOR = guid('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C');
const VHDX_PARENT_TYPE = guid('B04AEFB7-D19E-4A81-B789-25B8E9445913');
const BAT_GUID = guid('2DC27766-F623-4200-9D64-115E9BFD4A08');
const META_GUID = guid('8B7CA206-4790-4B9A-B8FE-575F050F886E');

/** DataWriteGuid of a VHDX's current header, as text: what parent_linkage must name. */
export function dataWriteGuid(file: string): string {
  const f = readFileSync(file);
  const a = f.readBigUInt64LE(64 * 1024 + 8);
  const b = f.readBigUInt64LE(128 * 1024 + 8);
  const h = a >= b ? 64 * 1024 : 128 * 1024;
  return guidText(f.subarray(h + 32, h + 48));
}

function regions(f: Buffer): { bat: number; meta: number } {
  const rt = 192 * 1024;
  let bat = 0;
  let meta = 0;
  for (let i = 0; i < f.readUInt32LE(rt + 8); i++) {
    const o = rt + 16 + 32 * i;
    const id = f.subarray(o, o + 16);
    if (id.equals(BAT_GUID)) bat = Number(f.readBigUInt64LE(o + 16));
    if (id.equals(META_GUID)) meta = Number(f.readBigUInt64LE(o + 16));
  }
  return { bat, meta };
}

function locatorItem(entries: Record<string, string>): Buffer {
  const keys = Object.keys(entries);
  const head = Buffer.alloc(20 + 12 * keys.length);
  VHDX_PARENT_TYPE.copy(head, 0);
  head.writeUInt16LE(keys.length, 18);
  const strings: Buffer[] = [];
  let at = head.length;
  keys.forEach((k, i) => {
    const kb = Buffer.from(k, 'utf16le');
    const vb = Buffer.from(entries[k]!, 'utf16le');
    const o = 20 + 12 * i;
    head.writeUInt32LE(at, o);
    head.writeUInt32LE(at + kb.length, o + 4);
    head.writeUInt16LE(kb.length, o + 8);
    head.writeUInt16LE(vb.length, o + 10);
    strings.push(kb, vb);
    at += kb.length + vb.length;
  });
  return Buffer.concat([head, ...strings]);
}

export type ChildBlock =
  | { block: number; state: 'full'; fill: number }
  | { block: number; state: 'partial'; fill: number; sectors: [number, number][] }
  | { block: number; state: 'zero' | 'unmapped' | 'undefined' };

/**
 * Writes `child` as a differencing disk of `parent` (a VHDX whose virtual size is `size`), with
 * the given blocks; every other block is NOT_PRESENT. `locator` is the parent locator's
 * key/value pairs; parent_linkage is added from the parent's DataWriteGuid.
 */
export function makeDifferencing(parent: string, child: string, size: number, blocks: ChildBlock[], locator: Record<string, string>): void {
  qemuImg('create', '-q', '-f', 'vhdx', '-o', 'block_size=1M,block_state_zero=off', child, String(size));
  let f = readFileSync(child);
  const { bat, meta } = regions(f);
  // File parameters: HasParent.
  const count = f.readUInt16LE(meta + 10);
  for (let i = 0; i < count; i++) {
    const o = meta + 32 + 32 * i;
    if (f.subarray(o, o + 16).equals(FILE_PARAMS)) {
      const item = meta + f.readUInt32LE(o + 16);
      f.writeUInt32LE(f.readUInt32LE(item + 4) | 2, item + 4);
    }
  }
  // The parent locator, as a sixth item 4 KiB past the others.
  const loc = locatorItem({ parent_linkage: `{${dataWriteGuid(parent)}}`, ...locator });
  const e = meta + 32 + 32 * count;
  PARENT_LOCATOR.copy(f, e);
  f.writeUInt32LE(64 * 1024 + 4096, e + 16);
  f.writeUInt32LE(loc.length, e + 20);
  f.writeUInt32LE(4, e + 24); // IsRequired
  f.writeUInt16LE(count + 1, meta + 10);
  loc.copy(f, meta + 64 * 1024 + 4096);
  // Data blocks and the sector bitmap go after the end of the file.
  const parts: Buffer[] = [f];
  let end = Math.ceil(f.length / MiB) * MiB;
  if (end > f.length) parts.push(Buffer.alloc(end - f.length));
  const bitmap = Buffer.alloc(MiB);
  const setEntry = (index: number, state: number, offset = 0) => f.writeBigUInt64LE(BigInt(offset) | BigInt(state), bat + 8 * index);
  for (const b of blocks) {
    const index = b.block + Math.floor(b.block / CHUNK_RATIO);
    if (b.state === 'zero' || b.state === 'unmapped' || b.state === 'undefined') {
      setEntry(index, b.state === 'zero' ? 2 : b.state === 'unmapped' ? 3 : 1);
      continue;
    }
    const data = Buffer.alloc(MiB);
    const fill = 'fill' in b ? b.fill : 0;
    for (let i = 0; i < MiB; i++) data[i] = (fill + (i >> 9)) & 0xff;
    parts.push(data);
    setEntry(index, b.state === 'full' ? 6 : 7, end);
    end += MiB;
    if (b.state === 'partial') {
      for (const [from, to] of b.sectors) {
        for (let s = from; s < to; s++) {
          const bit = (b.block % CHUNK_RATIO) * SECTORS_PER_BLOCK + s;
          bitmap[bit >> 3]! |= 1 << (bit & 7);
        }
      }
    }
  }
  if (blocks.some((b) => b.state === 'partial')) {
    parts.push(bitmap);
    setEntry(CHUNK_RATIO, 6, end); // the first chunk's sector-bitmap slot
  }
  f = Buffer.concat(parts);
  writeFileSync(child, f);
}

/** What the child must read as: the parent's bytes with the blocks applied (independent of any reader). */
export function expectedChild(parentRaw: Buffer, blocks: ChildBlock[]): Buffer {
  const out = Buffer.from(parentRaw);
  for (const b of blocks) {
    const base = b.block * MiB;
    const fill = 'fill' in b ? b.fill : 0;
    const pattern = (i: number) => (fill + (i >> 9)) & 0xff;
    if (b.state === 'zero') out.fill(0, base, base + MiB);
    else if (b.state === 'full') for (let i = 0; i < MiB; i++) out[base + i] = pattern(i);
    else if (b.state === 'partial') {
      for (const [from, to] of b.sectors) for (let i = from * SECTOR; i < to * SECTOR; i++) out[base + i] = pattern(i);
    }
  }
  return out;
}
