import type { ByteSink } from '../src-core/io/bytes.ts';
import type { BlockDevice, Extent } from '../src-core/image/types.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * -r/--rate-limit: writes pass at most `bytesPerSecond` on average (qemu-img throttles the
 * target's write bandwidth the same way). Each write waits until its last byte is due.
 */
export class RateLimitedSink implements ByteSink {
  private readonly started = performance.now();
  private sent = 0;
  /** Only where the inner sink has one: a stream (stdout) cannot set its length, and writers must see that. */
  readonly truncate?: (size: number) => Promise<void>;
  constructor(
    private readonly inner: ByteSink,
    private readonly bytesPerSecond: number,
  ) {
    if (inner.truncate) this.truncate = (size) => inner.truncate!(size);
  }
  get name(): string {
    return this.inner.name;
  }
  async write(offset: number, data: Uint8Array): Promise<void> {
    // A write goes out once the budget covers it, the bytes before it included.
    this.sent += data.length;
    const wait = this.started + (this.sent / this.bytesPerSecond) * 1000 - performance.now();
    if (wait > 0) await sleep(wait);
    await this.inner.write(offset, data);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const SECTOR = 512;
const CHUNK = 64 * 1024;

/**
 * --salvage: reads that fail are retried in 64 KiB pieces, then sector by sector; sectors that
 * still cannot be read become zeros, with one warning per unreadable range (qemu-img warns per
 * sector). A metadata walk that fails reports the rest of the disk as data to be read.
 */
export function salvagingDevice(dev: BlockDevice, warn: (text: string) => void): BlockDevice {
  const tryRead = async (off: number, len: number): Promise<Uint8Array | Error> => {
    try {
      return await dev.read(off, len);
    } catch (e) {
      return e as Error;
    }
  };
  async function read(offset: number, length: number): Promise<Uint8Array> {
    const first = await tryRead(offset, length);
    if (!(first instanceof Error)) return first;
    const out = new Uint8Array(length);
    let bad: { start: number; end: number; why: string } | undefined;
    const flushBad = () => {
      if (bad) warn(`error while reading offset ${bad.start} (${bad.end - bad.start} bytes): ${bad.why}`);
      bad = undefined;
    };
    for (let c = 0; c < length; c += CHUNK) {
      const clen = Math.min(CHUNK, length - c);
      const r = await tryRead(offset + c, clen);
      if (!(r instanceof Error)) {
        flushBad();
        out.set(r, c);
        continue;
      }
      for (let s = 0; s < clen; s += SECTOR) {
        const slen = Math.min(SECTOR, clen - s);
        const rs = await tryRead(offset + c + s, slen);
        if (!(rs instanceof Error)) {
          flushBad();
          out.set(rs, c + s);
        } else if (bad && bad.end === offset + c + s) bad.end += slen;
        else {
          flushBad();
          bad = { start: offset + c + s, end: offset + c + s + slen, why: rs.message.split('\n')[0]! };
        }
      }
    }
    flushBad();
    return out;
  }
  async function* extents(from = 0, to = dev.virtualSize): AsyncIterable<Extent> {
    let pos = from;
    try {
      for await (const e of dev.extents(from, to)) {
        yield e;
        pos = e.offset + e.length;
      }
    } catch (e) {
      warn(`error while reading block status at offset ${pos}: ${(e as Error).message.split('\n')[0]}`);
      if (pos < to) yield { offset: pos, length: to - pos, kind: 'data' };
    }
  }
  return {
    format: dev.format,
    filename: dev.filename,
    virtualSize: dev.virtualSize,
    backingRef: dev.backingRef,
    backing: dev.backing,
    extents,
    read,
    info: () => dev.info(),
    close: () => dev.close(),
  };
}
