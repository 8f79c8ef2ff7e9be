import { readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpBlockCache, HttpSource, NO_RANGE_DETAIL, type FetchLike, type FetchResponse } from '../src-core/io/httpSource.ts';
import { HttpResolver } from '../src-core/io/httpResolver.ts';
import { CancelledError, DiskFerryError } from '../src-core/io/errors.ts';
import { cli } from './helpers/cli.ts';
import { startServer, type TestServer } from './helpers/httpServer.ts';
import { qemuCompare, qemuImg, qemuIo, standardRaw, tempDir } from './helpers/sys.ts';

// Images on a web server (a range-capable node:http server on 127.0.0.1 serving a temp
// folder): info and convert from the URL must give what the local file gives, reading only
// what the format needs, through dropped connections and 5xx answers.
const t = tempDir('diskferry-http-');
const MiB = 1 << 20;
const fetchLike: FetchLike = (url, init) => fetch(url, init as RequestInit) as Promise<FetchResponse>;
let server: TestServer;
const url = (name: string) => `${server.base}/${name}`;

beforeAll(async () => {
  // qcow2 over a backing file beside it (relative name), with data in both layers.
  qemuImg('create', '-q', '-f', 'qcow2', t.file('base.qcow2'), '64M');
  qemuIo('-c', 'write -P 0x11 0 5M', '-c', 'write -P 0x12 40M 3M', t.file('base.qcow2'));
  qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', t.file('top.qcow2'));
  qemuIo('-c', 'write -P 0x22 1M 2M', '-c', 'write -P 0x23 50M 1M', t.file('top.qcow2'));
  // A split VMDK: descriptor + two 2 GiB sparse extents, data in both.
  qemuImg('create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', t.file('split.vmdk'), '2560M');
  qemuIo('-c', 'write -P 0x33 0 2M', '-c', 'write -P 0x34 2200M 2M', t.file('split.vmdk'));
  // vhdx and raw from a patterned raw file.
  standardRaw(t.file('disk.raw'), 12 * MiB);
  qemuImg('convert', '-q', '-f', 'raw', '-O', 'vhdx', t.file('disk.raw'), t.file('disk.vhdx'));
  // 1 GiB qcow2 whose metadata is preallocated: the file really is 1 GiB long (sparse on disk).
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata', t.file('big.qcow2'), '1G');
  server = await startServer(t.dir);
}, 120_000);
afterAll(async () => {
  await server?.close();
  t.cleanup();
});
afterEach(() => {
  server.ignoreRange = false;
  server.dropEvery = 0;
  server.failEvery = 0;
  server.stallEvery = 0;
  server.log.length = 0;
});

/** info --output=json with the URL's folder written as the local folder, sizes on disk left out. */
function normalInfo(json: string, base: string): unknown {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.entries(v)
          .filter(([k]) => k !== 'actual-size')
          .map(([k, x]) => [k, strip(x)]),
      );
    return v;
  };
  return strip(JSON.parse(json.split(base).join('<dir>')));
}

