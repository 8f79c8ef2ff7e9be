import { copyFileSync, openSync, readFileSync, statSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { qemuImg, qemuImgCalibrating, qemuIo, runStatus, tempDir } from './helpers/sys.ts';
import { batSector, makeDirty } from './helpers/vhdxLog.ts';

// resize, rebase, commit, amend and check -r on every format qemu-img 7.2 writes: each run by
// qemu-img on one copy of a qemu-img-made image and by DiskFerry on another. Where qemu-img
// succeeds, both results must be qemu-img check clean (where the format has a check) and
// qemu-img compare equal, with the same virtual size; where it refuses, DiskFerry refuses with
// the same exit code. The table of which pairs qemu-img 7.2 supports is in docs/cli-commands.md.
const t = tempDir('diskferry-fmtcmd-');
afterAll(() => t.cleanup());
const MiB = 1 << 20;
let n = 0;

interface Fmt {
  /** A name for the case. */
  tag: string;
  fmt: string;
  opts?: string;
}

const SECRET = ['--object', 'secret,id=s0,data=pw'];
const luksName = (file: string) => `driver=luks,key-secret=s0,file.filename=${file}`;

/** A qemu-img-made image of 8 MiB holding patterned data at 0-3 MiB and 5 MiB. */
function made({ fmt, opts }: Fmt, name = `img${n++}`): string {
  const file = t.file(`${name}.${fmt}`);
  if (fmt === 'luks') {
    qemuImgCalibrating('create', '-q', ...SECRET, '-f', 'luks', '-o', 'key-secret=s0,iter-time=10', file, '8M');
    qemuIo(...SECRET, '--image-opts', '-c', 'write -P 0x5a 0 3M', '-c', 'write -P 0x5b 5M 64k', luksName(file));
    return file;
  }
  qemuImg('create', '-q', '-f', fmt, ...(opts ? ['-o', opts] : []), file, '8M');
  qemuIo('-f', fmt, '-c', 'write -P 0x5a 0 3M', '-c', 'write -P 0x5b 5M 64k', file);
  return file;
}

/** Two copies of a file in folders of their own (same names: backing files resolve alike). */
function pair(files: string[]): { ours: string[]; theirs: string[] } {
  const a = t.file(`ours${n}`);
  const b = t.file(`qemu${n++}`);
  runStatus('mkdir', ['-p', a, b]);
  const copy = (dir: string) =>
    files.map((f) => {
      const to = `${dir}/${f.split('/').pop()}`;
      copyFileSync(f, to);
      return to;
    });
  return { ours: copy(a), theirs: copy(b) };
}

function virtualSize(file: string, fmt: string): number {
  const args = fmt === 'luks' ? [...SECRET, '--image-opts', luksName(file)] : ['-f', fmt, file];
  return JSON.parse(qemuImg('info', '--output=json', ...args))['virtual-size'];
}

/** qemu-img check's exit code for our result; the format's "no check" (63) counts as clean. */
function expectCheckClean(file: string, fmt: string): void {
  const args = fmt === 'luks' ? [...SECRET, '--image-opts', luksName(file)] : ['-f', fmt, file];
  const r = runStatus('qemu-img', ['check', ...args]);
  expect([0, 63], `${file}: ${r.stdout}${r.stderr}`).toContain(r.status);
}

function expectSameContent(a: string, b: string, fmt: string): void {
  const r =
    fmt === 'luks'
      ? runStatus('qemu-img', ['compare', ...SECRET, '--image-opts', luksName(a), luksName(b)])
      : runStatus('qemu-img', ['compare', '-f', fmt, '-F', fmt, a, b]);
  expect(r.status, `${a} vs ${b}: ${r.stdout}${r.stderr}`).toBe(0);
  expect(virtualSize(a, fmt)).toBe(virtualSize(b, fmt));
}

/**
 * Runs qemu-img and DiskFerry with the same arguments (`@` stands for the image, `@i` for the
 * i-th file of the pair) and expects the same exit code; returns it.
 */
async function both(
  files: string[],
  args: string[],
  what: string,
): Promise<{ code: number; ours: string[]; theirs: string[]; stderr: string }> {
  const { ours, theirs } = pair(files);
  const fill = (list: string[]) => args.map((a) => (/^@\d$/.test(a) ? list[Number(a[1])]! : a.replace('@', list[0]!)));
  const q = runStatus('qemu-img', fill(theirs));
  const d = await cli(...fill(ours));
  expect(d.code, `${what}: qemu-img exited ${q.status} (${q.stderr.trim()}), DiskFerry ${d.code} (${d.stderr.trim()})`).toBe(q.status);
  if (d.code !== 0) expect(d.stderr.trim().split('\n'), `${what}: one line`).toHaveLength(1);
  return { code: d.code, ours, theirs, stderr: d.stderr };
}

const ALL: Fmt[] = [
  { tag: 'raw', fmt: 'raw' },
  { tag: 'qcow2', fmt: 'qcow2' },
  { tag: 'qcow', fmt: 'qcow' },
  { tag: 'qed', fmt: 'qed' },
  { tag: 'vdi', fmt: 'vdi' },
  { tag: 'vdi static', fmt: 'vdi', opts: 'static=on' },
  { tag: 'vpc dynamic', fmt: 'vpc' },
  { tag: 'vpc fixed', fmt: 'vpc', opts: 'subformat=fixed' },
  { tag: 'vhdx', fmt: 'vhdx' },
  { tag: 'vmdk monolithicSparse', fmt: 'vmdk' },
  { tag: 'vmdk streamOptimized', fmt: 'vmdk', opts: 'subformat=streamOptimized' },
  { tag: 'vmdk monolithicFlat', fmt: 'vmdk', opts: 'subformat=monolithicFlat' },
  { tag: 'parallels', fmt: 'parallels' },
  { tag: 'luks', fmt: 'luks' },
];

/** The image's own files: a flat VMDK has its extent beside it. */
function filesOf(file: string, f: Fmt): string[] {
  return f.opts === 'subformat=monolithicFlat' ? [file, file.replace(/\.vmdk$/, '-flat.vmdk')] : [file];
}

/** The arguments that name an image of format f: LUKS through --image-opts with its secret. */
const named = (f: Fmt): string[] =>
  f.fmt === 'luks' ? [...SECRET, '--image-opts', 'driver=luks,key-secret=s0,file.filename=@'] : ['-f', f.fmt, '@'];

describe('resize', () => {
  for (const f of ALL) {
    it(`${f.tag}: grow, shrink with --shrink, a size that is not whole sectors: as qemu-img`, async () => {
      const img = made(f);
      for (const [size, shrink] of [
        ['+3M', false],
        ['-1M', true],
        ['-1M', false],
        ['5000001', true],
      ] as [string, boolean][]) {
        const args = ['resize', ...(shrink ? ['--shrink'] : []), ...named(f), size];
        const r = await both(filesOf(img, f), args, `${f.tag} resize ${shrink ? '--shrink ' : ''}${size}`);
        if (r.code !== 0) {
          if (['qcow', 'vdi', 'vpc', 'vhdx', 'vmdk', 'parallels'].includes(f.fmt) && (shrink || size[0] === '+'))
            expect(r.stderr).toMatch(/Image format driver does not support resize/);
          continue;
        }
        expectCheckClean(r.ours[0]!, f.fmt);
        expectSameContent(r.ours[0]!, r.theirs[0]!, f.fmt);
        // raw and LUKS are one truncate: the very same bytes.
        if (f.fmt === 'raw' || f.fmt === 'luks') expect(readFileSync(r.ours[0]!).equals(readFileSync(r.theirs[0]!))).toBe(true);
      }
    });
  }

  it('qed: preallocation and sizes past what its L1 table maps are refused as qemu-img refuses them', async () => {
    const img = made({ tag: 'qed', fmt: 'qed' });
    await both([img], ['resize', '--preallocation=full', '-f', 'qed', '@', '16M'], 'qed full');
    await both([img], ['resize', '-f', 'qed', '@', '100T'], 'qed 100T');
    const r = await both([img], ['resize', '-f', 'qed', '@', '1G'], 'qed 1G');
    expect(r.code).toBe(0);
    expectCheckClean(r.ours[0]!, 'qed');
    expectSameContent(r.ours[0]!, r.theirs[0]!, 'qed');
  });

  it('luks: preallocation=full writes the same bytes as qemu-img; metadata is refused', async () => {
    const img = made({ tag: 'luks', fmt: 'luks' });
    const r = await both([img], ['resize', '--preallocation=full', ...named({ tag: 'luks', fmt: 'luks' }), '12M'], 'luks full');
    expect(r.code).toBe(0);
    expect(readFileSync(r.ours[0]!).equals(readFileSync(r.theirs[0]!))).toBe(true);
    await both([img], ['resize', '--preallocation=metadata', ...named({ tag: 'luks', fmt: 'luks' }), '12M'], 'luks metadata');
  });
});

describe('check -r', () => {
  for (const f of ALL) {
    it(`${f.tag}: -r leaks and -r all on a clean image: the same exit code as qemu-img`, async () => {
      const img = made(f);
      for (const mode of ['leaks', 'all']) await both(filesOf(img, f), ['check', '-r', mode, ...named(f)], `${f.tag} check -r ${mode}`);
    });
  }

  it('parallels: space leaked at the end, an unclean header and a cluster past the end, repaired as qemu-img repairs them', async () => {
    const img = made({ tag: 'parallels', fmt: 'parallels' });
    const fd = openSync(img, 'r+');
    writeSync(fd, new Uint8Array(MiB), 0, MiB, statSync(img).size);
    closeSync(fd);
    let r = await both([img], ['check', '-r', 'leaks', '-f', 'parallels', '@'], 'parallels -r leaks');
    expect(r.code).toBe(0);
    expect(statSync(r.ours[0]!).size).toBe(statSync(img).size - MiB);
    expect(readFileSync(r.ours[0]!).equals(readFileSync(r.theirs[0]!))).toBe(true);
    // In use, and BAT entry 3 pointing far past the end of the file.
    const dirty = t.file('dirty.parallels');
    copyFileSync(img, dirty);
    const d = openSync(dirty, 'r+');
    const word = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);
    writeSync(d, word(0x746f6e59), 0, 4, 44);
    writeSync(d, word(0x10000), 0, 4, 64 + 12);
    closeSync(d);
    expect(runStatus('qemu-img', ['check', dirty]).status).toBe(2);
    r = await both([dirty], ['check', '-r', 'all', '-f', 'parallels', '@'], 'parallels -r all');
    expect(r.code).toBe(0);
    expect(runStatus('qemu-img', ['check', r.ours[0]!]).status).toBe(0);
    expectSameContent(r.ours[0]!, r.theirs[0]!, 'parallels');
  });

  it('qed: -r all zeroes an L2 entry pointing past the end of the file, the same bytes as qemu-img', async () => {
    const img = made({ tag: 'qed', fmt: 'qed' });
    const buf = readFileSync(img);
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const l1 = Number(view.getBigUint64(40, true));
    const l2 = Number(view.getBigUint64(l1, true));
    const fd = openSync(img, 'r+');
    writeSync(fd, new Uint8Array(new BigUint64Array([0x7fff0000n]).buffer), 0, 8, l2 + 8 * 3);
    closeSync(fd);
    expect(runStatus('qemu-img', ['check', img]).status).toBe(2);
    const r = await both([img], ['check', '-r', 'all', '-f', 'qed', '@'], 'qed -r all');
    // Repaired; the leak that the bad entry left stays (exit 3), in both.
    expect(r.code).toBe(3);
    expect(readFileSync(r.ours[0]!).equals(readFileSync(r.theirs[0]!))).toBe(true);
    expect((await cli('check', '-r', 'leaks', '-f', 'qed', r.ours[0]!)).code).toBe(3);
  });

  it('vhdx: -r all replays an unapplied log into the file, as qemu-img does', async () => {
    const img = t.file('dirty.vhdx');
    qemuImg('create', '-q', '-f', 'vhdx', '-o', 'block_size=1M,log_size=2M', img, '8M');
    qemuIo('-f', 'vhdx', '-c', 'write -P 0x41 0 1M', img);
    // One entry that rewrites 4 KiB of block 0 (where the BAT puts it).
    const b0 = Number(batSector(img, 0).bytes.readBigUInt64LE(0) >> 20n) * MiB;
    makeDirty(img, [{ sequence: 7n, ops: [{ data: new Uint8Array(4096).fill(0x77), offset: b0 + 8192 }] }]);
    expect(runStatus('qemu-img', ['info', img]).stderr).toMatch(/log that needs to be replayed/);
    const r = await both([img], ['check', '-r', 'all', '-f', 'vhdx', '@'], 'vhdx -r all');
    expect(r.code).toBe(0);
    expectCheckClean(r.ours[0]!, 'vhdx');
    expectSameContent(r.ours[0]!, r.theirs[0]!, 'vhdx');
  });

  it('qed: leaked clusters stay, as qemu-img leaves them (exit 3)', async () => {
    const img = made({ tag: 'qed', fmt: 'qed' });
    writeFileSync(img, new Uint8Array(64 * 1024), { flag: 'a' });
    const r = await both([img], ['check', '-r', 'leaks', '-f', 'qed', '@'], 'qed -r leaks');
    expect(r.code).toBe(3);
    expect(readFileSync(r.ours[0]!).equals(readFileSync(img))).toBe(true);
  });
});

