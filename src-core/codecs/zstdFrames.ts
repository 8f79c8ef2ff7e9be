/**
 * Finds where zstd frames end. qcow2 stores a compressed cluster without its exact length (the
 * descriptor gives a sector-rounded upper bound), so the bytes we read carry trailing junk that
 * a strict decoder rejects. Walking the frame and block headers (RFC 8878 §3.1) gives the exact
 * length without decoding anything.
 */
const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

/** Length in bytes of the frame starting at `pos`, or -1 when the bytes are not a complete frame. */
export function zstdFrameLength(buf: Uint8Array, pos = 0): number {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (pos + 4 > buf.length) return -1;
  const magic = v.getUint32(pos, true);
  if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
    if (pos + 8 > buf.length) return -1;
    const len = 8 + v.getUint32(pos + 4, true);
    return pos + len <= buf.length ? len : -1;
  }
  if (magic !== ZSTD_MAGIC) return -1;
  let p = pos + 4;
  if (p >= buf.length) return -1;
  const fhd = buf[p++]!;
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const checksum = (fhd >> 2) & 1;
  const dictIdFlag = fhd & 3;
  if (!singleSegment) p += 1; // window descriptor
  p += [0, 1, 2, 4][dictIdFlag]!;
  p += [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  for (;;) {
    if (p + 3 > buf.length) return -1;
    const bh = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
    p += 3;
    const last = bh & 1;
    const type = (bh >> 1) & 3;
    const size = bh >>> 3;
    if (type === 3) return -1; // reserved block type
    p += type === 1 ? 1 : size;
    if (last) break;
  }
  if (checksum) p += 4;
  return p <= buf.length ? p - pos : -1;
}
