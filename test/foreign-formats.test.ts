import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { qemuImg, qemuImgCalibrating, tempDir } from './helpers/sys.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { FOREIGN_FORMATS } from '../src-core/image/foreignFormats.ts';
import { probe } from '../src-core/image/open.ts';
import { MemorySource } from '../src-core/io/bytes.ts';

// Formats qemu-img reads must never be probed as raw: their metadata would be converted as if it
// were guest data. qemu-img makes the images; each must be taken by the driver of its name.
const t = tempDir();
afterAll(() => t.cleanup());

const QEMU_MADE: [string, string[]][] = [
  ['parallels', ['create', '-f', 'parallels']],
  ['qed', ['create', '-f', 'qed']],
  ['luks', ['create', '--object', 'secret,id=s0,data=pw', '-f', 'luks', '-o', 'key-secret=s0,iter-time=10']],
  ['qcow2', ['create', '-f', 'qcow2']],
  ['vhdx', ['create', '-f', 'vhdx']],
  ['vdi', ['create', '-f', 'vdi']],
];

describe('qemu-img images are never taken for raw', () => {
  it.each(QEMU_MADE)('%s is probed by its own driver, whatever the file is called', async (name, args) => {
    const f = t.file(`disk.${name}`);
    qemuImgCalibrating(...args, f, '4M');
    expect(JSON.parse(qemuImg('info', '--output=json', f)).format).toBe(name);
    const src = new MemorySource(new Uint8Array(readFileSync(f)), 'disk.img');
    expect((await probe(src, drivers)).name).toBe(name);
    const r = await cli('info', '--output=json', f);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).format).toBe(name);
  });

  it('a LUKS2 volume (which qemu-img 7.2 cannot open either) is named and refused, not raw', async () => {
    const head = new Uint8Array(8192);
    head.set([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe, 0, 2]);
    const f = t.file('volume.img');
    (await import('node:fs')).writeFileSync(f, head);
    const r = await cli('info', f);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/volume\.img: .*LUKS.*2/i);
  });

  it('the table of formats without a driver names none that has one', () => {
    expect(FOREIGN_FORMATS.map((f) => f.name).filter((n) => drivers.some((d) => d.name === n))).toEqual([]);
  });
});