describe('commit', () => {
  const bases = ALL.filter((f) => f.fmt !== 'luks');
  for (const f of bases) {
    it(`into a ${f.tag} base from a qcow2 overlay: as qemu-img commit`, async () => {
      const base = made(f, 'base');
      const top = t.file(`top${n++}.qcow2`);
      qemuImg('create', '-q', '-f', 'qcow2', '-b', base.split('/').pop()!, '-F', f.fmt, top);
      // Over the base's data (parts of grains it holds) and past it, zeros over data too.
      qemuIo('-c', 'write -P 0x33 1M 1M', '-c', 'write -z 2M 64k', '-c', 'write -P 0x34 6M 64k', top);
      const r = await both([top, ...filesOf(base, f)], ['commit', '-f', 'qcow2', '@0'], `commit into ${f.tag}`);
      if (r.code !== 0) return;
      expectCheckClean(r.ours[1]!, f.fmt);
      expectSameContent(r.ours[1]!, r.theirs[1]!, f.fmt);
      expectCheckClean(r.ours[0]!, 'qcow2');
      expectSameContent(r.ours[0]!, r.theirs[0]!, 'qcow2');
    });
  }

  it('into a streamOptimized VMDK where the overlay covers only grains the base does not hold: as qemu-img', async () => {
    const f = { tag: 'stream', fmt: 'vmdk', opts: 'subformat=streamOptimized' };
    const base = made(f, 'sbase');
    const top = t.file(`stop${n++}.qcow2`);
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'sbase.vmdk', '-F', 'vmdk', top);
    qemuIo('-c', 'write -P 0x33 4M 128k', '-c', 'write -P 0x34 7M 64k', top);
    const r = await both([top, base], ['commit', '-f', 'qcow2', '@0'], 'commit into stream');
    expect(r.code).toBe(0);
    expectCheckClean(r.ours[1]!, 'vmdk');
    expectSameContent(r.ours[1]!, r.theirs[1]!, 'vmdk');
  });

  for (const [topFmt, baseFmt] of [
    ['qcow', 'qcow2'],
    ['qed', 'qcow2'],
    ['qed', 'qed'],
    ['vmdk', 'vmdk'],
  ]) {
    it(`from a ${topFmt} overlay into a ${baseFmt} base: as qemu-img commit`, async () => {
      const base = made({ tag: baseFmt!, fmt: baseFmt! }, 'cbase');
      const top = t.file(`ctop${n++}.${topFmt}`);
      qemuImg('create', '-q', '-f', topFmt!, '-b', `cbase.${baseFmt}`, '-F', baseFmt!, top);
      qemuIo('-f', topFmt!, '-c', 'write -P 0x33 1M 1M', '-c', 'write -P 0x34 6M 64k', top);
      const r = await both([top, base], ['commit', '-f', topFmt!, '@0'], `commit ${topFmt} into ${baseFmt}`);
      expect(r.code).toBe(0);
      expectCheckClean(r.ours[1]!, baseFmt!);
      expectSameContent(r.ours[1]!, r.theirs[1]!, baseFmt!);
      if (topFmt === 'vmdk') {
        // QEMU cannot empty a VMDK: the overlay keeps its grains (qemu-img 7.2 cannot read a VMDK
        // over a VMDK it has written into, so its allocation map is what is compared).
        const map = (f: string) => qemuImg('map', '--output=json', '-f', 'vmdk', f).replace(/"filename": "[^"]*"/g, '');
        expect(map(r.ours[0]!)).toBe(map(r.theirs[0]!));
      } else {
        expectCheckClean(r.ours[0]!, topFmt!);
        expectSameContent(r.ours[0]!, r.theirs[0]!, topFmt!);
      }
    });
  }
});

