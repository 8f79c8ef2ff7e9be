/**
 * GUIDs as on-disk formats store them. VDI, VHD and VHDX keep 16 raw bytes; most (VDI, VHDX)
 * use the Microsoft layout where the first three fields are little-endian. Comparisons are on
 * raw bytes, so only random generation and display need to know the layout.
 */

/** A random version-4 GUID in the Microsoft (mixed-endian) byte layout. */
export function randomGuid(): Uint8Array {
  const b = crypto.getRandomValues(new Uint8Array(16));
  // Version nibble lives in the high byte of the little-endian third field (byte 7);
  // the variant bits in byte 8, which is stored as-is.
  b[7] = (b[7]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}

/** A random version-4 UUID in RFC 4122 (big-endian) byte order, as VHD footers use it. */
export function randomUuidBigEndian(): Uint8Array {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}

export function isNullGuid(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** Text form of a Microsoft-layout GUID (first three fields little-endian). */
export function guidToString(b: Uint8Array): string {
  const r = (s: number, e: number) => hex(b.subarray(s, e).slice().reverse());
  return `${r(0, 4)}-${r(4, 6)}-${r(6, 8)}-${hex(b.subarray(8, 10))}-${hex(b.subarray(10, 16))}`;
}

/** Text form of a big-endian (RFC 4122) UUID. */
export function uuidToString(b: Uint8Array): string {
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
