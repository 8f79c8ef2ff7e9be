import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { qemuImg, qemuIo, runStatus, standardRaw, tempDir, qemuImgCalibrating } from './helpers/sys.ts';
import { NodeFileSource } from '../cli/nodeFiles.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';

// Encrypted qcow2 (legacy AES and LUKS) and qcow v1 AES, against qemu-img 7.2: images qemu-img
// makes read to the same bytes given the password, images we write pass qemu-img check and
// compare given the same secret, and a wrong or missing password fails in one line, leaving no file.
const t = tempDir();
const src = t.file('src.raw');
const SIZE = 6 * 1024 * 1024 + 3584; // not a cluster multiple
const PW = 'correct horse battery';
const SECRET = ['--object', `secret,id=s,data=${PW}`];
const opts = (f: string, driver = 'qcow2') => `driver=${driver},file.filename=${f},encrypt.key-secret=s`;

/** Encrypted fixture: qemu-img convert from the patterned source, then qemu-io writes on top. */
function makeQemuImage(name: string, o: string, driver = 'qcow2'): string {
  const f = t.file(name);
  qemuImgCalibrating('convert', ...SECRET, '-f', 'raw', '-O', driver, '-o', `${o},encrypt.key-secret=s`, src, f);
  qemuIo(...SECRET, '--image-opts', '-c', 'write -P 0x5a 1M 200k', '-c', 'write -P 0xa5 3000k 4k', opts(f, driver));
  return f;
}

const QEMU_CASES: [string, string][] = [
  ['aes', 'encrypt.format=aes'],
  ['luks-default', 'encrypt.format=luks,encrypt.iter-time=10'],
  [
    'luks-aes128-cbc-essiv-sha1',
    'encrypt.format=luks,encrypt.iter-time=10,encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.hash-alg=sha1',
  ],
  // Everything else in one image (each qemu-img LUKS creation spends seconds calibrating PBKDF2):
  // AES-192-XTS (48-byte key), ESSIV on XTS, SHA-512 for PBKDF2/AF, 4 KiB clusters, version 2.
  [
    'luks-aes192-xts-essiv-sha512-4k-v2',
    'encrypt.format=luks,encrypt.iter-time=10,encrypt.cipher-alg=aes-192,encrypt.ivgen-alg=essiv,encrypt.hash-alg=sha512,cluster_size=4k,compat=0.10',
  ],
];

beforeAll(() => {
  standardRaw(src, SIZE, 11);
  for (const [name, o] of QEMU_CASES) makeQemuImage(`${name}.qcow2`, o);
});
afterAll(() => t.cleanup());

const noLeftovers = () => readdirSync(t.dir).filter((n) => n.endsWith('.part'));

