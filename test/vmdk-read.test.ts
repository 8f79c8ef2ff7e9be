import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { NodeFileSource, NodeResolver } from '../cli/nodeFiles.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { qemuImg, qemuIo, runStatus, standardRaw, tempDir } from './helpers/sys.ts';

// Every VMDK subformat qemu-img makes, read by us and by qemu-img: the raw exports must match.
const t = tempDir('diskferry-vmdk-read-');
const src = t.file('src.raw');
const SIZE = 21 * 1024 * 1024 + 1536; // not a grain multiple
const BIG = 5 * 1024 * 1024 * 1024 + 512 * 1024; // three 2 GiB pieces, the last one short

const CASES: [string, string[]][] = [
  ['monolithicSparse', []],
  ['monolithicFlat', ['-o', 'subformat=monolithicFlat']],
  ['twoGbMaxExtentSparse', ['-o', 'subformat=twoGbMaxExtentSparse']],
  ['twoGbMaxExtentFlat', ['-o', 'subformat=twoGbMaxExtentFlat']],
  ['streamOptimized', ['-o', 'subformat=streamOptimized']],
  ['zeroed-grain', ['-o', 'zeroed_grain=on']],
  ['lsilogic-compat6', ['-o', 'adapter_type=lsilogic,compat6=on']],
];

type Info = {
  'virtual-size': number;
  'format-specific': { data: { 'create-type': string; extents: unknown[]; cid: number; 'parent-cid': number } };
};
const infoOf = async (f: string): Promise<Info> => JSON.parse(await cliOk('info', '--output=json', f));
const qemuInfo = (f: string): Info => JSON.parse(qemuImg('info', '--output=json', f));

beforeAll(() => {
  standardRaw(src, SIZE, 11);
  for (const [name, args] of CASES) qemuImg('convert', '-f', 'raw', ...args, '-O', 'vmdk', src, t.file(`${name}.vmdk`));
});
afterAll(() => t.cleanup());

