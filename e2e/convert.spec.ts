import { test, expect, qemuImg, fillPattern } from './fixtures.ts';
import { convertAndSave, expectPreview, expectValidCopy, qcow2CheckJson, screenshot } from './helpers.ts';
import { readdirSync } from 'node:fs';
import path from 'node:path';

const MiB = 1024 * 1024;

/** A monolithicSparse VMDK made by qemu-img, with patterned runs (some not cluster-aligned). */
function makeSparseVmdk(file: string, size: number): void {
  qemuImg('create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicSparse', file, String(size));
  fillPattern(file, 'vmdk', 0, 9 * MiB, MiB, 6);
  fillPattern(file, 'vmdk', 3 * MiB + 4096, 11 * MiB, 20480, 4);
}

for (const mode of ['download', 'picker'] as const) {
  test.describe(`saving via ${mode}`, () => {
    test.use({ saveMode: mode });

    test('drop a monolithicSparse vmdk, preview it, convert to compressed qcow2', async ({ page, work }) => {
      const src = work.file('disk.vmdk');
      const size = 64 * MiB;
      makeSparseVmdk(src, size);
      await page.goto('/');
      await page.getByTestId('drop-zone').drop({ files: [src] });
      await expectPreview(page, 'vmdk', size);
      await expect(page.getByTestId('image-info')).toContainText('monolithicSparse');
      if (mode === 'download') await screenshot(page, 'preview-vmdk');

      const out = work.file('disk.qcow2');
      await convertAndSave(page, mode, 'qcow2', true, out);
      if (mode === 'download') await screenshot(page, 'converted-vmdk-to-qcow2');
      expectValidCopy(src, out, 'qcow2');
      expect(qcow2CheckJson(out)['compressed-clusters'] ?? 0).toBeGreaterThan(0);
    });
  });
}

test.describe('multi-file images', () => {
  /** A twoGbMaxExtentSparse VMDK: a descriptor plus one sparse extent file per 2 GiB. */
  function makeSplitVmdk(dir: string): { descriptor: string; files: string[]; size: number } {
    const size = 5 * 1024 * MiB;
    const descriptor = path.join(dir, 'split.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', descriptor, String(size));
    // Data in every extent, including runs that cross the 2 GiB extent boundaries.
    fillPattern(descriptor, 'vmdk', 2048 * MiB - 512 * 1024, 2048 * MiB, MiB, 2);
    fillPattern(descriptor, 'vmdk', 100 * MiB, 1000 * MiB, 256 * 1024, 5);
    const files = readdirSync(dir).map((f) => path.join(dir, f));
    return { descriptor, files, size };
  }

  test('drop the files of a twoGbMaxExtentSparse vmdk (descriptor + extents)', async ({ page, work }) => {
    const folder = work.file('vm');
    (await import('node:fs')).mkdirSync(folder);
    const { descriptor, files, size } = makeSplitVmdk(folder);
    expect(files.length).toBeGreaterThanOrEqual(4);
    await page.goto('/');
    await page.getByTestId('drop-zone').drop({ files });
    await expectPreview(page, 'vmdk', size);
    await expect(page.getByTestId('image-info')).toContainText('twoGbMaxExtentSparse');
    const out = work.file('split.qcow2');
    await convertAndSave(page, 'download', 'qcow2', true, out);
    expectValidCopy(descriptor, out, 'qcow2');
  });

  test('open a folder holding a twoGbMaxExtentSparse vmdk', async ({ page, work }) => {
    const folder = work.file('vmfolder');
    (await import('node:fs')).mkdirSync(folder);
    const { descriptor, size } = makeSplitVmdk(folder);
    await page.goto('/');
    await page.getByTestId('folder-input').setInputFiles(folder);
    await expectPreview(page, 'vmdk', size);
    const out = work.file('split2.qcow2');
    await convertAndSave(page, 'download', 'qcow2', false, out);
    expectValidCopy(descriptor, out, 'qcow2');
  });

  test('a missing extent is named in the error', async ({ page, work }) => {
    const folder = work.file('broken');
    (await import('node:fs')).mkdirSync(folder);
    const { descriptor } = makeSplitVmdk(folder);
    await page.goto('/');
    await page.getByTestId('drop-zone').drop({ files: [descriptor] });
    await expect(page.getByTestId('error')).toContainText('split-s001.vmdk');
    await expect(page.getByTestId('image-info')).toHaveCount(0);
  });
});

test('drop a vdi, convert to vhdx', async ({ page, work }) => {
  const src = work.file('box.vdi');
  const size = 96 * MiB + 512 * 1024;
  qemuImg('create', '-q', '-f', 'vdi', src, String(size));
  fillPattern(src, 'vdi', MiB, 7 * MiB, 1536 * 1024, 8);
  await page.goto('/');
  await page.getByTestId('drop-zone').drop({ files: [src] });
  await expectPreview(page, 'vdi', size);
  const out = work.file('box.vhdx');
  await convertAndSave(page, 'download', 'vhdx', false, out);
  expectValidCopy(src, out, 'vhdx');
});
