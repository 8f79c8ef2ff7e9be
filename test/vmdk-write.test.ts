import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuCompare, qemuImg, qemuIo, run, runStatus, standardRaw, tempDir } from './helpers/sys.ts';

// Every subformat we write: qemu-img compare says identical, qemu-img check is clean for the
// sparse ones, libvmdk's vmdkinfo opens it and pyvmdk (a second, independent reader) reads it.
const t = tempDir('diskferry-vmdk-write-');
const src = t.file('src.raw');
const SIZE = 23 * 1024 * 1024 + 2560; // not a grain multiple

const SUBFORMATS = ['monolithicSparse', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat', 'streamOptimized'] as const;
const SPARSE = new Set<string>(['monolithicSparse', 'twoGbMaxExtentSparse', 'streamOptimized']);

type Info = {
  format: string;
  'virtual-size': number;
  'format-specific': { data: { 'create-type': string; extents: { filename: string; format: string }[] } };
};

/** Reads a whole disk through python3-libvmdk and returns true when it equals `raw`. */
function pyvmdkMatches(vmdk: string, raw: string): boolean {
  const code = [
    'import pyvmdk, sys',
    'h = pyvmdk.handle(); h.open(sys.argv[1]); h.open_extent_data_files()',
    'n = h.get_media_size(); f = open(sys.argv[2], "rb")',
    'off = 0',
    'while off < n:',
    '    k = min(4 << 20, n - off)',
    '    if h.read_buffer_at_offset(k, off) != f.read(k): print("DIFF", off); sys.exit(1)',
    '    off += k',
    'print("SAME" if len(f.read()) == 0 else "LONGER")',
  ].join('\n');
  return run('/usr/bin/python3', ['-c', code, vmdk, raw]).trim() === 'SAME';
}

beforeAll(() => standardRaw(src, SIZE, 21));
afterAll(() => t.cleanup());

describe('VMDK images we write', () => {
  it.each(SUBFORMATS)('%s: identical to the source, checked by qemu-img, vmdkinfo and pyvmdk', async (sub) => {
    const out = t.file(`${sub}.vmdk`);
    await cliOk('convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${sub}`, src, out);
    expect(qemuCompare(src, out, '-f', 'raw', '-F', 'vmdk')).toBe(0);
    if (SPARSE.has(sub)) {
      const c = runStatus('qemu-img', ['check', '-f', 'vmdk', out]);
      expect(c.stdout + c.stderr).toContain('No errors were found');
      expect(c.status).toBe(0);
    }
    expect(runStatus('vmdkinfo', [out]).status).toBe(0);
    expect(pyvmdkMatches(out, src)).toBe(true);
    // qemu-img sees the create type and extents it would have made itself.
    const q = JSON.parse(qemuImg('info', '--output=json', out)) as Info;
    const ref = t.file(`${sub}.qemu.vmdk`);
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${sub}`, src, ref);
    const qr = JSON.parse(qemuImg('info', '--output=json', ref)) as Info;
    expect(q.format).toBe('vmdk');
    expect(q['virtual-size']).toBe(qr['virtual-size']);
    expect(q['format-specific'].data['create-type']).toBe(sub);
    const shape = (i: Info) =>
      i['format-specific'].data.extents.map((e) => [e.format, e.filename.replace(/.*\//, '').replace(/\.qemu/, '')]);
    expect(shape(q)).toEqual(shape(qr));
    // And our own info agrees with qemu-img's on our file.
    const ours = JSON.parse(await cliOk('info', '--output=json', out)) as Info;
    expect(ours['format-specific'].data['create-type']).toBe(sub);
    expect(ours['format-specific'].data.extents.length).toBe(q['format-specific'].data.extents.length);
  });

  it('split subformats over 2 GiB piece boundaries, from a sparse qcow2 source', async () => {
    const big = t.file('big.qcow2');
    const BIG = 4.5 * 2 ** 30 + 512;
    qemuImg('create', '-f', 'qcow2', big, String(BIG));
    qemuIo(
      '-c',
      'write -P 0x61 1M 64k',
      '-c',
      'write -P 0x62 2047M 2M',
      '-c',
      'write -P 0x63 4100M 128k',
      '-c',
      `write -P 0x64 ${BIG - 4608} 4608`,
      big,
    );
    for (const sub of ['twoGbMaxExtentSparse', 'twoGbMaxExtentFlat']) {
      const out = t.file(`big-${sub}.vmdk`);
      await cliOk('convert', '-O', 'vmdk', '-o', `subformat=${sub}`, big, out);
      const q = JSON.parse(qemuImg('info', '--output=json', out)) as Info;
      expect(q['virtual-size']).toBe(BIG);
      expect(q['format-specific'].data.extents.map((e) => e.filename.replace(/.*\//, ''))).toEqual(
        sub.endsWith('Sparse')
          ? ['big-twoGbMaxExtentSparse-s001.vmdk', 'big-twoGbMaxExtentSparse-s002.vmdk', 'big-twoGbMaxExtentSparse-s003.vmdk']
          : ['big-twoGbMaxExtentFlat-f001.vmdk', 'big-twoGbMaxExtentFlat-f002.vmdk', 'big-twoGbMaxExtentFlat-f003.vmdk'],
      );
      expect(qemuCompare(big, out)).toBe(0);
      if (sub.endsWith('Sparse')) expect(runStatus('qemu-img', ['check', out]).status).toBe(0);
      expect(runStatus('vmdkinfo', [out]).status).toBe(0);
    }
  });

  it("streamOptimized is version 3, ends with footer marker, footer and EOS, and is no more than 2% larger than qemu-img's", async () => {
    const out = t.file('streamOptimized.vmdk');
    const ref = t.file('streamOptimized.qemu.vmdk');
    const b = readFileSync(out);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    expect(b.subarray(0, 4).toString('latin1')).toBe('KDMV');
    expect(v.getUint32(4, true)).toBe(3);
    expect(v.getUint32(8, true) & 0x30000).toBe(0x30000); // compressed grains with markers
    expect(v.getUint16(77, true)).toBe(1); // deflate
    const end = b.length;
    expect(end % 512).toBe(0);
    // FOOTER marker: numSectors 1, size 0, type 3.
    expect(v.getBigUint64(end - 1536, true)).toBe(1n);
    expect(v.getUint32(end - 1536 + 8, true)).toBe(0);
    expect(v.getUint32(end - 1536 + 12, true)).toBe(3);
    // Footer: a header copy with the real grain directory offset.
    expect(b.subarray(end - 1024, end - 1020).toString('latin1')).toBe('KDMV');
    const gd = v.getBigUint64(end - 1024 + 56, true);
    expect(gd).toBeGreaterThan(0n);
    expect(gd).toBeLessThan(BigInt(end / 512));
    // The GD is preceded by a GD marker (type 2).
    expect(v.getUint32(Number(gd - 1n) * 512 + 12, true)).toBe(2);
    // End-of-stream: an all-zero sector.
    expect(b.subarray(end - 512).every((x) => x === 0)).toBe(true);
    const text = b.subarray(512, 512 + 2048).toString('latin1');
    expect(text).toContain('createType="streamOptimized"');
    expect(text).toMatch(/ddb\.toolsVersion = "\d+"/);
    expect(statSync(out).size).toBeLessThanOrEqual(statSync(ref).size * 1.02);
  });

  it('-c to vmdk means streamOptimized', async () => {
    const out = t.file('c.vmdk');
    await cliOk('convert', '-c', '-O', 'vmdk', src, out);
    const q = JSON.parse(qemuImg('info', '--output=json', out)) as Info;
    expect(q['format-specific'].data['create-type']).toBe('streamOptimized');
    expect(qemuCompare(src, out, '-f', 'raw', '-F', 'vmdk')).toBe(0);
    const r = await cli('convert', '-c', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', src, t.file('cflat.vmdk'));
    expect(r.code).not.toBe(0);
  });

  it('zeroed_grain, adapter_type, hwversion and toolsversion reach the header and descriptor', async () => {
    const out = t.file('opts.vmdk');
    await cliOk('convert', '-O', 'vmdk', '-o', 'zeroed_grain=on,adapter_type=lsilogic,hwversion=11,toolsversion=10304', src, out);
    const b = readFileSync(out);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    expect(v.getUint32(4, true)).toBe(2);
    expect(v.getUint32(8, true) & 4).toBe(4);
    const text = b.subarray(512, 512 * 21).toString('latin1');
    expect(text).toContain('ddb.adapterType = "lsilogic"');
    expect(text).toContain('ddb.geometry.heads = "255"');
    expect(text).toContain('ddb.virtualHWVersion = "11"');
    expect(text).toContain('ddb.toolsVersion = "10304"');
    expect(qemuCompare(src, out, '-f', 'raw', '-F', 'vmdk')).toBe(0);
    expect(runStatus('qemu-img', ['check', out]).status).toBe(0);
  });

  it('a delta disk over a VMDK parent (-B): parentCID matches, zeros over parent data use zeroed grains', async () => {
    const base = t.file('wbase.vmdk');
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', src, base);
    const changed = t.file('changed.vmdk');
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', src, changed);
    qemuIo('-f', 'vmdk', '-c', 'write -P 0x5a 1M 256k', '-c', 'write -z 0 1M', '-c', 'write -P 0x11 20M 64k', changed);
    for (const zg of ['off', 'on']) {
      const child = t.file(`wchild-${zg}.vmdk`);
      await cliOk('convert', '-O', 'vmdk', '-o', `zeroed_grain=${zg}`, '-B', 'wbase.vmdk', '-F', 'vmdk', changed, child);
      const q = JSON.parse(qemuImg('info', '--output=json', child));
      expect(q['backing-filename']).toBe('wbase.vmdk');
      expect(q['format-specific'].data['parent-cid']).toBe(JSON.parse(qemuImg('info', '--output=json', base))['format-specific'].data.cid);
      expect(qemuCompare(changed, child)).toBe(0);
      expect(runStatus('qemu-img', ['check', child]).status).toBe(0);
      // Only the changed grains are stored.
      expect(statSync(child).size).toBeLessThan(statSync(base).size / 4);
    }
  });
});
