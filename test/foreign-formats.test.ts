import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { qemuImg, tempDir } from './helpers/sys.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { FOREIGN_FORMATS } from '../src-core/image/foreignFormats.ts';
import { probe, probeDetailed } from '../src-core/image/open.ts';
import type { FormatDriver } from '../src-core/image/types.ts';
import { MemorySource } from '../src-core/io/bytes.ts';
import { UnsupportedError } from '../src-core/io/errors.ts';

// Formats qemu-img reads and DiskFerry cannot must never be probed as raw: their metadata would
// be converted as if it were guest data. qemu-img makes the images, and names them the same way.
const t = tempDir();
afterAll(() => t.cleanup());

const QEMU_MADE: [string, string[]][] = [
  ['parallels', ['create', '-f', 'parallels']],
  ['qed', ['create', '-f', 'qed']],
  ['luks', ['create', '--object', 'secret,id=s0,data=pw', '-f', 'luks', '-o', 'key-secret=s0,iter-time=10']],
];

const notDrivers = FOREIGN_FORMATS.filter((f) => !drivers.some((d) => d.name === f.name));

describe('qemu-img images of formats DiskFerry cannot read are refused, not taken as raw', () => {
  it.each(QEMU_MADE.filter(([n]) => notDrivers.some((f) => f.name === n)))('%s', async (name, args) => {
    const f = t.file(`disk.${name}`);
    qemuImg(...args, f, '4M');
    expect(JSON.parse(qemuImg('info', '--output=json', f)).format).toBe(name);
    const src = new MemorySource(new Uint8Array(readFileSync(f)), 'disk.img');
    const err = await probe(src, drivers).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect(err.message).toBe(`disk.img: this is a ${name} image, which DiskFerry cannot read yet`);
    const r = await cli('info', f);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`this is a ${name} image, which DiskFerry cannot read yet`);
    // Forcing raw is the user's choice, as with qemu-img -f raw.
    const forced = await cli('info', '--output=json', '-f', 'raw', f);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout).format).toBe('raw');
  });
});

/** Headers built from each QEMU probe's rules, and near misses that must stay raw. */
function header(size: number, parts: [number, number[] | string][]): Uint8Array {
  const b = new Uint8Array(size);
  for (const [at, v] of parts) b.set(typeof v === 'string' ? [...v].map((c) => c.charCodeAt(0)) : v, at);
  return b;
}
const le32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];

const MAGICS: [string, Uint8Array, Uint8Array][] = [
  ['parallels', header(4096, [[0, 'WithoutFreeSpace'], [16, le32(2)]]), header(4096, [[0, 'WithoutFreeSpace'], [16, le32(3)]])],
  ['parallels', header(4096, [[0, 'WithouFreSpacExt'], [16, le32(2)]]), header(4096, [[0, 'WithouFreSpacExx'], [16, le32(2)]])],
  ['qed', header(4096, [[0, 'QED\0']]), header(4096, [[0, 'QED!']])],
  ['luks', header(4096, [[0, 'LUKS'], [4, [0xba, 0xbe, 0, 1]]]), header(4096, [[0, 'LUKS'], [4, [0xba, 0xbe, 0, 3]]])],
  ['luks', header(4096, [[0, 'LUKS'], [4, [0xba, 0xbe, 0, 2]]]), header(500, [[0, 'LUKS'], [4, [0xba, 0xbe, 0, 1]]])],
];

describe('each table entry matches its magic and nothing near it', () => {
  it('every entry has a magic test', () => {
    expect(new Set(MAGICS.map(([n]) => n))).toEqual(new Set(FOREIGN_FORMATS.map((f) => f.name)));
  });

  it('no entry names a format a driver now reads (delete the entry when its driver lands)', () => {
    expect(FOREIGN_FORMATS.map((f) => f.name).filter((n) => drivers.some((d) => d.name === n))).toEqual([]);
  });

  it.each(MAGICS)('%s', async (name, yes, no) => {
    const hit = await probeDetailed(new MemorySource(yes, 'x.img'), drivers);
    expect(hit.foreign?.name).toBe(name);
    await expect(probe(new MemorySource(yes, 'x.img'), drivers)).rejects.toThrow(`x.img: this is a ${name} image, which DiskFerry cannot read yet`);
    const miss = await probeDetailed(new MemorySource(no, 'y.img'), drivers);
    expect(miss.foreign).toBeUndefined();
    expect((await probe(new MemorySource(no, 'y.img'), drivers)).name).toBe('raw');
  });

  it('a registered driver of the same name wins over the table', async () => {
    const [name, yes] = MAGICS[0]!;
    const fake: FormatDriver = { ...drivers.find((d) => d.name === 'raw')!, name, probe: () => 100 };
    expect((await probe(new MemorySource(yes), [...drivers, fake])).name).toBe(name);
    // Even when that driver's probe declines the file, the table does not speak for it.
    const shy: FormatDriver = { ...fake, probe: () => 0 };
    expect((await probe(new MemorySource(yes), [...drivers, shy])).name).toBe('raw');
  });
});
