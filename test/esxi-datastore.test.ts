import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuCompare, qemuImg, tempDir, writePatternedRaw } from './helpers/sys.ts';

/**
 * `--target=esxi-datastore`: the pair an ESXi datastore runs, a createType "vmfs" descriptor and
 * its flat extent. qemu-img is the independent reader: it opens the descriptor, follows the VMFS
 * extent line and must read the source's bytes.
 */

const t = tempDir('diskferry-esxi-ds-');
afterAll(() => t.cleanup());
const MiB = 1024 * 1024;
const SIZE = 12 * MiB + 3 * 512;

beforeAll(() => {
  writePatternedRaw(
    t.file('src.raw'),
    SIZE,
    [
      { offset: 0, length: MiB + 77 },
      { offset: 6 * MiB, length: 200000 },
      { offset: SIZE - 4096, length: 4096 },
    ],
    11,
  );
});

/** The descriptor's `key = "value"` lines and its extent lines. */
function descriptor(file: string): { keys: Record<string, string>; extents: string[] } {
  const keys: Record<string, string> = {};
  const extents: string[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([\w.]+)\s*=\s*"?([^"]*)"?\s*$/.exec(line);
    if (m) keys[m[1]!] = m[2]!;
    if (/^(RW|RDONLY|NOACCESS) /.test(line)) extents.push(line);
  }
  return { keys, extents };
}

describe('convert --target=esxi-datastore', () => {
  it('writes a createType "vmfs" descriptor and its -flat.vmdk, which qemu-img reads as the source', async () => {
    await cliOk('convert', '--target=esxi-datastore', t.file('src.raw'), t.file('vm.vmdk'));
    const d = descriptor(t.file('vm.vmdk'));
    expect(d.keys.createType).toBe('vmfs');
    expect(d.keys['ddb.adapterType']).toBe('lsilogic');
    expect(d.extents).toEqual([`RW ${SIZE / 512} VMFS "vm-flat.vmdk"`]);
    // The flat extent holds the raw guest bytes, whole.
    expect(statSync(t.file('vm-flat.vmdk')).size).toBe(SIZE);
    expect(Buffer.compare(readFileSync(t.file('vm-flat.vmdk')), readFileSync(t.file('src.raw')))).toBe(0);
    const info = JSON.parse(qemuImg('info', '--output=json', t.file('vm.vmdk')));
    expect(info.format).toBe('vmdk');
    expect(info['virtual-size']).toBe(SIZE);
    expect(info['format-specific'].data['create-type']).toBe('vmfs');
    expect(qemuCompare(t.file('src.raw'), t.file('vm.vmdk'), '-f', 'raw', '-F', 'vmdk')).toBe(0);
    // qemu-img convert -O raw of the descriptor gives the source back byte for byte.
    qemuImg('convert', '-f', 'vmdk', '-O', 'raw', t.file('vm.vmdk'), t.file('vm.back.raw'));
    expect(Buffer.compare(readFileSync(t.file('vm.back.raw')), readFileSync(t.file('src.raw')))).toBe(0);
  });

  it('-o adapter_type= changes ddb.adapterType; the vmfs layout itself cannot be changed', async () => {
    await cliOk('convert', '--target=esxi-datastore', '-o', 'adapter_type=buslogic', t.file('src.raw'), t.file('bus.vmdk'));
    expect(descriptor(t.file('bus.vmdk')).keys['ddb.adapterType']).toBe('buslogic');
    expect(qemuCompare(t.file('src.raw'), t.file('bus.vmdk'), '-f', 'raw', '-F', 'vmdk')).toBe(0);
    const r = await cli('convert', '--target=esxi-datastore', '-o', 'subformat=monolithicFlat', t.file('src.raw'), t.file('no.vmdk'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--target=esxi-datastore sets -o subformat=vmfs, but -o subformat=monolithicFlat was given');
    expect(existsSync(t.file('no.vmdk'))).toBe(false);
  });

  it('-O vmdk -o subformat=vmfs is the same pair; -c and a backing file are refused', async () => {
    await cliOk('convert', '-O', 'vmdk', '-o', 'subformat=vmfs', t.file('src.raw'), t.file('plain.vmdk'));
    const d = descriptor(t.file('plain.vmdk'));
    expect(d.keys.createType).toBe('vmfs');
    expect(d.extents).toEqual([`RW ${SIZE / 512} VMFS "plain-flat.vmdk"`]);
    expect(qemuCompare(t.file('src.raw'), t.file('plain.vmdk'), '-f', 'raw', '-F', 'vmdk')).toBe(0);
    const c = await cli('convert', '-c', '-O', 'vmdk', '-o', 'subformat=vmfs', t.file('src.raw'), t.file('c.vmdk'));
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/needs subformat=streamOptimized, not vmfs/);
    expect(readdirSync(t.dir).filter((f) => f.startsWith('c.') || f.startsWith('c-') || f.includes('.part'))).toEqual([]);
  });
});