describe('rebase', () => {
  function overlay(topFmt: string): string[] {
    const base = made({ tag: 'qcow2', fmt: 'qcow2' }, 'rbase');
    const other = t.file('rother.raw');
    qemuImg('create', '-q', '-f', 'raw', other, '8M');
    qemuIo('-f', 'raw', '-c', 'write -P 0x44 2M 4M', other);
    const top = t.file(`rtop${n++}.${topFmt}`);
    qemuImg('create', '-q', '-f', topFmt, '-b', 'rbase.qcow2', '-F', 'qcow2', top);
    qemuIo('-f', topFmt, '-c', 'write -P 0x33 1M 64k', '-c', 'write -z 5M 64k', top);
    return [top, base, other];
  }

  for (const [topFmt, ok] of [
    ['qed', true],
    ['qcow', false],
  ] as [string, boolean][]) {
    it(`${topFmt}: safe onto another file, onto nothing, and -u: ${ok ? 'the same image' : 'refused'} as qemu-img`, async () => {
      const files = overlay(topFmt);
      for (const args of [
        ['-b', 'rother.raw', '-F', 'raw'],
        ['-b', ''],
        ['-u', '-b', 'rother.raw', '-F', 'raw'],
      ]) {
        const r = await both(files, ['rebase', '-f', topFmt, ...args, '@0'], `rebase ${topFmt} ${args.join(' ')}`);
        expect(r.code).toBe(ok ? 0 : 1);
        if (!ok) continue;
        expectCheckClean(r.ours[0]!, topFmt);
        expectSameContent(r.ours[0]!, r.theirs[0]!, topFmt);
      }
    });
  }

  for (const f of ALL.filter((x) => !['qcow2', 'qed', 'luks'].includes(x.fmt))) {
    it(`${f.tag}: refused as qemu-img refuses it`, async () => {
      const img = made(f);
      const r = await both(filesOf(img, f), ['rebase', '-u', '-b', 'x.raw', '-F', 'raw', '-f', f.fmt, '@'], `rebase ${f.tag}`);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Could not change the backing file to 'x.raw': Operation not supported/);
    });
  }
});