async function ok(...args: string[]): Promise<string> {
  const r = await cli(...args);
  if (r.code !== 0) throw new Error(`diskferry ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** convert -O raw from the URL and from the local file; the two outputs must be identical. */
async function expectSameConvert(name: string, tag: string): Promise<void> {
  await ok('convert', '-O', 'raw', t.file(name), t.file(`${tag}.local.raw`));
  await ok('convert', '-O', 'raw', url(name), t.file(`${tag}.url.raw`));
  expect(statSync(t.file(`${tag}.url.raw`)).size).toBe(statSync(t.file(`${tag}.local.raw`)).size);
  expect(qemuCompare(t.file(`${tag}.local.raw`), t.file(`${tag}.url.raw`), '-f', 'raw', '-F', 'raw')).toBe(0);
}

describe('info and convert from a URL equal the local file', () => {
  for (const [name, chain] of [
    ['top.qcow2', true],
    ['split.vmdk', false],
    ['disk.vhdx', false],
    ['disk.raw', false],
  ] as const) {
    it(name, async () => {
      const extra = chain ? ['--backing-chain'] : [];
      const local = await ok('info', '--output=json', ...extra, t.file(name));
      const remote = await ok('info', '--output=json', ...extra, url(name));
      expect(normalInfo(remote, server.base)).toEqual(normalInfo(local, t.dir));
      await expectSameConvert(name, name.replace('.', '-'));
      // The companions came from the server, relative to the URL.
      if (name === 'top.qcow2') expect(server.log.some((r) => r.path === '/base.qcow2')).toBe(true);
      if (name === 'split.vmdk') expect(server.log.filter((r) => /split-s00[12]\.vmdk$/.test(r.path)).length).toBeGreaterThanOrEqual(2);
    });
  }

  it('the output is the guest data qemu-img sees', async () => {
    await ok('convert', '-O', 'raw', url('top.qcow2'), t.file('top.check.raw'));
    expect(qemuCompare(t.file('top.qcow2'), t.file('top.check.raw'))).toBe(0);
  });
});

describe('reads only what it needs', () => {
  it('info of a 1 GiB qcow2 reads less than 1 % of it', async () => {
    const size = statSync(t.file('big.qcow2')).size;
    expect(size).toBeGreaterThan(1 << 30);
    const out = await ok('info', '--output=json', url('big.qcow2'));
    expect(JSON.parse(out)['virtual-size']).toBe(1 << 30);
    const sent = server.bytesSent((r) => r.path === '/big.qcow2');
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(size / 100);
  });

  it('counts the bytes it fetched, and caches what it read', async () => {
    const src = await HttpSource.open(url('disk.raw'), { fetch: fetchLike });
    const local = readFileSync(t.file('disk.raw'));
    // Small reads in one block: one request (made by open), widened to 1 MiB.
    for (let off = 0; off < MiB - 4096; off += 4096)
      expect(Buffer.from(await src.read(off, 512)).equals(local.subarray(off, off + 512))).toBe(true);
    expect(src.stats.requests).toBe(1);
    // A read across blocks, and past the end.
    expect(Buffer.from(await src.read(3 * MiB - 100, 2 * MiB)).equals(local.subarray(3 * MiB - 100, 5 * MiB - 100))).toBe(true);
    expect((await src.read(12 * MiB - 10, 100)).length).toBe(10);
    expect(src.stats.bytesFetched).toBe(server.bytesSent());
    expect(src.stats.bytesFetched).toBeLessThan(6 * MiB);
    await src.close();
  });

  it('sources sharing a cache keep their own blocks, within one bound', async () => {
    const cache = new HttpBlockCache(3);
    const a = await HttpSource.open(url('disk.raw'), { fetch: fetchLike, cache });
    const b = await HttpSource.open(url('disk.vhdx'), { fetch: fetchLike, cache });
    const rawBytes = readFileSync(t.file('disk.raw'));
    const vhdxBytes = readFileSync(t.file('disk.vhdx'));
    for (const off of [0, 2 * MiB, 0]) {
      expect(Buffer.from(await a.read(off, 4096)).equals(rawBytes.subarray(off, off + 4096))).toBe(true);
      expect(Buffer.from(await b.read(off, 4096)).equals(vhdxBytes.subarray(off, off + 4096))).toBe(true);
    }
    // Four blocks in all went through a cache of three: block 0 of one of them was fetched again.
    expect(a.stats.requests + b.stats.requests).toBeGreaterThan(4);
    expect(a.stats.requests + b.stats.requests).toBeLessThanOrEqual(6);
  });
});

describe('an unreliable server', () => {
  it('connections dropped mid-body on every 2nd or 3rd request still give identical output', async () => {
    for (const n of [3, 2]) {
      server.dropEvery = n;
      await expectSameConvert('top.qcow2', `drop${n}-top`);
      await expectSameConvert('split.vmdk', `drop${n}-split`);
      // A cut-off response is continued: the next request for that file asks for the rest only.
      const cuts = server.log
        .map((r, i) => ({ r, i }))
        .filter(({ r }) => r.status === 206 && r.bytesSent > 0 && r.range && r.bytesSent < rangeLength(r.range));
      expect(cuts.length).toBeGreaterThan(0);
      for (const { r, i } of cuts) {
        const next = server.log.slice(i + 1).find((x) => x.path === r.path);
        if (!next?.range || rangeStart(r.range!) === 0) continue;
        expect(rangeStart(next.range)).toBeGreaterThan(rangeStart(r.range!));
        expect(rangeStart(next.range)).toBeLessThanOrEqual(rangeStart(r.range!) + r.bytesSent);
      }
      server.log.length = 0;
    }
  });

  it('a response that stalls halfway is abandoned after timeoutMs and the rest asked for again', async () => {
    server.stallEvery = 2;
    const src = await HttpSource.open(url('disk.raw'), { fetch: fetchLike, timeoutMs: 300 });
    const local = readFileSync(t.file('disk.raw'));
    const started = performance.now();
    expect(Buffer.from(await src.read(0, local.length)).equals(local)).toBe(true);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(src.stats.retries).toBeGreaterThan(0);
    expect(server.log.filter((r) => r.path === '/disk.raw').length).toBeGreaterThan(2);
  });

  it('503 answers are retried', async () => {
    server.failEvery = 2;
    await expectSameConvert('disk.vhdx', 'fail2-vhdx');
    expect(server.log.filter((r) => r.status === 503).length).toBeGreaterThan(0);
  });

  it('a server that always fails is given up on after the retries', async () => {
    server.failEvery = 1;
    const e = await HttpSource.open(url('disk.raw'), { fetch: fetchLike, retries: 2, backoffMs: 1 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DiskFerryError);
    expect(String(e)).toMatch(/HTTP 503.*gave up after 2 retries/);
    expect(server.log.length).toBe(3);
  });

  it('a server without Range support gets the documented error', async () => {
    server.ignoreRange = true;
    const r = await cli('info', url('top.qcow2'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`diskferry info: ${url('top.qcow2')}: ${NO_RANGE_DETAIL}\n`);
    expect(NO_RANGE_DETAIL).toBe('server does not support range requests; download the file first');
    // It did not download the file to find out.
    expect(server.bytesSent()).toBeLessThan(4 * MiB);
    const c = await cli('convert', '-O', 'raw', url('disk.vhdx'), t.file('norange.raw'));
    expect(c.code).toBe(1);
    expect(c.stderr).toContain(NO_RANGE_DETAIL);
  });

  it('a file that changes on the server while it is read is an error, not a mix of two files', async () => {
    const file = t.file('changing.raw');
    writeFileSync(file, Buffer.alloc(3 * MiB, 1));
    utimesSync(file, new Date(1_000_000_000_000), new Date(1_000_000_000_000));
    const src = await HttpSource.open(url('changing.raw'), { fetch: fetchLike });
    expect((await src.read(0, 10))[0]).toBe(1);
    writeFileSync(file, Buffer.alloc(3 * MiB, 2));
    utimesSync(file, new Date(1_100_000_000_000), new Date(1_100_000_000_000));
    await expect(src.read(2 * MiB, 10)).rejects.toThrow(
      /changing\.raw: file changed on the server while it was being read \(ETag ".*" → ".*"\)$/,
    );
    // A different size is caught too.
    writeFileSync(file, Buffer.alloc(4 * MiB, 3));
    await expect(src.read(MiB, 10)).rejects.toThrow(/file changed on the server while it was being read \(size 3145728 → 4194304\)/);
  });

  it('a missing file is named', async () => {
    const r = await cli('info', url('nothing.qcow2'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('HTTP 404');
  });

  it('cancels by AbortSignal, also in a retry pause', async () => {
    server.failEvery = 1;
    const abort = new AbortController();
    const started = performance.now();
    const p = HttpSource.open(url('disk.raw'), { fetch: fetchLike, signal: abort.signal, backoffMs: 10_000 }).catch((x: unknown) => x);
    setTimeout(() => abort.abort(), 100);
    expect(await p).toBeInstanceOf(CancelledError);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('companions stay on the server of the image', () => {
  beforeAll(() => {
    // A backing file named by an absolute URL on another origin (localhost is not 127.0.0.1).
    const other = `http://localhost:${new URL(server.base).port}/base.qcow2`;
    qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', other, '-F', 'qcow2', t.file('elsewhere.qcow2'), '64M');
  });

  it('refuses another origin unless --allow-outside-paths', async () => {
    const r = await cli('convert', '-O', 'raw', url('elsewhere.qcow2'), t.file('elsewhere.raw'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('on another server than the image; refused (allow with --allow-outside-paths)');
    await ok('convert', '--allow-outside-paths', '-O', 'raw', url('elsewhere.qcow2'), t.file('elsewhere.raw'));
    expect(qemuCompare(t.file('base.qcow2'), t.file('elsewhere.raw'))).toBe(0);
  });

  it('resolves names against the referencing URL', () => {
    const r = new HttpResolver('http://a.example/disks/x/top.qcow2', { fetch: fetchLike });
    expect(r.resolve('base.qcow2', 'http://a.example/disks/x/top.qcow2')).toBe('http://a.example/disks/x/base.qcow2');
    expect(r.resolve('../y/b c.vmdk', 'http://a.example/disks/x/top.vmdk')).toBe('http://a.example/disks/y/b%20c.vmdk');
    expect(r.resolve('/etc/passwd', 'http://a.example/disks/x/top.vmdk')).toBe('http://a.example/etc/passwd');
  });

  it('refuses non-http companions', async () => {
    const r = new HttpResolver('http://a.example/x.qcow2', { fetch: fetchLike, allowOtherOrigins: true });
    await expect(r.open('file:///etc/passwd', 'http://a.example/x.qcow2')).rejects.toThrow(/not an http\(s\) URL/);
  });
});

function rangeLength(range: string): number {
  const m = /bytes=(\d+)-(\d+)/.exec(range);
  return m ? Number(m[2]) - Number(m[1]) + 1 : Infinity;
}

function rangeStart(range: string): number {
  return Number(/bytes=(\d+)-/.exec(range)?.[1] ?? NaN);
}