describe('VMDK images made by qemu-img read byte-identically', () => {
  it.each(CASES)('%s', async (name) => {
    const f = t.file(`${name}.vmdk`);
    await expectSameExport(f, t.file, name);
    // Every field qemu-img prints, including actual-size summed over the extent files.
    await expectInfoMatches(f);
    expect(JSON.parse(await cliOk('check', '--output=json', f))).toEqual(JSON.parse(qemuImg('check', '--output=json', f)));
    // The allocation map too, where qemu-img does not recurse into a flat file's own holes.
    if (!name.includes('Flat')) expect(await cliOk('map', '--output=json', f)).toBe(qemuImg('map', '--output=json', f));
  });

  it('split pieces over 2 GiB boundaries, with data in every piece and across a boundary', async () => {
    for (const sub of ['twoGbMaxExtentSparse', 'twoGbMaxExtentFlat']) {
      const f = t.file(`big-${sub}.vmdk`);
      qemuImg('create', '-f', 'vmdk', '-o', `subformat=${sub}`, f, String(BIG));
      qemuIo(
        '-f',
        'vmdk',
        '-c',
        'write -P 0x61 1M 64k',
        '-c',
        'write -P 0x62 2047M 2M',
        '-c',
        'write -P 0x63 4100M 128k',
        '-c',
        `write -P 0x64 ${BIG - 65536} 65536`,
        f,
      );
      const ours = await infoOf(f);
      const theirs = qemuInfo(f);
      expect(ours['format-specific'].data['create-type']).toBe(sub);
      expect(ours['format-specific'].data.extents).toHaveLength(3);
      expect(ours['format-specific']).toEqual(theirs['format-specific']);
      // Only the written ranges (a full 5 GiB export is too slow here): qemu-io confirms each
      // pattern in qemu's view, and our reads must hold the same bytes, with zeros around them.
      const dev = await openImage(await NodeFileSource.open(f), drivers, { resolver: new NodeResolver([t.dir]), codecs: nodeCodecs });
      try {
        for (const [off, len, byte] of [
          [1 << 20, 65536, 0x61],
          [2047 * 2 ** 20, 2 * 2 ** 20, 0x62],
          [4100 * 2 ** 20, 131072, 0x63],
          [BIG - 65536, 65536, 0x64],
        ] as const) {
          qemuIo('-f', 'vmdk', '-c', `read -P 0x${byte.toString(16)} ${off} ${len}`, f);
          const bytes = await dev.read(off - 65536, len + 131072);
          expect(bytes.subarray(65536, 65536 + len).every((b) => b === byte)).toBe(true);
          expect(bytes.subarray(0, 65536).every((b) => b === 0)).toBe(true);
          expect(bytes.subarray(65536 + len).every((b) => b === 0)).toBe(true);
        }
      } finally {
        await dev.close();
      }
    }
  });

  it('zeroed_grain=on with zeroed ranges written by qemu-io, over data and over a parent', async () => {
    const f = t.file('zg.vmdk');
    qemuImg('convert', '-O', 'vmdk', '-o', 'zeroed_grain=on', src, f);
    qemuIo('-f', 'vmdk', '-c', 'write -z 0 128k', '-c', 'write -z 3M 1M', '-c', 'write -z 20M 64k', f);
    await expectSameExport(f, t.file, 'zg');
    // The same zeros in a delta disk must hide the parent's data.
    const base = t.file('zgbase.vmdk');
    qemuImg('convert', '-O', 'vmdk', src, base);
    const child = t.file('zgchild.vmdk');
    qemuImg('create', '-f', 'vmdk', '-o', 'zeroed_grain=on', '-b', 'zgbase.vmdk', '-F', 'vmdk', child);
    qemuIo('-f', 'vmdk', '-c', 'write -z 1M 1M', '-c', 'write -P 0x42 5M 64k', child);
    const map = JSON.parse(qemuImg('map', '--output=json', child)) as { zero: boolean; depth: number }[];
    expect(map.some((e) => e.zero && e.depth === 0)).toBe(true);
    await expectSameExport(child, t.file, 'zgchild');
  });

  it('a delta disk over a parent, and a CID mismatch reported instead of read', async () => {
    const base = t.file('base.vmdk');
    qemuImg('convert', '-O', 'vmdk', src, base);
    const child = t.file('child.vmdk');
    qemuImg('create', '-f', 'vmdk', '-b', 'base.vmdk', '-F', 'vmdk', child);
    qemuIo('-f', 'vmdk', '-c', 'write -P 0x5a 64k 192k', '-c', 'write -P 0x33 7M 1M', child);
    await expectSameExport(child, t.file, 'child');
    const info = JSON.parse(await cliOk('info', '--output=json', child));
    const q = JSON.parse(qemuImg('info', '--output=json', child));
    for (const k of ['backing-filename', 'full-backing-filename', 'backing-filename-format', 'format-specific', 'virtual-size'])
      expect(info[k]).toEqual(q[k]);
    // Writing to the parent gives it a new CID: the child no longer matches it.
    qemuIo('-f', 'vmdk', '-c', 'write -P 0x11 0 64k', base);
    const r = await cli('convert', '-O', 'raw', child, t.file('child-bad.raw'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/CID/);
    expect(existsSync(t.file('child-bad.raw'))).toBe(false);
    // As in qemu-img, info on the chain still works; only data from the wrong parent is refused.
    const chain = JSON.parse(await cliOk('info', '--backing-chain', '--output=json', child));
    expect(chain).toHaveLength(2);
  });

  it('check finds a grain that points past the end of its extent file, as qemu-img check does', async () => {
    const f = t.file('badgte.vmdk');
    qemuImg('convert', '-O', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', src, f);
    const piece = t.file('badgte-s001.vmdk');
    const b = readFileSync(piece);
    const gt = b.readUInt32LE(Number(b.readBigUInt64LE(56)) * 512);
    b.writeUInt32LE(99999999, gt * 512 + 8); // grain 2
    writeFileSync(piece, b);
    const q = runStatus('qemu-img', ['check', f]);
    const ours = await cli('check', f);
    expect(ours.code).toBe(q.status);
    expect(q.stderr).toContain('sector 256 points after EOF');
    expect(ours.stdout).toContain('sector 256 points after EOF');
  });

  it('a lost primary grain directory offset falls back to the redundant one', async () => {
    const f = t.file('rgd.vmdk');
    qemuImg('convert', '-O', 'vmdk', src, f);
    qemuImg('convert', '-O', 'raw', f, t.file('rgd.qemu.raw'));
    const b = readFileSync(f);
    b.writeBigUInt64LE(0n, 56); // gdOffset
    writeFileSync(f, b);
    await cliOk('convert', '-O', 'raw', f, t.file('rgd.ours.raw'));
    expect(Buffer.compare(readFileSync(t.file('rgd.ours.raw')), readFileSync(t.file('rgd.qemu.raw')))).toBe(0);
  });

  it('a descriptor that names a missing extent fails naming the file, and writes nothing', async () => {
    const f = t.file('missing.vmdk');
    qemuImg('create', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', f, '3G');
    rmSync(t.file('missing-s002.vmdk'));
    const r = await cli('convert', '-O', 'raw', f, t.file('missing.raw'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('missing-s002.vmdk');
    expect(existsSync(t.file('missing.raw'))).toBe(false);
  });
});
