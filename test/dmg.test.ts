import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adcEncode, buildDmg, type DmgBuild } from './helpers/dmg.ts';
import { cli, cliOk, expectOneLineFailure } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { prng, qemuImg, run, standardRaw, tempDir } from './helpers/sys.ts';
import { portableCodecs } from '../src-core/codecs/portable.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { adcDecode } from '../src-core/formats/dmg/adc.ts';
import { openImage } from '../src-core/image/open.ts';
import { MemorySource } from '../src-core/io/bytes.ts';

// Apple UDIF images (block/dmg.c), read-only. Built from the layout (test/helpers/dmg.ts).
// qemu-img 7.2 here reads raw, zero, ignore and zlib chunks (its dmg-bz2 and dmg-lzfse modules
// are not built in Debian), so it judges those images; bzip2 and ADC chunks are checked against
// the disk they were made from and against dmg2img, which reads them.
const t = tempDir();
const SIZE = 2 * 1024 * 1024 + 5 * 512;
let disk: Uint8Array;
beforeAll(() => {
  standardRaw(t.file('src.raw'), SIZE, 44);
  disk = new Uint8Array(readFileSync(t.file('src.raw')));
});
afterAll(() => t.cleanup());

const slug = (s: string) => s.replace(/\W+/g, '-');

const QEMU_CASES: [string, DmgBuild][] = [
  ['zlib chunks, XML plist', {}],
  ['raw and zlib chunks, resource fork', { types: ['raw', 'zlib'], table: 'rsrc' }],
  ['two mish blocks, data fork after 4 KiB', { types: ['zlib', 'raw'], splitMish: true, dataForkOffset: 4096 }],
  ['two mish blocks in a resource fork', { splitMish: true, table: 'rsrc', chunkSectors: 2048 }],
  ['one-sector chunks', { chunkSectors: 1, types: ['raw', 'zlib'] }],
  ['zero chunks stored as raw', { zeroChunks: false, types: ['raw'] }],
];

describe('dmg images read byte-identically to qemu-img', () => {
  it.each(QEMU_CASES)('%s', async (name, opts) => {
    const f = t.file(`${slug(name)}.dmg`);
    writeFileSync(f, buildDmg(disk, opts));
    await expectSameExport(f, t.file, slug(name), [], ['-f', 'dmg']);
    run('cmp', [t.file(`${slug(name)}.ours.raw`), t.file('src.raw')]);
    await expectInfoMatches(f);
    expect(JSON.parse(await cliOk('info', '--output=json', f)).format).toBe('dmg');
  });

  it('probed by the koly trailer, whatever the name', async () => {
    const f = t.file('disk.img');
    writeFileSync(f, buildDmg(disk));
    expect(JSON.parse(await cliOk('info', '--output=json', f)).format).toBe('dmg');
  });
});

describe('chunk types qemu-img cannot read here', () => {
  it.each([
    ['bzip2', { types: ['bzip2'] }],
    ['ADC', { types: ['adc'] }],
    ['every type mixed', { types: ['adc', 'bzip2', 'raw', 'zlib'], splitMish: true }],
  ] as [string, DmgBuild][])('%s chunks read as the source disk', async (name, opts) => {
    const f = t.file(`${slug(name)}.dmg`);
    writeFileSync(f, buildDmg(disk, opts));
    // A bzip2 first chunk makes the file start "BZh": it is still a dmg, not a .bz2 container.
    expect(JSON.parse(await cliOk('info', '--output=json', f)).format).toBe('dmg');
    await cliOk('convert', '-O', 'raw', f, t.file(`${slug(name)}.raw`));
    run('cmp', [t.file(`${slug(name)}.raw`), t.file('src.raw')]);
    // dmg2img (which reads bzip2 and ADC chunks) unpacks the same disk from the same file.
    run('dmg2img', ['-s', '-i', f, '-o', t.file(`${slug(name)}.dmg2img`)]);
    run('cmp', [t.file(`${slug(name)}.dmg2img`), t.file('src.raw')]);
    const dev = await openImage(new MemorySource(readFileSync(f), name), drivers, { codecs: portableCodecs });
    const rand = prng(8);
    for (let i = 0; i < 40; i++) {
      const off = rand() % SIZE;
      const len = Math.min(1 + (rand() % 300000), SIZE - off);
      expect(Buffer.compare(await dev.read(off, len), disk.subarray(off, off + len))).toBe(0);
    }
    await dev.close();
  });

  it('ADC round trip on awkward data', () => {
    const rand = prng(3);
    const b = new Uint8Array(200000);
    for (let i = 0; i < b.length; i++) b[i] = i % 7000 < 3000 ? rand() & 3 : (i * 31) & 0xff;
    expect(Buffer.compare(adcDecode('x', 'chunk', adcEncode(b), b.length), b)).toBe(0);
  });

  it('lzfse chunks are refused by name, as a one-line error', async () => {
    const f = t.file('lzfse.dmg');
    writeFileSync(f, buildDmg(disk, { types: ['lzfse'] }));
    await expectOneLineFailure(
      ['convert', '-O', 'raw', f, t.file('lzfse.raw')],
      /dmg chunk 0 \(lzfse \(type 0x80000007\), sectors 0\+128\) is lzfse-compressed, which DiskFerry cannot decode yet/,
    );
  });
});