describe('encrypted qcow2 made by qemu-img reads identically given the password', () => {
  it.each(QEMU_CASES)('%s', async (name) => {
    const f = t.file(`${name}.qcow2`);
    await expectSameExport(opts(f), t.file, name, [...SECRET, '--image-opts']);
    // info needs no password: the LUKS header is readable, as qemu-img shows it.
    await expectInfoMatches(f);
  });

  it('the secret can come from a file (--object secret,id=…,file=…)', async () => {
    const pwFile = t.file('pw.txt');
    writeFileSync(pwFile, PW);
    const f = t.file('luks-aes128-cbc-essiv-sha1.qcow2');
    await expectSameExport(opts(f), t.file, 'secret-file', ['--object', `secret,id=s,file=${pwFile}`, '--image-opts']);
  });

  it('reads parts of sectors through the API (requests widened to whole sectors)', async () => {
    const f = t.file('luks-default.qcow2');
    const ref = t.file('luks-default.qemu.raw');
    qemuImg('convert', ...SECRET, '--image-opts', opts(f), '-O', 'raw', ref);
    const whole = readFileSync(ref);
    const dev = await openImage(await NodeFileSource.open(f), drivers, { codecs: nodeCodecs, password: new TextEncoder().encode(PW) });
    try {
      for (const [off, len] of [
        [1000, 5000],
        [1024 * 1024 - 700, 1400],
        [3000 * 1024 + 1, 511],
        [SIZE - 3000, 3000],
      ] as const) {
        const got = await dev.read(off, len);
        expect(Buffer.from(got).equals(whole.subarray(off, off + len))).toBe(true);
      }
    } finally {
      await dev.close();
    }
  });

  it('our check agrees with qemu-img that a LUKS image is clean (LUKS area counted)', async () => {
    const f = t.file('luks-default.qcow2');
    const ours = JSON.parse(await cliOk('check', '--output=json', f));
    const theirs = JSON.parse(qemuImg('check', ...SECRET, '--output=json', '--image-opts', opts(f)));
    expect(ours.corruptions ?? 0).toBe(0);
    expect(ours.leaks ?? 0).toBe(0);
    expect(ours['image-end-offset']).toBe(theirs['image-end-offset']);
  });

  it('a qcow v1 AES image made by qemu-img reads identically', async () => {
    const f = makeQemuImage('aes.qcow', 'encrypt.format=aes', 'qcow');
    await expectSameExport(opts(f, 'qcow'), t.file, 'qcow1-aes', [...SECRET, '--image-opts']);
    // Reads that start and end inside sectors are widened to whole sectors before decryption.
    const whole = readFileSync(t.file('qcow1-aes.qemu.raw'));
    const dev = await openImage(await NodeFileSource.open(f), drivers, { codecs: nodeCodecs, password: new TextEncoder().encode(PW) });
    try {
      for (const [off, len] of [
        [1000, 5000],
        [1024 * 1024 - 700, 1400],
        [3000 * 1024 + 1, 511],
      ] as const) {
        expect(Buffer.from(await dev.read(off, len)).equals(whole.subarray(off, off + len))).toBe(true);
      }
    } finally {
      await dev.close();
    }
  });
});

describe('wrong or missing passwords', () => {
  it('a wrong LUKS password stops with one line and leaves no output file', async () => {
    const out = t.file('wrong.raw');
    const r = await cli(
      'convert',
      '--object',
      'secret,id=s,data=not-it',
      '--image-opts',
      opts(t.file('luks-default.qcow2')),
      '-O',
      'qcow2',
      out,
    );
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/luks-default\.qcow2: wrong password/);
    expect(runStatus('test', ['-e', out]).status).not.toBe(0);
    expect(noLeftovers()).toEqual([]);
  });

  it('no password: one line that asks for it, no file; info still works', async () => {
    const f = t.file('luks-aes128-cbc-essiv-sha1.qcow2');
    const out = t.file('nopw.raw');
    const r = await cli('convert', '-O', 'raw', f, out);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/password/);
    expect(runStatus('test', ['-e', out]).status).not.toBe(0);
    expect(noLeftovers()).toEqual([]);
    const info = JSON.parse(await cliOk('info', '--output=json', f));
    expect(info['format-specific'].data.encrypt['ivgen-hash-alg']).toBe('sha256');
  });

  it('a secret id that does not exist is refused', async () => {
    const r = await cli(
      'convert',
      ...SECRET,
      '--image-opts',
      'driver=qcow2,file.filename=' + t.file('aes.qcow2') + ',encrypt.key-secret=zz',
      '-O',
      'raw',
      t.file('x.raw'),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no secret with id "zz"/);
  });
});

