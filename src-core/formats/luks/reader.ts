import { readExact, readPadded, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, NeedsPasswordError } from '../../io/errors.ts';
import { alignDown, alignUp } from '../../io/int64.ts';
import type { BlockDevice, Extent, ImageInfo, OpenContext } from '../../image/types.ts';
import { infoBasics } from '../../image/info.ts';
import {
  luksInfo,
  luksSectorCipher,
  parseLuksHeader,
  pbkdf2Of,
  SECTOR,
  unlockLuks,
  LUKS_HEADER_SIZE,
  type LuksHeader,
  type SectorCipher,
} from '../../codecs/crypto/index.ts';

/** Reads per decryption step: large enough to amortise calls, small enough to bound memory. */
const CHUNK = 4 * 1024 * 1024;

/**
 * qemu-img's `luks` format (block/crypto.c): the whole file is a LUKS1 volume, the guest disk is
 * its payload from `payload-offset` to the end of the file. Sectors are encrypted with IVs
 * numbered from the start of the payload (guest sector numbers).
 */
export class LuksDevice implements BlockDevice {
  readonly format = 'luks';
  readonly virtualSize: number;
  private readonly payload: number;

  private constructor(
    readonly src: ByteSource,
    readonly header: LuksHeader,
    private readonly cipher: SectorCipher | undefined,
  ) {
    this.payload = header.payloadOffset * SECTOR;
    // QEMU counts the file in whole sectors (a short last one reads as zeros past the end).
    this.virtualSize = alignUp(src.size - this.payload, SECTOR);
  }

  static async open(src: ByteSource, ctx: OpenContext): Promise<LuksDevice> {
    const header = parseLuksHeader(src.name, await readExact(src, 0, Math.min(src.size, LUKS_HEADER_SIZE)));
    const payload = header.payloadOffset * SECTOR;
    if (src.size < payload)
      throw new CorruptImageError(src.name, `file ends at ${src.size} bytes, before the LUKS payload at ${payload} (truncated file?)`);
    let cipher: SectorCipher | undefined;
    if (ctx.password) {
      // Key material lies between the header and the payload; nothing past it is read.
      const read = (offset: number, length: number) => {
        if (offset + length > payload) throw new CorruptImageError(src.name, 'LUKS key material runs into the payload');
        return readExact(src, offset, length);
      };
      const masterKey = await unlockLuks(src.name, header, read, ctx.password, pbkdf2Of(ctx.codecs), ctx.codecs.aesEcb);
      cipher = luksSectorCipher(header, masterKey, ctx.codecs.aesEcb);
    }
    return new LuksDevice(src, header, cipher);
  }

  get filename(): string {
    return this.src.name;
  }

  /** Every byte of the payload is data (ciphertext has no holes). */
  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    to = Math.min(to, this.virtualSize);
    if (from < to) yield { offset: from, length: to - from, kind: 'data' };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!this.cipher)
      throw new NeedsPasswordError(
        this.src.name,
        'image is LUKS encrypted; give the password with --object secret,id=ID,data=… and key-secret=ID',
      );
    const out = new Uint8Array(length);
    const end = Math.min(offset + length, this.virtualSize);
    for (let pos = alignDown(offset, SECTOR); pos < end; pos += CHUNK) {
      const n = Math.min(CHUNK, alignUp(end, SECTOR) - pos);
      // The last sector may be short in the file (an odd payload size): padded, then cut.
      const buf = await readPadded(this.src, this.payload + pos, n);
      this.cipher.decrypt(buf, pos / SECTOR);
      const from = Math.max(pos, offset);
      const to = Math.min(pos + n, end);
      out.set(buf.subarray(from - pos, to - pos), from - offset);
    }
    return out;
  }

  info(): ImageInfo {
    return {
      ...infoBasics(this.src, 'luks', this.virtualSize),
      // The qcow2 `encrypt` object without its `format` key, as qemu-img prints it for luks.
      'format-specific': { type: 'luks', data: withoutFormat(luksInfo(this.header)) },
      encrypted: true,
      'dirty-flag': false,
    };
  }

  async close(): Promise<void> {
    await this.src.close?.();
  }
}

function withoutFormat(info: Record<string, unknown>): Record<string, unknown> {
  const { format: _format, ...rest } = info;
  return rest;
}
