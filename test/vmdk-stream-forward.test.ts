import { describe, expect, it } from 'vitest';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { ForwardStreamVmdk, isStreamVmdkHead, type ForwardBytes } from '../src-core/formats/vmdk/streamForward.ts';
import { buildStreamVmdk } from './helpers/vmdkStream.ts';
import { patternChunk, prng } from './helpers/sys.ts';

// A streamOptimized VMDK read as it arrives (formats/vmdk/streamForward.ts), from files built
// by the spec-written helper (test/helpers/vmdkStream.ts, not DiskFerry's writer): the bytes
// read front to back equal the disk; grains out of order, a cut stream and a read that goes
// back are refused with one line.
const MiB = 1 << 20;

/** A buffer handed out front to back, in reads of any size. */
function bytesOf(buf: Uint8Array): ForwardBytes {
  let at = 0;
  return {
    async read(n) {
      const out = buf.subarray(at, Math.min(at + n, buf.length));
      at += out.length;
      return out;
    },
  };
}

function disk(size: number, seed: number): Uint8Array {
  const rand = prng(seed);
  const b = new Uint8Array(size);
  for (let off = 0; off < size; off += 192 * 1024) b.set(patternChunk(Math.min(70000, size - off), rand), off);
  return b;
}

async function readAll(dev: ForwardStreamVmdk, step: number): Promise<Uint8Array> {
  const out = new Uint8Array(dev.virtualSize);
  for (let off = 0; off < dev.virtualSize; off += step) out.set(await dev.read(off, Math.min(step, dev.virtualSize - off)), off);
  return out;
}

/** File offsets of the first grain records (marker + stream, whole sectors), walked from the header's overhead. */
function grainRecords(file: Uint8Array, count: number): { at: number; length: number }[] {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let at = Number(v.getBigUint64(64, true)) * 512;
  const out: { at: number; length: number }[] = [];
  while (out.length < count) {
    const size = v.getUint32(at + 8, true);
    if (!size) throw new Error('expected grain records before any table');
    const length = Math.ceil((12 + size) / 512) * 512;
    out.push({ at, length });
    at += length;
  }
  return out;
}

describe('stream VMDK read forward', () => {
  for (const grainSectors of [128, 16]) {
    it(`reads back the disk, ${grainSectors}-sector grains, in reads of 1 MiB and of 4 KiB`, async () => {
      const raw = disk(5 * MiB + 1536, grainSectors);
      const file = buildStreamVmdk(raw, { grainSectors, ovftoolDescriptor: true, trailingPadSectors: 3 });
      expect(isStreamVmdkHead(file.subarray(0, 512))).toBe(true);
      for (const step of [MiB, 4096]) {
        const dev = await ForwardStreamVmdk.open(bytesOf(file), 'stdin', nodeCodecs);
        expect(dev.virtualSize).toBe(raw.length);
        expect(Buffer.from(await readAll(dev, step)).equals(Buffer.from(raw))).toBe(true);
      }
    });
  }

  it('a stream without markers is not taken for one that can be read forward', () => {
    const file = buildStreamVmdk(disk(MiB, 3), { noMarkers: true });
    expect(isStreamVmdkHead(file.subarray(0, 512))).toBe(false);
  });

  it('grains out of disk order are refused, saying to give the file', async () => {
    const file = new Uint8Array(buildStreamVmdk(disk(2 * MiB, 4)));
    const [a, b] = grainRecords(file, 2);
    // Swap the first two grain records (the second is right after the first).
    const first = file.slice(a!.at, a!.at + a!.length);
    const second = file.slice(b!.at, b!.at + b!.length);
    file.set(second, a!.at);
    file.set(first, a!.at + second.length);
    const dev = await ForwardStreamVmdk.open(bytesOf(file), 'stdin', nodeCodecs);
    await expect(readAll(dev, MiB)).rejects.toThrow(/stdin: its grains are not in disk order.*give it as a file/);
  });

  it('a stream cut inside a grain is corrupt', async () => {
    const file = buildStreamVmdk(disk(2 * MiB, 5));
    // The first grain is 64 KiB of mixed data: its record spans many sectors.
    const [a] = grainRecords(file, 1);
    expect(a!.length).toBeGreaterThan(2048);
    const dev = await ForwardStreamVmdk.open(bytesOf(file.subarray(0, a!.at + 1024)), 'stdin', nodeCodecs);
    await expect(readAll(dev, MiB)).rejects.toThrow(/stdin: ends in the middle of a grain/);
  });

  it('a read behind the stream is refused', async () => {
    const file = buildStreamVmdk(disk(2 * MiB, 6));
    const dev = await ForwardStreamVmdk.open(bytesOf(file), 'stdin', nodeCodecs);
    await dev.read(MiB, 4096);
    await expect(dev.read(0, 4096)).rejects.toThrow(/byte 0 has gone by/);
  });
});
