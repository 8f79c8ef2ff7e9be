import { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { seedArb, sparseRegions, writeSectorDisk } from './helpers/property.ts';
import { qemuImg, qemuIo, run, runStatus, tempDir, writePatternedRaw, qemuImgCalibrating } from './helpers/sys.ts';
import { NodeFileSource } from '../cli/nodeFiles.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import { NeedsPasswordError, WrongPasswordError } from '../src-core/io/errors.ts';

// qemu-img's luks format (the whole disk is a LUKS1 payload), against qemu-img 7.2: images
// qemu-img makes read to the same bytes given the password, images we write compare equal in
// qemu-img given the same secret, and a wrong or missing password is a typed one-line error.
const t = tempDir('diskferry-luks-');
afterAll(() => t.cleanup());
const MiB = 1024 * 1024;
const SIZE = 5 * MiB + 3584;
const src = t.file('src.raw');
const PW = 'correct horse battery';
const SECRET = ['--object', `secret,id=s,data=${PW}`];
const imageOpts = (f: string) => `driver=luks,key-secret=s,file.filename=${f}`;

/** qemu-img compare of a raw file with a luks image, opened with the secret. */
const qemuCompareLuks = (raw: string, img: string) =>
  runStatus('qemu-img', ['compare', ...SECRET, '--image-opts', `driver=raw,file.filename=${raw}`, imageOpts(img)]).status;

const QEMU_CASES: [string, string][] = [
  ['default', 'iter-time=10'],
  ['aes128-cbc-essiv-sha1', 'iter-time=10,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1'],
  ['aes256-cbc-plain-sha512', 'iter-time=10,cipher-mode=cbc,ivgen-alg=plain,hash-alg=sha512'],
];

beforeAll(() => {
  writePatternedRaw(
    src,
    SIZE,
    [
      { offset: 0, length: MiB + 4321 },
      { offset: 3 * MiB, length: 300000 },
      { offset: SIZE - 7000, length: 7000 },
    ],
    41,
  );
  for (const [name, o] of QEMU_CASES) {
    const f = t.file(`${name}.luks`);
    qemuImgCalibrating('convert', ...SECRET, '-f', 'raw', '-O', 'luks', '-o', `${o},key-secret=s`, src, f);
    qemuIo(...SECRET, '--image-opts', '-c', 'write -P 0x5a 1M 200k', '-c', 'write -P 0xa5 3000k 4k', imageOpts(f));
  }
});

describe('luks images made by qemu-img', () => {
  it.each(QEMU_CASES.map(([n]) => n))('%s: reads byte-identically with the secret; info equals qemu-img info', async (name) => {
    const f = t.file(`${name}.luks`);
    await expectSameExport(imageOpts(f), t.file, name, [...SECRET, '--image-opts']);
    // qemu-img info needs no secret (it opens without I/O); neither do we.
    await expectInfoMatches(f);
    const map = ['map', '--output=json', ...SECRET, '--image-opts', imageOpts(f)];
    expect(JSON.parse(await cliOk(...map))).toEqual(JSON.parse(qemuImg(...map)));
  });

  it('an empty image made by qemu-img create, and an odd size (rounded to sectors as qemu-img does)', async () => {
    const f = t.file('odd.luks');
    qemuImgCalibrating('create', ...SECRET, '-f', 'luks', '-o', 'key-secret=s,iter-time=10', f, '1000001');
    await expectSameExport(imageOpts(f), t.file, 'odd', [...SECRET, '--image-opts']);
    await expectInfoMatches(f);
  });

  it('a wrong password is WrongPasswordError, none is NeedsPasswordError, both one line', async () => {
    const f = t.file('default.luks');
    let r = await cli('convert', '--object', 'secret,id=s,data=nope', '--image-opts', imageOpts(f), '-O', 'raw', t.file('wrong.raw'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/default\.luks: wrong password/);
    r = await cli('convert', '-O', 'raw', f, t.file('none.raw'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/default\.luks: .*password/);
    await expect(
      openImage(await NodeFileSource.open(f), drivers, { codecs: nodeCodecs, password: new TextEncoder().encode('nope') }),
    ).rejects.toBeInstanceOf(WrongPasswordError);
    const locked = await openImage(await NodeFileSource.open(f), drivers, { codecs: nodeCodecs });
    try {
      await expect(locked.read(0, 512)).rejects.toBeInstanceOf(NeedsPasswordError);
    } finally {
      await locked.close();
    }
  });

  it('check: the luks format has none, as in qemu-img (exit 63)', async () => {
    const f = t.file('default.luks');
    expect(runStatus('qemu-img', ['check', ...SECRET, '--image-opts', imageOpts(f)]).status).toBe(63);
    expect((await cli('check', ...SECRET, '--image-opts', imageOpts(f))).code).toBe(63);
    expect((await cli('check', f)).code).toBe(63);
  });

  it('hostile headers are typed one-line errors', async () => {
    const b = readFileSync(t.file('default.luks'));
    b.writeUInt32BE(0, 208 + 44); // slot 0 stripes
    const f = t.file('stripes0.luks');
    writeFileSync(f, b);
    expect(runStatus('qemu-img', ['info', f]).stderr).toMatch(/stripes 0 != 4000/);
    const r = await cli('info', f);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/stripes0\.luks: .*stripes 0 != 4000/);
    const c = readFileSync(t.file('default.luks'));
    c.writeUInt32BE(0x7fffffff, 104); // payload far past the end of the file
    writeFileSync(t.file('payload.luks'), c);
    const r2 = await cli('info', t.file('payload.luks'));
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/payload\.luks: .*(payload|overlapping)/);
  });
});

describe('luks images we write', () => {
  const WRITE_CASES: [string, string][] = [
    ['default', 'iter-time=10'],
    ['aes128-cbc-essiv-sha1', 'iter-time=10,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1'],
    ['aes256-ecb-sha512', 'iter-time=10,cipher-mode=ecb,ivgen-alg=plain64,hash-alg=sha512'],
  ];
  it.each(WRITE_CASES)('%s: qemu-img compares equal with the secret, info shows the cipher asked for', async (name, o) => {
    const out = t.file(`w-${name}.luks`);
    await cliOk('convert', ...SECRET, '-O', 'luks', '-o', `${o},key-secret=s`, src, out);
    expect(qemuCompareLuks(src, out)).toBe(0);
    const info = JSON.parse(qemuImg('info', '--output=json', out));
    expect(info['virtual-size']).toBe(SIZE);
    expect(info.encrypted).toBe(true);
    const data = info['format-specific'].data;
    expect(data['cipher-alg']).toBe(/cipher-alg=([\w-]+)/.exec(o)?.[1] ?? 'aes-256');
    expect(data['cipher-mode']).toBe(/cipher-mode=(\w+)/.exec(o)?.[1] ?? 'xts');
    expect(data['hash-alg']).toBe(/hash-alg=(\w+)/.exec(o.replace('ivgen-hash-alg', ''))?.[1] ?? 'sha256');
    // QEMU's layout: 8 key slots of 4000 stripes each, 8-sector aligned, after the 4 KiB header.
    const keyBytes = (Number(/aes-(\d+)/.exec(data['cipher-alg'])![1]) / 8) * (data['cipher-mode'] === 'xts' ? 2 : 1);
    expect(data['payload-offset']).toBe((8 + Math.ceil(Math.ceil((keyBytes * 4000) / 512) / 8) * 8 * 8) * 512);
    // Our own reader agrees, and qemu-img reads what we wrote to the source's bytes.
    await expectSameExport(imageOpts(out), t.file, `w-${name}`, [...SECRET, '--image-opts']);
    run('cmp', [t.file(`w-${name}.ours.raw`), src]);
  });

  it('holes and zero runs are written as encrypted zeros (the payload has no zero state)', async () => {
    const raw = t.file('sparse.raw');
    writePatternedRaw(raw, 4 * MiB, [{ offset: 2 * MiB, length: 1000 }], 3);
    const out = t.file('sparse.luks');
    await cliOk('convert', ...SECRET, '-O', 'luks', '-o', 'key-secret=s,iter-time=10', raw, out);
    expect(qemuCompareLuks(raw, out)).toBe(0);
    const b = readFileSync(out);
    const payload = JSON.parse(qemuImg('info', '--output=json', out))['format-specific'].data['payload-offset'];
    expect(b.length).toBe(payload + 4 * MiB);
    expect(b.subarray(payload, payload + 4096).some((x) => x !== 0)).toBe(true); // ciphertext of zeros
  });

  it('without key-secret, with an unknown secret, or a cipher QEMU cannot open: refused', async () => {
    for (const o of ['iter-time=10', 'key-secret=zz,iter-time=10', 'key-secret=s,cipher-alg=aes-192,cipher-mode=cbc']) {
      const r = await cli('convert', ...SECRET, '-O', 'luks', '-o', o, src, t.file('bad.luks'));
      expect(r.code, o).not.toBe(0);
    }
  });
});

describe('measure', () => {
  it.each([
    ['--size', ['--size', '1000001'], 'iter-time=10'],
    ['a source', ['-f', 'raw', 'SRC'], 'cipher-alg=aes-128,cipher-mode=cbc'],
    ['ecb sha512', ['--size', '10M'], 'cipher-mode=ecb,hash-alg=sha512'],
  ] as [string, string[], string][])('%s: equals qemu-img measure', async (_n, what, o) => {
    const args = [
      'measure',
      ...SECRET,
      '--output=json',
      '-O',
      'luks',
      '-o',
      `key-secret=s,${o}`,
      ...what.map((a) => (a === 'SRC' ? src : a)),
    ];
    expect(JSON.parse(await cliOk(...args))).toEqual(JSON.parse(qemuImgCalibrating(...args)));
  });
  it('without key-secret, refused as by qemu-img', async () => {
    expect(runStatus('qemu-img', ['measure', '-O', 'luks', '--size', '1M']).stderr).toContain("Parameter 'key-secret' is required");
    const r = await cli('measure', '-O', 'luks', '--size', '1M');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Parameter 'key-secret' is required");
  });
});

describe('property test', () => {
  it('random sizes and sparse patterns: what we write, qemu-img reads as the source', async () => {
    const disk = fc.record({ sectors: fc.integer({ min: 1, max: 6 * 2048 }), seed: seedArb, regions: sparseRegions(1_000_000) });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const { raw, size } = writeSectorDisk(t.file(`p${++n}.raw`), d);
        const img = `${raw}.luks`;
        await cliOk('convert', ...SECRET, '-O', 'luks', '-o', 'key-secret=s,iter-time=10', raw, img);
        expect(JSON.parse(qemuImg('info', '--output=json', img))['virtual-size']).toBe(size);
        expect(qemuCompareLuks(raw, img)).toBe(0);
      }),
      { numRuns: 5, seed: 20261209 },
    );
  });
});
