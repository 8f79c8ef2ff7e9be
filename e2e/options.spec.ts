import { test, expect, qemuImg, fillPattern, makeLuksQcow2 } from './fixtures.ts';
import { expectPreview, expectValidCopy, screenshot } from './helpers.ts';
import { execFileSync } from 'node:child_process';

const MiB = 1024 * 1024;

test('the start page explains itself and lists every format by its CLI name', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
  const values = await page
    .getByTestId('target-format')
    .locator('option')
    .evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value))
    .catch(() => []);
  // No image yet: the target form is not shown, but the glossary is.
  expect(values).toEqual([]);
  await expect(page.getByText('Which format is which?')).toBeVisible();
  await screenshot(page, 'start');
});

test('presets set the target for Proxmox, Azure (rounding to a whole MiB, and saying so) and AWS', async ({ page, work }) => {
  const src = work.file('odd.qcow2');
  const size = 40 * MiB + 3 * 512;
  qemuImg('create', '-q', '-f', 'qcow2', src, String(size));
  fillPattern(src, 'qcow2', 0, 4 * MiB, 300 * 1024, 8);
  await page.goto('/');
  await page.getByTestId('drop-zone').drop({ files: [src] });
  await expectPreview(page, 'qcow2', size);

  const select = page.getByTestId('target-format');
  const values = await select.locator('option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
  for (const name of ['raw', 'qcow2', 'qcow', 'vmdk', 'vdi', 'vpc', 'vhdx', 'cloop', 'cow']) expect(values).toContain(name);

  await page.getByRole('button', { name: /^Proxmox/ }).click();
  await expect(select).toHaveValue('qcow2');
  await expect(page.getByTestId('compress')).toBeChecked();

  await page.getByRole('button', { name: /^Azure/ }).click();
  await expect(select).toHaveValue('vpc');
  await expect(page.getByTestId('compress')).not.toBeChecked();
  // The preset applies Azure's size rule instead of warning about it, and says what it rounded.
  await expect(page.getByTestId('size-rounded')).toContainText(`rounded up from 40 MiB (${size} bytes) to 41 MiB`);
  await expect(page.getByTestId('size-rounded')).toContainText('the added space is zeros');
  await screenshot(page, 'preset-azure-rounded');

  await page.getByRole('button', { name: /^AWS import/ }).click();
  await expect(select).toHaveValue('vmdk');
  await expect(page.getByText('subformat=streamOptimized')).toBeVisible();
  // Convert with the preset as it stands.
  const out = work.file('odd.vmdk');
  const download = page.waitForEvent('download');
  await page.getByTestId('convert').click();
  await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('error')).toHaveCount(0);
  await (await download).saveAs(out);
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', out], { encoding: 'utf8' })) as {
    'format-specific': { data: { 'create-type': string } };
  };
  expect(info['format-specific'].data['create-type']).toBe('streamOptimized');
  expectValidCopy(src, out, 'vmdk');
});

test('an encrypted (LUKS) qcow2 asks for its password, then converts', async ({ page, work }) => {
  const src = work.file('secret.qcow2');
  const secret = ['--object', 'secret,id=sec0,data=hunter22'];
  makeLuksQcow2(src, 'hunter22');
  execFileSync(
    'qemu-io',
    [...secret, '--image-opts', `driver=qcow2,file.filename=${src},encrypt.key-secret=sec0`, '-c', 'write -P 0x5a 1M 2M'],
    { stdio: 'ignore' },
  );
  const plain = work.file('secret-plain.raw');
  qemuImg('convert', ...secret, '--image-opts', `driver=qcow2,file.filename=${src},encrypt.key-secret=sec0`, '-O', 'raw', plain);

  await page.goto('/');
  await page.getByTestId('drop-zone').drop({ files: [src] });
  await expect(page.getByTestId('image-info')).toContainText('yes — a password is needed');
  // Wrong password: the typed error's text, and nothing saved.
  await page.getByTestId('source-password').fill('wrong');
  await page.getByTestId('target-format').selectOption('raw');
  await page.getByTestId('convert').click();
  await expect(page.getByTestId('error')).toContainText(/password/i);
  await expect(page.getByTestId('result')).toHaveCount(0);

  await page.getByTestId('source-password').fill('hunter22');
  const download = page.waitForEvent('download');
  await page.getByTestId('convert').click();
  await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('error')).toHaveCount(0);
  const out = work.file('secret-out.raw');
  await (await download).saveAs(out);
  expect(execFileSync('cmp', [plain, out], { encoding: 'utf8' })).toBe('');
});

