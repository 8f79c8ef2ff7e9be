import { test, expect, qemuImg, fillPattern } from './fixtures.ts';
import { convertAndSave, dropFromOs, expectPreview, expectValidCopy, opfsNames, qcow2CheckJson, screenshot } from './helpers.ts';
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
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

  test('drop a folder holding a twoGbMaxExtentSparse vmdk (a trusted drag, as from the OS)', async ({ page, work }) => {
    const folder = work.file('dropped-vm');
    (await import('node:fs')).mkdirSync(folder);
    const { descriptor, size } = makeSplitVmdk(folder);
    await page.goto('/');
    await dropFromOs(page, [folder]);
    await expectPreview(page, 'vmdk', size);
    // Paths keep the folder: the extents were found relative to the descriptor.
    await expect(page.getByTestId('image-info')).toContainText('dropped-vm/split-s003.vmdk');
    const out = work.file('dropped.vhdx');
    await convertAndSave(page, 'download', 'vhdx', false, out);
    expectValidCopy(descriptor, out, 'vhdx');
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

  test('converting to a twoGbMaxExtentSparse vmdk downloads the descriptor and every extent', async ({ page, work }) => {
    const src = work.file('wide.qcow2');
    const size = 5 * 1024 * MiB;
    qemuImg('create', '-q', '-f', 'qcow2', src, String(size));
    fillPattern(src, 'qcow2', 2048 * MiB - 512 * 1024, 2048 * MiB, MiB, 2);
    fillPattern(src, 'qcow2', 7 * MiB, 1100 * MiB, 300 * 1024, 4);
    const saved: Promise<string>[] = [];
    const outDir = work.file('out-split');
    (await import('node:fs')).mkdirSync(outDir);
    page.on('download', (d) => saved.push(d.saveAs(path.join(outDir, d.suggestedFilename())).then(() => d.suggestedFilename())));
    await page.goto('/');
    await page.getByTestId('file-input').setInputFiles(src);
    await expectPreview(page, 'qcow2', size);
    await page.getByTestId('target-format').selectOption('vmdk');
    await page.getByText('Advanced vmdk options').click();
    await page.locator('select[id="opt-subformat"]').selectOption('twoGbMaxExtentSparse');
    await page.getByTestId('convert').click();
    await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout: 60_000 });
    await expect(page.getByTestId('error')).toHaveCount(0);
    await expect(page.getByTestId('result')).toContainText('wide-s003.vmdk');
    await expect.poll(() => saved.length).toBe(4);
    expect((await Promise.all(saved)).sort()).toEqual(['wide-s001.vmdk', 'wide-s002.vmdk', 'wide-s003.vmdk', 'wide.vmdk']);
    expectValidCopy(src, path.join(outDir, 'wide.vmdk'), 'vmdk');
  });

  test.describe('with a picked file', () => {
    test.use({ saveMode: 'picker' });
    test('a multi-file output skips the picker: built in private storage, one download per file', async ({ page, work }) => {
      const src = work.file('wide2.qcow2');
      qemuImg('create', '-q', '-f', 'qcow2', src, String(3 * 1024 * MiB));
      fillPattern(src, 'qcow2', 2048 * MiB - 512 * 1024, 2048 * MiB, MiB, 1);
      const saved: Promise<string>[] = [];
      const outDir = work.file('out-wide2');
      (await import('node:fs')).mkdirSync(outDir);
      page.on('download', (d) => saved.push(d.saveAs(path.join(outDir, d.suggestedFilename())).then(() => d.suggestedFilename())));
      await page.goto('/');
      await page.getByTestId('drop-zone').drop({ files: [src] });
      await page.getByTestId('target-format').selectOption('vmdk');
      await page.getByText('Advanced vmdk options').click();
      await page.locator('select[id="opt-subformat"]').selectOption('twoGbMaxExtentSparse');
      await page.getByTestId('convert').click();
      await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout: 60_000 });
      await expect(page.getByTestId('error')).toHaveCount(0);
      await expect.poll(() => saved.length).toBe(3);
      expect((await Promise.all(saved)).sort()).toEqual(['wide2-s001.vmdk', 'wide2-s002.vmdk', 'wide2.vmdk']);
      expectValidCopy(src, path.join(outDir, 'wide2.vmdk'), 'vmdk');
      // The picker was never asked: no picked- file was made.
      expect((await opfsNames(page)).filter((n) => n.startsWith('picked-'))).toEqual([]);
    });
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

test('drop an OVA: the disk inside is previewed and converted without unpacking', async ({ page, work }) => {
  const vmdk = work.file('appliance-disk1.vmdk');
  const size = 20 * MiB;
  qemuImg('create', '-q', '-f', 'vmdk', '-o', 'subformat=streamOptimized', vmdk, String(size));
  fillPattern(vmdk, 'vmdk', 0, 3 * MiB, 512 * 1024, 6);
  const ovf = `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="appliance-disk1.vmdk" ovf:id="file1"/></References>
  <DiskSection><Info>disks</Info><Disk ovf:capacity="${size}" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/></DiskSection>
</Envelope>
`;
  writeFileSync(work.file('appliance.ovf'), ovf);
  execFileSync('tar', ['-cf', 'appliance.ova', 'appliance.ovf', 'appliance-disk1.vmdk'], { cwd: work.dir });
  await page.goto('/');
  await page.getByTestId('drop-zone').drop({ files: [work.file('appliance.ova')] });
  await expectPreview(page, 'ova', size);
  await expect(page.getByTestId('image-info')).toContainText('appliance-disk1.vmdk');
  const out = work.file('appliance.qcow2');
  await convertAndSave(page, 'download', 'qcow2', false, out);
  expectValidCopy(vmdk, out, 'qcow2');
});

test('a backing chain dropped together is one image; alone, the overlay warns about its base', async ({ page, work }) => {
  const base = work.file('base.qcow2');
  const top = work.file('top.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', base, String(32 * MiB));
  fillPattern(base, 'qcow2', 0, 4 * MiB, MiB, 8);
  qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top);
  fillPattern(top, 'qcow2', 2 * MiB, 8 * MiB, 1536 * 1024, 4);

  await page.goto('/');
  await page.getByTestId('drop-zone').drop({ files: [top] });
  await expectPreview(page, 'qcow2', 32 * MiB);
  await expect(page.getByTestId('image-info')).toContainText('"base.qcow2" was not dropped');

  await page.getByTestId('drop-zone').drop({ files: [base, top] });
  await expect(page.getByTestId('image-info')).toContainText('top.qcow2');
  await expect(page.getByTestId('image-info')).not.toContainText('was not dropped');
  await expect(page.getByTestId('image-info')).toContainText('Backing file');
  // The base is a companion of the overlay, not a second image to choose.
  await expect(page.getByRole('navigation', { name: 'Disk images found' })).toHaveCount(0);
  const out = work.file('flattened.qcow2');
  await convertAndSave(page, 'download', 'qcow2', false, out);
  expectValidCopy(top, out, 'qcow2');
  expect(execFileSync('qemu-img', ['info', '--output=json', out], { encoding: 'utf8' })).not.toContain('backing-filename');
});
