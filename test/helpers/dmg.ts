import { execFileSync } from 'node:child_process';
import { deflateSync } from 'node:zlib';

/**
 * Builds Apple UDIF (.dmg) images from a guest disk, following the layout QEMU's block/dmg.c
 * reads (see src-core/formats/dmg/layout.ts): [padding][data fork: chunks][XML plist or
 * resource fork][512-byte koly trailer]. Each chunk of `chunkSectors` sectors is stored with
 * the next type of `types` (all-zero chunks become zero/ignore chunks when `zeroChunks`).
 */
export type DmgChunkKind = 'raw' | 'zero' | 'ignore' | 'zlib' | 'bzip2' | 'adc' | 'lzfse';

export interface DmgBuild {
  chunkSectors?: number;
  types?: DmgChunkKind[];
  zeroChunks?: boolean;
  table?: 'xml' | 'rsrc';
  /** Two mish blocks, the second with its own first sector and data offset. */
  splitMish?: boolean;
  /** Bytes before the data fork (the koly's data fork offset). */
  dataForkOffset?: number;
  /** lzfse encoder, when a test has one; otherwise lzfse chunks hold a dummy payload. */
  lzfse?: (b: Uint8Array) => Uint8Array;
}

export const CHUNK_TYPE: Record<DmgChunkKind, number> = {
  zero: 0,
  raw: 1,
  ignore: 2,
  adc: 0x80000004,
  zlib: 0x80000005,
  bzip2: 0x80000006,
  lzfse: 0x80000007,
};

/** A simple ADC encoder: greedy matches found through a hash of 3-byte prefixes. */
export function adcEncode(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  const lits: number[] = [];
  const flush = () => {
    for (let i = 0; i < lits.length; i += 128) {
      const run = lits.slice(i, i + 128);
      out.push(0x80 | (run.length - 1), ...run);
    }
    lits.length = 0;
  };
  const last = new Map<number, number>();
  let i = 0;
  while (i < src.length) {
    let len = 0;
    let dist = 0;
    if (i + 3 <= src.length) {
      const key = (src[i]! << 16) | (src[i + 1]! << 8) | src[i + 2]!;
      const cand = last.get(key);
      last.set(key, i);
      if (cand !== undefined && i - cand <= 65536) {
        while (i + len < src.length && len < 67 && src[cand + len] === src[i + len]) len++;
        dist = i - cand;
      }
    }
    if (len >= 4 || (len === 3 && dist <= 1024)) {
      flush();
      if (len <= 18 && dist <= 1024) out.push(((len - 3) << 2) | ((dist - 1) >> 8), (dist - 1) & 0xff);
      else {
        len = Math.max(4, len);
        out.push(0x40 | (len - 4), (dist - 1) >> 8, (dist - 1) & 0xff);
      }
      i += len;
    } else {
      lits.push(src[i++]!);
    }
  }
  flush();
  return new Uint8Array(out);
}

function compress(kind: DmgChunkKind, data: Uint8Array, o: DmgBuild): Uint8Array {
  switch (kind) {
    case 'raw':
      return data;
    case 'zlib':
      return new Uint8Array(deflateSync(data));
    case 'bzip2':
      return new Uint8Array(execFileSync('bzip2', ['-c'], { input: data }));
    case 'adc':
      return adcEncode(data);
    case 'lzfse':
      return o.lzfse ? o.lzfse(data) : new Uint8Array([0x62, 0x76, 0x78, 0x24]);
    default:
      return new Uint8Array(0);
  }
}

interface Entry {
  type: number;
  sector: number;
  sectors: number;
  offset: number;
  length: number;
}

function mish(entries: Entry[], firstSector: number, sectorCount: number, dataOffset: number): Uint8Array {
  const all = [...entries, { type: 0xffffffff, sector: sectorCount, sectors: 0, offset: 0, length: 0 }];
  const b = new Uint8Array(204 + all.length * 40);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x6d697368);
  v.setUint32(4, 1);
  v.setBigUint64(8, BigInt(firstSector));
  v.setBigUint64(16, BigInt(sectorCount));
  v.setBigUint64(0x18, BigInt(dataOffset));
  v.setUint32(32, 0x208);
  v.setUint32(200, all.length);
  all.forEach((e, i) => {
    const at = 204 + i * 40;
    v.setUint32(at, e.type);
    v.setBigUint64(at + 8, BigInt(e.sector));
    v.setBigUint64(at + 16, BigInt(e.sectors));
    v.setBigUint64(at + 24, BigInt(e.offset));
    v.setBigUint64(at + 32, BigInt(e.length));
  });
  return b;
}

