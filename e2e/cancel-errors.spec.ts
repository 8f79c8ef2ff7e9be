import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { test, expect, qemuImg, fillPattern } from './fixtures.ts';
import { expectPreview, opfsNames, screenshot, startConversion } from './helpers.ts';

const MiB = 1024 * 1024;

/** Random data does not compress: converting it with -c keeps the worker busy long enough to cancel. */
function makeIncompressibleQcow2(file: string, dataMiB: number): void {
  const raw = `${file}.raw`;
  execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', `count=${dataMiB}`, 'status=none']);
  qemuImg('convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, file);
}

/** Overwrites bytes of a file in place. */
function poke(file: string, offset: number, bytes: number[]): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.from(bytes), 0, bytes.length, offset);
  closeSync(fd);
}

for (const mode of ['download', 'picker'] as const) {
  test.describe(`cancel (${mode})`, () => {
    test.use({ saveMode: mode });

    test('cancel in mid-conversion stops the work and leaves no result', async ({ page, work }) => {
      const src = work.file('busy.qcow2');
      makeIncompressibleQcow2(src, 96);
      let downloads = 0;
      page.on('download', () => downloads++);
      await page.goto('/');
      await page.getByTestId('file-input').setInputFiles(src);
      await expectPreview(page, 'qcow2', 96 * MiB);
      await startConversion(page, 'qcow2', true);
      const progress = page.getByTestId('progress');
      await expect(progress).toBeVisible();
      // Wait until real work is under way, then cancel well before the end.
      await expect.poll(async () => Number(await progress.getAttribute('aria-valuenow')), { timeout: 60_000 }).toBeGreaterThan(0);
      expect(Number(await progress.getAttribute('aria-valuenow'))).toBeLessThan(60);
      if (mode === 'download') await screenshot(page, 'progress');
      await page.getByTestId('cancel').click();
      await expect(page.getByText('Cancelled. Nothing was saved.')).toBeVisible({ timeout: 15_000 });
      await expect(page.getByTestId('progress')).toHaveCount(0);
      await expect(page.getByTestId('result')).toHaveCount(0);
      await expect(page.getByTestId('error')).toHaveCount(0);
      // No output file survives: neither the picked file nor the private-storage copy.
      const names = await opfsNames(page);
      expect(names.filter((n) => n.includes('busy.qcow2'))).toEqual([]);
      await page.waitForTimeout(500);
      expect(downloads).toBe(0);
    });
  });
}

test('a file whose header points past its end shows the error when dropped', async ({ page, work }) => {
  const src = work.file('corrupt-header.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', src, '64M');
  fillPattern(src, 'qcow2', 0, MiB, 65536, 4);
  // l1_table_offset (header bytes 40..47) = 16 TiB: far past the end of the file.
  poke(src, 40, [0, 0, 0x10, 0, 0, 0, 0, 0]);
  await page.goto('/');
  await page.getByTestId('drop-zone').drop({ files: [src] });
  const error = page.getByTestId('error');
  await expect(error).toBeVisible();
  await expect(error).toContainText('corrupt-header.qcow2');
  await expect(error).toContainText(/truncated|beyond|past|end/i);
  await expect(page.getByTestId('image-info')).toHaveCount(0);
});

test('corruption found while converting shows the error and saves nothing', async ({ page, work }) => {
  const src = work.file('bad-l1.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', src, '64M');
  fillPattern(src, 'qcow2', 0, MiB, 65536, 4);
  // Point the L1 table into the first data cluster (patterned bytes 0x11): its entries are then
  // garbage, and qemu-img itself fails with "L2 table offset … unaligned".
  const map = JSON.parse(execFileSync('qemu-img', ['map', '--output=json', src], { encoding: 'utf8' })) as { offset?: number }[];
  const dataAt = map.find((m) => m.offset !== undefined)!.offset!;
  poke(src, 40, [...Buffer.from(BigInt(dataAt).toString(16).padStart(16, '0'), 'hex')]);
  let downloads = 0;
  page.on('download', () => downloads++);
  await page.goto('/');
  await page.getByTestId('drop-zone').drop({ files: [src] });
  // The header is fine, so the preview shows; the map reads the tables and warns.
  await expect(page.getByTestId('image-info')).toContainText(String(64 * MiB));
  await expect(page.getByTestId('image-info')).toContainText('could not be read');
  await startConversion(page, 'raw', false);
  const error = page.getByTestId('error');
  await expect(error).toBeVisible();
  await expect(error).toContainText('bad-l1.qcow2');
  await expect(error).toContainText(/L2 table offset/i);
  await expect(page.getByTestId('result')).toHaveCount(0);
  expect((await opfsNames(page)).filter((n) => n.includes('bad-l1'))).toEqual([]);
  expect(downloads).toBe(0);
});
