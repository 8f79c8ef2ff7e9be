// The first cluster of a qcow2 file as DiskFerry writes it (header fields, extensions, backing
// file name); one builder for the ordinary writer and the front-to-back writer.
import { InvalidArgumentError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { Struct, utf8Encode } from '../../io/struct.ts';
import type { BackingRef } from '../../image/types.ts';
import type { Qcow2WriterConfig } from './createOptions.ts';
import {
  COMPAT_LAZY_REFCOUNTS,
  EXT_BACKING_FORMAT,
  EXT_CRYPTO,
  EXT_FEATURE_TABLE,
  INCOMPAT_COMPRESSION,
  INCOMPAT_EXTL2,
  QCOW_MAGIC,
  V2_HEADER_LENGTH,
  V3_HEADER_LENGTH_WITH_COMPRESSION,
} from './header.ts';

/** The feature-name table QEMU writes into version 3 headers (cluster_size > 4 KiB). */
const FEATURE_NAMES: [number, number, string][] = [
  [0, 0, 'dirty bit'],
  [0, 1, 'corrupt bit'],
  [0, 2, 'external data file'],
  [0, 3, 'compression type'],
  [0, 4, 'extended L2 entries'],
  [1, 0, 'lazy refcounts'],
  [2, 0, 'bitmaps'],
  [2, 1, 'raw external data'],
];

/** Where a qcow2 header points, for qcow2Header (both writers: the ordinary one and the front-to-back one). */
export interface Qcow2HeaderFields {
  size: number;
  cryptMethod: number;
  l1Entries: number;
  l1Offset: number;
  reftableOffset: number;
  reftableClusters: number;
  backing?: BackingRef;
  /** The LUKS header's place in the file (encrypt.format=luks). */
  luks?: { offset: number; length: number };
}

/** The first cluster's header: fields, extensions (backing format, crypto, feature names) and the backing file name. */
export function qcow2Header(cfg: Qcow2WriterConfig, cs: number, f: Qcow2HeaderFields): Uint8Array {
  const v3 = cfg.version === 3;
  const headerLength = v3 ? V3_HEADER_LENGTH_WITH_COMPRESSION : V2_HEADER_LENGTH;
  const s = Struct.alloc(cs);
  s.setU32(0, QCOW_MAGIC).setU32(4, cfg.version);
  s.setU32(20, cfg.clusterBits).setU64(24, f.size).setU32(32, f.cryptMethod);
  s.setU32(36, f.l1Entries).setU64(40, f.l1Offset);
  s.setU64(48, f.reftableOffset).setU32(56, f.reftableClusters);
  s.setU32(60, 0).setU64(64, 0);
  if (v3) {
    let incompat = 0n;
    if (cfg.compressionType) incompat |= INCOMPAT_COMPRESSION;
    if (cfg.extendedL2) incompat |= INCOMPAT_EXTL2;
    s.setBig64(72, incompat)
      .setBig64(80, cfg.lazyRefcounts ? COMPAT_LAZY_REFCOUNTS : 0n)
      .setBig64(88, 0n);
    s.setU32(96, Math.log2(cfg.refcountBits)).setU32(100, headerLength).setU8(104, cfg.compressionType);
  }
  let off = headerLength;
  const ext = (type: number, data: Uint8Array) => {
    s.setU32(off, type)
      .setU32(off + 4, data.length)
      .setBytes(off + 8, data);
    off += 8 + alignUp(data.length, 8);
  };
  const b = f.backing;
  if (b?.format) ext(EXT_BACKING_FORMAT, utf8Encode(b.format));
  if (f.luks) ext(EXT_CRYPTO, Struct.alloc(16).setU64(0, f.luks.offset).setU64(8, f.luks.length).bytes);
  if (v3 && cs > 4096) {
    const t = Struct.alloc(FEATURE_NAMES.length * 48);
    FEATURE_NAMES.forEach(([type, bit, name], i) =>
      t
        .setU8(i * 48, type)
        .setU8(i * 48 + 1, bit)
        .setString(i * 48 + 2, name, 46),
    );
    ext(EXT_FEATURE_TABLE, t.bytes);
  }
  off += 8; // end-of-extensions marker: type 0, length 0
  if (b) {
    const name = utf8Encode(b.name);
    if (off + name.length > cs) throw new InvalidArgumentError('backing file name does not fit in the first cluster');
    s.setU64(8, off).setU32(16, name.length).setBytes(off, name);
    off += name.length;
  }
  return s.bytes.subarray(0, Math.min(cs, alignUp(off, 512)));
}
