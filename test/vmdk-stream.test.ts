import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { expectSameExport } from './helpers/fixtures.ts';
import { qemuImg, run, standardRaw, tempDir, writePatternedRaw } from './helpers/sys.ts';
import { buildStreamVmdk } from './helpers/vmdkStream.ts';

// Stream VMDKs that other tools make: Debian's python3-vmdkstream (VMware layout) and a
// VMware-style GD_AT_END file built from the spec by our test helper. qemu-img is the oracle,
// and the source raw file itself.
const t = tempDir('diskferry-vmdk-stream-');
const src = t.file('src.raw');
const SIZE = 14 * 1024 * 1024 + 3 * 512; // the last grain is short

beforeAll(() => standardRaw(src, SIZE, 31));
afterAll(() => t.cleanup());

async function expectReadsAsSource(file: string, tag: string): Promise<void> {
  await expectSameExport(file, t.file, tag);
  expect(Buffer.compare(readFileSync(t.file(`${tag}.ours.raw`)), readFileSync(src))).toBe(0);
}

describe('stream-optimized VMDKs from other tools', () => {
  it('python3-vmdkstream output', async () => {
    const out = t.file('vmdkstream.vmdk');
    run('/usr/bin/python3', ['-c', 'import sys, VMDKstream; VMDKstream.convert_to_stream(sys.argv[1], sys.argv[2])', src, out]);
    // It really is the GD_AT_END layout.
    expect(readFileSync(out).readBigUInt64LE(56)).toBe(0xffffffffffffffffn);
    await expectReadsAsSource(out, 'vmdkstream');
  });

  it('a VMware-style GD_AT_END file (GT/GD markers, footer, EOS) built by the test helper', async () => {
    const out = t.file('vmware.vmdk');
    writeFileSync(out, buildStreamVmdk(readFileSync(src)));
    await expectReadsAsSource(out, 'vmware');
    const info = JSON.parse((await cli('info', '--output=json', out)).stdout);
    expect(info['format-specific'].data['create-type']).toBe('streamOptimized');
    expect(info['format-specific']).toEqual(JSON.parse(qemuImg('info', '--output=json', out))['format-specific']);
  });

  it('OVFTool-style descriptor (unquoted createType, RDONLY extent) and a small grain size', async () => {
    const out = t.file('ovftool.vmdk');
    writeFileSync(out, buildStreamVmdk(readFileSync(src), { ovftoolDescriptor: true, grainSectors: 16 }));
    await expectReadsAsSource(out, 'ovftool');
  });

  it('compressed grains without markers (GD in place)', async () => {
    const text = t.file('text.raw');
    // Text and zero pages only: QEMU reads marker-less grains only when they compress below a grain.
    writePatternedRaw(
      text,
      6 * 1024 * 1024,
      [
        { offset: 0, length: 2 * 1024 * 1024 },
        { offset: 5 * 1024 * 1024, length: 1024 * 1024 },
      ],
      4,
    );
    const raw = readFileSync(text);
    for (let p = 0; p < raw.length; p += 4096) if (raw[p + 1]! > 0x7f) raw.fill(0x20, p, p + 4096); // drop random-looking pages
    writeFileSync(text, raw);
    const out = t.file('nomarkers.vmdk');
    writeFileSync(out, buildStreamVmdk(raw, { noMarkers: true }));
    await expectSameExport(out, t.file, 'nomarkers');
    expect(Buffer.compare(readFileSync(t.file('nomarkers.ours.raw')), raw)).toBe(0);
  });

  it('a stream file padded after its end-of-stream marker still finds its footer', async () => {
    const out = t.file('padded.vmdk');
    writeFileSync(out, buildStreamVmdk(readFileSync(src), { trailingPadSectors: 7 }));
    // qemu-img requires the footer in the last three sectors (vmdk_open_vmdk4), so the oracle
    // here is the source itself.
    const mine = t.file('padded.ours.raw');
    const r = await cli('convert', '-O', 'raw', out, mine);
    expect(r.stderr).toBe('');
    expect(Buffer.compare(readFileSync(mine), readFileSync(src))).toBe(0);
  });

  it('a GD_AT_END file without a footer is refused with a clear error', async () => {
    const good = buildStreamVmdk(readFileSync(src));
    const out = t.file('nofooter.vmdk');
    writeFileSync(out, good.subarray(0, good.length - 1536));
    const r = await cli('convert', '-O', 'raw', out, t.file('nofooter.raw'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/nofooter\.vmdk: .*footer/);
  });
});
