import { execFileSync } from 'node:child_process';
import { test, expect, qemuImg, fillPattern } from './fixtures.ts';
import { expectPreview, expectValidCopy, startConversion } from './helpers.ts';

const MiB = 1024 * 1024;

/** Each container wrapped around a file by the tool people use for it. */
const WRAP: [string, (file: string) => string][] = [
  ['gz', (f) => (execFileSync('gzip', ['-k', '-f', f]), `${f}.gz`)],
  ['xz', (f) => (execFileSync('xz', ['-k', '-f', '-T1', f]), `${f}.xz`)],
  ['zst', (f) => (execFileSync('zstd', ['-q', '-f', f, '-o', `${f}.zst`]), `${f}.zst`)],
  ['bz2', (f) => (execFileSync('bzip2', ['-k', '-f', f]), `${f}.bz2`)],
  ['zip', (f) => (execFileSync('zip', ['-q', '-j', `${f}.zip`, f]), `${f}.zip`)],
];

test('a compressed download (.gz .xz .zst .bz2 .zip) around raw and around qcow2 converts to the same bytes as the image inside', async ({
  page,
  work,
}) => {
  test.setTimeout(300_000);
  const qcow2 = work.file('cloud.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', qcow2, String(32 * MiB));
  fillPattern(qcow2, 'qcow2', 0, 3 * MiB, 256 * 1024, 8);
  const raw = work.file('disk.raw');
  qemuImg('convert', '-q', '-O', 'raw', qcow2, raw);
  await page.goto('/');
  for (const [ext, wrap] of WRAP) {
    for (const [inner, format] of [
      [raw, 'raw'],
      [qcow2, 'qcow2'],
    ] as const) {
      const packed = wrap(inner);
      await page.getByTestId('file-input').setInputFiles(packed);
      const notice = page.getByTestId('compressed');
      await expect(notice).toContainText('-compressed file');
      await notice.getByRole('button', { name: 'Unpack and open' }).click();
      await expectPreview(page, format, 32 * MiB);
      const download = page.waitForEvent('download');
      await startConversion(page, 'vmdk', false);
      await expect(page.getByTestId('result')).toBeVisible({ timeout: 60_000 });
      const out = work.file(`out-${ext}-${format}.vmdk`);
      await (await download).saveAs(out);
      expectValidCopy(inner, out, 'vmdk');
    }
  }
});
