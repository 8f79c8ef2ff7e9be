import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect, qemuImg, fillPattern, makeLuksQcow2 } from './fixtures.ts';
import { expectPreview, expectValidCopy, opfsNames, startConversion } from './helpers.ts';

const MiB = 1024 * 1024;

/**
 * The File System Access stubs this spec drives: the open dialog hands back OPFS files named in
 * `__df.open`, the save dialog hands back the OPFS file `__df.saveAs` (or "picked-" + the
 * suggested name) and records every call, so a test can tell the dialog never opened.
 */
async function stubDialogs(page: Page): Promise<void> {
  await page.context().addInitScript(() => {
    const df = { saveCalls: [] as string[], saveAs: '' as string, open: [] as string[] };
    (window as unknown as { __df: typeof df }).__df = df;
    const root = () => navigator.storage.getDirectory();
    (window as unknown as { showSaveFilePicker: unknown }).showSaveFilePicker = async (o: { suggestedName: string }) => {
      df.saveCalls.push(o.suggestedName);
      return (await root()).getFileHandle(df.saveAs || `picked-${o.suggestedName}`, { create: true });
    };
    (window as unknown as { showOpenFilePicker: unknown }).showOpenFilePicker = async () =>
      Promise.all(df.open.map(async (n) => (await root()).getFileHandle(n)));
  });
}

const setDialogs = (page: Page, cfg: { saveAs?: string; open?: string[] }) =>
  page.evaluate((c) => Object.assign((window as unknown as { __df: object }).__df, c), cfg);
const saveCalls = (page: Page) => page.evaluate(() => (window as unknown as { __df: { saveCalls: string[] } }).__df.saveCalls);

/** Copies a local file into the page's OPFS root (small files: the bytes travel as base64). */
async function putInOpfs(page: Page, name: string, bytes: Buffer): Promise<void> {
  await page.evaluate(
    async ({ n, b64 }) => {
      const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const w = await (await (await navigator.storage.getDirectory()).getFileHandle(n, { create: true })).createWritable();
      await w.write(bin);
      await w.close();
    },
    { n: name, b64: bytes.toString('base64') },
  );
}

/** SHA-256 of an OPFS file, or 'absent'. */
const opfsHash = (page: Page, name: string) =>
  page.evaluate(async (n) => {
    try {
      const f = await (await (await navigator.storage.getDirectory()).getFileHandle(n)).getFile();
      const d = new Uint8Array(await crypto.subtle.digest('SHA-256', await f.arrayBuffer()));
      return `${f.size}:${Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('')}`;
    } catch {
      return 'absent';
    }
  }, name);

/** Every output file the app could have left: picked files and the private-storage folder. */
async function outputsLeft(page: Page): Promise<string[]> {
  return (await opfsNames(page)).filter((n) => n.startsWith('picked-') || n.startsWith('diskferry-output/'));
}

function makeSmallVmdk(file: string): void {
  qemuImg('create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicSparse', file, String(16 * MiB));
  fillPattern(file, 'vmdk', 0, 3 * MiB, 256 * 1024, 4);
}

function makeIncompressibleQcow2(file: string, dataMiB: number): void {
  const raw = `${file}.raw`;
  execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', `count=${dataMiB}`, 'status=none']);
  qemuImg('convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, file);
}

/** A qcow2 whose L1 table points into a data cluster: the header opens, the conversion fails. */
function makeBadL1Qcow2(file: string): void {
  qemuImg('create', '-q', '-f', 'qcow2', file, String(64 * MiB));
  fillPattern(file, 'qcow2', 0, MiB, 65536, 4);
  const map = JSON.parse(execFileSync('qemu-img', ['map', '--output=json', file], { encoding: 'utf8' })) as { offset?: number }[];
  const dataAt = map.find((m) => m.offset !== undefined)!.offset!;
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.from(BigInt(dataAt).toString(16).padStart(16, '0'), 'hex'), 0, 8, 40);
  closeSync(fd);
}

