import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliOk } from './helpers/cli.ts';
import { pickInfo } from './helpers/fixtures.ts';
import { qemuCompare, qemuImg, qemuIo, runStatus, standardRaw, tempDir } from './helpers/sys.ts';

// Images we write: qemu-img check must find nothing, and qemu-img compare must call them identical.
const t = tempDir();
const src = t.file('src.raw');
const SIZE = 29 * 1024 * 1024 + 1536;

function expectClean(file: string, ...extra: string[]): Record<string, unknown> {
  const r = runStatus('qemu-img', ['check', '--output=json', ...extra, file]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const json = JSON.parse(r.stdout);
  expect(json['check-errors']).toBe(0);
  expect(json.corruptions).toBeUndefined();
  expect(json.leaks).toBeUndefined();
  return json;
}

const OUTPUTS: [string, string[]][] = [
  ['default', []],
  ['compressed', ['-c']],
  ['compat-0.10', ['-o', 'compat=0.10']],
  ['compat-0.10-compressed', ['-c', '-o', 'compat=0.10']],
  ['cluster-512', ['-o', 'cluster_size=512']],
  ['cluster-512-compressed', ['-c', '-o', 'cluster_size=512']],
  ['cluster-2M', ['-o', 'cluster_size=2M']],
  ['cluster-2M-compressed', ['-c', '-o', 'cluster_size=2M']],
  ['refcount-8', ['-o', 'refcount_bits=8']],
  ['refcount-1', ['-o', 'refcount_bits=1']],
  ['refcount-1-compressed', ['-c', '-o', 'refcount_bits=1,cluster_size=4k']],
  ['refcount-64', ['-o', 'refcount_bits=64']],
  ['zstd', ['-c', '-o', 'compression_type=zstd']],
  ['extended-l2', ['-o', 'extended_l2=on']],
];

beforeAll(() => standardRaw(src, SIZE, 11));
afterAll(() => t.cleanup());

describe('qcow2 we write passes qemu-img check and compare', () => {
  it.each(OUTPUTS)('%s', async (name, args) => {
    const out = t.file(`${name}.qcow2`);
    await cliOk('convert', '-f', 'raw', ...args, '-O', 'qcow2', src, out);
    expectClean(out);
    expect(qemuCompare(src, out)).toBe(0);
    // The info we print for our own file is the info qemu-img prints for it.
    const theirs = JSON.parse(qemuImg('info', '--output=json', out));
    expect(theirs['dirty-flag']).toBe(false);
    expect(pickInfo(JSON.parse(await cliOk('info', '--output=json', out)))).toEqual(pickInfo(theirs));
  });

  it('compressed output is at most 1 % larger than qemu-img -c output', async () => {
    for (const opts of [[], ['-o', 'cluster_size=4k']]) {
      const ours = t.file('size-ours.qcow2');
      const ref = t.file('size-ref.qcow2');
      await cliOk('convert', '-c', ...opts, '-O', 'qcow2', src, ours);
      qemuImg('convert', '-c', ...opts, '-O', 'qcow2', src, ref);
      expect(statSync(ours).size).toBeLessThanOrEqual(statSync(ref).size * 1.01);
    }
  });

  it('the header matches what qemu-img writes: version, cluster bits, extensions', async () => {
    const ours = t.file('hdr.qcow2');
    await cliOk('convert', '-O', 'qcow2', src, ours);
    const info = JSON.parse(qemuImg('info', '--output=json', ours));
    expect(info['format-specific'].data).toEqual({
      compat: '1.1',
      'compression-type': 'zlib',
      'lazy-refcounts': false,
      'refcount-bits': 16,
      corrupt: false,
      'extended-l2': false,
    });
  });

  it('-B writes an overlay that keeps only what differs from its backing file', async () => {
    const base = t.file('ovl-base.raw');
    standardRaw(base, 16 << 20, 5);
    const modified = t.file('ovl-src.qcow2');
    qemuImg('create', '-f', 'qcow2', '-b', 'ovl-base.raw', '-F', 'raw', modified);
    qemuIo('-c', 'write -P 0x66 1M 256k', '-c', 'write -z 0 128k', '-c', 'write -P 0x67 15M 64k', modified);
    for (const compat of ['1.1', '0.10']) {
      const out = t.file(`ovl-${compat}.qcow2`);
      await cliOk('convert', '-O', 'qcow2', '-o', `compat=${compat}`, '-B', 'ovl-base.raw', '-F', 'raw', modified, out);
      expectClean(out);
      expect(qemuCompare(modified, out)).toBe(0);
      const info = JSON.parse(qemuImg('info', '--output=json', out));
      expect(info['backing-filename']).toBe('ovl-base.raw');
      expect(info['backing-filename-format']).toBe('raw');
      // 256k + 64k of new data, plus 128k of zeros that v2 must store: far less than the 16 MiB disk.
      const map = JSON.parse(qemuImg('map', '--output=json', out)) as { depth: number; data: boolean; length: number }[];
      const own = map.filter((e) => e.depth === 0 && e.data).reduce((n, e) => n + e.length, 0);
      expect(own).toBeGreaterThanOrEqual(320 * 1024);
      expect(own).toBeLessThanOrEqual(compat === '1.1' ? 320 * 1024 : 448 * 1024);
    }
  });

  it('converting a chain with snapshots flattens the active state; -l takes a snapshot', async () => {
    const img = t.file('snapsrc.qcow2');
    qemuImg('convert', '-O', 'qcow2', src, img);
    qemuImg('snapshot', '-c', 'one', img);
    qemuIo('-c', 'write -P 0x21 0 1M', img);
    const now = t.file('snap-now.qcow2');
    const then = t.file('snap-then.qcow2');
    await cliOk('convert', '-O', 'qcow2', img, now);
    await cliOk('convert', '-l', 'snapshot.name=one', '-O', 'qcow2', img, then);
    expectClean(now);
    expectClean(then);
    expect(qemuCompare(img, now)).toBe(0);
    expect(qemuCompare(src, then)).toBe(0);
  });

  it('a virtual size that is not a multiple of 512 is rounded up as qemu-img does', async () => {
    const odd = t.file('odd.raw');
    standardRaw(odd, 1_000_001, 2);
    const out = t.file('odd.qcow2');
    await cliOk('convert', '-f', 'raw', '-O', 'qcow2', odd, out);
    const ref = t.file('odd-ref.qcow2');
    qemuImg('convert', '-f', 'raw', '-O', 'qcow2', odd, ref);
    expect(JSON.parse(qemuImg('info', '--output=json', out))['virtual-size']).toBe(
      JSON.parse(qemuImg('info', '--output=json', ref))['virtual-size'],
    );
    expect(qemuCompare(ref, out)).toBe(0);
    expectClean(out);
  });
});
