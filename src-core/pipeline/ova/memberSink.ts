import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { ByteSink } from '../../io/bytes.ts';

/**
 * One file of an OVF package as it is written: a window of the output starting at `base` (a tar
 * member's data inside the .ova, or a whole .vmdk beside the .ovf), whose SHA-256 is computed from
 * the bytes as they pass, so the manifest costs no second read. The stream VMDK writer writes in
 * file order; anything else would make the digest wrong, so it is refused.
 */
export class MemberSink implements ByteSink {
  private pos = 0;
  private readonly hash = sha256.create();

  constructor(
    private readonly out: ByteSink,
    private readonly base: number,
    readonly name: string,
  ) {}

  /** Bytes written so far: the member's size once its writer has finished. */
  get size(): number {
    return this.pos;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (offset !== this.pos)
      throw new RangeError(`${this.name}: written out of order (${offset} after ${this.pos}); its digest needs one pass`);
    this.hash.update(data);
    await this.out.write(this.base + offset, data);
    this.pos += data.length;
  }

  /** The stream writer sets its final length; past what was written means zeros, short of it is refused. */
  async truncate(size: number): Promise<void> {
    if (size < this.pos) throw new RangeError(`${this.name}: cannot be cut from ${this.pos} to ${size} bytes after its digest was taken`);
    if (size > this.pos) await this.write(this.pos, new Uint8Array(size - this.pos));
  }

  /** The member belongs to the package, which closes the output. */
  async close(): Promise<void> {}

  digestHex(): string {
    return bytesToHex(this.hash.digest());
  }
}

export function sha256Hex(data: Uint8Array): string {
  return bytesToHex(sha256(data));
}
