import { test, expect, qemuImg, fillPattern } from './fixtures.ts';
import { expectPreview, screenshot } from './helpers.ts';

const MiB = 1024 * 1024;

test('on a phone-width screen the preview fits without sideways scrolling', async ({ page, work }) => {
  await page.setViewportSize({ width: 420, height: 900 });
  const src = work.file('phone.vhdx');
  qemuImg('create', '-q', '-f', 'vhdx', src, String(64 * MiB));
  fillPattern(src, 'vhdx', 0, 5 * MiB, MiB, 6);
  await page.goto('/');
  await page.getByTestId('drop-zone').drop({ files: [src] });
  await expectPreview(page, 'vhdx', 64 * MiB);
  await screenshot(page, 'narrow-preview');
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(420);
});

for (const [width, height] of [
  [1280, 800],
  [390, 844],
] as const) {
  test(`with one disk open at ${width}×${height}: a compact header, and the page's first screen`, async ({ page, work }) => {
    await page.setViewportSize({ width, height });
    const src = work.file('ubuntu-22.04-server-cloudimg-amd64-disk-kvm.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', src, String(64 * MiB));
    fillPattern(src, 'vmdk', 0, 5 * MiB, MiB, 6);
    await page.goto('/');
    await page.getByTestId('file-input').setInputFiles(src);
    await expectPreview(page, 'vmdk', 64 * MiB);
    await expect(page.getByTestId('estimate')).toContainText('≈', { timeout: 30_000 });
    await page.screenshot({ path: `artifacts/first-screen-${width}.png` });
    await screenshot(page, `workspace-${width}`);
    // The start page's big title is gone once a disk is open.
    await expect(page.getByRole('heading', { level: 1 })).toHaveCount(0);
    const convert = await page.getByTestId('convert').boundingBox();
    const info = await page.getByTestId('image-info').boundingBox();
    if (width >= 1000) {
      // Preview, target and Convert all inside the first screen.
      expect(convert!.y + convert!.height).toBeLessThanOrEqual(height);
      expect(info!.y).toBeLessThan(height / 2);
    } else {
      // On a phone the preview starts on the first screen, right under the slim header.
      expect(info!.y).toBeLessThan(height / 2);
    }
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
  });
}
