import { closeSync, openSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { qemuCompare, qemuImg, qemuIo, runStatus, standardRaw, tempDir } from './helpers/sys.ts';

// convert's options beyond the format: -n, --target-is-zero, -S, -r, -m/-W, --salvage, each
// held to what qemu-img convert does with the same option on the same input.
const t = tempDir();
const MiB = 1 << 20;
const raw = t.file('src.raw');
const qcow = t.file('src.qcow2');
/** 1 MiB blocks: data (0x5a), hole, data, hole…: no partly-zero cluster, so both tools write the same ranges. */
const blocky = t.file('blocky.qcow2');

beforeAll(() => {
  standardRaw(raw, 8 * MiB, 3);
  qemuImg('convert', '-O', 'qcow2', raw, qcow);
  qemuImg('create', '-q', '-f', 'qcow2', blocky, `${8 * MiB}`);
  for (let i = 0; i < 8; i += 2) qemuIo('-c', `write -P 0x5a ${i * MiB} ${MiB}`, blocky);
});
afterAll(() => t.cleanup());

/** A file of `size` bytes of 0xff: an old disk's leftovers. */
function junk(file: string, size: number): void {
  writeFileSync(file, Buffer.alloc(size, 0xff));
}

describe('convert -n (--no-create)', () => {
  it('overwrites an existing raw file in place, every byte, as qemu-img does; no temporary file, the length kept', async () => {
    const ours = t.file('n-ours.raw');
    const theirs = t.file('n-theirs.raw');
    junk(ours, 9 * MiB);
    junk(theirs, 9 * MiB);
    const ino = statSync(ours).ino;
    const r = await cli('convert', '-n', '-O', 'raw', qcow, ours);
    expect(r.code, r.stderr).toBe(0);
    qemuImg('convert', '-n', '-O', 'raw', qcow, theirs);
    expect(statSync(ours).ino).toBe(ino);
    expect(statSync(ours).size).toBe(9 * MiB);
    expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
    expect(
      readFileSync(ours)
        .subarray(0, 8 * MiB)
        .equals(readFileSync(raw)),
    ).toBe(true);
  });

  it('writes into a block device (a loop device over a file of junk) without truncating it', async () => {
    // As root (CI, the dev machines) this is a real block device; elsewhere the same file stands in.
    const backing = t.file('loop-backing.img');
    junk(backing, 12 * MiB);
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    const dev = isRoot ? runStatus('losetup', ['-f', '--show', backing]).stdout.trim() : backing;
    try {
      if (isRoot) expect(dev).toMatch(/^\/dev\/loop\d+$/);
      const r = await cli('convert', '-n', '-O', 'raw', qcow, dev);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      if (isRoot) runStatus('losetup', ['-d', dev]);
    }
    const b = readFileSync(backing);
    expect(b.length).toBe(12 * MiB);
    expect(b.subarray(0, 8 * MiB).equals(readFileSync(raw))).toBe(true);
    expect(b.subarray(8 * MiB).every((x) => x === 0xff)).toBe(true);
  });

  it('--target-is-zero: zero ranges are not written (the old bytes stay, as with qemu-img), data is', async () => {
    const ours = t.file('z-ours.raw');
    const theirs = t.file('z-theirs.raw');
    junk(ours, 8 * MiB);
    junk(theirs, 8 * MiB);
    process.env.DISKFERRY_STATS = '1';
    const r = await cli('convert', '-n', '--target-is-zero', '-O', 'raw', blocky, ours);
    delete process.env.DISKFERRY_STATS;
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stderr.slice(r.stderr.indexOf('{')))).toMatchObject({ zeroBytesWritten: 0 });
    qemuImg('convert', '-n', '--target-is-zero', '-O', 'raw', blocky, theirs);
    const a = readFileSync(ours);
    expect(a.equals(readFileSync(theirs))).toBe(true);
    expect(a[0]).toBe(0x5a);
    expect(a[MiB]).toBe(0xff);
    // Without it, the holes are zeroed.
    const full = await cli('convert', '-n', '-O', 'raw', blocky, ours);
    expect(full.code).toBe(0);
    expect(readFileSync(ours)[MiB]).toBe(0);
  });

  it('a target smaller than the source is refused, untouched', async () => {
    const small = t.file('small.raw');
    junk(small, MiB);
    const q = runStatus('qemu-img', ['convert', '-n', '-O', 'raw', qcow, small]);
    const r = await cli('convert', '-n', '-O', 'raw', qcow, small);
    expect(r.code).toBe(q.status);
    expect(r.stderr).toContain('smaller');
    expect(readFileSync(small).equals(Buffer.alloc(MiB, 0xff))).toBe(true);
  });
});

