import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliOk } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { qemuImg, qemuIo, standardRaw, tempDir } from './helpers/sys.ts';

// Every qcow2 flavour qemu-img can produce, read by us and by qemu-img: the raw exports must match.
const t = tempDir();
const src = t.file('src.raw');
const SIZE = 29 * 1024 * 1024 + 1536; // not a power of two, not a cluster multiple

const CASES: [string, string[]][] = [
  ['default', []],
  ['cluster-512', ['-o', 'cluster_size=512']],
  ['cluster-4k', ['-o', 'cluster_size=4k']],
  ['cluster-2M', ['-o', 'cluster_size=2M']],
  ['compressed', ['-c']],
  ['compressed-4k', ['-c', '-o', 'cluster_size=4k']],
  ['compressed-512', ['-c', '-o', 'cluster_size=512']],
  ['compressed-2M', ['-c', '-o', 'cluster_size=2M']],
  ['zstd', ['-c', '-o', 'compression_type=zstd']],
  ['compat-0.10', ['-o', 'compat=0.10']],
  ['compat-0.10-compressed', ['-c', '-o', 'compat=0.10']],
  ['extended-l2', ['-o', 'extended_l2=on']],
  ['refcount-1', ['-o', 'refcount_bits=1']],
  ['refcount-64', ['-o', 'refcount_bits=64']],
];

beforeAll(() => {
  standardRaw(src, SIZE, 7);
  for (const [name, args] of CASES) qemuImg('convert', '-f', 'raw', ...args, '-O', 'qcow2', src, t.file(`${name}.qcow2`));
});
afterAll(() => t.cleanup());

describe('qcow2 images made by qemu-img read byte-identically', () => {
  it.each(CASES)('%s', async (name) => {
    await expectSameExport(t.file(`${name}.qcow2`), t.file, name);
    await expectInfoMatches(t.file(`${name}.qcow2`));
  });

  it('an overlay over a raw base with data, plain zero, preallocated zero and discarded clusters', async () => {
    const base = t.file('base.raw');
    standardRaw(base, 8 << 20, 3);
    const ov = t.file('overlay.qcow2');
    qemuImg('create', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', ov);
    qemuIo(
      '-f',
      'qcow2',
      '-c',
      'write -P 0x5a 64k 192k', // data
      '-c',
      'write -z 1M 128k', // plain zero
      '-c',
      'write -P 0x33 2M 128k',
      '-c',
      'write -z 2M 64k', // zero over allocated data: preallocated zero
      '-c',
      'write -P 0x44 3M 256k',
      '-c',
      'discard 3M 128k', // discarded
      '-c',
      'write -z -u 4M 64k',
      ov,
    );
    const map = JSON.parse(qemuImg('map', '--output=json', ov)) as { zero: boolean; offset?: number; depth: number }[];
    // The fixture really has a preallocated zero cluster (zero with a host offset at depth 0).
    expect(map.some((e) => e.zero && e.depth === 0 && e.offset !== undefined)).toBe(true);
    await expectSameExport(ov, t.file, 'overlay');
    await expectInfoMatches(ov);
  });

  it('a chain of three with a qcow2 base', async () => {
    const b = t.file('chain0.qcow2');
    qemuImg('convert', '-O', 'qcow2', src, b);
    qemuImg('create', '-f', 'qcow2', '-b', 'chain0.qcow2', '-F', 'qcow2', t.file('chain1.qcow2'));
    qemuIo('-c', 'write -P 0x11 1M 1M', t.file('chain1.qcow2'));
    qemuImg('create', '-f', 'qcow2', '-b', 'chain1.qcow2', '-F', 'qcow2', t.file('chain2.qcow2'));
    qemuIo('-c', 'write -P 0x22 1536k 1M', '-c', 'write -z 5M 1M', t.file('chain2.qcow2'));
    await expectSameExport(t.file('chain2.qcow2'), t.file, 'chain');
    await expectInfoMatches(t.file('chain2.qcow2'), ['--backing-chain']);
  });

  it('an internal snapshot overwritten afterwards reads both as now and as at the snapshot', async () => {
    const img = t.file('snap.qcow2');
    qemuImg('convert', '-O', 'qcow2', src, img);
    qemuImg('snapshot', '-c', 'before', img);
    qemuIo('-c', 'write -P 0x77 0 2M', '-c', 'write -z 4M 1M', '-c', 'write -P 0x78 28M 64k', img);
    qemuImg('snapshot', '-c', 'after', img);
    qemuIo('-c', 'write -P 0x79 8M 64k', img);
    await expectSameExport(img, t.file, 'snap-now');
    await expectSameExport(img, t.file, 'snap-before', ['-l', 'snapshot.name=before']);
    await expectSameExport(img, t.file, 'snap-after', ['-l', 'snapshot.name=after']);
    await expectInfoMatches(img);
    // snapshot -l prints the list as qemu-img does (both in this machine's local time).
    expect(await cliOk('snapshot', '-l', img)).toBe(qemuImg('snapshot', '-l', img));
  });
});
