import { statSync } from 'node:fs';
import { test, expect, qemuImg } from './fixtures.ts';
import { expectPreview, expectValidCopy } from './helpers.ts';
import { execFileSync } from 'node:child_process';

const MiB = 1024 * 1024;
const UNIT: Record<string, number> = { B: 1, KiB: 1024, MiB: MiB, GiB: 1024 * MiB };

/** "≈ 69.2 MiB" → bytes. */
function parseSize(text: string): number {
  const m = /≈\s*([\d.]+)\s*(B|KiB|MiB|GiB)/.exec(text);
  if (!m) throw new Error(`no size in "${text}"`);
  return Number(m[1]) * UNIT[m[2]!]!;
}

/** A VMDK with data that looks like a real disk's: text and random pages (dd from a mixed source). */
function makeRealisticVmdk(file: string): void {
  const raw = `${file}.raw`;
  execFileSync('sh', [
    '-c',
    `dd if=/dev/zero of=${raw} bs=1M count=0 seek=256 status=none && (for i in $(seq 1 40); do base64 -w0 /dev/urandom | head -c 262144; head -c 131072 /dev/urandom; done) | dd of=${raw} bs=1M seek=8 conv=notrunc status=none`,
  ]);
  qemuImg('convert', '-q', '-f', 'raw', '-O', 'vmdk', raw, file);
}

test('the estimate shows before Convert and is within 5 % of the saved file (qcow2 -c, VHDX, stream VMDK)', async ({ page, work }) => {
  test.setTimeout(240_000);
  const src = work.file('guest.vmdk');
  makeRealisticVmdk(src);
  await page.goto('/');
  await page.getByTestId('file-input').setInputFiles(src);
  await expectPreview(page, 'vmdk', 256 * MiB);
  const estimate = page.getByTestId('estimate');

  const cases: { name: string; choose: () => Promise<void>; format: string }[] = [
    {
      name: 'qcow2 -c',
      format: 'qcow2',
      choose: async () => {
        await page.getByTestId('target-format').selectOption('qcow2');
        await page.getByTestId('compress').check();
      },
    },
    {
      name: 'vhdx',
      format: 'vhdx',
      choose: () =>
        page
          .getByTestId('target-format')
          .selectOption('vhdx')
          .then(() => undefined),
    },
    { name: 'stream vmdk', format: 'vmdk', choose: () => page.getByRole('button', { name: /AWS import/ }).click() },
  ];
  for (const c of cases) {
    await c.choose();
    await expect(estimate).toContainText('≈', { timeout: 60_000 });
    const guess = parseSize(await estimate.innerText());
    const download = page.waitForEvent('download');
    await page.getByTestId('convert').click();
    await expect(page.getByTestId('result')).toBeVisible({ timeout: 120_000 });
    const out = work.file(`out-${c.format}-${c.name.length}`);
    await (await download).saveAs(out);
    const real = statSync(out).size;
    expect(Math.abs(guess - real) / real, `${c.name}: estimated ${guess}, saved ${real}`).toBeLessThan(0.05);
    expectValidCopy(src, out, c.format);
    // The result compares the source's files with the output, in sizes and per cent.
    await expect(page.getByTestId('result')).toContainText(/MiB → [\d.]+ (KiB|MiB), (−|\+)\d+ %/);
  }
});

test('a raw disk, whose every byte is "data", gets its real data share from the estimate pass', async ({ page, work }) => {
  const src = work.file('sparse.img');
  execFileSync('sh', [
    '-c',
    `dd if=/dev/zero of=${src} bs=1M count=0 seek=64 status=none && head -c 5242880 /dev/urandom | dd of=${src} bs=1M seek=20 conv=notrunc status=none`,
  ]);
  await page.goto('/');
  await page.getByTestId('file-input').setInputFiles(src);
  await expectPreview(page, 'raw', 64 * MiB);
  await expect(page.getByTestId('image-info')).toContainText('64 MiB (100% of the disk)');
  await expect(page.getByTestId('data-share')).toContainText('of its 64 MiB of data, ≈ 5 MiB is not zeros', { timeout: 30_000 });
});