const b64lines = (b: Uint8Array) =>
  Buffer.from(b)
    .toString('base64')
    .replace(/.{1,52}/g, '\t\t\t$&\n');

export function buildDmg(disk: Uint8Array, o: DmgBuild = {}): Uint8Array {
  const cs = o.chunkSectors ?? 128;
  const types = o.types ?? ['zlib'];
  const sectors = Math.ceil(disk.length / 512);
  const padded = new Uint8Array(sectors * 512);
  padded.set(disk);
  const forkStart = o.dataForkOffset ?? 0;
  const parts: Uint8Array[] = [];
  const entries: Entry[] = [];
  let fork = 0;
  for (let s = 0, k = 0; s < sectors; s += cs, k++) {
    const n = Math.min(cs, sectors - s);
    const data = padded.subarray(s * 512, (s + n) * 512);
    let kind = types[k % types.length]!;
    if (o.zeroChunks !== false && data.every((x) => x === 0)) kind = k % 2 ? 'ignore' : 'zero';
    const stored = compress(kind, data, o);
    entries.push({ type: CHUNK_TYPE[kind], sector: s, sectors: n, offset: fork, length: stored.length });
    parts.push(stored);
    fork += stored.length;
  }
  const blocks: Uint8Array[] = [];
  if (o.splitMish && entries.length > 1) {
    const k = Math.floor(entries.length / 2);
    const second = entries[k]!;
    blocks.push(mish(entries.slice(0, k), 0, second.sector, 0));
    const rel = entries.slice(k).map((e) => ({ ...e, sector: e.sector - second.sector, offset: e.offset - second.offset }));
    blocks.push(mish(rel, second.sector, sectors - second.sector, second.offset));
  } else {
    blocks.push(mish(entries, 0, sectors, 0));
  }
  let table: Uint8Array;
  if (o.table === 'rsrc') {
    const body = blocks.flatMap((m) => {
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, m.length);
      return [len, m];
    });
    const dataLen = body.reduce((a, b) => a + b.length, 0);
    const map = new Uint8Array(64);
    table = new Uint8Array(256 + dataLen + map.length);
    const v = new DataView(table.buffer);
    v.setUint32(0, 256);
    v.setUint32(4, 256 + dataLen);
    v.setUint32(8, dataLen);
    v.setUint32(12, map.length);
    let at = 256;
    for (const p of body) {
      table.set(p, at);
      at += p.length;
    }
  } else {
    const dicts = blocks
      .map(
        (m, i) =>
          `\t\t\t<dict>\n\t\t\t\t<key>Attributes</key>\n\t\t\t\t<string>0x0050</string>\n\t\t\t\t<key>Data</key>\n\t\t\t\t<data>\n${b64lines(m)}\t\t\t\t</data>\n\t\t\t\t<key>ID</key>\n\t\t\t\t<string>${i}</string>\n\t\t\t\t<key>Name</key>\n\t\t\t\t<string>disk image (Apple_HFS : ${i})</string>\n\t\t\t</dict>\n`,
      )
      .join('');
    const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n<dict>\n\t<key>resource-fork</key>\n\t<dict>\n\t\t<key>blkx</key>\n\t\t<array>\n${dicts}\t\t</array>\n\t</dict>\n</dict>\n</plist>\n`;
    table = new TextEncoder().encode(xml);
  }
  const tableAt = forkStart + fork;
  const total = tableAt + table.length + 512;
  const out = new Uint8Array(total);
  out.fill(0xee, 0, forkStart);
  let at = forkStart;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  out.set(table, tableAt);
  const k = new DataView(out.buffer, total - 512, 512);
  k.setUint32(0, 0x6b6f6c79);
  k.setUint32(4, 4);
  k.setUint32(8, 512);
  k.setUint32(12, 1);
  k.setBigUint64(0x18, BigInt(forkStart));
  k.setBigUint64(0x20, BigInt(fork));
  if (o.table === 'rsrc') {
    k.setBigUint64(0x28, BigInt(tableAt));
    k.setBigUint64(0x30, BigInt(table.length));
  } else {
    k.setBigUint64(0xd8, BigInt(tableAt));
    k.setBigUint64(0xe0, BigInt(table.length));
  }
  k.setUint32(0x1e8, 1);
  k.setBigUint64(0x1ec, BigInt(sectors));
  return out;
}
