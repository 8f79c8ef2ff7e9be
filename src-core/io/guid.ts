/**
 * GUIDs as on-disk formats store them. VDI, VHD and VHDX keep 16 raw bytes; most (VDI, VHDX)
 * use the Microsoft layout where the first three fields are little-endian. Comparisons are on
 * raw bytes, so only display and parsing need to know the layout (ids are made in image/identity.ts).
 */

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

/** "2DC27766-F623-4200-9D64-115E9BFD4A08" → Microsoft-layout bytes (the inverse of guidToString). */
export function guidFromString(text: string): Uint8Array {
  const h = text.replace(/[{}-]/g, '');
  if (!/^[0-9a-f]{32}$/i.test(h)) throw new RangeError(`not a GUID: ${text}`);
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  // Data1 (4), Data2 (2) and Data3 (2) are little-endian on disk.
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

/** Raw byte equality of two 16-byte GUIDs. */
export function guidEqual(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}