describe('amend', () => {
  for (const f of ALL.filter((x) => x.fmt !== 'qcow2')) {
    it(`${f.tag}: -o size refused as qemu-img refuses it`, async () => {
      const img = made(f);
      const r = await both(filesOf(img, f), ['amend', '-o', 'size=16M', ...named(f)], `amend ${f.tag}`);
      expect(r.code).toBe(1);
    });
  }
});

describe('amend luks', () => {
  it('key slots added and erased: the same exit codes, the same active slots, both open with the new secret, as qemu-img amend', async () => {
    const img = made({ tag: 'luks', fmt: 'luks' });
    const { ours, theirs } = pair([img]);
    const S = [...SECRET, '--object', 'secret,id=s1,data=new', '--object', 'secret,id=s2,data=bad'];
    const opened = (file: string, key = 's0') => `driver=luks,key-secret=${key},file.filename=${file}`;
    const slots = (file: string) =>
      (JSON.parse(qemuImg('info', '--output=json', file))['format-specific'].data.slots as { active: boolean }[]).map((x) => x.active);
    const steps: [string, number][] = [
      ['new-secret=s1,iter-time=10', 1],
      ['state=active,iter-time=10', 1],
      ['state=active,new-secret=s1,iter-time=10,keyslot=0', 1],
      ['state=active,new-secret=s1,iter-time=10,keyslot=9', 1],
      ['state=active,new-secret=s1,iter-time=10,old-secret=s2', 1],
      ['state=active,new-secret=s1,iter-time=10', 0],
      ['state=active,new-secret=s2,iter-time=10,keyslot=5', 0],
      ['state=inactive,keyslot=4', 1],
      ['state=inactive,old-secret=s1', 0],
      ['state=inactive,old-secret=s1', 1],
      ['state=inactive,keyslot=5', 0],
      ['state=inactive,old-secret=s0', 1],
      ['state=inactive,keyslot=0', 1],
    ];
    for (const [o, expected] of steps) {
      const q = runStatus('qemu-img', ['amend', ...S, '-o', o, '--image-opts', opened(theirs[0]!)]);
      const d = await cli('amend', ...S, '-o', o, '--image-opts', opened(ours[0]!));
      expect(q.status, `qemu-img amend -o ${o}: ${q.stderr}`).toBe(expected);
      expect(d.code, `amend -o ${o}: ${d.stderr}`).toBe(expected);
      expect(slots(ours[0]!), o).toEqual(slots(theirs[0]!));
      if (expected === 0 && o.startsWith('state=active,new-secret=s')) {
        // The new secret opens the image and shows the same disk.
        const key = /new-secret=(\w+)/.exec(o)![1]!;
        const r = runStatus('qemu-img', ['compare', ...S, '--image-opts', opened(ours[0]!, key), opened(theirs[0]!, 's0')]);
        expect(r.status, r.stdout + r.stderr).toBe(0);
      }
      if (expected === 0 && o === 'state=inactive,old-secret=s1') {
        // The erased secret opens nothing any more.
        const r = runStatus('qemu-img', ['compare', ...S, '--image-opts', opened(ours[0]!, 's1'), opened(theirs[0]!, 's0')]);
        expect(r.stderr).toMatch(/Invalid password/);
      }
    }
    // The payload is untouched.
    const payload = JSON.parse(qemuImg('info', '--output=json', img))['format-specific'].data['payload-offset'];
    expect(readFileSync(ours[0]!).subarray(payload).equals(readFileSync(img).subarray(payload))).toBe(true);
  });
});

describe('read-only formats', () => {
  it('cloop and cow (DiskFerry writes them, qemu-img 7.2 cannot): every command that writes is refused', async () => {
    const raw = made({ tag: 'raw', fmt: 'raw' });
    for (const fmt of ['cloop', 'cow']) {
      const img = t.file(`ro.${fmt}`);
      expect((await cli('convert', '-O', fmt, raw, img)).code).toBe(0);
      for (const args of [
        ['resize', '-f', fmt, '@', '+1M'],
        ['check', '-r', 'all', '-f', fmt, '@'],
        ['amend', '-o', 'size=16M', '-f', fmt, '@'],
        ['commit', '-f', fmt, '@'],
        ['rebase', '-u', '-b', 'x', '-f', fmt, '@'],
      ]) {
        const r = await both([img], args, `${fmt} ${args[0]}`);
        expect(r.code).toBe(1);
        expect(readFileSync(r.ours[0]!).equals(readFileSync(img))).toBe(true);
      }
    }
  });
});
