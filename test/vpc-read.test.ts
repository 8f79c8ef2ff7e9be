import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { qemuImg, run, runStatus, standardRaw, tempDir, writePatternedRaw } from './helpers/sys.ts';
import { blockBitmapOffset, patchDynamicHeader, patchFooter, pyvhdiExport, readBytesAt, writeBytesAt } from './helpers/vhd.ts';

// VHDs made by qemu-img (and hand-patched copies of them) read by us as qemu-img and libvhdi read them.
const t = tempDir('diskferry-vpc-');
const src = t.file('src.raw');
const SIZE = 29 * 1024 * 1024 + 1536; // not a CHS size, not a block multiple
const MiB = 1024 * 1024;

beforeAll(() => {
  standardRaw(src, SIZE, 11);
  qemuImg('convert', '-f', 'raw', '-O', 'vpc', src, t.file('dynamic.vhd'));
  qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed', src, t.file('fixed.vhd'));
  qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'force_size=on', src, t.file('dynamic-force.vhd'));
  qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed,force_size=on', src, t.file('fixed-force.vhd'));
});
afterAll(() => t.cleanup());

/** JSON info plus our own fields, which only the human output prints (`key: value` lines). */
const infoOf = async (file: string, ...extra: string[]) => {
  const info = JSON.parse(await cliOk('info', '--output=json', ...extra, file));
  info.extra = {};
  for (const line of (await cliOk('info', ...extra, file)).split('\n')) {
    const m = /^(vhd-[a-z-]+): (.*)$/.exec(line);
    if (m) info.extra[m[1]!] = m[2];
  }
  return info;
};

describe('VHDs made by qemu-img read byte-identically', () => {
  it.each(['dynamic', 'dynamic-force'])('%s', async (name) => {
    const f = t.file(`${name}.vhd`);
    await expectSameExport(f, t.file, name);
    await expectInfoMatches(f);
  });

  it.each(['fixed', 'fixed-force'])('%s (qemu-img needs -f vpc, we probe the trailing footer)', async (name) => {
    const f = t.file(`${name}.vhd`);
    // qemu-img itself takes this file for raw: the probe is ours alone.
    expect(JSON.parse(qemuImg('info', '--output=json', f)).format).toBe('raw');
    expect((await infoOf(f)).format).toBe('vpc');
    await expectSameExport(f, t.file, name, [], ['-f', 'vpc']);
    await expectInfoMatches(f, ['-f', 'vpc']);
  });

  it('qemu-made sizes are CHS-rounded and we report that the geometry decided', async () => {
    const info = await infoOf(t.file('dynamic.vhd'));
    expect(info['virtual-size']).toBeGreaterThan(SIZE);
    expect(info.extra['vhd-size-from']).toBe('chs');
    expect(info.extra['vhd-creator-app']).toBe('qemu');
    expect(info.extra['vhd-disk-type']).toBe('dynamic');
    const forced = await infoOf(t.file('fixed-force.vhd'));
    expect(forced['virtual-size']).toBe(SIZE);
    expect(forced.extra['vhd-size-from']).toBe('current-size');
    expect(forced.extra['vhd-disk-type']).toBe('fixed');
  });
  it('above 127 GiB the geometry saturates and the current size decides, even for creator "qemu"', async () => {
    const f = t.file('big.vhd');
    qemuImg('create', '-f', 'vpc', f, '200G');
    await expectInfoMatches(f);
    const info = await infoOf(f);
    expect(info['virtual-size']).toBe(200 * 1024 * MiB);
    expect(info.extra['vhd-size-from']).toBe('current-size');
    expect(info.extra['vhd-geometry']).toBe('65535/16/255');
  });

  it('map --output=json of the dynamic image equals qemu-img map', async () => {
    const f = t.file('dynamic.vhd');
    expect(JSON.parse(await cliOk('map', '--output=json', f))).toEqual(JSON.parse(qemuImg('map', '--output=json', f)));
  });
});