describe('dmg hostile metadata', () => {
  const base = () => buildDmg(disk.subarray(0, 256 * 1024), { chunkSectors: 64, types: ['zlib', 'raw'] });
  const koly = (b: Uint8Array) => new DataView(b.buffer, b.length - 512, 512);
  /** The first chunk entry of the (only) mish block, found through its base64 in the XML. */
  const withMish = (b: Uint8Array, edit: (m: DataView) => void): Uint8Array => {
    const text = Buffer.from(b).toString('latin1');
    const start = text.indexOf('<data>') + 6;
    const end = text.indexOf('</data>');
    const m = new Uint8Array(Buffer.from(text.slice(start, end).replace(/\s/g, ''), 'base64'));
    edit(new DataView(m.buffer));
    const xml = text.slice(0, start) + Buffer.from(m).toString('base64') + text.slice(end);
    const out = new Uint8Array(Buffer.from(xml, 'latin1'));
    const k = new DataView(out.buffer, out.length - 512, 512);
    k.setBigUint64(0xe0, k.getBigUint64(0xe0) + BigInt(out.length - b.length));
    return out;
  };
  it.each([
    ['sector count beyond 2^53', (b: Uint8Array) => (koly(b).setBigUint64(0x1ec, 1n << 60n), b), /beyond the 2\^53 limit/],
    ['XML past the trailer', (b: Uint8Array) => (koly(b).setBigUint64(0xd8, BigInt(b.length)), b), /XML plist lies outside/],
    ['no table at all', (b: Uint8Array) => (koly(b).setBigUint64(0xe0, 0n), b), /neither a resource fork nor an XML plist/],
    [
      'data fork past the trailer',
      (b: Uint8Array) => (koly(b).setBigUint64(0x18, BigInt(b.length)), b),
      /data fork offset .* past the trailer/,
    ],
    [
      'chunk of 2^40 sectors',
      (b: Uint8Array) => withMish(b, (m) => m.setBigUint64(204 + 16, 1n << 40n)),
      /sector count 1099511627776 is larger than the maximum/,
    ],
    [
      'chunk length 1 GiB',
      (b: Uint8Array) => withMish(b, (m) => m.setBigUint64(204 + 32, 1n << 30n)),
      /length 1073741824 is larger than the maximum/,
    ],
    ['chunk past the end of the file', (b: Uint8Array) => withMish(b, (m) => m.setBigUint64(204 + 24, 1n << 35n)), /truncated file/],
    ['damaged zlib chunk', (b: Uint8Array) => (b.fill(0x55, 0, 40), b), /cannot be decompressed|decompresses to/],
    ['a gap no chunk covers', (b: Uint8Array) => withMish(b, (m) => m.setBigUint64(204 + 8, 10n)), /no chunk holds sector 0/],
    [
      'unclosed <data>',
      (b: Uint8Array) => new Uint8Array(Buffer.from(Buffer.from(b).toString('latin1').replace('</data>', '</date>'), 'latin1')),
      /<data> element is not closed/,
    ],
  ])('%s gives a one-line typed error', async (name, edit, message) => {
    const f = t.file(`bad-${slug(name)}.dmg`);
    writeFileSync(f, edit(base()));
    await expectOneLineFailure(['convert', '-f', 'dmg', '-O', 'raw', f, t.file('bad.raw')], message);
  });

  it('a damaged resource fork gives a typed error', async () => {
    const b = buildDmg(disk.subarray(0, 64 * 1024), { table: 'rsrc' });
    const k = koly(b);
    const at = Number(k.getBigUint64(0x28));
    new DataView(b.buffer).setUint32(at + 256, 0x7fffffff);
    const f = t.file('bad-rsrc.dmg');
    writeFileSync(f, b);
    const r = await cli('info', f);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/resource fork: resource at \d+ has a bad length/);
  });

  it('qemu-img agrees the hostile sizes are refused', () => {
    const b = base();
    const chunk = withMish(b, (m) => m.setBigUint64(204 + 32, 1n << 30n));
    writeFileSync(t.file('q.dmg'), chunk);
    expect(() => qemuImg('info', t.file('q.dmg'))).toThrow();
  });
});
