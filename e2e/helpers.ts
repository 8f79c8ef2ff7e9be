import type { Page } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { expect } from './fixtures.ts';
import { ARTIFACTS, qemuCheck, qemuCompare } from './fixtures.ts';

/** Saves a screenshot of the whole page for a reviewer (artifacts/ is gitignored). */
export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Waits for the preview and checks that it names the format and the exact virtual size. */
export async function expectPreview(page: Page, format: string, virtualSize: number): Promise<void> {
  const info = page.getByTestId('image-info');
  await expect(info).toBeVisible();
  await expect(info).toContainText(format);
  await expect(info).toContainText(String(virtualSize));
  await expect(page.getByTestId('allocation-map')).toBeVisible();
}

/** Picks the target and compression, and starts the conversion. */
export async function startConversion(page: Page, target: string, compress: boolean): Promise<void> {
  await page.getByTestId('target-format').selectOption(target);
  if (compress) await page.getByTestId('compress').check();
  else await page.getByTestId('compress').uncheck();
  await page.getByTestId('convert').click();
}

/**
 * Converts and fetches the output into `dest`: in download mode from the browser download; in
 * picker mode from the OPFS file the stubbed picker handed out, exported through a download.
 */
export async function convertAndSave(
  page: Page,
  mode: 'picker' | 'download',
  target: string,
  compress: boolean,
  dest: string,
  timeout = 120_000,
): Promise<void> {
  const download = mode === 'download' ? page.waitForEvent('download', { timeout }) : undefined;
  await startConversion(page, target, compress);
  // Either outcome ends the wait; a failure then shows its text in the assertion message.
  await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout });
  const errors = await page.getByTestId('error').allInnerTexts();
  expect(errors, errors.join('\n')).toEqual([]);
  if (download) {
    await (await download).saveAs(dest);
    return;
  }
  // The result names the file the user picked: the stub's OPFS file is "picked-" + the suggested name.
  const name = await page.getByTestId('result').locator('code').first().innerText();
  await exportOpfsFile(page, name.startsWith('picked-') ? name : `picked-${name}`, dest);
}

/** Copies a file from the page's OPFS root to `dest` through a download (streams; no base64). */
export async function exportOpfsFile(page: Page, name: string, dest: string): Promise<void> {
  const download = page.waitForEvent('download');
  await page.evaluate(async (n) => {
    const file = await (await (await navigator.storage.getDirectory()).getFileHandle(n)).getFile();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(file);
    a.download = n;
    document.body.append(a);
    a.click();
    a.remove();
  }, name);
  await (await download).saveAs(dest);
}

/** The names in the page's OPFS root and in the app's output folder. */
export async function opfsNames(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    const names: string[] = [];
    const walk = async (dir: FileSystemDirectoryHandle, prefix: string) => {
      for await (const [n, h] of (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
        names.push(prefix + n);
        if (h.kind === 'directory') await walk(h as FileSystemDirectoryHandle, `${prefix}${n}/`);
      }
    };
    await walk(root, '');
    return names;
  });
}

/** The output passes qemu-img check and qemu-img compare finds it identical to the source. */
export function expectValidCopy(source: string, output: string, format: string, checkable = true): void {
  if (checkable) {
    const c = qemuCheck(output, format);
    expect(c.status, c.output).toBe(0);
  }
  const cmp = qemuCompare(source, output);
  expect(cmp.status, cmp.output).toBe(0);
}

/** `qemu-img check --output=json` of a qcow2, for its cluster counts. */
export function qcow2CheckJson(file: string): { 'compressed-clusters'?: number; 'allocated-clusters'?: number } {
  const r = spawnSync('qemu-img', ['check', '--output=json', file], { encoding: 'utf8' });
  return JSON.parse(r.stdout);
}

/**
 * Drops files or folders the way the OS does: CDP Input.dispatchDragEvent makes a trusted drag
 * whose DataTransfer holds real entries, so folders arrive as folders (and the page may use
 * getAsFileSystemHandle). `locator.drop()` cannot drop a folder.
 */
export async function dropFromOs(page: Page, paths: string[]): Promise<void> {
  const box = await page.getByTestId('drop-zone').boundingBox();
  if (!box) throw new Error('drop zone not visible');
  const cdp = await page.context().newCDPSession(page);
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  const data = { items: [], files: paths, dragOperationsMask: 1 };
  for (const type of ['dragEnter', 'dragOver', 'drop'] as const) await cdp.send('Input.dispatchDragEvent', { type, x, y, data });
  await cdp.detach();
}

/** Loads the app and waits until its service worker controls the page (tests that use `serviceWorkers: 'allow'`). */
export async function loadControlled(page: Page): Promise<void> {
  await page.goto('/');
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
  await page.reload();
  await expect.poll(() => page.evaluate(() => !!navigator.serviceWorker.controller)).toBe(true);
}

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** axe-core's critical and serious findings on the page as it stands, one line each. */
export async function seriousViolations(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const r = await (window as unknown as { axe: { run(): Promise<{ violations: AxeViolation[] }> } }).axe.run();
    return r.violations;
  });
  return violations
    .filter((v) => v.impact === 'critical' || v.impact === 'serious')
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}
