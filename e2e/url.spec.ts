import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { E2E_PORT } from '../playwright.config.ts';
import { startServer, type TestServer } from '../test/helpers/httpServer.ts';
import { test, expect, qemuImg, fillPattern, ARTIFACTS } from './fixtures.ts';
import { convertAndSave, expectPreview, expectValidCopy, loadControlled } from './helpers.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * A 1 GiB qcow2 overlay over a qcow2 backing file beside it (named relatively, as qemu-img
 * writes it), each with patterned runs: the page must fetch the backing file from the same
 * folder on the server, and the output must hold both layers.
 */
function makeChain(dir: string): { top: string; size: number } {
  const base = path.join(dir, 'base.qcow2');
  const top = path.join(dir, 'disk.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', base, String(GiB));
  fillPattern(base, 'qcow2', 0, 97 * MiB, 2 * MiB, 8);
  qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top, String(GiB));
  fillPattern(top, 'qcow2', MiB + 4096, 131 * MiB, MiB, 6);
  return { top, size: GiB };
}

/** "read 2 MiB of 24 MiB" → bytes (the page's own rounding: humanSize's one decimal). */
function bytesOf(text: string): number {
  const m = /([\d.]+)\s*(B|KiB|MiB|GiB)/.exec(text);
  if (!m) throw new Error(`no size in "${text}"`);
  return Number(m[1]) * { B: 1, KiB: 1024, MiB, GiB }[m[2] as 'B'];
}

let servers: TestServer[] = [];
test.afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function serve(dir: string, cors: boolean): Promise<TestServer> {
  const s = await startServer(dir);
  s.cors = cors;
  servers.push(s);
  return s;
}

for (const mode of ['download', 'picker'] as const) {
  test.describe(`saving via ${mode}`, () => {
    test.use({ saveMode: mode });

    test('open a qcow2 and its backing file from a URL on another origin (CORS), preview it from metadata, convert it', async ({
      page,
      work,
    }) => {
      const dir = work.file('srv');
      mkdirSync(dir);
      const { top, size } = makeChain(dir);
      const server = await serve(dir, true);
      // The page is on the preview server's port, the images on this one: a cross-origin read.
      expect(new URL(server.base).port).not.toBe(String(E2E_PORT));
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.goto('/');
      await page.getByTestId('url-input').fill(`${server.base}/disk.qcow2`);
      if (mode === 'download') await page.screenshot({ path: path.join(ARTIFACTS, 'url-field.png') });
      await page.getByTestId('url-open').click();

      await expectPreview(page, 'qcow2', size);
      const info = page.getByTestId('image-info');
      await expect(info).toContainText('base.qcow2');
      await expect(info).toContainText(`${server.base}/disk.qcow2`);
      // Only metadata went over the wire: under 1 % of the disk, and the page says how much.
      const sent = server.bytesSent();
      expect(sent).toBeLessThan(size / 100);
      expect(server.log.every((r) => r.range !== undefined || r.method === 'OPTIONS')).toBe(true);
      expect(server.log.some((r) => r.path === '/base.qcow2')).toBe(true);
      const fetched = await page.getByTestId('fetched').innerText();
      expect(fetched).toMatch(/^read [\d.]+ \w+ of [\d.]+ \w+$/);
      // The page counts the preview's bytes; the server sent those plus nothing else.
      expect(Math.abs(bytesOf(fetched) - sent)).toBeLessThanOrEqual(0.05 * sent + 1024);
      if (mode === 'download') await page.screenshot({ path: path.join(ARTIFACTS, 'url-preview.png') });

      const out = work.file('from-url.qcow2');
      await convertAndSave(page, mode, 'qcow2', false, out);
      // Named after the URL's file, never that name itself.
      await expect(page.getByTestId('result')).toContainText('disk.converted.qcow2');
      expectValidCopy(top, out, 'qcow2');
    });
  });
}

