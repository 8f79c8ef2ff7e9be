import { execFileSync } from 'node:child_process';
import { test, expect, qemuImg, fillPattern, makeLuksQcow2 } from './fixtures.ts';
import { expectPreview, screenshot } from './helpers.ts';

const MiB = 1024 * 1024;

test('formats by the names users know, in order of use; next steps and "convert again" after a result; a new drop clears the old result', async ({
  page,
  work,
}) => {
  const src = work.file('web-server.vmdk');
  qemuImg('create', '-q', '-f', 'vmdk', src, String(48 * MiB));
  fillPattern(src, 'vmdk', 0, 5 * MiB, MiB, 5);
  await page.goto('/');
  await page.getByTestId('file-input').setInputFiles(src);
  await expectPreview(page, 'vmdk', 48 * MiB);
  await expect(page.getByTestId('image-info')).toContainText('FormatVMDK — VMware virtual disk');
  // The select offers VHD by that name (the CLI's vpc beside it), in the order people need formats.
  const labels = await page.getByTestId('target-format').locator('option').allInnerTexts();
  expect(labels.slice(0, 5).map((l) => l.split(' — ')[0])).toEqual(['qcow2', 'VMDK', 'VHDX', 'VHD (vpc)', 'VDI']);
  // The disk map's legend names only what the disk has, with no 0 B entries.
  const legend = await page.getByTestId('allocation-map').locator('li').allInnerTexts();
  expect(legend.join('|')).not.toMatch(/ 0 B/);
  expect(legend.join('|')).toContain('empty (reads as zeros)');

  await page.getByRole('button', { name: /^Azure/ }).click();
  await expect(page.getByTestId('convert')).toHaveText('Convert to VHD');
  const download = page.waitForEvent('download');
  await page.getByTestId('convert').click();
  const result = page.getByTestId('result');
  await expect(result).toBeVisible();
  await download;
  const steps = page.getByTestId('next-steps');
  await expect(steps).toContainText('az storage blob upload --type page');
  await expect(steps).toContainText('web-server.vhd');
  await expect(steps.getByRole('link', { name: 'Azure: upload a VHD' })).toHaveAttribute('href', /learn\.microsoft\.com/);
  await screenshot(page, 'result-next-steps');

  // Convert the same disk again, to another format, without dropping it again.
  await result.getByRole('button', { name: 'Convert this disk to another format' }).click();
  await expect(result).toHaveCount(0);
  await expect(page.getByTestId('image-info')).toContainText('web-server.vmdk');
  await page.getByRole('button', { name: /^Proxmox/ }).click();
  const again = page.waitForEvent('download');
  await page.getByTestId('convert').click();
  await expect(result).toBeVisible();
  await again;
  await expect(page.getByTestId('next-steps')).toContainText('qm disk import VMID web-server.qcow2 STORAGE');

  // A new drop: the old result goes at once.
  const other = work.file('other.vdi');
  qemuImg('create', '-q', '-f', 'vdi', other, String(16 * MiB));
  await page.getByTestId('file-input').setInputFiles(other);
  await expectPreview(page, 'vdi', 16 * MiB);
  await expect(result).toHaveCount(0);
});

test('an encrypted source says when its output would not be encrypted, and keeps it encrypted on request', async ({ page, work }) => {
  const src = work.file('vault.qcow2');
  const secret = ['--object', 'secret,id=sec0,data=open-sesame'];
  makeLuksQcow2(src, 'open-sesame');
  execFileSync(
    'qemu-io',
    [...secret, '--image-opts', `driver=qcow2,file.filename=${src},encrypt.key-secret=sec0`, '-c', 'write -P 0x42 0 1M'],
    { stdio: 'ignore' },
  );
  await page.goto('/');
  await page.getByTestId('file-input').setInputFiles(src);
  await expect(page.getByTestId('image-info')).toContainText('yes — a password is needed');
  await page.getByTestId('target-format').selectOption('vhdx');
  const notice = page.getByTestId('encryption-notice');
  await expect(notice).toContainText('will not be');
  await notice.getByRole('button', { name: /Keep it encrypted/ }).click();
  await expect(page.getByTestId('target-format')).toHaveValue('qcow2');
  await expect(notice).toHaveCount(0);
  await expect(page.getByLabel('Encryption password')).toBeVisible();
  // Only the options that apply: the LUKS details show once encryption is on, none before.
  await page.getByText('Advanced qcow2 options').click();
  await expect(page.locator('select[id="opt-encrypt.cipher-alg"]')).toBeVisible();
  await page.locator('select[id="opt-encrypt.format"]').selectOption('');
  await expect(page.locator('select[id="opt-encrypt.cipher-alg"]')).toHaveCount(0);
  await expect(page.locator('[id="opt-encryption"]')).toHaveCount(0);
});
