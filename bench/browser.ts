import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from '@playwright/test';
import { measureTree, type Sample } from './measure.ts';

/**
 * DiskFerry in headless Chromium, driven through the page's data-testid hooks as a user would:
 * pick the file (file-input), wait for the preview (image-info), choose the format and
 * compression, press convert, wait for the result. The save picker is answered with an OPFS
 * file (showSaveFilePicker cannot be automated, docs/browser.md, Testing in Debian's browsers) in a persistent profile,
 * whose OPFS lives on disk as a real user's does (§1.2).
 */

const MIME: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Builds the app once into `outDir` (vite build) when the page exists; false when it does not. */
export function buildWeb(root: string, outDir: string): boolean {
  if (!existsSync(path.join(root, 'index.html')) || !existsSync(path.join(root, 'web'))) return false;
  const r = spawnSync('npx', ['vite', 'build', '--logLevel', 'warn', '--outDir', outDir, '--emptyOutDir'], { cwd: root, stdio: 'inherit' });
  return r.status === 0 && existsSync(path.join(outDir, 'index.html'));
}

function serve(dir: string): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    let file = path.join(dir, decodeURIComponent(u.pathname));
    if (!file.startsWith(dir)) return void res.writeHead(403).end();
    if (!existsSync(file) || statSync(file).isDirectory()) file = path.join(dir, 'index.html');
    res.writeHead(200, { 'content-type': MIME[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${a.port}/`, close: () => server.close() });
    }),
  );
}

/**
 * The floor measurement's worker, as plain script (bundlers must not rewrite what runs in the
 * page). Modes: 'rw' reads the source, then writes `total` bytes through createWritable; 'copy'
 * does both at once, as a conversion must (each 16 MiB read is followed by its share of the
 * output); 'sync' writes `total` bytes through an OPFS sync access handle.
 */
const FLOOR_WORKER = `
const MiB = 1024 * 1024;
async function streamWrite(root, chunks) {
  const h = await root.getFileHandle('bench-floor-stream', { create: true });
  const stream = await h.createWritable();
  const pending = [];
  for await (const [pos, run] of chunks) {
    pending.push(stream.write({ type: 'write', position: pos, data: run }));
    if (pending.length >= 3) await pending.shift();
  }
  await Promise.all(pending);
  await stream.close();
  await root.removeEntry('bench-floor-stream');
}
async function* slices(file) {
  let next = file.slice(0, 16 * MiB).arrayBuffer();
  for (let pos = 0; pos < file.size; pos += 16 * MiB) {
    const cur = next;
    next = file.slice(pos + 16 * MiB, pos + 32 * MiB).arrayBuffer();
    yield [pos, await cur];
  }
}
function* filled(total) {
  for (let pos = 0; pos < total; pos += 4 * MiB) yield [pos, new Uint8Array(Math.min(4 * MiB, total - pos)).fill(0x5a)];
}
/** The output's bytes in 4 MiB runs, paced by the source's reads: after each read, its share. */
async function* paced(file, total) {
  let out = 0;
  for await (const [pos, buf] of slices(file)) {
    const due = Math.min(total, Math.round(((pos + buf.byteLength) / file.size) * total));
    for (; out + 4 * MiB <= due || (due === total && out < total); out += 4 * MiB)
      yield [out, new Uint8Array(Math.min(4 * MiB, total - out)).fill(0x5a)];
  }
}
onmessage = async (e) => {
  const { file, total, mode } = e.data;
  const root = await navigator.storage.getDirectory();
  const r = { readS: 0, writeS: 0, copyS: 0, syncWriteS: 0 };
  let t = performance.now();
  if (mode === 'rw') {
    for await (const _ of slices(file));
    r.readS = (performance.now() - t) / 1000;
    t = performance.now();
    if (total) await streamWrite(root, filled(total));
    r.writeS = (performance.now() - t) / 1000;
  } else if (mode === 'copy') {
    await streamWrite(root, paced(file, total));
    r.copyS = (performance.now() - t) / 1000;
  } else {
    const hs = await root.getFileHandle('bench-floor-sync', { create: true });
    const a = await hs.createSyncAccessHandle();
    const run = new Uint8Array(4 * MiB).fill(0x5a);
    for (let pos = 0; pos < total; pos += 4 * MiB) a.write(run.subarray(0, Math.min(4 * MiB, total - pos)), { at: pos });
    a.flush();
    a.close();
    r.syncWriteS = (performance.now() - t) / 1000;
    await root.removeEntry('bench-floor-sync');
  }
  postMessage(r);
};
`;

type FloorTimes = { readS: number; writeS: number; copyS: number; syncWriteS: number };

export class BrowserBench {
  private constructor(
    private readonly context: BrowserContext,
    private readonly page: Page,
    private readonly server: { url: string; close(): void },
    private readonly profile: string,
    readonly version: string,
  ) {}

  static async start(webDir: string, profile: string): Promise<BrowserBench> {
    const server = await serve(path.resolve(webDir));
    rmSync(profile, { recursive: true, force: true });
    mkdirSync(profile, { recursive: true });
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      args: ['--disable-gpu'],
      serviceWorkers: 'block',
      viewport: { width: 1200, height: 900 },
    });
    await context.addInitScript(() => {
      (window as unknown as { showSaveFilePicker: unknown }).showSaveFilePicker = async (o: { suggestedName: string }) =>
        (await navigator.storage.getDirectory()).getFileHandle(`bench-${o.suggestedName}`, { create: true });
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const version = context.browser()?.version() ?? 'chromium';
    return new BrowserBench(context, page, server, profile, version);
  }

  /** The browser's main process: the root of the tree whose CPU and memory are counted. */
  private browserPid(): number {
    const r = spawnSync('pgrep', ['-o', '-f', `user-data-dir=${this.profile}`], { encoding: 'utf8' });
    const pid = Number(r.stdout.trim().split('\n')[0]);
    if (!pid) throw new Error('cannot find the Chromium process');
    return pid;
  }

  private async fresh(): Promise<void> {
    await this.page.goto(this.server.url);
    await this.page.evaluate(async () => {
      const root = await navigator.storage.getDirectory();
      for await (const name of (root as unknown as { keys(): AsyncIterable<string> }).keys())
        await root.removeEntry(name, { recursive: true });
    });
  }

  /** Time from choosing the file to the preview (the page's `info`). */
  async info(file: string): Promise<Sample> {
    await this.fresh();
    const m = await measureTree(this.browserPid(), async () => {
      await this.page.getByTestId('file-input').setInputFiles(file);
      await this.page.getByTestId('image-info').waitFor({ state: 'visible', timeout: 120_000 });
    });
    return { wallS: m.wallS, cpuS: m.cpuS, peakMB: m.peakMB };
  }

  /** Converts `file`; the clock runs from pressing convert to the result (the output closed). */
  async convert(file: string, target: string, compress: boolean, preset?: string): Promise<Sample> {
    await this.fresh();
    const p = this.page;
    await p.getByTestId('file-input').setInputFiles(file);
    await p.getByTestId('image-info').waitFor({ state: 'visible', timeout: 120_000 });
    // A preset sets the format and its options (a stream VMDK, a fixed VHD) as a user gets them.
    if (preset) await p.getByRole('button', { name: preset, exact: true }).click();
    else {
      await p.getByTestId('target-format').selectOption(target);
      if (compress) await p.getByTestId('compress').check();
      else if (await p.getByTestId('compress').isEnabled()) await p.getByTestId('compress').uncheck();
    }
    const m = await measureTree(this.browserPid(), async () => {
      await p.getByTestId('convert').click();
      await p.getByTestId('result').or(p.getByTestId('error')).waitFor({ state: 'visible', timeout: 900_000 });
    });
    const errors = await p.getByTestId('error').allInnerTexts();
    if (errors.length) throw new Error(`the page reported: ${errors.join(' | ')}`);
    const outBytes = await p.evaluate(async () => {
      const root = await navigator.storage.getDirectory();
      let size = 0;
      for await (const [name, h] of (root as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
        if (name.startsWith('bench-') && h.kind === 'file') size = Math.max(size, (await (h as FileSystemFileHandle).getFile()).size);
      }
      return size;
    });
    return { wallS: m.wallS, cpuS: m.cpuS, peakMB: m.peakMB, outBytes };
  }

  /**
   * What the browser alone costs, with no conversion: read `file` as the app does (16 MiB Blob
   * slices, one ahead) and write `outBytes` into a new file through createWritable as the app
   * writes the user's chosen file (4 MiB runs, 3 queued), one after the other (each with the
   * machine to itself) and then at once (`copyS`, as a conversion must: on two cores the read
   * and the write compete for the same CPU); then the write through an OPFS sync handle, for
   * comparison. `cpuS` and `copyCpuS` are Chromium's whole tree during the first two.
   */
  async floor(file: string, outBytes: number): Promise<FloorTimes & { cpuS: number; copyCpuS: number }> {
    await this.fresh();
    const p = this.page;
    await p.evaluate(() => {
      const input = document.createElement('input');
      input.type = 'file';
      input.id = 'bench-floor';
      input.hidden = true;
      document.body.append(input);
    });
    await p.setInputFiles('#bench-floor', file);
    let rw: FloorTimes | undefined;
    const m = await measureTree(this.browserPid(), async () => {
      rw = await this.floorRun(outBytes, 'rw');
    });
    let copy: FloorTimes | undefined;
    const mc = await measureTree(this.browserPid(), async () => {
      copy = await this.floorRun(outBytes, 'copy');
    });
    const sync = outBytes ? await this.floorRun(outBytes, 'sync') : undefined;
    return { readS: rw!.readS, writeS: rw!.writeS, copyS: copy!.copyS, syncWriteS: sync?.syncWriteS ?? 0, cpuS: m.cpuS, copyCpuS: mc.cpuS };
  }

  private floorRun(outBytes: number, mode: 'rw' | 'copy' | 'sync'): Promise<FloorTimes> {
    return this.page.evaluate(
      async ({ total, mode, FLOOR_WORKER }) => {
        const url = URL.createObjectURL(new Blob([FLOOR_WORKER], { type: 'text/javascript' }));
        const w = new Worker(url);
        const file = (document.getElementById('bench-floor') as HTMLInputElement).files![0]!;
        const r = await new Promise<FloorTimes>((resolve, reject) => {
          w.onmessage = (e) => resolve(e.data);
          w.onerror = (e) => reject(new Error(e.message));
          w.postMessage({ file, total, mode });
        });
        w.terminate();
        return r;
      },
      { total: outBytes, mode, FLOOR_WORKER },
    );
  }

  async close(): Promise<void> {
    await this.context.close();
    this.server.close();
    rmSync(this.profile, { recursive: true, force: true });
  }
}