describe('convert -n into an existing qcow2 image', () => {
  /**
   * A qcow2 target with old data (0x99): over the source's 8 MiB (unless `head` is false:
   * qemu-img -n -c cannot write compressed clusters over allocated ones) and past its end.
   */
  function oldTarget(name: string, size: number, opts: string[] = [], head = true): string {
    const f = t.file(name);
    qemuImg('create', '-q', '-f', 'qcow2', ...opts, f, String(size));
    if (head) qemuIo('-c', `write -P 0x99 0 ${Math.min(size, 8 * MiB)}`, f);
    if (size > 8 * MiB) qemuIo('-c', `write -P 0x99 ${8 * MiB} ${size - 8 * MiB}`, f);
    return f;
  }
  const info = (f: string) => {
    const { filename: _f, 'actual-size': _a, 'full-backing-filename': _b, ...rest } = JSON.parse(qemuImg('info', '--output=json', f));
    return rest;
  };

  for (const [label, opts, extra] of [
    ['4k clusters, compat=0.10', ['-o', 'cluster_size=4k,compat=0.10'], []],
    ['refcount_bits=8, -c (into unallocated clusters)', ['-o', 'refcount_bits=8'], ['-c']],
    ['extended L2', ['-o', 'extended_l2=on'], []],
  ] as [string, string[], string[]][]) {
    it(`${label}: the image keeps its options, size and tail; the same content as qemu-img -n; same file`, async () => {
      const key = label.replace(/\W/g, '');
      const ours = oldTarget(`nq-${key}-ours.qcow2`, 12 * MiB, opts, !extra.length);
      const theirs = oldTarget(`nq-${key}-qemu.qcow2`, 12 * MiB, opts, !extra.length);
      const before = statSync(ours);
      const r = await cli('convert', '-n', ...extra, '-O', 'qcow2', blocky, ours);
      expect(r.code, r.stderr).toBe(0);
      qemuImg('convert', '-n', ...extra, '-O', 'qcow2', blocky, theirs);
      expect(runStatus('qemu-img', ['check', ours]).status).toBe(0);
      expect(qemuCompare(ours, theirs)).toBe(0);
      expect(info(ours)).toEqual(info(theirs));
      const after = statSync(ours);
      expect(after.ino).toBe(before.ino);
      expect(after.size).toBeGreaterThanOrEqual(before.size);
      // Past the source's 8 MiB the old data is still there.
      expect(qemuIo('-c', `read -P 0x99 ${8 * MiB} ${4 * MiB}`, ours)).not.toContain('Pattern verification failed');
      if (extra.includes('-c')) expect(JSON.parse(qemuImg('check', '--output=json', ours))['compressed-clusters']).toBeGreaterThan(0);
    });
  }

  it('over a backing file: zeros of the source hide it, as qemu-img -n writes them', async () => {
    const base = oldTarget('nq-base.qcow2', 8 * MiB);
    const ours = t.file('nq-top-ours.qcow2');
    const theirs = t.file('nq-top-qemu.qcow2');
    for (const f of [ours, theirs]) qemuImg('create', '-q', '-f', 'qcow2', '-b', 'nq-base.qcow2', '-F', 'qcow2', f);
    const r = await cli('convert', '-n', '-O', 'qcow2', blocky, ours);
    expect(r.code, r.stderr).toBe(0);
    qemuImg('convert', '-n', '-O', 'qcow2', blocky, theirs);
    expect(runStatus('qemu-img', ['check', ours]).status).toBe(0);
    expect(qemuCompare(ours, theirs)).toBe(0);
    expect(qemuCompare(ours, blocky)).toBe(0);
    expect(info(ours)['backing-filename']).toBe('nq-base.qcow2');
    expect(qemuCompare(ours, base)).not.toBe(0);
  });

  it('a source shorter than the image: past its end the backing file still shows through', async () => {
    oldTarget('nq-base2.qcow2', 12 * MiB);
    const src = t.file('nq-src5.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', src, `${5 * MiB + 512}`);
    qemuIo('-c', `write -P 0x42 ${4 * MiB} ${MiB}`, src);
    const ours = t.file('nq-top2-ours.qcow2');
    const theirs = t.file('nq-top2-qemu.qcow2');
    for (const f of [ours, theirs]) qemuImg('create', '-q', '-f', 'qcow2', '-b', 'nq-base2.qcow2', '-F', 'qcow2', f);
    const r = await cli('convert', '-n', '-O', 'qcow2', src, ours);
    expect(r.code, r.stderr).toBe(0);
    qemuImg('convert', '-n', '-O', 'qcow2', src, theirs);
    expect(runStatus('qemu-img', ['check', ours]).status).toBe(0);
    expect(qemuCompare(ours, theirs)).toBe(0);
    expect(qemuIo('-c', `read -P 0x99 ${6 * MiB} ${6 * MiB}`, ours)).not.toContain('Pattern verification failed');
  });

  it('refusals: a smaller image, a file that is not qcow2, formats DiskFerry cannot write into', async () => {
    const small = oldTarget('nq-small.qcow2', 4 * MiB);
    const rawFile = t.file('nq-not.raw');
    junk(rawFile, 16 * MiB);
    const vmdk = t.file('nq.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', vmdk, '16M');
    for (const [dst, fmt, message] of [
      [small, 'qcow2', 'output file is smaller than input file'],
      [rawFile, 'qcow2', 'Image is not in qcow2 format'],
      [vmdk, 'vmdk', 'only for raw and qcow2'],
    ]) {
      const before = readFileSync(dst!);
      const r = await cli('convert', '-n', '-O', fmt!, blocky, dst!);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(message);
      expect(readFileSync(dst!).equals(before)).toBe(true);
      if (fmt === 'qcow2') {
        const q = runStatus('qemu-img', ['convert', '-n', '-O', fmt, blocky, dst!]);
        expect(q.status).toBe(1);
        expect(q.stderr).toContain(message);
      }
    }
  });
});

