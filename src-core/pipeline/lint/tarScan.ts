import type { TarFacts } from './types.ts';

const BLOCK = 512;
/** Guest bytes kept from the first member: enough for the MBR and the GPT header. */
const HEAD_BYTES = 1024;
const MAX_MEMBERS = 10000;

/**
 * Lists a tar fed as a stream (a gunzipped Google Cloud tarball): each header's name, size and
 * format, the first member's first KiB, and nothing else kept. Member data is skipped as it
 * flows by, so memory stays at one block.
 */
export class TarScan {
  readonly members: TarFacts['members'] = [];
  /** The first member's first bytes (its guest's MBR and GPT header for disk.raw). */
  head = new Uint8Array(0);
  private pending = new Uint8Array(0);
  /** Data bytes (with padding) still to skip before the next header. */
  private skip = 0;
  private ended = false;

  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length && !this.ended) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        this.keepHead(chunk.subarray(at, at + n));
        this.skip -= n;
        at += n;
        continue;
      }
      const need = BLOCK - this.pending.length;
      const piece = chunk.subarray(at, at + need);
      const joined = new Uint8Array(this.pending.length + piece.length);
      joined.set(this.pending);
      joined.set(piece, this.pending.length);
      this.pending = joined;
      at += piece.length;
      if (this.pending.length === BLOCK) {
        this.header(this.pending);
        this.pending = new Uint8Array(0);
      }
    }
  }

  private headTarget = -1;
  private keepHead(data: Uint8Array): void {
    if (this.headTarget !== 0 || this.head.length >= HEAD_BYTES) return;
    const add = data.subarray(0, HEAD_BYTES - this.head.length);
    const joined = new Uint8Array(this.head.length + add.length);
    joined.set(this.head);
    joined.set(add, this.head.length);
    this.head = joined;
  }

  private header(h: Uint8Array): void {
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    const text = (off: number, len: number) => {
      const f = h.subarray(off, off + len);
      const nul = f.indexOf(0);
      return String.fromCharCode(...(nul < 0 ? f : f.subarray(0, nul)));
    };
    let size: number;
    if (h[124]! & 0x80) {
      size = h[124]! & 0x7f;
      for (let i = 125; i < 136; i++) size = size * 256 + h[i]!;
    } else size = parseInt(text(124, 12).trim() || '0', 8);
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('tar header with an invalid size');
    const type = String.fromCharCode(h[156]!);
    const magic = String.fromCharCode(...h.subarray(257, 265));
    const format = magic === 'ustar  \0' ? 'oldgnu' : magic.startsWith('ustar\0') ? 'ustar' : 'v7';
    this.skip = Math.ceil(size / BLOCK) * BLOCK;
    // Metadata records (GNU long names, pax headers) are skipped: the member keeps its header's name.
    if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
      this.headTarget = -1;
      return;
    }
    const prefix = format === 'ustar' ? text(345, 155) : '';
    const name = prefix ? `${prefix}/${text(0, 100)}` : text(0, 100);
    this.headTarget = this.members.length === 0 ? 0 : -1;
    this.members.push({ name: name.replace(/^\.\//, ''), size, format });
    if (this.members.length > MAX_MEMBERS) throw new RangeError(`tar holds more than ${MAX_MEMBERS} members`);
  }
}