describe('damaged LUKS areas give one-line errors', () => {
  /** A copy of a qemu-made LUKS image with bytes changed at `at` (absolute file offset). */
  function damaged(name: string, patch: (buf: Buffer, luks: number) => void): string {
    const buf = readFileSync(t.file('luks-default.qcow2'));
    const luks = Number(buf.readBigUInt64BE(0x78)); // crypto extension right after the v3 header
    expect(buf.readUInt32BE(0x70)).toBe(0x0537be77);
    patch(buf, luks);
    const f = t.file(name);
    writeFileSync(f, buf);
    return f;
  }

  it('a key slot with zero stripes is refused at open, as qemu-img refuses it', async () => {
    const f = damaged('stripes0.qcow2', (b, luks) => b.writeUInt32BE(0, luks + 208 + 44));
    expect(runStatus('qemu-img', ['info', f]).stderr).toMatch(/stripes 0 != 4000/);
    const r = await cli('info', f);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/stripes0\.qcow2: .*stripes 0 != 4000/);
  });

  it('a LUKS area too short for its key material: info works, unlocking fails in one line', async () => {
    const f = damaged('short.qcow2', (b) => b.writeBigUInt64BE(0x1000n, 0x80));
    await cliOk('info', f);
    const out = t.file('short.raw');
    const r = await cli('convert', ...SECRET, '--image-opts', opts(f), '-O', 'raw', out);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/outside its header extension/);
    expect(runStatus('test', ['-e', out]).status).not.toBe(0);
  });

  it('a serpent volume: info matches qemu-img, reading says serpent is unsupported', async () => {
    const f = damaged('serpent.qcow2', (b, luks) => b.write('serpent\0', luks + 8, 'latin1'));
    await expectInfoMatches(f);
    const r = await cli('convert', ...SECRET, '--image-opts', opts(f), '-O', 'raw', t.file('serpent.raw'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/serpent\.qcow2: LUKS cipher serpent-256 is not supported/);
  });

  it('damaged key material reads as a wrong password, not as garbage', async () => {
    const f = damaged('material.qcow2', (b, luks) => b.fill(0, luks + 4096, luks + 4096 + 512));
    const r = await cli('convert', ...SECRET, '--image-opts', opts(f), '-O', 'raw', t.file('material.raw'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/wrong password/);
  });
});