describe('the creator app decides the size (QEMU vpc_open)', () => {
  it('creator "win " with a current size that is not a CHS size reads at the current size', async () => {
    const f = t.file('win.vhd');
    copyFileSync(t.file('dynamic.vhd'), f);
    const current = 10 * MiB + 3 * 512; // 10 MiB and 3 sectors: no CHS product equals it
    patchFooter(f, (b) => {
      b.write('win ', 28, 'latin1');
      b.writeBigUInt64BE(BigInt(current), 40);
      b.writeBigUInt64BE(BigInt(current), 48);
    });
    const theirs = JSON.parse(qemuImg('info', '--output=json', f));
    expect(theirs['virtual-size']).toBe(current);
    const ours = await infoOf(f);
    expect(ours['virtual-size']).toBe(current);
    expect(ours.extra['vhd-size-from']).toBe('current-size');
    await expectSameExport(f, t.file, 'win');
    // And those bytes are the source's first `current` bytes.
    expect(readFileSync(t.file('win.ours.raw')).equals(readFileSync(src).subarray(0, current))).toBe(true);
  });

  it('creator "vpc " with the same footer reads at the CHS size, as qemu-img does', async () => {
    const f = t.file('vpc-creator.vhd');
    copyFileSync(t.file('dynamic-force.vhd'), f);
    // A geometry whose product is below the current size: Virtual PC (and QEMU) hide the tail.
    patchFooter(f, (b) => {
      b.write('vpc ', 28, 'latin1');
      b.writeUInt16BE(900, 56);
      b.writeUInt8(16, 58);
      b.writeUInt8(4, 59);
    });
    const ours = await infoOf(f);
    expect(ours['virtual-size']).toBe(900 * 16 * 4 * 512);
    expect(ours.extra['vhd-size-from']).toBe('chs');
    expect(ours['virtual-size']).toBe(JSON.parse(qemuImg('info', '--output=json', f))['virtual-size']);
    await expectSameExport(f, t.file, 'vpc-creator');
  });

  it('force_size_calc overrides the table as in qemu-img --image-opts', async () => {
    const f = t.file('vpc-creator.vhd');
    const cur = `driver=vpc,force_size_calc=current_size,file.filename=${f}`;
    const info = JSON.parse(await cliOk('info', '--output=json', '--image-opts', cur));
    expect(info['virtual-size']).toBe(SIZE);
    expect(info['virtual-size']).toBe(JSON.parse(qemuImg('info', '--output=json', '--image-opts', cur))['virtual-size']);
    await expectSameExport(cur, t.file, 'forced-current', ['--image-opts']);
    // chs forced on a current-size creator
    const w = t.file('win.vhd');
    const chs = `driver=vpc,force_size_calc=chs,file.filename=${w}`;
    const theirs = JSON.parse(qemuImg('info', '--output=json', '--image-opts', chs))['virtual-size'];
    expect(theirs).not.toBe(10 * MiB + 3 * 512);
    expect(JSON.parse(await cliOk('info', '--output=json', '--image-opts', chs))['virtual-size']).toBe(theirs);
    const bad = await cli('info', '--image-opts', `driver=vpc,force_size_calc=lba,file.filename=${w}`);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('force_size_calc');
  });
});

describe('damaged checksums give one line that names the checksum', () => {
  const expectOneLineError = async (file: string, what: RegExp) => {
    const r = await cli('info', file);
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(what);
    expect(lines[0]).toContain(file);
  };

  it('footer checksum of a dynamic disk (copy at offset 0)', async () => {
    const f = t.file('bad-footer.vhd');
    copyFileSync(t.file('dynamic.vhd'), f);
    writeBytesAt(f, 100, new Uint8Array([1]));
    expect(runStatus('qemu-img', ['info', f]).stderr).toContain('Incorrect header checksum');
    await expectOneLineError(f, /footer checksum at offset 0 is wrong/);
  });

  it('footer checksum of a fixed disk (trailing footer)', async () => {
    const f = t.file('bad-fixed.vhd');
    copyFileSync(t.file('fixed.vhd'), f);
    const size = readFileSync(f).length;
    writeBytesAt(f, size - 512 + 100, new Uint8Array([1]));
    expect(runStatus('qemu-img', ['info', '-f', 'vpc', f]).stderr).toContain('Incorrect header checksum');
    await expectOneLineError(f, /footer checksum at the end of the file is wrong/);
  });

  it('dynamic disk header checksum', async () => {
    const f = t.file('bad-header.vhd');
    copyFileSync(t.file('dynamic.vhd'), f);
    writeBytesAt(f, 512 + 900, new Uint8Array([1]));
    await expectOneLineError(f, /dynamic disk header checksum is wrong/);
  });
});

