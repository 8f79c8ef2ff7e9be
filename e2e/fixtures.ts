import { test as base, chromium, type BrowserContext, type Page } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Every e2e test runs in a persistent Chromium profile: its OPFS lives on disk, as a real
 * user's does. The default incognito context keeps OPFS in memory, ~100× slower and with a
 * small quota (docs/browser.md, Private storage).
 */
export interface Fixtures {
  /** A temp folder for this test's fixtures and outputs. */
  work: { dir: string; file: (name: string) => string };
  /** How the page saves: the real FSA path (picker stubbed to an OPFS handle) or the download fallback. */
  saveMode: 'picker' | 'download';
  context: BrowserContext;
  page: Page;
}

export const test = base.extend<Fixtures>({
  saveMode: ['download', { option: true }],
  // eslint-disable-next-line no-empty-pattern -- Playwright reads a fixture's dependencies from this pattern
  work: async ({}, use) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'diskferry-e2e-'));
    await use({ dir, file: (n) => path.join(dir, n) });
    rmSync(dir, { recursive: true, force: true });
  },
  context: async ({ saveMode, baseURL, launchOptions, serviceWorkers, work }, use) => {
    const profile = path.join(work.dir, 'profile');
    mkdirSync(profile);
    const context = await chromium.launchPersistentContext(profile, {
      ...launchOptions,
      baseURL,
      serviceWorkers,
      acceptDownloads: true,
      viewport: { width: 1200, height: 900 },
    });
    await context.addInitScript((mode) => {
      if (mode === 'picker') {
        // showSaveFilePicker cannot be answered under automation (microsoft/playwright#8850):
        // hand back an OPFS file handle instead, which is a real FileSystemFileHandle.
        (window as unknown as { showSaveFilePicker: unknown }).showSaveFilePicker = async (o: { suggestedName: string }) =>
          (await navigator.storage.getDirectory()).getFileHandle(`picked-${o.suggestedName}`, { create: true });
      } else {
        (window as unknown as { showSaveFilePicker: unknown }).showSaveFilePicker = undefined;
      }
    }, saveMode);
    await use(context);
    await context.close();
  },
  page: async ({ context }, use) => {
    const page = context.pages()[0] ?? (await context.newPage());
    await use(page);
  },
});

export { expect } from '@playwright/test';

/** Runs a tool; a failure throws with the tool's own stderr, so a broken fixture explains itself. */
function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

export const qemuImg = (...args: string[]) => tool('qemu-img', args);
export const qemuIo = (...args: string[]) => tool('qemu-io', args);

/** qemu-img compare's verdict (0 identical, 1 different, 2 error), with its output for the failure message. */
export function qemuCompare(a: string, b: string): { status: number; output: string } {
  const r = spawnSync('qemu-img', ['compare', a, b], { encoding: 'utf8' });
  return { status: r.status ?? -1, output: r.stdout + r.stderr };
}

export function qemuCheck(file: string, format: string): { status: number; output: string } {
  const r = spawnSync('qemu-img', ['check', '-f', format, file], { encoding: 'utf8' });
  return { status: r.status ?? -1, output: r.stdout + r.stderr };
}

/**
 * Writes patterned data into an image with qemu-io: `count` runs of `len` bytes every
 * `stride` bytes from `start`, each with its own byte pattern, so misplaced data shows.
 */
export function fillPattern(file: string, format: string, start: number, stride: number, len: number, count: number): void {
  const cmds: string[] = [];
  for (let i = 0; i < count; i++) cmds.push('-c', `write -P ${(0x11 + i * 7) % 255 || 1} ${start + i * stride} ${len}`);
  tool('qemu-io', ['-f', format, ...cmds, file]);
}

/** Where screenshots go for a reviewer (gitignored). */
export const ARTIFACTS = path.resolve('artifacts');

/**
 * A 16 MiB qcow2 encrypted with LUKS under `password` (secret id sec0). A short iter-time keeps
 * PBKDF2 quick; the key derivation is the same code either way. qemu-img times PBKDF2 to
 * calibrate, and on a busy machine it can give up ("Unable to get accurate CPU usage"): that is
 * qemu's calibration, not the image, so it tries again.
 */
export function makeLuksQcow2(file: string, password: string): void {
  for (let attempt = 1; ; attempt++) {
    try {
      const o = 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10';
      qemuImg('create', '-q', '--object', `secret,id=sec0,data=${password}`, '-f', 'qcow2', '-o', o, file, String(16 * 1024 * 1024));
      return;
    } catch (e) {
      if (attempt >= 3 || !String(e).includes('accurate CPU usage')) throw e;
    }
  }
}