test.describe('the source is untouchable', () => {
  test.use({ saveMode: 'picker' });

  test('a save dialog answered with the source itself is refused before a byte is written', async ({ page, work }) => {
    await stubDialogs(page);
    const src = work.file('disk.vmdk');
    makeSmallVmdk(src);
    await page.goto('/');
    await putInOpfs(page, 'disk.vmdk', readFileSync(src));
    const before = await opfsHash(page, 'disk.vmdk');
    await setDialogs(page, { open: ['disk.vmdk'], saveAs: 'disk.vmdk' });
    await page.getByRole('button', { name: 'Open files…' }).click();
    await expectPreview(page, 'vmdk', 16 * MiB);

    // vmdk → stream vmdk keeps the extension: the suggestion must still not be the source's name.
    await page.getByRole('button', { name: /AWS import/ }).click();
    await page.getByTestId('convert').click();
    await expect(page.getByTestId('error')).toContainText('never writes over its source');
    expect(await saveCalls(page)).toEqual(['disk.stream.vmdk']);
    expect(await opfsHash(page, 'disk.vmdk')).toBe(before);

    // Another target, same answer (a fresh handle to the same entry): refused again.
    await page.getByTestId('target-format').selectOption('qcow2');
    await page.getByTestId('convert').click();
    await expect(page.getByTestId('error')).toContainText('is one of the files being converted');
    expect(await opfsHash(page, 'disk.vmdk')).toBe(before);

    // A real destination: the conversion succeeds, and the source is still what it was.
    await setDialogs(page, { saveAs: '' });
    await page.getByTestId('convert').click();
    await expect(page.getByTestId('result')).toBeVisible();
    expect(await opfsHash(page, 'disk.vmdk')).toBe(before);
    expect((await saveCalls(page)).at(-1)).toBe('disk.qcow2');
  });

  test('a file the user chose to replace keeps its content when the conversion is cancelled or fails', async ({ page, work }) => {
    await stubDialogs(page);
    const busy = work.file('busy.qcow2');
    makeIncompressibleQcow2(busy, 96);
    const bad = work.file('bad-l1.qcow2');
    makeBadL1Qcow2(bad);
    await page.goto('/');
    await putInOpfs(page, 'existing.qcow2', Buffer.alloc(300 * 1024, 'KEEP ME '));
    const before = await opfsHash(page, 'existing.qcow2');
    await setDialogs(page, { saveAs: 'existing.qcow2' });

    await page.getByTestId('file-input').setInputFiles(busy);
    await expectPreview(page, 'qcow2', 96 * MiB);
    await startConversion(page, 'qcow2', true);
    const progress = page.getByTestId('progress');
    await expect.poll(async () => Number(await progress.getAttribute('aria-valuenow')), { timeout: 60_000 }).toBeGreaterThan(0);
    await page.getByTestId('cancel').click();
    await expect(page.getByText('Cancelled. Nothing was saved.')).toBeVisible({ timeout: 15_000 });
    await expect.poll(() => opfsHash(page, 'existing.qcow2')).toBe(before);

    await page.getByTestId('file-input').setInputFiles(bad);
    await expect(page.getByTestId('image-info')).toContainText(String(64 * MiB));
    await startConversion(page, 'raw', false);
    await expect(page.getByTestId('error')).toContainText(/L2 table offset/i);
    await expect.poll(() => opfsHash(page, 'existing.qcow2')).toBe(before);
    expect(await saveCalls(page)).toHaveLength(2);
  });
});

test.describe('every check fails before the save dialog, leaving no file', () => {
  test.use({ saveMode: 'picker' });

  test('wrong password: said next to the field, by Unlock and by Convert', async ({ page, work }) => {
    await stubDialogs(page);
    const src = work.file('locked.qcow2');
    makeLuksQcow2(src, 'hunter22');
    await page.goto('/');
    await page.getByTestId('file-input').setInputFiles(src);
    await expect(page.getByTestId('image-info')).toContainText('yes — a password is needed');
    await page.getByTestId('source-password').fill('wrong');
    await page.getByTestId('convert').click();
    const inline = page.getByTestId('image-info').getByTestId('error');
    await expect(inline).toContainText(/password/i);
    await page.getByRole('button', { name: 'Unlock' }).click();
    await expect(inline).toContainText(/password/i);
    await page.getByTestId('source-password').fill('hunter22');
    await expect(inline).toHaveCount(0);
    await page.getByRole('button', { name: 'Unlock' }).click();
    await expect(page.getByText('✓ Unlocked')).toBeVisible();
    expect(await saveCalls(page)).toEqual([]);
    expect(await outputsLeft(page)).toEqual([]);
  });

  test('missing backing file, missing extent, empty file, refused option', async ({ page, work }) => {
    await stubDialogs(page);
    const base = work.file('base.qcow2');
    const top = work.file('top.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', base, String(32 * MiB));
    qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top);
    fillPattern(top, 'qcow2', 0, 4 * MiB, 65536, 3);
    await page.goto('/');

    // The overlay alone previews (with a warning), and Convert says what is missing.
    await page.getByTestId('file-input').setInputFiles(top);
    await expect(page.getByTestId('image-info')).toContainText('was not dropped with this image');
    await page.getByTestId('convert').click();
    await expect(page.getByTestId('error')).toContainText('base.qcow2" not found');
    await expect(page.getByTestId('error')).toContainText('cannot start');

    // A split VMDK without two of its extents: both are named at once.
    const folder = work.file('vm');
    mkdirSync(folder);
    qemuImg('create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', path.join(folder, 'split.vmdk'), String(5 * 1024 * MiB));
    await page.getByTestId('file-input').setInputFiles([path.join(folder, 'split.vmdk'), path.join(folder, 'split-s002.vmdk')]);
    await expect(page.getByTestId('error')).toContainText('"split-s001.vmdk", "split-s003.vmdk" not found');
    await expect(page.getByTestId('convert')).toHaveCount(0);

    // An empty file is refused at once, with no "treat as raw".
    const empty = work.file('empty.img');
    writeFileSync(empty, '');
    await page.getByTestId('file-input').setInputFiles(empty);
    await expect(page.getByTestId('error')).toContainText('the file is empty (0 bytes)');
    await expect(page.getByRole('button', { name: 'Treat as raw disk' })).toHaveCount(0);

    // Options the writer refuses fail at Convert, not after the dialog.
    await page.getByTestId('file-input').setInputFiles([top, base]);
    await expect(page.getByTestId('image-info')).toContainText('qcow2');
    await page.getByText('Advanced qcow2 options').click();
    await page.locator('select[id="opt-compat"]').selectOption('0.10');
    await page.locator('select[id="opt-compression_type"]').selectOption('zstd');
    await page.getByTestId('convert').click();
    await expect(page.getByTestId('error')).toContainText('compat=1.1');

    // Compress is offered only where the target compresses, and reset when the format changes.
    await page.getByRole('button', { name: /Proxmox/ }).click();
    await expect(page.getByTestId('compress')).toBeChecked();
    await page.getByTestId('target-format').selectOption('vhdx');
    await expect(page.getByTestId('compress')).not.toBeChecked();
    await expect(page.getByTestId('compress')).toBeDisabled();

    expect(await saveCalls(page)).toEqual([]);
    expect(await outputsLeft(page)).toEqual([]);
  });
});