describe('sector bitmaps are MSB-first', () => {
  it('a dynamic disk reads clear-bit sectors as zeros, as libvhdi does', async () => {
    const f = t.file('partial.vhd');
    copyFileSync(t.file('dynamic-force.vhd'), f);
    const bm = blockBitmapOffset(f, 0);
    expect(bm).toBeGreaterThan(0);
    // Sector 0 is bit 7 of byte 0: 0x7f clears sector 0 only; byte 1 = 0 clears sectors 8-15.
    writeBytesAt(f, bm, new Uint8Array([0x7f, 0x00]));
    const mine = t.file('partial.ours.raw');
    await cliOk('convert', '-O', 'raw', f, mine);
    const lib = t.file('partial.libvhdi.raw');
    pyvhdiExport(f, lib);
    run('cmp', [mine, lib]);
    const got = readFileSync(mine);
    const orig = readFileSync(src);
    expect(got.subarray(0, 512).every((b) => b === 0)).toBe(true);
    expect(got.subarray(512, 4096).equals(orig.subarray(512, 4096))).toBe(true);
    expect(got.subarray(4096, 8192).every((b) => b === 0)).toBe(true);
    expect(orig.subarray(0, 8192).some((b) => b !== 0)).toBe(true);
  });
});

describe('differencing VHD', () => {
  const DSIZE = 8 * MiB;
  const utf16 = (s: string, le: boolean) => {
    const b = Buffer.alloc(s.length * 2);
    for (let i = 0; i < s.length; i++) {
      if (le) b.writeUInt16LE(s.charCodeAt(i), i * 2);
      else b.writeUInt16BE(s.charCodeAt(i), i * 2);
    }
    return b;
  };

  /** Turns a qemu-made dynamic VHD into a child of `parent`, with locators stored before the footer. */
  const makeChild = (child: string, parentFile: string, relName: string, absName: string) => {
    const parentUuid = readBytesAt(parentFile, 0, 512).subarray(68, 84);
    const bytes = readFileSync(child);
    const end = bytes.length - 512;
    const rel = utf16(relName, true);
    const abs = utf16(absName, true);
    const locators = Buffer.alloc(1024);
    abs.copy(locators, 0);
    rel.copy(locators, 512);
    writeFileSync(child, Buffer.concat([bytes.subarray(0, end), locators, bytes.subarray(end)]));
    patchFooter(child, (b) => b.writeUInt32BE(4, 60));
    patchDynamicHeader(child, (h) => {
      parentUuid.copy(h, 40);
      h.fill(0, 64, 576);
      utf16('parent.vhd', false).copy(h, 64);
      // Absolute first in slot order: the relative one must still win.
      const loc = (slot: number, code: string, len: number, off: number) => {
        const o = 576 + slot * 24;
        h.write(code, o, 'latin1');
        h.writeUInt32BE(512, o + 4);
        h.writeUInt32BE(len, o + 8);
        h.writeBigUInt64BE(BigInt(off), o + 16);
      };
      loc(0, 'W2ku', abs.length, end);
      loc(1, 'W2ru', rel.length, end + 512);
    });
  };

  it('reads through the parent found by its locators, bitmaps deciding sector by sector', async () => {
    const base = t.file('base.raw');
    standardRaw(base, DSIZE, 5);
    const parent = t.file('parent.vhd');
    qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'force_size=on', base, parent);
    const childRaw = t.file('child.raw');
    writePatternedRaw(
      childRaw,
      DSIZE,
      [
        { offset: 0, length: 1536 * 1024 },
        { offset: 4 * MiB + 4096, length: 100000 },
      ],
      9,
    );
    const child = t.file('child.vhd');
    qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'force_size=on', childRaw, child);
    makeChild(child, parent, '.\\parent.vhd', 'C:\\Hyper-V\\Disks\\parent.vhd');
    const b0 = blockBitmapOffset(child, 0);
    const b2 = blockBitmapOffset(child, 2);
    expect(b0).toBeGreaterThan(0);
    expect(b2).toBeGreaterThan(0);
    expect(blockBitmapOffset(child, 1)).toBe(-1);
    writeBytesAt(child, b0, new Uint8Array([0x7f, 0x00]));
    writeBytesAt(child, b2, new Uint8Array(64).fill(0x0f));

    // The expected disk, computed from the two raw inputs and the bits we set.
    const p = readFileSync(base);
    const c = readFileSync(childRaw);
    const want = Buffer.from(p);
    const bitmaps = new Map([
      [0, readBytesAt(child, b0, 512)],
      [2, readBytesAt(child, b2, 512)],
    ]);
    for (const [block, bm] of bitmaps) {
      for (let s = 0; s < 4096; s++) {
        if (bm[s >> 3]! & (0x80 >> (s & 7))) {
          const off = block * 2 * MiB + s * 512;
          c.copy(want, off, off, off + 512);
        }
      }
    }
    const mine = t.file('child.ours.raw');
    const r = await cli('convert', '-O', 'raw', child, mine);
    expect(r.stderr).toBe('');
    expect(readFileSync(mine).equals(want)).toBe(true);
    const lib = t.file('child.libvhdi.raw');
    pyvhdiExport(child, lib, parent);
    run('cmp', [mine, lib]);

    const info = await infoOf(child);
    expect(info.extra['vhd-disk-type']).toBe('differencing');
    expect(info['backing-filename']).toBe('parent.vhd');
  });

  it('refuses a parent whose UUID is not the one recorded, and says so', async () => {
    const dir = tempDir('diskferry-vpc-diff-');
    try {
      copyFileSync(t.file('child.vhd'), dir.file('child.vhd'));
      // Same name, different disk (qemu-img gives every new VHD a fresh UUID).
      qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'force_size=on', t.file('base.raw'), dir.file('parent.vhd'));
      const r = await cli('convert', '-O', 'raw', dir.file('child.vhd'), dir.file('out.raw'));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/parent "parent\.vhd" has UUID .* but this differencing disk was made from/);
      const m = await cli('convert', '-O', 'raw', t.file('child.vhd'), t.file('ignored.raw'));
      expect(m.code).toBe(0);
      // Without any parent file: a missing-file error naming the locator's file.
      const lone = tempDir('diskferry-vpc-lone-');
      copyFileSync(t.file('child.vhd'), lone.file('child.vhd'));
      const n = await cli('info', '--backing-chain', lone.file('child.vhd'));
      lone.cleanup();
      expect(n.code).not.toBe(0);
      expect(n.stderr).toMatch(/parent VHD "parent\.vhd" not found/);
    } finally {
      dir.cleanup();
    }
  });
});

describe('hostile tables give typed one-line errors', () => {
  const expectTyped = async (file: string, what: RegExp) => {
    const r = await cli('convert', '-O', 'raw', file, `${file}.out`);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(what);
  };
  it('a BAT of 2^32 entries is refused before it is allocated', async () => {
    const f = t.file('huge-bat.vhd');
    copyFileSync(t.file('dynamic.vhd'), f);
    patchDynamicHeader(f, (h) => h.writeUInt32BE(0xffffffff, 28));
    await expectTyped(f, /BAT of 4294967295 entries is larger than the \d+-byte limit/);
  });
  it('a BAT entry past the end of the file', async () => {
    const f = t.file('far-block.vhd');
    copyFileSync(t.file('dynamic.vhd'), f);
    const batAt = Number(readBytesAt(f, 512, 1024).readBigUInt64BE(16));
    writeBytesAt(f, batAt, Buffer.from([0x7f, 0xff, 0xff, 0xff]));
    await expectTyped(f, /VHD block 0 ends at \d+, past the end of the file .*truncated/);
  });
});
