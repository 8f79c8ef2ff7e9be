import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { NodeFileSink } from '../cli/nodeFiles.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import type { BlockDevice } from '../src-core/image/types.ts';
import { MemorySource, type ByteSource } from '../src-core/io/bytes.ts';
import { convert, type ConvertResult } from '../src-core/pipeline/convert.ts';
import { patternChunk, prng, qemuCompare, runStatus, tempDir } from './helpers/sys.ts';

// The zero scout (pipeline/zeroScout.ts): a disk without an allocation map is read from its
// end while the conversion reads from its start; windows the scout found all zeros are not
// read again. The output must be the same image (qemu-img check and compare), the progress
// must count every byte once, and a disk full at its end must cost the scout two windows only.
const t = tempDir('diskferry-zero-scout-');
afterAll(() => t.cleanup());
const MiB = 1 << 20;
const WINDOW = MiB;
const qcow2 = drivers.find((d) => d.name === 'qcow2')!;

/** A ByteSource that counts the bytes read through it. */
class CountingSource implements ByteSource {
  bytesRead = 0;
  constructor(private readonly inner: MemorySource) {}
  get name(): string {
    return this.inner.name;
  }
  get size(): number {
    return this.inner.size;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const b = await this.inner.read(offset, length);
    this.bytesRead += b.length;
    return b;
  }
}

async function rawDevice(src: ByteSource): Promise<BlockDevice> {
  return openImage(src, drivers, { format: 'raw', codecs: nodeCodecs });
}

interface Run {
  result: ConvertResult;
  mainRead: number;
  scoutRead: number;
  progress: { done: number; total: number }[];
}

/** Converts `disk` (raw) to qcow2 in 1 MiB windows, with a scout unless `scout` is false. */
async function run(name: string, disk: Uint8Array, scout = true): Promise<Run> {
  const main = new CountingSource(new MemorySource(disk, `${name}.raw`));
  const spare = new CountingSource(new MemorySource(disk, `${name}.raw`));
  const source = await rawDevice(main);
  const out = t.file(`${name}.qcow2`);
  const sink = await NodeFileSink.create(out);
  const progress: { done: number; total: number }[] = [];
  const result = await convert({
    source,
    target: qcow2,
    sink,
    create: { options: {}, codecs: nodeCodecs, filename: out },
    batchSize: WINDOW,
    openScout: scout ? () => rawDevice(spare) : undefined,
    onProgress: (p) => progress.push({ done: p.done, total: p.total }),
  });
  await sink.close();
  const rawFile = t.file(`${name}.raw`);
  writeFileSync(rawFile, disk);
  const check = runStatus('qemu-img', ['check', out]);
  expect(check.status, check.stdout + check.stderr).toBe(0);
  expect(qemuCompare(rawFile, out, '-f', 'raw', '-F', 'qcow2')).toBe(0);
  return { result, mainRead: main.bytesRead, scoutRead: spare.bytesRead, progress };
}

function diskWith(size: number, dataAt: [number, number][], seed: number): Uint8Array {
  const disk = new Uint8Array(size);
  const rand = prng(seed);
  for (const [at, len] of dataAt) {
    disk.set(patternChunk(len, rand), at);
    disk[at] = 0xa5; // patternChunk has all-zero pages too: every region starts with data
  }
  return disk;
}

function expectProgressCountsEachByteOnce(r: Run, size: number): void {
  expect(r.progress.length).toBeGreaterThan(0);
  for (const p of r.progress) expect(p.done).toBeLessThanOrEqual(p.total);
  const last = r.progress[r.progress.length - 1]!;
  expect(last).toEqual({ done: size, total: size });
}

describe('zero scout', () => {
  it('finds the holes after a disk’s data from the end, so the conversion does not read them', async () => {
    const size = 48 * MiB;
    const disk = diskWith(size, [[0, 6 * MiB]], 11);
    const r = await run('data-first', disk);
    // The scout read the zero windows it could reach; the conversion read the rest, and no
    // window is read by both more than the few the two were reading when they met.
    expect(r.scoutRead).toBeGreaterThan(8 * MiB);
    expect(r.mainRead).toBeLessThan(size - 8 * MiB);
    expect(r.mainRead + r.scoutRead).toBeLessThanOrEqual(size + 4 * WINDOW);
    expect(r.result.bytesRead).toBe(r.mainRead + r.scoutRead);
    expectProgressCountsEachByteOnce(r, size);
  });

  it('writes the same image as a conversion without it, data at both ends and in between', async () => {
    const size = 40 * MiB;
    const disk = diskWith(
      size,
      [
        [0, 3 * MiB],
        [17 * MiB + 4096, 64 * 1024],
        [size - WINDOW - 512, 512], // the last window but one: the scout reads data, then zeros
        [size - 4096, 4096],
      ],
      12,
    );
    const withScout = await run('both-ends', disk);
    const without = await run('both-ends-plain', disk, false);
    expect(without.scoutRead).toBe(0);
    expect(without.mainRead).toBe(size);
    // Data in the last two windows: the scout gives up at once and the conversion reads all.
    expect(withScout.scoutRead).toBe(2 * WINDOW);
    expect(withScout.mainRead).toBe(size);
    expectProgressCountsEachByteOnce(withScout, size);
    // One data window at the end, zeros before it: the scout goes on past it.
    const lastOnly = diskWith(
      size,
      [
        [0, 3 * MiB],
        [17 * MiB + 4096, 64 * 1024],
        [size - 4096, 4096],
      ],
      14,
    );
    const r = await run('end-and-middle', lastOnly);
    expect(r.scoutRead).toBeGreaterThan(8 * WINDOW);
    expect(r.mainRead).toBeLessThan(size - 8 * WINDOW);
    expectProgressCountsEachByteOnce(r, size);
  });

  it('gives up after two data windows in a row from the end (a full disk costs two windows)', async () => {
    const size = 24 * MiB;
    const disk = diskWith(size, [[0, size]], 13);
    const r = await run('dense', disk);
    expect(r.scoutRead).toBe(2 * WINDOW);
    expect(r.mainRead).toBe(size);
    expectProgressCountsEachByteOnce(r, size);
  });
});