describe('encrypted qcow2 we write passes qemu-img check and compare', () => {
  const WRITE_CASES: [string, string][] = [
    ['luks', 'encrypt.format=luks,encrypt.iter-time=10'],
    ['aes', 'encrypt.format=aes'],
    [
      'luks-cbc-essiv-sha1',
      'encrypt.format=luks,encrypt.iter-time=10,encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.hash-alg=sha1',
    ],
    ['luks-4k-v2', 'encrypt.format=luks,encrypt.iter-time=10,cluster_size=4k,compat=0.10'],
  ];
  it.each(WRITE_CASES)('%s', async (name, o) => {
    const out = t.file(`ours-${name}.qcow2`);
    const r = await cli('convert', ...SECRET, '-O', 'qcow2', '-o', `${o},encrypt.key-secret=s`, src, out);
    expect(r.code).toBe(0);
    if (name === 'aes') expect(r.stderr).toMatch(/^warning: .*QEMU system emulators refuse.*luks/m);
    else expect(r.stderr).toBe('');
    const check = runStatus('qemu-img', ['check', ...SECRET, '--image-opts', opts(out)]);
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
    expect(runStatus('qemu-img', ['compare', ...SECRET, '--image-opts', opts(out), `driver=raw,file.filename=${src}`]).status).toBe(0);
    // The data really is encrypted: the source's text does not appear in the file.
    expect(readFileSync(out).includes(Buffer.from('quick brown fox jumps'))).toBe(false);
    await expectInfoMatches(out);
  });

  it("the default LUKS layout is qemu-img's: aes-256-xts-plain64, sha256, slot 0 of 8", async () => {
    const out = t.file('ours-luks.qcow2');
    const enc = JSON.parse(qemuImg('info', '--output=json', out))['format-specific'].data.encrypt;
    expect(enc).toMatchObject({
      format: 'luks',
      'cipher-alg': 'aes-256',
      'cipher-mode': 'xts',
      'ivgen-alg': 'plain64',
      'hash-alg': 'sha256',
      'payload-offset': 2068480,
    });
    expect(enc.slots.map((s: { active: boolean }) => s.active)).toEqual([true, false, false, false, false, false, false, false]);
    expect(enc.slots[0].iters).toBeGreaterThanOrEqual(1000);
  });

  it('an encrypted overlay over a plain backing file', async () => {
    const base = t.file('base.raw');
    standardRaw(base, SIZE, 12);
    const out = t.file('ours-overlay.qcow2');
    await cliOk(
      'convert',
      ...SECRET,
      '-O',
      'qcow2',
      '-o',
      'encrypt.format=luks,encrypt.iter-time=10,encrypt.key-secret=s',
      '-B',
      'base.raw',
      '-F',
      'raw',
      src,
      out,
    );
    expect(runStatus('qemu-img', ['check', ...SECRET, '--image-opts', opts(out)]).status).toBe(0);
    expect(runStatus('qemu-img', ['compare', ...SECRET, '--image-opts', opts(out), `driver=raw,file.filename=${src}`]).status).toBe(0);
  });

  it('qcow v1 with AES we write passes qemu-img compare', async () => {
    const out = t.file('ours.qcow');
    await cliOk('convert', ...SECRET, '-O', 'qcow', '-o', 'encrypt.format=aes,encrypt.key-secret=s', src, out);
    expect(runStatus('qemu-img', ['compare', ...SECRET, '--image-opts', opts(out, 'qcow'), `driver=raw,file.filename=${src}`]).status).toBe(
      0,
    );
  });

  it.each([
    // One LUKS case: qemu-img measure runs its full PBKDF2 calibration (seconds) each time.
    ['luks aes-128 4k', 'encrypt.format=luks,encrypt.key-secret=s,encrypt.cipher-alg=aes-128,cluster_size=4k'],
    ['aes', 'encrypt.format=aes,encrypt.key-secret=s'],
  ])('measure counts the LUKS area as qemu-img does (%s)', async (_n, o) => {
    const ours = JSON.parse(await cliOk('measure', ...SECRET, '--output=json', '-O', 'qcow2', '-o', o, '--size', '100M'));
    let theirs = '';
    for (let i = 0; i < 6 && !theirs; i++) {
      const r = runStatus('qemu-img', [
        'measure',
        ...SECRET,
        '--output=json',
        '-O',
        'qcow2',
        '-o',
        `${o},encrypt.iter-time=10`,
        '--size',
        '100M',
      ]);
      if (r.status === 0) theirs = r.stdout;
    }
    expect(ours).toEqual(JSON.parse(theirs));
  });

  const REFUSED: [string, string[], RegExp][] = [
    [
      'compression with encryption',
      ['-c', '-o', 'encrypt.format=luks,encrypt.key-secret=s'],
      /Compression and encryption not supported at the same time/,
    ],
    ['no key-secret', ['-o', 'encrypt.format=luks'], /encrypt\.key-secret' is required/],
    ['an unknown secret', ['-o', 'encrypt.format=aes,encrypt.key-secret=nope'], /No secret with id 'nope'/],
    ['key-secret without format', ['-o', 'encrypt.key-secret=s'], /encrypt\.format' is missing/],
    ['LUKS options with aes', ['-o', 'encrypt.format=aes,encrypt.key-secret=s,encrypt.cipher-alg=aes-128'], /cipher-alg/],
    [
      'aes-192-cbc, which makes qemu-img 7.2 abort',
      ['-o', 'encrypt.format=luks,encrypt.key-secret=s,encrypt.cipher-alg=aes-192,encrypt.cipher-mode=cbc'],
      /QEMU cannot open it/,
    ],
  ];
  it.each(REFUSED)('%s is refused in one line, no file', async (_n, args, msg) => {
    const out = t.file('refused.qcow2');
    const r = await cli('convert', ...SECRET, '-O', 'qcow2', ...args, src, out);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(msg);
    expect(runStatus('test', ['-e', out]).status).not.toBe(0);
    expect(noLeftovers()).toEqual([]);
  });
});
