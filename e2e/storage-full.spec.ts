import { test as base, expect } from '@playwright/test';
import { fillPattern, qemuImg } from './fixtures.ts';
import { opfsNames } from './helpers.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const GiB = 1024 * 1024 * 1024;

/**
 * Playwright's default context is off the record: its OPFS lives in memory, and a write far past
 * what it can hold does not throw but returns -8 as an unsigned number (docs/browser.md, Private storage).
 * The OPFS sink must notice, and the page must say the disk is full, not claim a result.
 */
base('a write the storage refuses is a clear "disk full" error, with nothing saved', async ({ browser }) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'diskferry-full-'));
  try {
    const src = path.join(dir, 'far.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', src, String(48 * GiB));
    fillPattern(src, 'qcow2', 47 * GiB, GiB, 1024 * 1024, 1);
    const context = await browser.newContext({ serviceWorkers: 'block' });
    await context.addInitScript(() => {
      (window as unknown as { showSaveFilePicker: unknown }).showSaveFilePicker = undefined;
      // A browser that cannot tell its quota: the check before the conversion lets it start, so
      // the write itself meets the full storage (page-safety.spec.ts covers the early refusal).
      Object.defineProperty(navigator.storage, 'estimate', { value: undefined });
    });
    const page = await context.newPage();
    let downloads = 0;
    page.on('download', () => downloads++);
    await page.goto('/');
    await page.getByTestId('file-input').setInputFiles(src);
    await expect(page.getByTestId('image-info')).toContainText(String(48 * GiB));
    await page.getByTestId('target-format').selectOption('raw');
    await page.getByTestId('convert').click();
    const error = page.getByTestId('error');
    await expect(error).toBeVisible({ timeout: 60_000 });
    await expect(error).toContainText(/disk is full|quota/i);
    // Named as the user will know the file (raw's first extension is .img), not by its OPFS entry.
    await expect(error).toContainText('far.img: write failed');
    await expect(page.getByTestId('result')).toHaveCount(0);
    expect(downloads).toBe(0);
    expect((await opfsNames(page)).filter((n) => n.includes('far'))).toEqual([]);
    await context.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
