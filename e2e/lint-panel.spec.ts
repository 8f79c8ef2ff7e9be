import { spawnSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { test, expect, qemuImg, fillPattern } from './fixtures.ts';
import { expectPreview, screenshot, seriousViolations } from './helpers.ts';

const MiB = 1024 * 1024;

/** A qcow2 disk with an MBR boot signature and some patterned data. */
function bootDisk(file: string, size: number): void {
  qemuImg('create', '-q', '-f', 'qcow2', file, String(size));
  fillPattern(file, 'qcow2', MiB, MiB, 64 * 1024, 3);
  // 0x55 0xAA at byte 510: the MBR signature the partition-table rule looks for.
  spawnQemuIo(file, ['write -P 0x55 510 1', 'write -P 0xaa 511 1']);
}

function spawnQemuIo(file: string, cmds: string[]): void {
  const args = ['-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), file];
  const r = spawnSync('qemu-io', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`qemu-io failed: ${r.stderr}`);
}

async function pick(page: Page, title: string): Promise<void> {
  await page.getByRole('button', { name: new RegExp(`^${title}$`) }).click();
}

/** The rule's row in a panel: its status. */
const rule = (page: Page, panel: string, name: string) => page.getByTestId(panel).locator(`[data-rule="${name}"]`);

/**
 * The pre-flight panel beside the presets: the chosen destination's importer rules judged on the
 * file the form would write, collapsed to a summary that opens (and starts open on a failure);
 * the same rules on the saved file in the result.
 */
test.describe('the pre-flight panel', () => {
  test('passes a disk Azure takes (after the rounding it says), fails one below its minimum', async ({ page, work }) => {
    const good = work.file('server.qcow2');
    bootDisk(good, 20 * MiB + 512 * 1024);
    await page.goto('/');
    await expect(page.getByTestId('drop-zone')).toBeVisible();
    await page.getByTestId('drop-zone').drop({ files: [good] });
    await expectPreview(page, 'qcow2', 20 * MiB + 512 * 1024);
    await expect(page.getByTestId('preflight-none')).toBeVisible();
    await pick(page, 'Azure');
    const panel = page.getByTestId('preflight');
    await expect(panel).toHaveAttribute('data-status', 'pass');
    await expect(page.getByTestId('preflight-counts')).toHaveText(/^\d+ pass$/);
    await expect(panel).not.toHaveAttribute('open');
    await expect(page.getByTestId('size-rounded')).toContainText('rounded up from 20.5 MiB to 21 MiB');
    await expect(page.getByTestId('size-rounded')).toContainText('the added space is zeros');
    await panel.locator('summary').click();
    await expect(rule(page, 'preflight', 'size')).toHaveAttribute('data-status', 'pass');
    await expect(rule(page, 'preflight', 'size')).toContainText('21 MiB');
    await expect(rule(page, 'preflight', 'partition-table')).toHaveAttribute('data-status', 'pass');
    // Both screens: the open panel passes axe and does not scroll sideways.
    for (const [width, height] of [
      [1280, 800],
      [390, 844],
    ] as const) {
      await page.setViewportSize({ width, height });
      await page.getByTestId('preflight').scrollIntoViewIfNeeded();
      await page.screenshot({ path: `artifacts/lint-panel-${width}.png` });
      expect(await seriousViolations(page), `axe at ${width} px`).toEqual([]);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
    }
    await page.setViewportSize({ width: 1200, height: 900 });

    // Changing the subformat by hand: the destination stays, and its check fails the change.
    await page.locator('.target__advanced > summary').click();
    await page.locator('#opt-subformat').selectOption('dynamic');
    await expect(panel).toHaveAttribute('data-status', 'fail');
    await expect(panel).toHaveAttribute('open', '');
    await expect(rule(page, 'preflight', 'subformat')).toHaveAttribute('data-status', 'fail');
    await expect(rule(page, 'preflight', 'subformat')).toContainText('Azure takes only fixed VHDs; this one is dynamic');

    // The result: the saved file read back and judged by the same rules.
    await pick(page, 'Azure');
    await expect(panel).toHaveAttribute('data-status', 'pass');
    const download = page.waitForEvent('download');
    await page.getByTestId('convert').click();
    await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout: 120_000 });
    await download;
    const check = page.getByTestId('output-check');
    await expect(check).toHaveAttribute('data-status', 'pass');
    await check.locator('summary').click();
    await expect(rule(page, 'output-check', 'vhd-file-size')).toContainText(String(21 * MiB + 512));
    await screenshot(page, 'lint-panel-result');

    // A disk below Azure's 20 MiB: the panel fails it (open, with the numbers) and nothing is written.
    const small = work.file('tiny.qcow2');
    bootDisk(small, 8 * MiB);
    await page.getByTestId('file-input').setInputFiles(small);
    await expectPreview(page, 'qcow2', 8 * MiB);
    await pick(page, 'Azure');
    await expect(panel).toHaveAttribute('data-status', 'fail');
    await expect(rule(page, 'preflight', 'size')).toHaveAttribute('data-status', 'fail');
    await expect(rule(page, 'preflight', 'size')).toContainText('below 20 MiB');
    await expect(page.getByTestId('size-refused')).toContainText('at least 20 MiB');
    await screenshot(page, 'lint-panel-fail');
    await page.getByTestId('convert').click();
    await expect(page.getByTestId('error')).toContainText('at least 20 MiB');
  });

  test('UUID clashes within a drop: two copies of one VDI, and one -o uuid= for both', async ({ page, work }) => {
    const a = work.file('a.vdi');
    const b = work.file('b.vdi');
    qemuImg('create', '-q', '-f', 'vdi', a, String(4 * MiB));
    copyFileSync(a, b);
    await page.goto('/');
    await page.getByTestId('drop-zone').drop({ files: [a, b] });
    await expect(page.getByTestId('image-info')).toBeVisible();
    await pick(page, 'VirtualBox');
    const clash = rule(page, 'preflight', 'uuid-clash');
    // Converted, each disk gets a new UUID: a pass that names the dropped disks' shared one.
    await expect(clash).toHaveAttribute('data-status', 'pass');
    await expect(clash).toContainText('a.vdi and b.vdi share UUID');
    // Pinning one UUID gives every converted disk the same: VirtualBox refuses the second.
    await page.locator('.target__advanced > summary').click();
    await page.locator('#opt-uuid').fill('5f3c2a10-7b4e-4d21-9a8f-0c1d2e3f4a5b');
    await expect(page.getByTestId('preflight')).toHaveAttribute('data-status', 'fail');
    await expect(clash).toHaveAttribute('data-status', 'fail');
    await expect(clash).toContainText('VirtualBox refuses the second disk');
  });
});
