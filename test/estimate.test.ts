import { closeSync, ftruncateSync, openSync, statSync, writeSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { findDriver, openImage } from '../src-core/image/open.ts';
import { estimateOutput } from '../src-core/pipeline/estimate.ts';
import { cliOk } from './helpers/cli.ts';
import { patternChunk, prng, qemuImg, tempDir } from './helpers/sys.ts';
import { NodeFileSource } from '../cli/nodeFiles.ts';

const MiB = 1024 * 1024;
const tmp = tempDir('diskferry-estimate-');
afterAll(() => tmp.cleanup());

/**
 * A qcow2 holding runs of 3 MiB that look like real disks (text, random and zero pages): a
 * constant pattern would compress to nothing and leave only metadata to measure.
 */
function makeSource(file: string, size: number, places: number): void {
  const raw = `${file}.raw`;
  const fd = openSync(raw, 'w');
  ftruncateSync(fd, size);
  const rand = prng(7);
  for (let i = 0; i < places; i++) {
    writeSync(fd, patternChunk(3 * MiB, rand), 0, 3 * MiB, i * Math.floor(size / places));
  }
  closeSync(fd);
  qemuImg('convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, file);
}

async function estimateFor(file: string, target: string, options: Record<string, string>, compress: boolean, wholeUpTo?: number) {
  const source = await openImage(await NodeFileSource.open(file), drivers, { codecs: nodeCodecs });
  try {
    return await estimateOutput({
      source,
      target: findDriver(drivers, target),
      create: { options, compress, codecs: nodeCodecs, filename: 'out' },
      wholeUpTo,
      sampleBytes: 32 * MiB,
    });
  } finally {
    await source.close();
  }
}

describe('estimateOutput: the output size before converting', () => {
  const cases: [string, string, string[], Record<string, string>, boolean][] = [
    ['qcow2 -c', 'qcow2', ['-c'], {}, true],
    ['vhdx', 'vhdx', [], {}, false],
    ['stream vmdk', 'vmdk', ['-o', 'subformat=streamOptimized'], { subformat: 'streamOptimized' }, false],
  ];
  for (const [name, target, args, options, compress] of cases) {
    it(`${name}: exact when the source is small, within 5 % when sampled`, async () => {
      const src = tmp.file(`src-${target}.qcow2`);
      makeSource(src, 1024 * MiB, 12);
      const out = tmp.file(`out-${name.replace(/\W/g, '')}`);
      // The CLI compresses on its main thread with Node's zlib: the codecs the estimate runs here.
      process.env.DISKFERRY_DEFLATE = 'single';
      try {
        await cliOk('convert', '-O', target, ...args, src, out);
      } finally {
        delete process.env.DISKFERRY_DEFLATE;
      }
      const real = statSync(out).size;
      const exact = await estimateFor(src, target, options, compress);
      expect(exact.exact).toBe(true);
      expect(exact.bytes).toBe(real);
      // 12 runs of 3 MiB, not 64 KiB-aligned: each touches up to one unit more at either end.
      expect(exact.nonZeroBytes).toBeGreaterThanOrEqual(36 * MiB);
      expect(exact.nonZeroBytes).toBeLessThanOrEqual(36 * MiB + 24 * 65536);
      const sampled = await estimateFor(src, target, options, compress, 8 * MiB);
      expect(sampled.exact).toBe(false);
      expect(Math.abs(sampled.bytes - real) / real, `sampled ${sampled.bytes} real ${real} exact ${exact.bytes}`).toBeLessThan(0.05);
    });
  }
});
