import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { afterEach, beforeEach, expect, inject, test } from 'vitest';
import {
  count,
  downloaded,
  dropFiles,
  expectPreview,
  expectResult,
  expectValidCopy,
  fillPattern,
  launchFirefox,
  opfsNames,
  openFiles,
  startConversion,
  textOf,
  tool,
  waitForDownload,
  waitText,
  waitVisible,
  type Session,
} from './firefox.ts';
import { startPreview } from './server.ts';

/**
 * The journeys that matter, in Debian's Firefox ESR. Firefox has no showSaveFilePicker, so the
 * page takes its other route: the worker writes an OPFS file through a sync access handle and
 * the page downloads it (web/README.md, "Saving").
 */
const MiB = 1024 * 1024;
const baseURL = inject('baseURL');

let ff: Session;
beforeEach(async () => {
  ff = await launchFirefox();
});
afterEach(async () => {
  if (ff?.problems.length) console.log(ff.problems.join('\n'));
  await ff?.close();
});

test('drop a monolithicSparse vmdk, preview it, convert to compressed qcow2, the download is a valid copy', async () => {
  const src = ff.file('disk.vmdk');
  const size = 64 * MiB;
  tool('qemu-img', 'create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicSparse', src, String(size));
  fillPattern(src, 'vmdk', 0, 9 * MiB, MiB, 6);
  fillPattern(src, 'vmdk', 3 * MiB + 4096, 11 * MiB, 20480, 4);

  const { page } = ff;
  await page.goto(baseURL);
  expect(await page.evaluate(() => 'showSaveFilePicker' in window)).toBe(false);
  await dropFiles(page, src);
  const info = await expectPreview(page, 'vmdk', size);
  expect(info).toContain('monolithicSparse');
  // For a reviewer: the page as Firefox draws it (artifacts/ is gitignored).
  mkdirSync('artifacts', { recursive: true });
  await page.screenshot({ path: 'artifacts/firefox-preview.png', fullPage: true });

  await startConversion(page, 'qcow2', true);
  const result = await expectResult(page);
  expect(result).toContain('disk.qcow2');
  await page.screenshot({ path: 'artifacts/firefox-result.png', fullPage: true });
  const out = await waitForDownload(ff, 'disk.qcow2');
  expectValidCopy(src, out, 'qcow2');
  const json = JSON.parse(execFileSync('qemu-img', ['check', '--output=json', out], { encoding: 'utf8' })) as {
    'compressed-clusters'?: number;
  };
  expect(json['compressed-clusters'] ?? 0).toBeGreaterThan(0);
});

test('cancel in mid-conversion: "Cancelled. Nothing was saved.", no download, nothing left in OPFS', async () => {
  const src = ff.file('busy.qcow2');
  // Random data does not compress: converting it with -c keeps the worker busy long enough to cancel.
  execFileSync('dd', ['if=/dev/urandom', `of=${src}.raw`, 'bs=1M', 'count=96', 'status=none']);
  tool('qemu-img', 'convert', '-q', '-f', 'raw', '-O', 'qcow2', `${src}.raw`, src);

  const { page } = ff;
  await page.goto(baseURL);
  await openFiles(page, src);
  await expectPreview(page, 'qcow2', 96 * MiB);
  await startConversion(page, 'qcow2', true);
  const progressNow = () =>
    page.evaluate(() => Number(document.querySelector('[data-testid="progress"]')?.getAttribute('aria-valuenow') ?? -1));
  // Wait until real work is under way, then cancel well before the end.
  await expect.poll(progressNow, { timeout: 60_000, interval: 100 }).toBeGreaterThan(0);
  expect(await progressNow()).toBeLessThan(60);
  expect(await count(page, 'result')).toBe(0);
  await page.click('[data-testid="cancel"]');
  await expect
    .poll(() => page.evaluate(() => document.body.innerText.includes('Cancelled. Nothing was saved.')), { timeout: 15_000 })
    .toBe(true);
  expect(await count(page, 'progress')).toBe(0);
  expect(await count(page, 'result')).toBe(0);
  expect(await textOf(page, 'error')).toBeNull();
  // Nothing survives in private storage: at most the app's empty output folder.
  const left = await opfsNames(page);
  expect(left.filter((n) => n !== 'diskferry-output')).toEqual([]);
  await new Promise((r) => setTimeout(r, 1_000));
  expect(downloaded(ff)).toEqual([]);
});

test('errors: a header pointing past the end names the file; a text file is called one', async () => {
  const src = ff.file('corrupt-header.qcow2');
  tool('qemu-img', 'create', '-q', '-f', 'qcow2', src, '64M');
  fillPattern(src, 'qcow2', 0, MiB, 65536, 4);
  // l1_table_offset (header bytes 40..47) = 16 TiB: far past the end of the file.
  const fd = openSync(src, 'r+');
  writeSync(fd, Buffer.from([0, 0, 0x10, 0, 0, 0, 0, 0]), 0, 8, 40);
  closeSync(fd);
  const notes = ff.file('notes.txt');
  writeFileSync(notes, 'VM moved to the new host on Monday\n');

  const { page } = ff;
  await page.goto(baseURL);
  await openFiles(page, src);
  const error = await waitText(page, 'error');
  expect(error).toContain('corrupt-header.qcow2');
  expect(error).toMatch(/truncated|beyond|past|end/i);
  expect(await count(page, 'image-info')).toBe(0);

  await openFiles(page, notes);
  await expect.poll(() => textOf(page, 'error'), { timeout: 30_000 }).toContain('this is a text file, not a disk image');
  expect(await count(page, 'image-info')).toBe(0);
  expect(downloaded(ff)).toEqual([]);
});

test('after the first visit the app reloads and converts with the server gone', async () => {
  const src = ff.file('offline.qcow2');
  tool('qemu-img', 'create', '-q', '-f', 'qcow2', src, String(32 * MiB));
  fillPattern(src, 'qcow2', 0, 5 * MiB, 700 * 1024, 6);

  // Its own server (and origin), so stopping it leaves the other tests' server alone.
  const preview = await startPreview();
  try {
    const { page } = ff;
    await page.goto(preview.url);
    // http://127.0.0.1 is a secure context, so Firefox registers the service worker.
    expect(await page.evaluate(() => isSecureContext && 'serviceWorker' in navigator)).toBe(true);
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await page.reload();
    await expect.poll(() => page.evaluate(() => !!navigator.serviceWorker.controller), { timeout: 30_000 }).toBe(true);

    await preview.stop();
    // The server really is gone: anything the service worker did not cache fails.
    expect(
      await page.evaluate(() =>
        fetch(`/not-cached-${Date.now()}`).then(
          () => 'fetched',
          () => 'failed',
        ),
      ),
    ).toBe('failed');
    await page.reload();
    await waitVisible(page, ['drop-zone']);
    await openFiles(page, src);
    await expectPreview(page, 'qcow2', 32 * MiB);
    await startConversion(page, 'vdi', false);
    await expectResult(page);
    const out = await waitForDownload(ff, 'offline.vdi');
    expectValidCopy(src, out, 'vdi');
  } finally {
    await preview.stop();
  }
});
