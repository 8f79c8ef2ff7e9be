import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { expectSameExport } from './helpers/fixtures.ts';
import { qemuImg, run, standardRaw, tempDir } from './helpers/sys.ts';
import { buildCowd, buildSeSparse, esxDescriptor } from './helpers/vmdkEsx.ts';

// ESXi extents qemu-img reads but cannot make (COWD, seSparse), built from their layouts by test
// helpers, alone and as delta disks over a qemu-made parent; plus descriptor forms VMware
// writes (vmfs, RDONLY/ZERO/NOACCESS extents, offsets, encodings, CRLF).
const t = tempDir('diskferry-vmdk-esx-');
const SIZE = 9 * 1024 * 1024;
const baseRaw = t.file('base.raw');
let base: Buffer;
let changed: Buffer;
let parentCid = 0;
const MiB = 1024 * 1024;

beforeAll(() => {
  standardRaw(baseRaw, SIZE, 51);
  base = readFileSync(baseRaw);
  qemuImg('convert', '-f', 'raw', '-O', 'vmdk', baseRaw, t.file('parent.vmdk'));
  parentCid = JSON.parse(qemuImg('info', '--output=json', t.file('parent.vmdk')))['format-specific'].data.cid;
  // The child's view: three changed ranges, one of them zeroed.
  changed = Buffer.from(base);
  changed.fill(0x5a, 1 * MiB, 1 * MiB + 300 * 1024);
  changed.fill(0, 4 * MiB, 5 * MiB);
  changed.fill(0x77, SIZE - 8192, SIZE);
  writeFileSync(t.file('changed.raw'), changed);
});
afterAll(() => t.cleanup());

const differs = (grainBytes: number) => (g: number) =>
  Buffer.compare(base.subarray(g * grainBytes, (g + 1) * grainBytes), changed.subarray(g * grainBytes, (g + 1) * grainBytes)) !== 0;

async function expectBytes(file: string, expected: Buffer, tag: string): Promise<void> {
  const out = t.file(`${tag}.ours.raw`);
  const r = await cli('convert', '-O', 'raw', file, out);
  expect(r.stderr).toBe('');
  expect(Buffer.compare(readFileSync(out), expected)).toBe(0);
}