test('a text file, a false .vmdk and an empty file each get their message; "treat as raw" works when chosen', async ({ page, work }) => {
  const notes = work.file('notes.txt');
  writeFileSync(notes, 'VM moved to the new host on Monday\n');
  const fake = work.file('random.vmdk');
  writeFileSync(fake, Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 7919 + (i >> 9)) & 0xff)));
  await page.goto('/');

  await page.getByTestId('file-input').setInputFiles(notes);
  await expect(page.getByTestId('error')).toContainText('this is a text file, not a disk image');
  await expect(page.getByTestId('image-info')).toHaveCount(0);

  await page.getByTestId('file-input').setInputFiles(fake);
  await expect(page.getByTestId('error')).toContainText('the name says VMware virtual disk (VMDK), but the contents are not one');
  await page.getByRole('button', { name: 'Treat as raw disk' }).click();
  await expectPreview(page, 'raw', 256 * 1024);
  await expect(page.getByTestId('image-info')).toContainText('Read as a raw disk, as you chose');
  const download = page.waitForEvent('download');
  await startConversion(page, 'qcow2', false);
  await expect(page.getByTestId('result')).toBeVisible();
  const out = work.file('random.qcow2');
  await (await download).saveAs(out);
  const cmp = execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', fake, out], { encoding: 'utf8' });
  expect(cmp).toContain('identical');

  // In a folder drop, what was set aside is listed with the reason.
  const folder = work.file('mixed');
  mkdirSync(folder);
  makeSmallVmdk(path.join(folder, 'disk.vmdk'));
  writeFileSync(path.join(folder, 'README.txt'), 'see the wiki\n');
  writeFileSync(path.join(folder, 'empty.img'), '');
  await page.getByTestId('folder-input').setInputFiles(folder);
  await expectPreview(page, 'vmdk', 16 * MiB);
  const ignored = page.getByTestId('ignored');
  await expect(ignored).toContainText('mixed/README.txt: this is a text file');
  await expect(ignored).toContainText('mixed/empty.img: the file is empty');
});

test('a truncated VMDK shows the incomplete-file warning in the preview', async ({ page, work }) => {
  const src = work.file('cut.vmdk');
  qemuImg('create', '-q', '-f', 'vmdk', src, String(256 * MiB));
  execFileSync('qemu-io', ['-f', 'vmdk', '-c', `write -P 0x5a 0 ${124 * MiB}`, src], { stdio: 'ignore' });
  truncateSync(src, 10 * MiB);
  await page.goto('/');
  await page.getByTestId('file-input').setInputFiles(src);
  await expect(page.getByTestId('incomplete')).toContainText(
    /This file is incomplete \(10 MiB of ~124(\.\d)? MiB\) — was the copy interrupted\?/,
  );
});

