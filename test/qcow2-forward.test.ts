import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { StdoutSink } from '../cli/stdoutSink.ts';
import { forwardQcow2 } from '../src-core/formats/qcow2/forwardWriter.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import type { BlockDevice } from '../src-core/image/types.ts';
import { MemorySource } from '../src-core/io/bytes.ts';
import { NullSink } from '../src-core/io/nullSink.ts';
import { convert } from '../src-core/pipeline/convert.ts';
import { patternChunk, prng, qemuCompare, runStatus, tempDir } from './helpers/sys.ts';

// The front-to-back qcow2 writer (formats/qcow2/forwardWriter.ts) in-process: the plan pass,
// then the file through the stdout sink (which refuses any backward write), checked and
// compared by qemu-img. Layouts that stress the placement: many compressed streams per
// cluster with narrow refcounts, streams spilling over cluster boundaries, no data at all,
// a sparse multi-TiB disk whose L1 spans clusters.
const t = tempDir('diskferry-qcow2-forward-');
afterAll(() => t.cleanup());
const MiB = 1 << 20;

async function rawDevice(bytes: Uint8Array, name: string): Promise<BlockDevice> {
  return openImage(new MemorySource(bytes, name), drivers, { format: 'raw', codecs: nodeCodecs });
}

/** Runs both passes over `source` and returns the bytes the stdout sink let through. */
async function forward(source: BlockDevice, options: Record<string, string>, compress: boolean, mutate?: () => void): Promise<Buffer> {
  const parts: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(Buffer.from(chunk));
      cb();
    },
  });
  const { plan, write } = forwardQcow2();
  const create = { options, compress, codecs: nodeCodecs, filename: 'out.qcow2' };
  await convert({ source, target: plan, sink: new NullSink('out.qcow2'), create });
  mutate?.();
  const sink = new StdoutSink(stream);
  await convert({ source, target: write, sink, create });
  await sink.close();
  return Buffer.concat(parts);
}

function checkAndCompare(name: string, raw: Uint8Array, qcow2: Buffer): void {
  const rawFile = t.file(`${name}.raw`);
  const out = t.file(`${name}.qcow2`);
  writeFileSync(rawFile, raw);
  writeFileSync(out, qcow2);
  const check = runStatus('qemu-img', ['check', out]);
  expect(check.status, check.stdout + check.stderr).toBe(0);
  expect(qemuCompare(rawFile, out, '-f', 'raw', '-F', 'qcow2')).toBe(0);
}

/** Mixed pages (text, random, zeros) in some places, the rest zeros. */
function patterned(size: number, seed: number, every: number): Uint8Array {
  const rand = prng(seed);
  const b = new Uint8Array(size);
  for (let off = 0; off < size; off += every) b.set(patternChunk(Math.min(every >> 1, size - off), rand), off);
  return b;
}

/** Clusters that compress to a few dozen bytes each: many streams share one host cluster. */
function tinyStreams(size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let off = 0; off < size; off += 4096) b.fill(((off / 4096) % 251) | 1, off, off + 16);
  return b;
}

describe('qcow2 written front to back', () => {
  const cases: { name: string; data: () => Uint8Array; options: Record<string, string>; compress: boolean }[] = [
    { name: 'plain-odd-size', data: () => patterned(9 * MiB + 4608, 1, 256 * 1024), options: {}, compress: false },
    { name: 'c-odd-size', data: () => patterned(9 * MiB + 4608, 2, 256 * 1024), options: {}, compress: true },
    { name: 'c-tiny-rc16', data: () => tinyStreams(8 * MiB), options: { cluster_size: '4k' }, compress: true },
    { name: 'c-tiny-rc2', data: () => tinyStreams(8 * MiB), options: { cluster_size: '4k', refcount_bits: '2' }, compress: true },
    { name: 'c-tiny-rc1', data: () => tinyStreams(4 * MiB), options: { cluster_size: '1k', refcount_bits: '1' }, compress: true },
    { name: 'c-512', data: () => patterned(3 * MiB, 3, 64 * 1024), options: { cluster_size: '512' }, compress: true },
    { name: 'plain-v2', data: () => patterned(5 * MiB, 4, 128 * 1024), options: { compat: '0.10' }, compress: false },
    { name: 'all-zero', data: () => new Uint8Array(6 * MiB), options: {}, compress: true },
  ];
  for (const c of cases) {
    it(`${c.name}: qemu-img check clean, compare identical`, async () => {
      const raw = c.data();
      checkAndCompare(c.name, raw, await forward(await rawDevice(raw, `${c.name}.raw`), c.options, c.compress));
    }, 60_000);
  }

  it('a sparse 3 TiB disk: L1 over several clusters, tables for a few clusters of data', async () => {
    const size = 3 * 2 ** 40;
    const spots = [0, 2 ** 40 + 12 * MiB, size - 65536];
    const dev: BlockDevice = {
      format: 'raw',
      filename: 'sparse',
      virtualSize: size,
      async *extents(from = 0, to = size) {
        for (const s of spots) if (s + 65536 > from && s < to) yield { offset: s, length: 65536, kind: 'data' as const };
      },
      async read(offset, length) {
        const out = new Uint8Array(length);
        for (const s of spots) if (s >= offset && s < offset + length) out.fill(0x5a, s - offset, Math.min(s - offset + 65536, length));
        return out;
      },
      info: () => ({ filename: 'sparse', format: 'raw', 'virtual-size': size }),
      close: async () => {},
    };
    const out = t.file('sparse.qcow2');
    writeFileSync(out, await forward(dev, { cluster_size: '4k' }, false));
    expect(runStatus('qemu-img', ['check', out]).status).toBe(0);
    const map = JSON.parse(runStatus('qemu-img', ['map', '--output=json', out]).stdout) as { start: number; data: boolean }[];
    expect(map.filter((e) => e.data).map((e) => e.start)).toEqual(spots);
  }, 60_000);

  it('a source that changes between the passes is an error, not a wrong file', async () => {
    const raw = patterned(2 * MiB, 5, 256 * 1024);
    const dev = await rawDevice(raw, 'changing.raw');
    await expect(forward(dev, {}, true, () => raw.fill(0x33, MiB, MiB + 4096))).rejects.toThrow(/source changed between the two passes/);
  });
});
