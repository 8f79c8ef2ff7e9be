import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, expect, qemuImg, fillPattern } from './fixtures.ts';
import { convertAndSave, expectPreview, expectValidCopy, loadControlled } from './helpers.ts';

const MiB = 1024 * 1024;

test.use({ serviceWorkers: 'allow' });

test('the manifest is valid, installable, and lists the disk file handlers', async ({ page, context }) => {
  await loadControlled(page);
  const cdp = await context.newCDPSession(page);
  const m = (await cdp.send('Page.getAppManifest')) as { url: string; errors: unknown[]; data: string };
  expect(m.url).toMatch(/manifest\.webmanifest$/);
  expect(m.errors).toEqual([]);
  // The structured manifest omits file_handlers, so read the raw JSON (docs/browser.md, Offline and install).
  const data = JSON.parse(m.data) as {
    name: string;
    icons: unknown[];
    file_handlers: { action: string; accept: Record<string, string[]> }[];
  };
  expect(data.name).toContain('DiskFerry');
  expect(data.icons.length).toBeGreaterThan(0);
  const exts = data.file_handlers.flatMap((h) => Object.values(h.accept).flat());
  for (const ext of ['.vmdk', '.vdi', '.vhd', '.vhdx', '.qcow', '.qcow2', '.cow', '.cloop', '.img', '.raw', '.ova'])
    expect(exts).toContain(ext);
  const inst = (await cdp.send('Page.getInstallabilityErrors')) as { installabilityErrors: unknown[] };
  expect(inst.installabilityErrors).toEqual([]);
  expect(await page.evaluate(() => 'launchQueue' in window)).toBe(true);
});

test('after the first visit the app reloads and converts with the network off', async ({ page, context, work }) => {
  const src = work.file('offline.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', src, String(32 * MiB));
  fillPattern(src, 'qcow2', 0, 5 * MiB, 700 * 1024, 6);
  await loadControlled(page);
  await context.setOffline(true);
  // Offline really is offline: anything the service worker did not cache fails.
  expect(
    await page.evaluate(() =>
      fetch(`/not-cached-${Date.now()}`).then(
        () => 'fetched',
        () => 'failed',
      ),
    ),
  ).toBe('failed');
  await page.reload();
  await expect(page.getByTestId('target-format').or(page.getByTestId('drop-zone')).first()).toBeVisible();
  await page.getByTestId('drop-zone').drop({ files: [src] });
  await expectPreview(page, 'qcow2', 32 * MiB);
  const out = work.file('offline.vdi');
  await convertAndSave(page, 'download', 'vdi', false, out);
  expectValidCopy(src, out, 'vdi');
});

test('a new deployment shows the update prompt, which reloads into the new version', async ({ page }) => {
  await loadControlled(page);
  const swFile = path.resolve('dist/sw.js');
  const original = readFileSync(swFile, 'utf8');
  // The build stamps the service worker with `v` + 12 hex digits (vite.config.ts).
  const old = /v[0-9a-f]{12}/.exec(original)?.[0];
  expect(old).toBeTruthy();
  try {
    // A new build changes the version; keep the length so the preview server's cached headers still fit.
    writeFileSync(swFile, original.replace(old!, old === `v${'f'.repeat(12)}` ? `v${'e'.repeat(12)}` : `v${'f'.repeat(12)}`));
    await page.evaluate(async () => {
      await (await navigator.serviceWorker.getRegistration())?.update();
    });
    const prompt = page.getByTestId('update-prompt');
    await expect(prompt).toBeVisible();
    const reloaded = page.waitForEvent('load');
    await prompt.getByRole('button').click();
    await reloaded;
    await expect(page.getByTestId('drop-zone')).toBeVisible();
    await expect(page.getByTestId('update-prompt')).toHaveCount(0);
  } finally {
    writeFileSync(swFile, original);
  }
});
