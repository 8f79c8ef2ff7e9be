import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { test, expect, qemuImg, fillPattern } from './fixtures.ts';
import { expectPreview, exportOpfsFile, screenshot } from './helpers.ts';

const MiB = 1024 * 1024;

/**
 * The ESXi preset writes an OVA in the page, in one pass into the saved file (the picked file, or
 * OPFS then a download): GNU tar lists the .ovf first, sha256sum checks the manifest, and the
 * disk inside is qemu-img compare-equal to the source.
 */
for (const mode of ['download', 'picker'] as const) {
  test.describe(`${mode} mode`, () => {
    test.use({ saveMode: mode });

    test('the ESXi preset saves an OVA: descriptor first, manifest right, disk equal', async ({ page, work }) => {
      const src = work.file('appliance.qcow2');
      const size = 24 * MiB;
      qemuImg('create', '-q', '-f', 'qcow2', src, String(size));
      fillPattern(src, 'qcow2', 0, 3 * MiB, 512 * 1024, 7);
      await page.goto('/');
      await page.getByTestId('drop-zone').drop({ files: [src] });
      await expectPreview(page, 'qcow2', size);

      await page.getByRole('button', { name: /^VMware ESXi/ }).click();
      await expect(page.getByTestId('target-format')).toHaveValue('ova');
      await expect(page.getByTestId('compress')).not.toBeChecked();
      const download = mode === 'download' ? page.waitForEvent('download', { timeout: 120_000 }) : undefined;
      await page.getByTestId('convert').click();
      await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout: 120_000 });
      const errors = await page.getByTestId('error').allInnerTexts();
      expect(errors, errors.join('\n')).toEqual([]);
      await expect(page.getByTestId('next-steps')).toContainText('ovftool');
      await screenshot(page, `ova-result-${mode}`);
      const out = work.file('appliance.ova');
      if (download) await (await download).saveAs(out);
      else {
        const name = await page.getByTestId('result').locator('code').first().innerText();
        await exportOpfsFile(page, name.startsWith('picked-') ? name : `picked-${name}`, out);
      }

      // Members are named after the saved file (the picker stub saves "picked-" + the suggested name).
      const n = mode === 'picker' ? 'picked-appliance' : 'appliance';
      const list = execFileSync('tar', ['tf', out], { encoding: 'utf8' }).trim().split('\n');
      expect(list).toEqual([`${n}.ovf`, `${n}.mf`, `${n}-disk1.vmdk`]);
      const dir = work.file('x');
      mkdirSync(dir);
      execFileSync('tar', ['xf', out, '-C', dir]);
      expect(readdirSync(dir).sort()).toEqual([`${n}-disk1.vmdk`, `${n}.mf`, `${n}.ovf`]);
      const sums = execFileSync('sed', ['-E', 's/^SHA256\\((.*)\\)= ([0-9a-f]{64})$/\\2  \\1/', `${dir}/${n}.mf`], {
        encoding: 'utf8',
      });
      execFileSync('sha256sum', ['-c', '--strict', '-'], { cwd: dir, input: sums });
      expect(execFileSync('grep', ['-c', 'SHA256(', `${dir}/${n}.mf`], { encoding: 'utf8' }).trim()).toBe('2');
      const ovf = execFileSync('cat', [`${dir}/${n}.ovf`], { encoding: 'utf8' });
      expect(ovf).toContain('<vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>');
      expect(ovf).toContain('ovf:capacity="24" ovf:capacityAllocationUnits="byte * 2^20"');
      execFileSync('qemu-img', ['check', '-f', 'vmdk', `${dir}/${n}-disk1.vmdk`]);
      execFileSync('qemu-img', ['compare', '-f', 'qcow2', '-F', 'vmdk', src, `${dir}/${n}-disk1.vmdk`]);
    });
  });
}

/**
 * The ESXi datastore preset writes the vmfs pair. Two files do not fit a save picker, so even
 * where one exists the pair is built in private storage and arrives as two downloads.
 */
for (const mode of ['download', 'picker'] as const) {
  test.describe(`${mode} mode`, () => {
    test.use({ saveMode: mode });

    test('the ESXi datastore preset saves the vmfs descriptor and its flat extent as two downloads', async ({ page, work }) => {
      const src = work.file('dsdisk.qcow2');
      const size = 10 * MiB;
      qemuImg('create', '-q', '-f', 'qcow2', src, String(size));
      fillPattern(src, 'qcow2', 0, 2 * MiB, 256 * 1024, 4);
      const outDir = work.file('out');
      mkdirSync(outDir);
      const saved: Promise<string>[] = [];
      page.on('download', (d) => saved.push(d.saveAs(`${outDir}/${d.suggestedFilename()}`).then(() => d.suggestedFilename())));
      await page.goto('/');
      await page.getByTestId('drop-zone').drop({ files: [src] });
      await expectPreview(page, 'qcow2', size);
      await page.getByRole('button', { name: /^ESXi datastore/ }).click();
      await expect(page.getByTestId('target-format')).toHaveValue('vmdk');
      await page.getByTestId('convert').click();
      await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout: 120_000 });
      const errors = await page.getByTestId('error').allInnerTexts();
      expect(errors, errors.join('\n')).toEqual([]);
      await expect(page.getByTestId('next-steps')).toContainText('dsdisk-flat.vmdk');
      await expect.poll(() => saved.length).toBe(2);
      expect((await Promise.all(saved)).sort()).toEqual(['dsdisk-flat.vmdk', 'dsdisk.vmdk']);
      const desc = execFileSync('cat', [`${outDir}/dsdisk.vmdk`], { encoding: 'utf8' });
      expect(desc).toContain('createType="vmfs"');
      expect(desc).toContain('ddb.adapterType = "lsilogic"');
      expect(desc).toContain(`RW ${size / 512} VMFS "dsdisk-flat.vmdk"`);
      execFileSync('qemu-img', ['compare', '-f', 'qcow2', '-F', 'vmdk', src, `${outDir}/dsdisk.vmdk`]);
    });
  });
}
