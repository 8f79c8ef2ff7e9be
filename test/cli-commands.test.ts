import { copyFileSync, readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { addQcow2Leak } from './helpers/qcow2Leak.ts';
import { qemuCompare, qemuImg, qemuIo, runStatus, tempDir } from './helpers/sys.ts';

// create, dd, resize, rebase, commit, amend, check -r: each run by DiskFerry on one copy of an
// image and by qemu-img on another; then qemu-img judges (compare equal, check clean, the same
// JSON fields and exit codes).
const t = tempDir();
const MiB = 1 << 20;
const base = t.file('base.qcow2');
const top = t.file('top.qcow2');
const other = t.file('other.qcow2');

beforeAll(() => {
  qemuImg('create', '-q', '-f', 'qcow2', base, '64M');
  qemuIo('-c', 'write -P 0x11 0 8M', '-c', 'write -P 0x22 32M 4M', '-c', 'write -P 0x23 60M 4M', base);
  qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top);
  qemuIo('-c', 'write -P 0x33 4M 8M', '-c', 'write -z 33M 1M', '-c', 'write -P 0x34 50M 64k', top);
  qemuImg('create', '-q', '-f', 'qcow2', other, '64M');
  qemuIo('-c', 'write -P 0x44 0 2M', '-c', 'write -P 0x22 32M 4M', other);
});
afterAll(() => t.cleanup());

/** Two copies of a file: one for DiskFerry, one for qemu-img. */
function pair(src: string, name: string): [string, string] {
  const a = t.file(`${name}-ours.qcow2`);
  const b = t.file(`${name}-qemu.qcow2`);
  copyFileSync(src, a);
  copyFileSync(src, b);
  return [a, b];
}

function info(file: string): Record<string, unknown> {
  return JSON.parse(qemuImg('info', '--output=json', file));
}

function checkClean(file: string): void {
  const r = runStatus('qemu-img', ['check', file]);
  expect(r.status, r.stdout + r.stderr).toBe(0);
}

/** Compares with qemu-img, each image read through its own backing chain. */
function sameContent(a: string, b: string): void {
  const r = runStatus('qemu-img', ['compare', a, b]);
  expect(r.status, r.stdout + r.stderr).toBe(0);
}