/** The allocation of an image as qemu-img map reports it (offsets left out). */
function allocation(file: string): { start: number; length: number; data: boolean; zero: boolean }[] {
  return (JSON.parse(qemuImg('map', '--output=json', file)) as { start: number; length: number; data: boolean; zero: boolean }[]).map(
    ({ start, length, data, zero }) => ({ start, length, data, zero }),
  );
}

describe('convert -S (--sparse-size)', () => {
  it('-S 0: a fully allocated raw output, the same allocation as qemu-img -S 0 (qcow2: same content; its writer keeps zero clusters unallocated)', async () => {
    const ours = t.file('s0-ours.raw');
    const theirs = t.file('s0-theirs.raw');
    expect((await cli('convert', '-S', '0', '-O', 'raw', blocky, ours)).code).toBe(0);
    qemuImg('convert', '-S', '0', '-O', 'raw', blocky, theirs);
    expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
    expect(allocation(ours)).toEqual(allocation(theirs));
    expect(allocation(ours)).toEqual([{ start: 0, length: 8 * MiB, data: true, zero: false }]);
    expect(statSync(ours).blocks * 512).toBeGreaterThanOrEqual(8 * MiB);
    // Without -S 0 the holes stay holes.
    const sparse = t.file('s-sparse.raw');
    expect((await cli('convert', '-O', 'raw', blocky, sparse)).code).toBe(0);
    expect(allocation(sparse).filter((e) => e.data)).toHaveLength(4);
    const q = t.file('s0.qcow2');
    expect((await cli('convert', '--sparse-size=0', '-O', 'qcow2', blocky, q)).code).toBe(0);
    expect(qemuCompare(blocky, q)).toBe(0);
  });

  it('-S 1M: zeros inside data shorter than 1 MiB are written, holes in the source stay holes, as qemu-img does', async () => {
    // 0x5a, 512 KiB of zeros stored as data, 0x5a, a 1 MiB hole, 0x5a.
    const src = t.file('zeros-in-data.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', src, `${4 * MiB}`);
    qemuIo(
      '-c',
      `write -P 0x5a 0 ${MiB}`,
      '-c',
      `write -P 0 ${MiB} ${MiB / 2}`,
      '-c',
      `write -P 0x5a ${1.5 * MiB} ${MiB / 2}`,
      '-c',
      `write -P 0x5a ${3 * MiB} ${MiB}`,
      src,
    );
    for (const S of ['1M', '4k']) {
      const ours = t.file(`s${S}-ours.raw`);
      const theirs = t.file(`s${S}-theirs.raw`);
      expect((await cli('convert', '-S', S, '-O', 'raw', src, ours)).code).toBe(0);
      qemuImg('convert', '-S', S, '-O', 'raw', src, theirs);
      expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
      expect(allocation(ours), S).toEqual(allocation(theirs));
    }
    expect(allocation(t.file('s1M-ours.raw'))).toEqual([
      { start: 0, length: 2 * MiB, data: true, zero: false },
      { start: 2 * MiB, length: MiB, data: false, zero: true },
      { start: 3 * MiB, length: MiB, data: true, zero: false },
    ]);
    expect(allocation(t.file('s4k-ours.raw')).filter((e) => e.data)).toHaveLength(3);
  });
});