describe('ESXi extents', () => {
  it('vmfsSparse (COWD) alone reads as qemu-img reads it', async () => {
    writeFileSync(t.file('cowd-delta.vmdk'), buildCowd(base));
    writeFileSync(t.file('cowd.vmdk'), esxDescriptor('vmfsSparse', 'VMFSSPARSE', SIZE / 512, 'cowd-delta.vmdk'));
    await expectSameExport(t.file('cowd.vmdk'), t.file, 'cowd');
    await expectBytes(t.file('cowd.vmdk'), base, 'cowd2');
    const info = JSON.parse(await cliOk('info', '--output=json', t.file('cowd.vmdk')));
    expect(info['format-specific']).toEqual(JSON.parse(qemuImg('info', '--output=json', t.file('cowd.vmdk')))['format-specific']);
  });

  it('vmfsSparse (COWD) delta over a parent', async () => {
    writeFileSync(t.file('cowdchild-delta.vmdk'), buildCowd(changed, 16, differs(8192)));
    writeFileSync(
      t.file('cowdchild.vmdk'),
      esxDescriptor('vmfsSparse', 'VMFSSPARSE', SIZE / 512, 'cowdchild-delta.vmdk', { name: 'parent.vmdk', cid: parentCid }),
    );
    await expectSameExport(t.file('cowdchild.vmdk'), t.file, 'cowdchild');
    await expectBytes(t.file('cowdchild.vmdk'), changed, 'cowdchild2');
  });

  it('seSparse alone, with zero and unmapped grains, reads as qemu-img reads it', async () => {
    let n = 0;
    writeFileSync(
      t.file('se-sesparse.vmdk'),
      buildSeSparse(base, (_g, c) =>
        c.every((x) => x === 0) ? (n++ % 3 === 0 ? 'zero' : n % 3 === 1 ? 'unmapped' : 'unallocated') : 'data',
      ),
    );
    writeFileSync(t.file('se.vmdk'), esxDescriptor('seSparse', 'SESPARSE', SIZE / 512, 'se-sesparse.vmdk'));
    await expectSameExport(t.file('se.vmdk'), t.file, 'se');
    await expectBytes(t.file('se.vmdk'), base, 'se2');
    const info = JSON.parse(await cliOk('info', '--output=json', t.file('se.vmdk')));
    expect(info['format-specific']).toEqual(JSON.parse(qemuImg('info', '--output=json', t.file('se.vmdk')))['format-specific']);
  });

  it('seSparse delta over a parent: data, zero grains hiding parent data, the rest from the parent', async () => {
    const d = differs(4096);
    writeFileSync(
      t.file('sechild-sesparse.vmdk'),
      buildSeSparse(changed, (g, c) => (!d(g) ? 'unallocated' : c.every((x) => x === 0) ? 'zero' : 'data')),
    );
    writeFileSync(
      t.file('sechild.vmdk'),
      esxDescriptor('seSparse', 'SESPARSE', SIZE / 512, 'sechild-sesparse.vmdk', { name: 'parent.vmdk', cid: parentCid }),
    );
    await expectSameExport(t.file('sechild.vmdk'), t.file, 'sechild');
    await expectBytes(t.file('sechild.vmdk'), changed, 'sechild2');
  });

  it('a seSparse file with a dirty journal is refused', async () => {
    const b = buildSeSparse(base);
    b.writeBigUInt64LE(1n, 512 + 24); // volatile header: replay_journal
    writeFileSync(t.file('dirty-sesparse.vmdk'), b);
    writeFileSync(t.file('dirty.vmdk'), esxDescriptor('seSparse', 'SESPARSE', SIZE / 512, 'dirty-sesparse.vmdk'));
    const r = await cli('convert', '-O', 'raw', t.file('dirty.vmdk'), t.file('dirty.raw'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/dirty-sesparse\.vmdk: .*journal/);
  });
});

describe('descriptor forms', () => {
  it('createType vmfs with a VMFS extent (no offset column)', async () => {
    writeFileSync(t.file('esx-flat.vmdk'), base);
    writeFileSync(t.file('esx.vmdk'), esxDescriptor('vmfs', 'VMFS', SIZE / 512, 'esx-flat.vmdk') + 'ddb.thinProvisioned = "1"\n');
    await expectSameExport(t.file('esx.vmdk'), t.file, 'esx');
  });

  it('FLAT offsets, CRLF line endings and blank lines kept as VMware reads them', async () => {
    // One file holding two pieces at different offsets, described out of order.
    const pad = Buffer.alloc(3 * 512, 0xee);
    writeFileSync(t.file('pieces.bin'), Buffer.concat([pad, base.subarray(5 * MiB), base.subarray(0, 5 * MiB)]));
    const text = [
      '# Disk DescriptorFile',
      'version=1',
      'CID=fffffffd',
      'parentCID=ffffffff',
      'createType="monolithicFlat"',
      '',
      '# Extent description',
      `RW ${(5 * MiB) / 512} FLAT "pieces.bin" ${3 + (SIZE - 5 * MiB) / 512}`,
      '',
      `RW ${(SIZE - 5 * MiB) / 512} FLAT "pieces.bin" 3`,
      '',
      '# The Disk Data Base',
      '#DDB',
      'ddb.adapterType = "ide"',
      '',
    ].join('\r\n');
    writeFileSync(t.file('pieces.vmdk'), text);
    // QEMU would duplicate the extent after the blank line (docs/formats/vmdk.md, Traps); VMware and we do not.
    await expectBytes(t.file('pieces.vmdk'), base, 'pieces');
    const info = JSON.parse(await cliOk('info', '--output=json', t.file('pieces.vmdk')));
    expect(info['virtual-size']).toBe(SIZE);
    expect(info['format-specific'].data.extents).toHaveLength(2);
  });

  it("RDONLY, ZERO and NOACCESS extents keep their place (libvmdk/VMware semantics, not QEMU's)", async () => {
    writeFileSync(t.file('part-a.bin'), base.subarray(0, 2 * MiB));
    writeFileSync(t.file('part-c.bin'), base.subarray(3 * MiB, 6 * MiB));
    const text =
      '# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\ncreateType=monolithicFlat\n' +
      '# Extent description\n' +
      `RDONLY ${(2 * MiB) / 512} FLAT "part-a.bin" 0\n` +
      `RW ${MiB / 512} ZERO\n` +
      `RW ${(3 * MiB) / 512} FLAT "part-c.bin" 0\n` +
      `NOACCESS ${MiB / 512} FLAT "nowhere.bin" 0\n` +
      '\n# The Disk Data Base\n#DDB\n\nddb.adapterType = "ide"\n';
    writeFileSync(t.file('mixed.vmdk'), text);
    const expected = Buffer.alloc(7 * MiB);
    base.copy(expected, 0, 0, 2 * MiB);
    base.copy(expected, 3 * MiB, 3 * MiB, 6 * MiB);
    await expectBytes(t.file('mixed.vmdk'), expected, 'mixed');
    // libvmdk sees the same disk size and extents (vmdkinfo prints the media size in bytes).
    const vi = run('vmdkinfo', [t.file('mixed.vmdk')]);
    expect(vi).toMatch(new RegExp(`\\(${7 * MiB} bytes\\)`));
    expect(vi).toMatch(/Number of extents:\s+4/);
    const info = JSON.parse(await cliOk('info', '--output=json', t.file('mixed.vmdk')));
    expect(info['virtual-size']).toBe(7 * MiB);
  });

  it('a windows-1252 descriptor names its extent in that encoding', async () => {
    const name = 'disqu\u00e9-flat.vmdk';
    writeFileSync(t.file(name), base);
    const text = `# Disk DescriptorFile\nversion=1\nencoding="windows-1252"\nCID=abc\nparentCID=ffffffff\ncreateType="monolithicFlat"\n# Extent description\nRW ${SIZE / 512} FLAT "${name}" 0\n`;
    writeFileSync(t.file('cp1252.vmdk'), Buffer.from(text, 'latin1'));
    await expectBytes(t.file('cp1252.vmdk'), base, 'cp1252');
  });

  it('descriptor versions 2 and 3 (changeTrackPath) read as qemu-img reads them', async () => {
    writeFileSync(t.file('v-flat.vmdk'), base);
    for (const version of [2, 3]) {
      const f = t.file(`v${version}.vmdk`);
      writeFileSync(
        f,
        `# Disk DescriptorFile\nversion=${version}\nencoding="UTF-8"\nCID=00c0ffee\nparentCID=ffffffff\nisNativeSnapshot="no"\ncreateType="monolithicFlat"\n` +
          (version === 3 ? 'changeTrackPath="v-ctk.vmdk"\n' : '') +
          `# Extent description\nRW ${SIZE / 512} FLAT "v-flat.vmdk" 0\n\n# The Disk Data Base\n#DDB\n\nddb.uuid = "60 00 C2 9a"\n`,
      );
      await expectSameExport(f, t.file, `v${version}`);
      const info = JSON.parse(await cliOk('info', '--output=json', f));
      expect(info['format-specific']).toEqual(JSON.parse(qemuImg('info', '--output=json', f))['format-specific']);
    }
  });

  it('a sparse header of capacity 0 that only carries a descriptor (vmdk_open_vmdk4)', async () => {
    writeFileSync(t.file('hdr-flat.vmdk'), base);
    const desc = Buffer.from(
      `# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\n# Extent description\nRW ${SIZE / 512} FLAT "hdr-flat.vmdk" 0\n`,
    );
    const f = Buffer.alloc(512 * 21);
    f.write('KDMV', 0, 'latin1');
    f.writeUInt32LE(1, 4);
    f.writeBigUInt64LE(1n, 28); // descriptor at sector 1
    f.writeBigUInt64LE(20n, 36);
    desc.copy(f, 512);
    writeFileSync(t.file('hdr.vmdk'), f);
    await expectSameExport(t.file('hdr.vmdk'), t.file, 'hdr');
  });

  it('an extent outside the image folder is refused unless allowed', async () => {
    const text = `# Disk DescriptorFile\nversion=1\nCID=abc\nparentCID=ffffffff\ncreateType="monolithicFlat"\n# Extent description\nRW 2048 FLAT "../etc-passwd-flat.vmdk" 0\n`;
    writeFileSync(t.file('escape.vmdk'), text);
    const r = await cli('convert', '-O', 'raw', t.file('escape.vmdk'), t.file('escape.raw'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('etc-passwd-flat.vmdk');
    expect(r.stderr).toMatch(/outside/);
  });
});
