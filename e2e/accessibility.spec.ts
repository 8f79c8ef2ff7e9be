import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { test, expect, qemuImg, fillPattern } from './fixtures.ts';
import { expectPreview, screenshot, seriousViolations, startConversion } from './helpers.ts';

const MiB = 1024 * 1024;
/** Every state must pass axe and fit the width (no sideways scrolling). */
async function checkState(page: Page, name: string, width: number): Promise<void> {
  await screenshot(page, `a11y-${width}-${name}`);
  expect(await seriousViolations(page), `axe on "${name}" at ${width} px`).toEqual([]);
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(scroll, `"${name}" scrolls sideways at ${width} px`).toBeLessThanOrEqual(width);
}

function makeIncompressibleQcow2(file: string, dataMiB: number): void {
  const raw = `${file}.raw`;
  execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', `count=${dataMiB}`, 'status=none']);
  qemuImg('convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, file);
}

for (const [width, height] of [
  [1280, 800],
  [390, 844],
] as const) {
  test(`every state passes axe and fits at ${width}×${height}`, async ({ page, work }) => {
    test.setTimeout(240_000);
    await page.setViewportSize({ width, height });
    const disk = work.file('a-rather-long-name-for-a-virtual-machine-disk-image.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', disk, String(64 * MiB));
    fillPattern(disk, 'vmdk', 0, 7 * MiB, MiB, 5);
    const busy = work.file('busy.qcow2');
    makeIncompressibleQcow2(busy, 96);
    const notes = work.file('notes.txt');
    writeFileSync(notes, 'not a disk\n');

    await page.goto('/');
    await expect(page.getByRole('button', { name: 'Open files…' })).toBeVisible();
    await checkState(page, 'start', width);

    await page.getByTestId('file-input').setInputFiles(disk);
    await expectPreview(page, 'vmdk', 64 * MiB);
    await page.getByText(/^All details/).click();
    await expect(page.getByRole('region', { name: 'qemu-img info JSON' })).toBeVisible();
    await checkState(page, 'preview', width);

    await page.getByTestId('target-format').selectOption('vpc');
    await page.getByText('Advanced VHD (vpc) options').click();
    await checkState(page, 'target', width);

    await page.getByTestId('file-input').setInputFiles(busy);
    await expectPreview(page, 'qcow2', 96 * MiB);
    await startConversion(page, 'qcow2', true);
    const progress = page.getByTestId('progress');
    await expect.poll(async () => Number(await progress.getAttribute('aria-valuenow')), { timeout: 60_000 }).toBeGreaterThan(0);
    await checkState(page, 'progress', width);
    await page.getByTestId('cancel').click();
    await expect(page.getByText('Cancelled. Nothing was saved.')).toBeVisible({ timeout: 15_000 });

    await page.getByTestId('file-input').setInputFiles(disk);
    await expectPreview(page, 'vmdk', 64 * MiB);
    await startConversion(page, 'qcow2', false);
    await expect(page.getByTestId('result')).toBeVisible();
    await checkState(page, 'result', width);

    await page.getByTestId('file-input').setInputFiles(notes);
    await expect(page.getByTestId('error')).toBeVisible();
    await checkState(page, 'error', width);
  });
}

test('form details: force_size can return to unset, Verify keeps the preset, focus follows the job, sizes compare', async ({
  page,
  work,
}) => {
  const disk = work.file('small.vmdk');
  qemuImg('create', '-q', '-f', 'vmdk', disk, String(64 * MiB));
  fillPattern(disk, 'vmdk', 0, 9 * MiB, MiB, 4);
  await page.goto('/');
  await page.getByTestId('file-input').setInputFiles(disk);
  await expectPreview(page, 'vmdk', 64 * MiB);

  await page.getByRole('button', { name: /Azure/ }).click();
  await page.getByText('Advanced VHD (vpc) options').click();
  const forceSize = page.locator('select[id="opt-force_size"]');
  await expect(forceSize).toHaveValue('on');
  await forceSize.selectOption({ label: 'default (unset)' });
  await expect(forceSize).toHaveValue('');
  await expect(page.getByText(/Advanced VHD \(vpc\) options/)).not.toContainText('force_size');

  await page.getByRole('button', { name: /Proxmox/ }).click();
  await page.getByTestId('verify').check();
  await expect(page.getByRole('button', { name: /Proxmox/ })).toHaveAttribute('aria-pressed', 'true');

  const download = page.waitForEvent('download');
  await page.getByTestId('convert').click();
  const result = page.getByTestId('result');
  await expect(result).toBeVisible();
  await download;
  // Focus went with the job, never back to <body>.
  expect(await page.evaluate(() => document.activeElement?.closest('[data-testid="result"]') !== null)).toBe(true);
  const text = await result.innerText();
  expect(text).toMatch(/\d+(\.\d+)? (KiB|MiB) → \d+(\.\d+)? (KiB|MiB), (−|\+)\d+ %/);
  expect(text).not.toMatch(/\d{3,}%/);
});