describe('create', () => {
  it('raw and qcow2: the same "Formatting" line, info and check as qemu-img create', async () => {
    for (const [fmt, extra] of [
      ['raw', []],
      ['qcow2', []],
      ['qcow2', ['-o', 'cluster_size=4k,compat=0.10']],
      ['qcow2', ['-o', 'lazy_refcounts=on,refcount_bits=64']],
      ['raw', ['-o', 'preallocation=full']],
    ] as [string, string[]][]) {
      const ours = t.file(`c-ours.${fmt}`);
      const theirs = t.file(`c-qemu.${fmt}`);
      const r = await cli('create', '-f', fmt, ...extra, ours, '24M');
      const q = runStatus('qemu-img', ['create', '-f', fmt, ...extra, theirs, '24M']);
      expect(r.code, r.stderr).toBe(q.status);
      expect(r.stdout.replace(ours, 'F')).toBe(q.stdout.replace(theirs, 'F'));
      const { filename: _a, 'actual-size': _s, ...a } = info(ours);
      const { filename: _b, 'actual-size': _t, ...b } = info(theirs);
      expect(a).toEqual(b);
      if (fmt === 'qcow2') checkClean(ours);
      if (extra.includes('preallocation=full')) expect(statSync(ours).blocks * 512).toBeGreaterThanOrEqual(24 * MiB);
    }
  });

  it('every writable format makes an image qemu-img reads with the size asked for', async () => {
    for (const fmt of ['vmdk', 'vdi', 'vpc', 'vhdx', 'qcow']) {
      const f = t.file(`c.${fmt}`);
      const r = await cli('create', '-q', '-f', fmt, f, '16M');
      expect(r.code, `${fmt}: ${r.stderr}`).toBe(0);
      expect(info(f)['virtual-size'], fmt).toBeGreaterThanOrEqual(16 * MiB);
      expect(runStatus('qemu-img', ['compare', '-f', fmt, f, t.file('c-ours.raw')]).status === 2, fmt).toBe(false);
    }
  });

  it('-b/-F (and -B): an overlay whose size comes from the backing file, as qemu-img makes it', async () => {
    for (const letter of ['-F', '-B']) {
      const ours = t.file(`ov-ours${letter}.qcow2`);
      const theirs = t.file(`ov-qemu${letter}.qcow2`);
      const r = await cli('create', '-f', 'qcow2', '-b', 'base.qcow2', letter, 'qcow2', ours);
      expect(r.code, r.stderr).toBe(0);
      qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', theirs);
      const a = info(ours);
      const b = info(theirs);
      for (const k of ['virtual-size', 'backing-filename', 'backing-filename-format', 'cluster-size']) expect(a[k], k).toEqual(b[k]);
      sameContent(ours, base);
      checkClean(ours);
    }
  });

  it('-o help lists the options; a bad option is one line, exit 1', async () => {
    const h = await cli('create', '-f', 'qcow2', '-o', 'help');
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('cluster_size');
    const bad = await cli('create', '-f', 'qcow2', '-o', 'clustersize=4k', t.file('bad.qcow2'), '1M');
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('dd', () => {
  it('bs= count= skip= -O: the same output as qemu-img dd', async () => {
    for (const ops of [[], ['bs=1M', 'count=5'], ['bs=64k', 'skip=100', 'count=200'], ['bs=4M', 'skip=3']]) {
      for (const fmt of ['raw', 'qcow2']) {
        const ours = t.file(`dd-ours.${fmt}`);
        const theirs = t.file(`dd-qemu.${fmt}`);
        const r = await cli('dd', '-f', 'qcow2', '-O', fmt, `if=${top}`, `of=${ours}`, ...ops);
        expect(r.code, r.stderr).toBe(0);
        qemuImg('dd', '-f', 'qcow2', '-O', fmt, `if=${top}`, `of=${theirs}`, ...ops);
        expect(info(ours)['virtual-size'], ops.join(' ')).toBe(info(theirs)['virtual-size']);
        expect(qemuCompare(ours, theirs), `${fmt} ${ops.join(' ')}`).toBe(0);
      }
    }
  });
});

describe('resize', () => {
  it('raw: grow, grow with preallocation=full, shrink with --shrink, as qemu-img', async () => {
    const src = t.file('r.raw');
    qemuImg('convert', '-O', 'raw', base, src);
    for (const args of [['+8M'], ['--preallocation=full', '+8M'], ['--shrink', '-4M'], ['--shrink', '40M']]) {
      const [a, b] = [t.file('r-ours.raw'), t.file('r-qemu.raw')];
      copyFileSync(src, a);
      copyFileSync(src, b);
      const r = await cli('resize', '-f', 'raw', a, ...args);
      const q = runStatus('qemu-img', ['resize', '-f', 'raw', b, ...args]);
      expect(r.code, r.stderr).toBe(q.status);
      expect(r.stdout).toBe(q.stdout);
      expect(readFileSync(a).equals(readFileSync(b)), args.join(' ')).toBe(true);
    }
  });

  it('qcow2 (with a backing file): grow and shrink; same size, content, backing file; check clean', async () => {
    for (const args of [['+16M'], ['80M'], ['--shrink', '-8M'], ['--shrink', '20M']]) {
      const [a, b] = pair(top, 'resize');
      const r = await cli('resize', a, ...args);
      const q = runStatus('qemu-img', ['resize', b, ...args]);
      expect(r.code, r.stderr).toBe(q.status);
      expect(r.stdout).toBe(q.stdout);
      expect(info(a)['virtual-size']).toBe(info(b)['virtual-size']);
      expect(info(a)['backing-filename']).toBe('base.qcow2');
      sameContent(a, b);
      checkClean(a);
    }
  });

  it('keeps the file mode', async () => {
    const [a] = pair(base, 'mode');
    (await import('node:fs')).chmodSync(a, 0o640);
    expect((await cli('resize', '-q', a, '+1M')).code).toBe(0);
    expect(statSync(a).mode & 0o777).toBe(0o640);
  });
});

describe('rebase', () => {
  it('safe: onto another file, and onto nothing (-b ""); the content stays; like qemu-img', async () => {
    for (const target of ['other.qcow2', '']) {
      const [a, b] = pair(top, `rb${target ? '' : '-none'}`);
      const args = target ? ['-b', target, '-F', 'qcow2'] : ['-b', ''];
      const r = await cli('rebase', ...args, a);
      expect(r.code, r.stderr).toBe(0);
      qemuImg('rebase', ...args, b);
      sameContent(a, top);
      sameContent(a, b);
      expect(info(a)['backing-filename']).toBe(info(b)['backing-filename']);
      expect(info(a)['backing-filename-format']).toBe(info(b)['backing-filename-format']);
      checkClean(a);
    }
  });

  it('-u: only the name changes (old -F spelling and new -B)', async () => {
    for (const letter of ['-F', '-B']) {
      const [a, b] = pair(top, `rbu${letter}`);
      const r = await cli('rebase', '-u', '-b', 'other.qcow2', letter, 'qcow2', a);
      expect(r.code, r.stderr).toBe(0);
      qemuImg('rebase', '-u', '-b', 'other.qcow2', '-F', 'qcow2', b);
      sameContent(a, b);
      expect(info(a)['backing-filename']).toBe('other.qcow2');
      checkClean(a);
    }
  });
});

describe('commit', () => {
  it("the base gets the overlay's data, the overlay is emptied; -d keeps it; like qemu-img commit", async () => {
    for (const drop of [false, true]) {
      const dir = `commit${drop ? '-d' : ''}`;
      const ours = { base: t.file(`${dir}-base-o.qcow2`), top: t.file(`${dir}-top-o.qcow2`) };
      const theirs = { base: t.file(`${dir}-base-q.qcow2`), top: t.file(`${dir}-top-q.qcow2`) };
      for (const s of [ours, theirs]) {
        copyFileSync(base, s.base);
        qemuImg('create', '-q', '-f', 'qcow2', '-b', s.base.split('/').pop()!, '-F', 'qcow2', s.top);
        qemuIo('-c', 'write -P 0x33 4M 8M', '-c', 'write -z 33M 1M', '-c', 'write -P 0x34 50M 64k', s.top);
      }
      const before = t.file(`${dir}-before.raw`);
      qemuImg('convert', '-O', 'raw', ours.top, before);
      const r = await cli('commit', ...(drop ? ['-d'] : []), ours.top);
      const q = runStatus('qemu-img', ['commit', ...(drop ? ['-d'] : []), theirs.top]);
      expect(r.code, r.stderr).toBe(q.status);
      expect(r.stdout).toBe(q.stdout);
      sameContent(ours.base, theirs.base);
      sameContent(ours.base, before);
      sameContent(ours.top, before);
      checkClean(ours.base);
      checkClean(ours.top);
      const mapped = JSON.parse(qemuImg('map', '--output=json', ours.top)) as { depth: number; present: boolean }[];
      const topHolds = mapped.some((e) => e.depth === 0 && e.present);
      expect(topHolds).toBe(drop);
    }
  });
});

describe('amend', () => {
  it('compat=0.10, lazy_refcounts, refcount_bits, size: the same info as qemu-img amend', async () => {
    for (const o of ['compat=0.10', 'lazy_refcounts=on', 'refcount_bits=8', 'size=96M']) {
      const [a, b] = pair(top, 'amend');
      const r = await cli('amend', '-o', o, a);
      const q = runStatus('qemu-img', ['amend', '-o', o, b]);
      expect(r.code, r.stderr).toBe(q.status);
      const { filename: _a, 'actual-size': _s, ...ia } = info(a);
      const { filename: _b, 'actual-size': _t, ...ib } = info(b);
      expect(ia, o).toEqual(ib);
      sameContent(a, b);
      checkClean(a);
    }
  });

  it('refuses a create-only option, and raw images, one line, exit 1 like qemu-img', async () => {
    const [a, b] = pair(top, 'amend-bad');
    const r = await cli('amend', '-o', 'cluster_size=4k', a);
    const q = runStatus('qemu-img', ['amend', '-o', 'cluster_size=4k', b]);
    expect(r.code).toBe(q.status);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const rawFile = t.file('amend.raw');
    qemuImg('create', '-q', '-f', 'raw', rawFile, '1M');
    expect((await cli('amend', '-f', 'raw', '-o', 'size=2M', rawFile)).code).toBe(
      runStatus('qemu-img', ['amend', '-f', 'raw', '-o', 'size=2M', rawFile]).status,
    );
  });
});

describe('check -r', () => {
  it('leaks: the same report, JSON and exit codes as qemu-img check -r leaks / all; clean afterwards', async () => {
    for (const mode of ['leaks', 'all']) {
      const [a, b] = pair(top, `leak-${mode}`);
      addQcow2Leak(a);
      addQcow2Leak(b);
      const q0 = runStatus('qemu-img', ['check', '--output=json', a]);
      expect(q0.status).toBe(3);
      const plain = await cli('check', '--output=json', a);
      expect(plain.code).toBe(3);
      expect(JSON.parse(plain.stdout).leaks).toBe(JSON.parse(q0.stdout).leaks);
      const r = await cli('check', '-r', mode, a);
      const q = runStatus('qemu-img', ['check', '-r', mode, b]);
      expect(r.code, r.stderr).toBe(q.status);
      expect(r.stdout.split('\n').slice(0, 7)).toEqual(q.stdout.split('\n').slice(0, 7));
      checkClean(a);
      sameContent(a, b);
    }
    const [a, b] = pair(top, 'leak-json');
    addQcow2Leak(a);
    addQcow2Leak(b);
    const r = await cli('check', '-r', 'leaks', '--output=json', a);
    const q = runStatus('qemu-img', ['check', '-r', 'leaks', '--output=json', b]);
    expect(r.code).toBe(q.status);
    const ja = JSON.parse(r.stdout);
    const jb = JSON.parse(q.stdout);
    expect(ja['leaks-fixed']).toBe(jb['leaks-fixed']);
    expect(ja.leaks).toBe(jb.leaks);
    expect(ja.corruptions).toBe(jb.corruptions);
  });
});

describe('-p on the commands that change images', () => {
  it("commit, rebase and amend print qemu-img's progress lines, from 0 to 100, as qemu-img does", async () => {
    const shape = /^( {4}\(\d{1,3}\.\d\d\/100%\)\r)+\n(Image committed\.\n)?$/;
    for (const args of [
      ['rebase', '-p', '-b', 'other.qcow2', '-F', 'qcow2', 'X'],
      ['amend', '-p', '-o', 'compat=0.10', 'X'],
      ['commit', '-p', 'X'],
    ]) {
      const [a, b] = pair(top, `p-${args[0]}`);
      if (args[0] === 'commit') {
        // Each overlay on a base of its own.
        for (const [f, baseName] of [
          [a, 'p-base-o.qcow2'],
          [b, 'p-base-q.qcow2'],
        ] as const) {
          copyFileSync(base, t.file(baseName));
          qemuImg('create', '-q', '-f', 'qcow2', '-b', baseName, '-F', 'qcow2', f);
          qemuIo('-c', 'write -P 0x33 4M 8M', f);
        }
      }
      const r = await cli(...args.map((x) => (x === 'X' ? a : x)));
      const q = runStatus(
        'qemu-img',
        args.map((x) => (x === 'X' ? b : x)),
      );
      expect(r.code, r.stderr).toBe(0);
      expect(q.stdout, `qemu-img ${args[0]}`).toMatch(shape);
      expect(r.stdout, args[0]).toMatch(shape);
      const steps = [...r.stdout.matchAll(/\((\d+\.\d\d)\/100%\)/g)].map((m) => Number(m[1]));
      expect(steps.at(-1)).toBe(100);
      expect(steps).toEqual([...steps].sort((x, y) => x - y));
      expect(r.stdout.endsWith('Image committed.\n')).toBe(q.stdout.endsWith('Image committed.\n'));
    }
  });
});

describe('subclusters (extended_l2) over a backing file', () => {
  it('resize, amend and safe rebase keep what partly allocated clusters show; rebase -u refuses them, untouched', async () => {
    const xl = t.file('xl.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', '-b', 'base.qcow2', '-F', 'qcow2', xl);
    qemuIo('-c', 'write -P 0x55 4k 4k', '-c', 'write -P 0x56 1M 8k', '-c', 'write -z 2M 4k', xl);
    for (const args of [
      ['resize', 'X', '+1M'],
      ['amend', '-o', 'lazy_refcounts=on', 'X'],
      ['rebase', '-b', 'other.qcow2', '-F', 'qcow2', 'X'],
    ]) {
      const [a] = pair(xl, 'xl');
      const r = await cli(...args.map((x) => (x === 'X' ? a : x)));
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
      expect(runStatus('qemu-img', ['compare', xl, a]).status, args[0]).toBe(0);
      checkClean(a);
    }
    const [a] = pair(xl, 'xl-u');
    const before = readFileSync(a);
    const r = await cli('rebase', '-u', '-b', 'other.qcow2', '-F', 'qcow2', a);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('partly allocated');
    expect(readFileSync(a).equals(before)).toBe(true);
  });
});

describe('snapshot', () => {
  // -c, -a and -d: test/cli-snapshot.test.ts.
  it('-l lists as qemu-img does; an image with snapshots is not rewritten by resize', async () => {
    const [a] = pair(base, 'snap');
    qemuImg('snapshot', '-c', 'one', a);
    const r = await cli('snapshot', '-l', a);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('one');
    const before = readFileSync(a);
    // An image with snapshots is not rewritten (they would be lost).
    const rs = await cli('resize', a, '+1M');
    expect(rs.code).toBe(1);
    expect(rs.stderr).toContain('snapshots');
    expect(readFileSync(a).equals(before)).toBe(true);
  });
});
