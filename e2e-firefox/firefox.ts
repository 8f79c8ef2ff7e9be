import puppeteer, { type Browser, type ElementHandle, type Page } from 'puppeteer-core';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';

/** Debian's Firefox ESR; nothing is downloaded (PUPPETEER_SKIP_DOWNLOAD, and -core has no postinstall). */
export const FIREFOX = '/usr/bin/firefox-esr';

export interface Session {
  browser: Browser;
  page: Page;
  /** This test's temp folder (fixtures, outputs). */
  dir: string;
  file(name: string): string;
  /** Where Firefox saves downloads. */
  downloads: string;
  /** Uncaught page errors and console errors/warnings, in order. */
  problems: string[];
  close(): Promise<void>;
}

/**
 * Starts Firefox with a fresh on-disk profile (OPFS is not available in private browsing, and
 * a real profile keeps it on disk as a user's is) and a download folder it saves into without
 * asking. Pages' console errors are kept for failure messages.
 */
export async function launchFirefox(): Promise<Session> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'diskferry-ff-'));
  const profile = path.join(dir, 'profile');
  const downloads = path.join(dir, 'downloads');
  mkdirSync(profile);
  mkdirSync(downloads);
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    userDataDir: profile,
    defaultViewport: { width: 1200, height: 900 },
    // BiDi browser.setDownloadBehavior; the prefs say the same for Firefoxes that ignore it.
    downloadBehavior: { policy: 'allow', downloadPath: downloads },
    extraPrefsFirefox: {
      'browser.download.dir': downloads,
      'browser.download.folderList': 2,
      'browser.download.useDownloadDir': true,
      'browser.helperApps.neverAsk.saveToDisk': 'application/octet-stream',
      'browser.download.always_ask_before_handling_new_types': false,
      'browser.download.start_downloads_in_tmp_dir': false,
      'browser.download.alwaysOpenPanel': false,
    },
  });
  const page = (await browser.pages())[0] ?? (await browser.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e instanceof Error ? e.message : String(e)}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  return {
    browser,
    page,
    dir,
    problems,
    file: (n) => path.join(dir, n),
    downloads,
    async close() {
      await browser.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const sel = (id: string) => `[data-testid="${id}"]`;

/** Text of the first element with this test id, or null when there is none. */
export async function textOf(page: Page, id: string): Promise<string | null> {
  return page.evaluate((s) => document.querySelector(s)?.textContent ?? null, sel(id));
}

/**
 * Waits until an element with one of these test ids is visible; returns the id found. Polls
 * with page.evaluate every 200 ms rather than puppeteer's waitForSelector({ visible }), whose
 * requestAnimationFrame polling depends on the headless window painting.
 */
export async function waitVisible(page: Page, ids: string[], timeout = 30_000): Promise<string> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const found = await page.evaluate((list) => {
      for (const id of list) {
        const e = document.querySelector(`[data-testid="${id}"]`);
        if (e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden') return id;
      }
      return null;
    }, ids);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`none of ${ids.join(', ')} became visible in ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Waits for an element with this test id and returns its text. */
export async function waitText(page: Page, id: string, timeout = 30_000): Promise<string> {
  await waitVisible(page, [id], timeout);
  return (await textOf(page, id)) ?? '';
}

export async function count(page: Page, id: string): Promise<number> {
  return page.evaluate((s) => document.querySelectorAll(s).length, sel(id));
}

/** Opens files through the hidden file input (WebDriver BiDi input.setFiles). */
export async function openFiles(page: Page, ...files: string[]): Promise<void> {
  const input = (await page.waitForSelector(sel('file-input'))) as ElementHandle<HTMLInputElement> | null;
  await input!.uploadFile(...files);
}

/**
 * Drops files on the drop zone as Playwright's `locator.drop({ files })` does: the files enter
 * the page through a stray `<input type=file>` (BiDi input.setFiles), then a script-built
 * DataTransfer carries them through dragenter, dragover and drop.
 */
export async function dropFiles(page: Page, ...files: string[]): Promise<void> {
  const stash = (await page.evaluateHandle(() => {
    const i = document.createElement('input');
    i.type = 'file';
    i.multiple = true;
    i.hidden = true;
    document.body.append(i);
    return i;
  })) as ElementHandle<HTMLInputElement>;
  await stash.uploadFile(...files);
  await page.evaluate(
    (input, target) => {
      const dt = new DataTransfer();
      for (const f of Array.from(input.files ?? [])) dt.items.add(f);
      input.remove();
      const zone = document.querySelector(target)!;
      for (const type of ['dragenter', 'dragover', 'drop'])
        zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
    },
    stash,
    sel('drop-zone'),
  );
}

/** Waits for the preview and checks it names the format and the exact virtual size. */
export async function expectPreview(page: Page, format: string, virtualSize: number): Promise<string> {
  await waitVisible(page, ['image-info', 'error'], 60_000);
  const err = await textOf(page, 'error');
  expect(err, `preview failed: ${err}`).toBeNull();
  const info = (await textOf(page, 'image-info')) ?? '';
  expect(info).toContain(format);
  expect(info).toContain(String(virtualSize));
  await waitVisible(page, ['allocation-map']);
  return info;
}

/** Picks the target and compression, and presses Convert. */
export async function startConversion(page: Page, target: string, compress: boolean): Promise<void> {
  await page.select(sel('target-format'), target);
  const checked = await page.$eval(sel('compress'), (e) => (e as HTMLInputElement).checked);
  if (checked !== compress) await page.click(sel('compress'));
  expect(await page.$eval(sel('compress'), (e) => (e as HTMLInputElement).checked)).toBe(compress);
  await page.click(sel('convert'));
}

/** Waits for the result or an error; an error fails with its text. */
export async function expectResult(page: Page, timeout = 180_000): Promise<string> {
  try {
    await waitVisible(page, ['result', 'error'], timeout);
  } catch (e) {
    // Say where the page was stuck: the progress and the status text near the Convert button.
    const state = await page
      .evaluate(() => ({
        progress: document.querySelector('[data-testid="progress"]')?.getAttribute('aria-valuenow') ?? null,
        tail: document.body.innerText.slice(-600),
      }))
      .catch((x: unknown) => String(x));
    throw new Error(`no result or error in ${timeout} ms; page: ${JSON.stringify(state)}`, { cause: e });
  }
  const err = await textOf(page, 'error');
  expect(err, `conversion failed: ${err}`).toBeNull();
  return (await textOf(page, 'result')) ?? '';
}

/** Names in the download folder (finished or not). */
export const downloaded = (s: Session) => readdirSync(s.downloads);

/**
 * Waits until Firefox has finished saving `name`: the file exists, no `.part` is left, and its
 * size holds still between two looks.
 */
export async function waitForDownload(s: Session, name: string, timeout = 120_000): Promise<string> {
  const file = path.join(s.downloads, name);
  const deadline = Date.now() + timeout;
  let last = -1;
  for (;;) {
    const names = downloaded(s);
    if (names.includes(name) && !names.some((n) => n.endsWith('.part'))) {
      const size = statSync(file).size;
      if (size > 0 && size === last) return file;
      last = size;
    }
    if (Date.now() > deadline)
      throw new Error(`download ${name} did not finish in ${timeout} ms; folder holds: ${names.join(', ') || 'nothing'}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Every name in the page's OPFS (paths below the root). */
export async function opfsNames(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const names: string[] = [];
    const walk = async (dir: FileSystemDirectoryHandle, prefix: string): Promise<void> => {
      for await (const [n, h] of (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
        names.push(prefix + n);
        if (h.kind === 'directory') await walk(h as FileSystemDirectoryHandle, `${prefix}${n}/`);
      }
    };
    await walk(await navigator.storage.getDirectory(), '');
    return names;
  });
}

/** Runs a tool; a failure throws with its stderr. */
export function tool(cmd: string, ...args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** qemu-img check clean and qemu-img compare identical to the source. */
export function expectValidCopy(source: string, output: string, format: string): void {
  const check = spawnSync('qemu-img', ['check', '-f', format, output], { encoding: 'utf8' });
  expect(check.status, check.stdout + check.stderr).toBe(0);
  const cmp = spawnSync('qemu-img', ['compare', source, output], { encoding: 'utf8' });
  expect(cmp.status, cmp.stdout + cmp.stderr).toBe(0);
}

/**
 * Writes patterned data into an image with qemu-io: `count` runs of `len` bytes every `stride`
 * bytes from `start`, each with its own byte pattern (as e2e/fixtures.ts fillPattern does).
 */
export function fillPattern(file: string, format: string, start: number, stride: number, len: number, n: number): void {
  const cmds: string[] = [];
  for (let i = 0; i < n; i++) cmds.push('-c', `write -P ${(0x11 + i * 7) % 255 || 1} ${start + i * stride} ${len}`);
  tool('qemu-io', '-f', format, ...cmds, file);
}
