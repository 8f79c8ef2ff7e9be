import { statSync } from 'node:fs';
import { test, expect, qemuImg, fillPattern } from './fixtures.ts';
import { heldBytes, HeapProbe } from './heap.ts';
import { exportOpfsFile, expectPreview, expectValidCopy, startConversion } from './helpers.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const LIMIT = 300 * 1000 * 1000;

test.use({ saveMode: 'picker' });

test('converting more than 1 GiB of data keeps page and worker heaps under 300 MB', async ({ page, context, work }) => {
  test.setTimeout(240_000);
  // 18 × 64 MiB = 1152 MiB of patterned data spread over a 5 GiB disk (offsets beyond 2^32 included).
  const src = work.file('big.qcow2');
  const size = 5 * GiB;
  qemuImg('create', '-q', '-f', 'qcow2', src, String(size));
  fillPattern(src, 'qcow2', 3 * MiB, 280 * MiB, 64 * MiB, 18);
  expect(statSync(src).size).toBeGreaterThan(GiB);

  await page.goto('/');
  const probe = await HeapProbe.attach(context, page);
  await page.getByTestId('file-input').setInputFiles(src);
  await expectPreview(page, 'qcow2', size);

  let peak = 0;
  let samples = 0;
  let maxWorkers = 0;
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const s = await probe.sample();
      const total = heldBytes(s.page) + s.workers.reduce((n, w) => n + heldBytes(w), 0);
      peak = Math.max(peak, total);
      maxWorkers = Math.max(maxWorkers, s.workers.length);
      samples++;
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  // Compressed, so the deflate pool's workers run (and are measured) too.
  await startConversion(page, 'qcow2', true);
  await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout: 180_000 });
  done = true;
  await sampler;
  await expect(page.getByTestId('error')).toHaveCount(0);
  console.log(`memory: peak ${(peak / 1e6).toFixed(1)} MB over ${samples} samples, up to ${maxWorkers} workers`);
  // The conversion worker was measured too, not just the page.
  expect(maxWorkers).toBeGreaterThanOrEqual(3);
  expect(samples).toBeGreaterThan(5);
  expect(peak).toBeLessThan(LIMIT);

  const out = work.file('big-out.qcow2');
  // The suggestion never repeats a source's name: big.qcow2 → big.converted.qcow2.
  await exportOpfsFile(page, 'picked-big.converted.qcow2', out);
  expectValidCopy(src, out, 'qcow2');
});
