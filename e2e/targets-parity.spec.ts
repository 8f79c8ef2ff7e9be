import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TARGETS } from '../src-core/pipeline/targets.ts';
import { PRESETS } from '../web/state/presets.ts';
import type { Page } from '@playwright/test';
import { test, expect, qemuImg, qemuIo, fillPattern } from './fixtures.ts';
import { expectPreview, exportOpfsFile } from './helpers.ts';

const MiB = 1024 * 1024;
/** Not a whole MiB, so the Azure preset rounds (21 MiB), and above Azure's 20 MiB minimum. */
const SIZE = 20 * MiB + 512 * 1024;

/** `diskferry convert` from the checkout, as a user runs it (a process of its own, Node's zlib and pool). */
function diskferry(...args: string[]): void {
  const r = spawnSync('npx', ['tsx', 'cli/bin.ts', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`diskferry ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A qcow2 of SIZE with patterned data at the start (an MBR signature too), the middle and the last 64 KiB. */
function parityDisk(src: string): string {
  qemuImg('create', '-q', '-f', 'qcow2', src, String(SIZE));
  fillPattern(src, 'qcow2', 0, 3 * MiB, 256 * 1024, 6);
  qemuIo('-f', 'qcow2', '-c', 'write -P 0x55 510 1', '-c', 'write -P 0xaa 511 1', '-c', `write -P 0x77 ${SIZE - 64 * 1024} 65536`, src);
  return src;
}

/** Drops the disk, picks the destination's preset, ticks Reproducible output and converts. */
async function convertOnPage(page: Page, src: string, name: string): Promise<void> {
  await page.goto('/');
  await page.getByTestId('drop-zone').drop({ files: [src] });
  await expectPreview(page, 'qcow2', SIZE);
  const preset = PRESETS.find((p) => p.destination === name)!;
  await page.getByRole('button', { name: new RegExp(`^${preset.title.replace(/[/()]/g, '\\$&')}$`) }).click();
  await page.locator('.target__advanced > summary').click();
  await page.getByTestId('reproducible').check();
  await page.getByTestId('convert').click();
  await expect(page.getByTestId('result').or(page.getByTestId('error'))).toBeVisible({ timeout: 150_000 });
}

/**
 * Every destination of the table, on the page with Reproducible output on, saves the same bytes
 * as `diskferry convert --reproducible --target=NAME` on the same input: the presets and the CLI
 * read one table, and the ids and times come from one place (image/identity.ts).
 */
test.describe('every destination: the page writes what the CLI writes', () => {
  test.use({ saveMode: 'download' });

  test('the page has a preset for every destination of the table', () => {
    expect(TARGETS.map((t) => t.name).every((n) => PRESETS.some((p) => p.destination === n))).toBe(true);
  });

  for (const { name } of TARGETS) {
    test(`--target=${name}`, async ({ page, work }) => {
      const src = parityDisk(work.file('parity.qcow2'));

      const pageDir = work.file('page');
      const cliDir = work.file('cli');
      mkdirSync(pageDir);
      mkdirSync(cliDir);
      const saved: Promise<string>[] = [];
      page.on('download', (d) => saved.push(d.saveAs(path.join(pageDir, d.suggestedFilename())).then(() => d.suggestedFilename())));

      await convertOnPage(page, src, name);
      const errors = await page.getByTestId('error').allInnerTexts();
      expect(errors, errors.join('\n')).toEqual([]);
      const companions = name === 'esxi-datastore' ? 2 : 1;
      await expect.poll(() => saved.length).toBe(companions);
      const names = (await Promise.all(saved)).sort();

      // The CLI writes under the same name (an OVA's members, a VMDK's extents and descriptors are named after it).
      const main = names.find((n) => !n.includes('-flat.'))!;
      diskferry('convert', '-q', '--reproducible', `--target=${name}`, src, path.join(cliDir, main));
      expect(readdirSync(cliDir).sort()).toEqual(names);

      // The size rules were applied, not just warned about: Azure's whole MiB (the file is the disk + 512), Google's whole GiB.
      if (name === 'azure') {
        await expect(page.getByTestId('size-rounded')).toContainText('rounded up from 20.5 MiB to 21 MiB');
        expect(readFileSync(path.join(pageDir, main)).length).toBe(21 * MiB + 512);
      }
      if (name === 'gcp') expect(gunzipSync(readFileSync(path.join(pageDir, main))).length).toBeGreaterThan(1024 * MiB);
      if (name === 'gcp') await expect(page.getByTestId('next-steps')).toContainText('gcloud compute images create');

      for (const n of names) {
        const ours = readFileSync(path.join(pageDir, n));
        const theirs = readFileSync(path.join(cliDir, n));
        if (name === 'gcp') {
          // CompressionStream and Node's zlib (which switches to Z_RLE over zeros) make different
          // gzip streams of the same tar; the tar inside is what Google reads: compare it.
          expect(sha256(gunzipSync(ours)), n).toBe(sha256(gunzipSync(theirs)));
        } else expect(sha256(ours), n).toBe(sha256(theirs));
      }
    });
  }
});

/**
 * The picker route (Chromium's save dialog; stubbed to an OPFS file named "picked-" + the
 * suggested name): the package writers' positioned writes and the tarball's sequential ones land
 * in the user's file as the CLI writes them.
 */
test.describe('picker route: the page writes what the CLI writes', () => {
  test.use({ saveMode: 'picker' });

  for (const name of ['esxi', 'gcp', 'proxmox']) {
    test(`--target=${name}`, async ({ page, work }) => {
      const src = parityDisk(work.file('parity.qcow2'));
      await convertOnPage(page, src, name);
      const errors = await page.getByTestId('error').allInnerTexts();
      expect(errors, errors.join('\n')).toEqual([]);
      const saved = await page.getByTestId('result').locator('code').first().innerText();
      expect(saved).toMatch(/^picked-parity\./);
      const ours = work.file(`page-${saved}`);
      await exportOpfsFile(page, saved, ours);
      mkdirSync(work.file('cli'));
      const theirs = path.join(work.file('cli'), saved);
      diskferry('convert', '-q', '--reproducible', `--target=${name}`, src, theirs);
      if (name === 'gcp') expect(sha256(gunzipSync(readFileSync(ours)))).toBe(sha256(gunzipSync(readFileSync(theirs))));
      else expect(sha256(readFileSync(ours))).toBe(sha256(readFileSync(theirs)));
    });
  }
});
