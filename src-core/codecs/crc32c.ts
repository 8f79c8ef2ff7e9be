/**
 * CRC-32C (Castagnoli), as VHDX uses it for headers, region tables and log entries
 * (MS-VHDX 2.2.2; QEMU util/crc32c.c): reflected polynomial 0x82F63B78, initial value and final
 * XOR 0xFFFFFFFF. "123456789" → 0xE3069283. Table-driven, eight tables ("slicing by 8") so a
 * 64 KiB region table or a 1 MiB log entry costs little; no platform code.
 */
const POLY = 0x82f63b78;

const TABLES: Uint32Array[] = (() => {
  const t: Uint32Array[] = [];
  for (let k = 0; k < 8; k++) t.push(new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let b = 0; b < 8; b++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[0]![n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[0]![n]!;
    for (let k = 1; k < 8; k++) {
      c = (c >>> 8) ^ t[0]![c & 0xff]!;
      t[k]![n] = c >>> 0;
    }
  }
  return t;
})();

/**
 * Continues a CRC over `data`. `state` is the running register (start with 0xFFFFFFFF); pass the
 * result of the previous call to chain several buffers, and XOR with 0xFFFFFFFF at the end
 * (`crc32cFinish`), or use `crc32c` for one buffer.
 */
export function crc32cUpdate(state: number, data: Uint8Array): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let c = state >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const lo = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      t7[lo & 0xff]! ^
      t6[(lo >>> 8) & 0xff]! ^
      t5[(lo >>> 16) & 0xff]! ^
      t4[lo >>> 24]! ^
      t3[data[i + 4]!]! ^
      t2[data[i + 5]!]! ^
      t1[data[i + 6]!]! ^
      t0[data[i + 7]!]!;
  }
  for (; i < n; i++) c = (c >>> 8) ^ t0[(c ^ data[i]!) & 0xff]!;
  return c >>> 0;
}

export const crc32cFinish = (state: number): number => (state ^ 0xffffffff) >>> 0;

/** CRC-32C of one buffer. */
export function crc32c(data: Uint8Array): number {
  return crc32cFinish(crc32cUpdate(0xffffffff, data));
}

/**
 * CRC-32C of a structure whose own checksum field (4 bytes at `fieldOffset`) counts as zero,
 * the way every VHDX checksum is defined. The buffer is not modified.
 */
export function crc32cWithZeroField(data: Uint8Array, fieldOffset: number): number {
  let s = crc32cUpdate(0xffffffff, data.subarray(0, fieldOffset));
  s = crc32cUpdate(s, ZERO4);
  s = crc32cUpdate(s, data.subarray(fieldOffset + 4));
  return crc32cFinish(s);
}

const ZERO4 = new Uint8Array(4);