test('an encrypted qcow2 output (LUKS) opens in qemu-img with the password given on the page', async ({ page, work }) => {
  const src = work.file('plain.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', src, String(16 * MiB));
  fillPattern(src, 'qcow2', 0, 3 * MiB, 700 * 1024, 5);
  await page.goto('/');
  await page.getByTestId('drop-zone').drop({ files: [src] });
  await expectPreview(page, 'qcow2', 16 * MiB);
  await page.getByTestId('target-format').selectOption('qcow2');
  await page.getByText('Advanced qcow2 options').click();
  await page.locator('select[id="opt-encrypt.format"]').selectOption('luks');
  await page.locator('input[id="opt-encrypt.iter-time"]').fill('10');
  await page.getByLabel('Encryption password').fill('s3cret-pass');
  const download = page.waitForEvent('download');
  await page.getByTestId('convert').click();
  await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('error')).toHaveCount(0);
  const out = work.file('locked.qcow2');
  await (await download).saveAs(out);
  const secret = ['--object', 'secret,id=sec0,data=s3cret-pass'];
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', out], { encoding: 'utf8' })) as { encrypted?: boolean };
  expect(info.encrypted).toBe(true);
  execFileSync('qemu-img', ['check', ...secret, '--image-opts', `driver=qcow2,file.filename=${out},encrypt.key-secret=sec0`]);
  const cmp = execFileSync(
    'qemu-img',
    [
      'compare',
      ...secret,
      '--image-opts',
      `driver=qcow2,file.filename=${src}`,
      `driver=qcow2,file.filename=${out},encrypt.key-secret=sec0`,
    ],
    { encoding: 'utf8' },
  );
  expect(cmp).toContain('identical');
});

test('converting from an internal snapshot gives the disk as it was then', async ({ page, work }) => {
  const src = work.file('snappy.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', src, String(16 * MiB));
  fillPattern(src, 'qcow2', 0, 2 * MiB, MiB, 4);
  qemuImg('snapshot', '-c', 'before-update', src);
  fillPattern(src, 'qcow2', MiB, 3 * MiB, MiB, 5);
  const then = work.file('then.raw');
  qemuImg('convert', '-l', 'snapshot.name=before-update', '-O', 'raw', src, then);
  await page.goto('/');
  await page.getByTestId('drop-zone').drop({ files: [src] });
  await expectPreview(page, 'qcow2', 16 * MiB);
  await expect(page.getByTestId('image-info')).toContainText('before-update');
  await page.getByTestId('target-format').selectOption('raw');
  await page.getByLabel('Convert from').selectOption({ label: 'snapshot before-update' });
  const download = page.waitForEvent('download');
  await page.getByTestId('convert').click();
  await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('error')).toHaveCount(0);
  const out = work.file('then-out.raw');
  await (await download).saveAs(out);
  expect(execFileSync('cmp', [then, out], { encoding: 'utf8' })).toBe('');
});

test('verify after writing reads the saved file back and says so; without it nothing is claimed', async ({ page, work }) => {
  const src = work.file('verify-src.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', src, String(24 * MiB));
  fillPattern(src, 'qcow2', 0, 3 * MiB, 900 * 1024, 7);
  await page.goto('/');
  await page.getByTestId('drop-zone').drop({ files: [src] });
  await expectPreview(page, 'qcow2', 24 * MiB);
  for (const verify of [true, false]) {
    await page.getByTestId('target-format').selectOption('vmdk');
    await page.getByTestId('compress').check();
    if (verify) await page.getByTestId('verify').check();
    else await page.getByTestId('verify').uncheck();
    const download = page.waitForEvent('download');
    await page.getByTestId('convert').click();
    await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout: 60_000 });
    await expect(page.getByTestId('error')).toHaveCount(0);
    await expect(page.getByTestId('verified')).toHaveCount(verify ? 1 : 0);
    const out = work.file(`verified-${verify}.vmdk`);
    await (await download).saveAs(out);
    expectValidCopy(src, out, 'vmdk');
  }
});