describe('convert -r (--rate-limit), -m, -W', () => {
  it('-r 1M: 3 MiB of data take at least 2.5 s to write, and arrive intact', async () => {
    const src = t.file('three.raw');
    const fd = openSync(src, 'w');
    writeSync(fd, Buffer.alloc(3 * MiB, 0x33), 0, 3 * MiB, 0);
    closeSync(fd);
    const out = t.file('three.qcow2');
    const t0 = performance.now();
    const r = await cli('convert', '-r', '1M', '-O', 'qcow2', src, out);
    expect(r.code, r.stderr).toBe(0);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(2500);
    expect(qemuCompare(src, out)).toBe(0);
  });

  it('-m 4 and -W (--parallel, --oob-writes) are accepted and change nothing; -m 17 is refused as by qemu-img', async () => {
    const out = t.file('mw.qcow2');
    expect((await cli('convert', '-m', '4', '-W', '-O', 'qcow2', qcow, out)).code).toBe(0);
    expect(qemuCompare(qcow, out)).toBe(0);
    const q = runStatus('qemu-img', ['convert', '-m', '17', '-O', 'qcow2', qcow, t.file('m17.qcow2')]);
    const r = await cli('convert', '--parallel=17', '-O', 'qcow2', qcow, t.file('m17.qcow2'));
    expect(r.code).toBe(q.status);
  });
});

describe('convert --salvage', () => {
  it('a qcow2 cut short: without --salvage it fails; with it the unreadable ranges become zeros with a warning each, as qemu-img --salvage gives', async () => {
    const cut = t.file('cut.qcow2');
    writeFileSync(cut, readFileSync(qcow));
    truncateSync(cut, statSync(cut).size - 700_000);
    const fail = await cli('convert', '-O', 'raw', cut, t.file('cut-fail.raw'));
    expect(fail.code).toBe(1);
    const ours = t.file('cut-ours.raw');
    const r = await cli('convert', '--salvage', '-O', 'raw', cut, ours);
    expect(r.code, r.stderr).toBe(0);
    const warnings = r.stderr.trim().split('\n');
    expect(warnings.length).toBeGreaterThan(0);
    for (const w of warnings) expect(w).toMatch(/warning: error while reading offset \d+/);
    const theirs = t.file('cut-theirs.raw');
    expect(runStatus('qemu-img', ['convert', '--salvage', '-O', 'raw', cut, theirs]).status).toBe(0);
    // qemu-img reads a file cut short as zeros past its end; DiskFerry's reader calls it an
    // error, which --salvage turns into zeros for each whole sector it cannot read. So: equal
    // outside the ranges warned about, zeros inside them.
    const a = readFileSync(ours);
    const b = readFileSync(theirs);
    expect(a.length).toBe(b.length);
    const bad = warnings
      .map((w) => /offset (\d+) \((\d+) bytes\)/.exec(w)!)
      .map((m) => [Number(m[1]), Number(m[1]) + Number(m[2])] as const);
    let pos = 0;
    for (const [s, e] of bad) {
      expect(a.subarray(pos, s).equals(b.subarray(pos, s))).toBe(true);
      expect(a.subarray(s, e).every((x) => x === 0)).toBe(true);
      pos = e;
    }
    expect(a.subarray(pos).equals(b.subarray(pos))).toBe(true);
    // -q silences the warnings.
    const quiet = await cli('convert', '-q', '--salvage', '-O', 'raw', cut, t.file('cut-q.raw'));
    expect(quiet.stderr).toBe('');
  });
});

describe('convert SRC1 SRC2 … TGT', () => {
  it('concatenates the sources as qemu-img does', async () => {
    const ours = t.file('cat-ours.qcow2');
    const theirs = t.file('cat-theirs.qcow2');
    const r = await cli('convert', '-O', 'qcow2', blocky, raw, qcow, ours);
    expect(r.code, r.stderr).toBe(0);
    qemuImg('convert', '-O', 'qcow2', blocky, raw, qcow, theirs);
    expect(JSON.parse(qemuImg('info', '--output=json', ours))['virtual-size']).toBe(24 * MiB);
    expect(qemuCompare(ours, theirs)).toBe(0);
    const b = await cli('convert', '-O', 'qcow2', '-b', 'src.qcow2', '-F', 'qcow2', raw, qcow, t.file('cat-b.qcow2'));
    expect(b.code).toBe(
      runStatus('qemu-img', ['convert', '-O', 'qcow2', '-b', 'src.qcow2', '-F', 'qcow2', raw, qcow, t.file('cat-bq.qcow2')]).status,
    );
  });
});
