/**
 * Microsoft GUIDs as VHDX stores them: 16 bytes whose first three fields are little-endian
 * (MS-VHDX 2.2.1; QEMU vhdx.h MSGUID). Compared as raw bytes, printed in the usual text form.
 */
export type Guid = Uint8Array;

/** "2DC27766-F623-4200-9D64-115E9BFD4A08" → on-disk bytes. */
export function guidFromString(text: string): Guid {
  const hex = text.replace(/[{}-]/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new RangeError(`not a GUID: ${text}`);
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  // Data1 (4), Data2 (2) and Data3 (2) are little-endian on disk.
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

export function guidToString(g: Guid): string {
  const b = g.slice(0, 16);
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function guidEqual(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function guidIsZero(g: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (g[i]) return false;
  return true;
}

/** A random (version 4) GUID, as QEMU's vhdx_guid_generate makes with uuid_generate. */
export function randomGuid(): Guid {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[7] = (b[7]! & 0x0f) | 0x40; // version nibble sits in Data3's high byte (LE: byte 7)
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}