test.describe('with the service worker in control', () => {
  test.use({ serviceWorkers: 'allow' });

  test('a URL is read from its server, never from or into the cache', async ({ page, work }) => {
    const dir = work.file('srv');
    mkdirSync(dir);
    const { top, size } = makeChain(dir);
    const server = await serve(dir, true);
    await loadControlled(page);
    await page.getByTestId('url-input').fill(`${server.base}/disk.qcow2`);
    await page.getByTestId('url-open').click();
    await expectPreview(page, 'qcow2', size);
    const out = work.file('via-sw.qcow2');
    await convertAndSave(page, 'download', 'qcow2', true, out);
    expectValidCopy(top, out, 'qcow2');
    // Every block came from the server, as ranges; none was stored by the app's caches.
    expect(server.log.filter((r) => r.method === 'GET').every((r) => r.status === 206)).toBe(true);
    const cached = await page.evaluate(async (base) => {
      const urls: string[] = [];
      for (const name of await caches.keys()) for (const r of await (await caches.open(name)).keys()) urls.push(r.url);
      return urls.filter((u) => u.startsWith(base));
    }, server.base);
    expect(cached).toEqual([]);
  });
});

test('a URL the page cannot read: no CORS headers, Content-Range not exposed, no Range support, compressed, not a URL, not a disk', async ({
  page,
  work,
}) => {
  const dir = work.file('srv');
  mkdirSync(dir);
  makeChain(dir);
  const noCors = await serve(dir, false);
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto('/');
  const input = page.getByTestId('url-input');
  const error = page.getByTestId('url-error');

  await input.fill(`${noCors.base}/disk.qcow2`);
  await page.getByTestId('url-open').click();
  await expect(error).toHaveText(
    new RegExp(
      `^The server at ${noCors.base.replace(/[.]/g, '\\.')} does not allow this page to read the file \\(CORS\\): .+; download it and drop the file instead$`,
    ),
  );
  await expect(error).toHaveClass(/notice--error/);
  // One line: a CORS refusal is not retried as if the network had failed.
  expect((await error.innerText()).split('\n')).toHaveLength(1);
  await expect(page.getByTestId('image-info')).toHaveCount(0);
  await page.screenshot({ path: path.join(ARTIFACTS, 'url-cors-error.png') });

  // CORS headers, but Content-Range not exposed: the page cannot tell where the bytes belong.
  const hidden = await serve(dir, true);
  hidden.corsExposes = '';
  await input.fill(`${hidden.base}/disk.qcow2`);
  await page.getByTestId('url-open').click();
  await expect(error).toHaveText(
    `The server at ${hidden.base} does not allow this page to read the file (CORS): it does not expose the Content-Range header (Access-Control-Expose-Headers); download it and drop the file instead`,
  );

  // A server that sends the whole file for every request: the core's message.
  const noRange = await serve(dir, true);
  noRange.ignoreRange = true;
  await input.fill(`${noRange.base}/disk.qcow2`);
  await page.getByTestId('url-open').click();
  await expect(error).toHaveText(`${noRange.base}/disk.qcow2: server does not support range requests; download the file first`);

  // A compressed image: unpacked only from a dropped file.
  writeFileSync(path.join(dir, 'disk.raw.gz'), gzipSync(Buffer.alloc(2 * MiB, 7)));
  const ok = await serve(dir, true);
  await input.fill(`${ok.base}/disk.raw.gz`);
  await page.getByTestId('url-open').click();
  await expect(error).toHaveText(
    /disk\.raw\.gz: this is a gzip-compressed file, which the page unpacks only when dropped: download it and drop it$/,
  );

  await input.fill('disk.qcow2');
  await page.getByTestId('url-open').click();
  await expect(error).toHaveText(/^"disk\.qcow2" is not a URL/);

  await input.fill(`${noRange.base.replace('http', 'ftp')}/disk.qcow2`);
  await page.getByTestId('url-open').click();
  await expect(error).toHaveText(/is not an http:\/\/ or https:\/\/ URL/);

  // A web page, not a disk: set aside with the reason, as a dropped file would be.
  writeFileSync(path.join(dir, 'download.html'), `<!doctype html><title>Downloads</title>${'<p>disk images</p>'.repeat(200)}`);
  await input.fill(`${ok.base}/download.html`);
  await page.getByTestId('url-open').click();
  await expect(page.getByTestId('error')).toContainText('This is not a disk image');
  await expect(page.getByRole('button', { name: 'Treat as raw disk' })).toBeVisible();
  await page.screenshot({ path: path.join(ARTIFACTS, 'url-not-a-disk.png') });
});