test.describe('drops', () => {
  function makeSplitVmdk(dir: string): string {
    const descriptor = path.join(dir, 'split.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', descriptor, String(5 * 1024 * MiB));
    fillPattern(descriptor, 'vmdk', 2048 * MiB - 512 * 1024, 2048 * MiB, MiB, 2);
    fillPattern(descriptor, 'vmdk', 100 * MiB, 1000 * MiB, 256 * 1024, 5);
    return descriptor;
  }

  test('the page takes drops anywhere; extents dropped after the error join the set and convert', async ({ page, work }) => {
    const folder = work.file('vm');
    mkdirSync(folder);
    const descriptor = makeSplitVmdk(folder);
    const part = (n: string) => path.join(folder, n);
    await page.goto('/');
    const url = page.url();
    await page.getByTestId('drop-zone').drop({ files: [descriptor, part('split-s001.vmdk')] });
    await expect(page.getByTestId('error')).toContainText('"split-s002.vmdk", "split-s003.vmdk" not found');
    await expect(page.getByRole('button', { name: 'Add the missing files…' })).toBeVisible();
    // Dropped on the error message, not on the drop zone: the page takes it, and adds it.
    await page.getByTestId('error').drop({ files: [part('split-s002.vmdk'), part('split-s003.vmdk')] });
    await expectPreview(page, 'vmdk', 5 * 1024 * MiB);
    await expect(page.getByTestId('image-info')).toContainText('twoGbMaxExtentSparse');
    const download = page.waitForEvent('download');
    await startConversion(page, 'qcow2', false);
    await expect(page.getByTestId('result')).toBeVisible({ timeout: 60_000 });
    const out = work.file('split.qcow2');
    await (await download).saveAs(out);
    expectValidCopy(descriptor, out, 'qcow2');

    // A disk dropped on the preview card replaces the open one; the browser never opens it itself.
    const other = work.file('other.vmdk');
    makeSmallVmdk(other);
    await page.getByTestId('image-info').drop({ files: [other] });
    await expectPreview(page, 'vmdk', 16 * MiB);
    await expect(page.getByTestId('image-info')).toContainText('other.vmdk');
    expect(page.url()).toBe(url);
  });
});

test.describe('leaving mid-conversion', () => {
  test.use({ saveMode: 'picker' });

  test('asks first, and a tab closed mid-way leaves no file claimed complete', async ({ page, context, work }) => {
    const src = work.file('long.qcow2');
    makeIncompressibleQcow2(src, 128);
    await page.goto('/');
    await page.getByTestId('file-input').setInputFiles(src);
    await expectPreview(page, 'qcow2', 128 * MiB);
    await startConversion(page, 'qcow2', true);
    const progress = page.getByTestId('progress');
    await expect.poll(async () => Number(await progress.getAttribute('aria-valuenow')), { timeout: 60_000 }).toBeGreaterThan(0);
    const dialogs: string[] = [];
    page.once('dialog', (d) => {
      dialogs.push(d.type());
      void d.dismiss();
    });
    await page.close({ runBeforeUnload: true });
    await expect.poll(() => dialogs).toEqual(['beforeunload']);
    expect(page.isClosed()).toBe(false);
    // Now really close it, mid-conversion.
    page.once('dialog', (d) => void d.accept());
    await page.close({ runBeforeUnload: true });
    await expect.poll(() => page.isClosed()).toBe(true);
    const again = await context.newPage();
    await again.goto('/');
    const sizes = await again.evaluate(async () => {
      const out: number[] = [];
      for await (const [n, h] of (
        (await navigator.storage.getDirectory()) as unknown as { entries(): AsyncIterable<[string, FileSystemFileHandle]> }
      ).entries()) {
        if (n.startsWith('picked-long')) out.push((await h.getFile()).size);
      }
      return out;
    });
    // The staged write was never committed: the picked file is absent or still empty.
    expect(sizes.every((s) => s === 0)).toBe(true);
  });
});

test('an output larger than the private storage can hold is refused before it starts', async ({ browser }) => {
  // The off-the-record context keeps OPFS in memory with a small quota.
  const context = await browser.newContext({ serviceWorkers: 'block' });
  await context.addInitScript(() => {
    (window as unknown as { showSaveFilePicker: unknown }).showSaveFilePicker = undefined;
  });
  const page = await context.newPage();
  const dir = path.join(test.info().outputDir, 'space');
  mkdirSync(dir, { recursive: true });
  const src = path.join(dir, 'huge.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', src, String(512 * 1024 * MiB));
  await page.goto('/');
  const quota = await page.evaluate(async () => (await navigator.storage.estimate()).quota ?? 0);
  expect(quota).toBeLessThan(512 * 1024 * MiB);
  await page.getByTestId('file-input').setInputFiles(src);
  await expect(page.getByTestId('image-info')).toContainText(String(512 * 1024 * MiB));
  await page.getByTestId('target-format').selectOption('raw');
  await page.getByTestId('convert').click();
  await expect(page.getByTestId('error')).toContainText(/Not enough space: the output may need up to 524288 MiB/);
  expect(await outputsLeft(page)).toEqual([]);
  await context.close();
});
