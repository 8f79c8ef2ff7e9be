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
