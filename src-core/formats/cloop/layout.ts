import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { Struct, utf8Decode, utf8Encode } from '../../io/struct.ts';

/**
 * cloop (compressed loop) layouts: docs/formats/cloop.md, QEMU block/cloop.c, cloop's cloop.h.
 *
 * Every variant has a 136-byte header: a 128-byte shell-script preamble (NUL padded) whose
 * bytes 11..14 name the version ("V2.0", "V4.0"), then block_size and num_blocks as BE32.
 * The disk is num_blocks · block_size bytes; each block is compressed on its own (zlib-wrapped
 * deflate, RFC 1950) and inflates to exactly block_size bytes (the last one zero-padded).
 *
 *  V0.68   index of n+1 BE32 absolute offsets at 136
 *  V1.0    index of n+1 LE64 absolute offsets at 136
 *  V2.0    index of n+1 BE64 absolute offsets at 136 — what QEMU and cloop-utils use;
 *          block i is the bytes [off[i], off[i+1])
 *  V3.0    num_blocks = 0xFFFFFFFF in the header; blocks follow the header from 136; at the end
 *          of file n BE32 compressed sizes, then {BE32 entry size (4), BE32 n}
 *  V4.0    like V2.0 but the top 4 bits of each BE64 word name the compressor of that block
 *          (0 zlib, 1 none, 2 xz, 3 lz4, 4 lzo), and header + index may instead sit at the end
 *          of file: index of n+1 words, then the 136-byte header as the last bytes
 */
export const CLOOP_HEADER_SIZE = 136;
export const CLOOP_PREAMBLE_SIZE = 128;
/** The preamble cloop-utils writes; QEMU's probe recognises its first three lines. */
export const CLOOP_V2_PREAMBLE = '#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\nexit $?\n';
const QEMU_PROBE_TEXT = '#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n';
export const CLOOP_V3_MARKER = 0xffffffff;

/** QEMU's limits (block/cloop.c), checked before anything is allocated. */
export const CLOOP_MAX_BLOCK_SIZE = 64 * 1024 * 1024;
export const CLOOP_MAX_COMPRESSED_BLOCK = 2 * CLOOP_MAX_BLOCK_SIZE;
export const CLOOP_MAX_BLOCKS = Math.floor((0xffffffff - 1) / 8);
export const CLOOP_MAX_INDEX_BYTES = 512 * 1024 * 1024;

export const COMPRESSOR_ZLIB = 0;
export const COMPRESSOR_NONE = 1;
export const COMPRESSOR_NAMES = ['zlib', 'none', 'xz', 'lz4', 'lzo'];

export type CloopVariant = 'V0.68' | 'V1.0' | 'V2.0' | 'V3.0' | 'V4.0' | 'V4.0-footer';

export interface CloopHead {
  blockSize: number;
  numBlocks: number;
  /** Bytes 11..14 of the preamble, e.g. "V2.0". */
  signature: string;
}

const SHEBANG = '#!/bin/sh';

/** True when `b` starts like a cloop preamble ("#!/bin/sh" then "#V" on the next line). */
export function looksLikePreamble(b: Uint8Array): boolean {
  if (b.length < 16) return false;
  // "#V<digit>.<digit>" on the second line, as every cloop version writes it.
  return utf8Decode(b.subarray(0, 10)) === SHEBANG + '\n' && /^#V\d\.\d/.test(utf8Decode(b.subarray(10, 16)));
}

/** The preamble and a block size QEMU would accept: what the probe wants to see. */
export function looksLikeCloopHeader(b: Uint8Array): boolean {
  if (b.length < CLOOP_HEADER_SIZE || !looksLikePreamble(b)) return false;
  const bs = new Struct(b).u32(128);
  return bs !== 0 && bs % 512 === 0 && bs <= CLOOP_MAX_BLOCK_SIZE;
}

/** QEMU's cloop_probe: the exact V2.0 preamble text. */
export function isQemuCloopPreamble(head: Uint8Array): boolean {
  const want = utf8Encode(QEMU_PROBE_TEXT);
  if (head.length < want.length) return false;
  for (let i = 0; i < want.length; i++) if (head[i] !== want[i]) return false;
  return true;
}

/** Parses a 136-byte header block and applies QEMU's block size limits. */
export function parseCloopHead(file: string, b: Uint8Array): CloopHead {
  if (b.length < CLOOP_HEADER_SIZE)
    throw new CorruptImageError(file, `cloop header: file is only ${b.length} bytes, shorter than a header`);
  const s = new Struct(b);
  const blockSize = s.u32(128);
  const numBlocks = s.u32(132);
  if (blockSize === 0) throw new CorruptImageError(file, 'cloop header: block_size cannot be zero');
  if (blockSize % 512) throw new CorruptImageError(file, `cloop header: block_size ${blockSize} must be a multiple of 512`);
  if (blockSize > CLOOP_MAX_BLOCK_SIZE) throw new UnsupportedError(file, `cloop block_size ${blockSize} must be 64 MiB or less`);
  const signature = utf8Decode(b.subarray(11, 15));
  return { blockSize, numBlocks, signature };
}

/** The 136-byte V2.0 header DiskFerry writes, with cloop-utils' preamble. */
export function buildCloopV2Header(blockSize: number, numBlocks: number): Uint8Array {
  const s = Struct.alloc(CLOOP_HEADER_SIZE);
  s.setString(0, CLOOP_V2_PREAMBLE, CLOOP_PREAMBLE_SIZE);
  s.setU32(128, blockSize).setU32(132, numBlocks);
  return s.bytes;
}
