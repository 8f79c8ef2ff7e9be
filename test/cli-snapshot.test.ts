import { copyFileSync, promises as fs, readFileSync } from 'node:fs';
import { editQcow2Snapshots, type ImageFile, type SnapshotEdit } from '../src-core/formats/qcow2/snapshotWrite.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuImg, qemuImgCalibrating, qemuIo, runStatus, tempDir } from './helpers/sys.ts';

// snapshot -c/-a/-d on qcow2: each step done by DiskFerry on one copy and by qemu-img on a twin;
// qemu-img judges (check clean, compare equal, the same snapshot list and exit codes).
const t = tempDir();
afterAll(() => t.cleanup());

function checkClean(file: string): void {
  const r = runStatus('qemu-img', ['check', file]);
  expect(r.status, `${file}: ${r.stdout}${r.stderr}`).toBe(0);
  expect(r.stdout).toContain('No errors were found');
}

function same(a: string, b: string): boolean {
  return runStatus('qemu-img', ['compare', a, b]).status === 0;
}

/** The snapshot list qemu-img reads, without the dates (the two runs differ in time). */
function snapList(file: string): unknown[] {
  const info = JSON.parse(qemuImg('info', '--output=json', file)) as { snapshots?: Record<string, unknown>[] };
  return (info.snapshots ?? []).map(({ 'date-sec': _s, 'date-nsec': _n, ...rest }) => rest);
}

/** Info as qemu-img prints it, minus what differs with the layout. */
function layoutFreeInfo(file: string): unknown {
  const { 'actual-size': _a, filename: _f, snapshots: _s, ...info } = JSON.parse(qemuImg('info', '--output=json', file));
  return info;
}

/** A qcow2 image with data at a few places, written by qemu-io. */
function makeImage(name: string, createOpts: string[] = [], size = '64M'): string {
  const f = t.file(name);
  qemuImg('create', '-q', '-f', 'qcow2', ...createOpts, f, size);
  qemuIo('-c', 'write -P 0x11 0 3M', '-c', 'write -P 0x22 20M 1M', '-c', 'write -z 30M 1M', '-c', 'write -P 0x23 63M 64k', f);
  return f;
}

function twins(src: string, name: string): [string, string] {
  const ours = t.file(`${name}-ours.qcow2`);
  const theirs = t.file(`${name}-qemu.qcow2`);
  copyFileSync(src, ours);
  copyFileSync(src, theirs);
  return [ours, theirs];
}

/** The same guest write on both twins. */
function writeBoth(files: string[], cmd: string): void {
  for (const f of files) qemuIo('-c', cmd, f);
}

/** The raw snapshot table entries (hex), the L1 offset and the date zeroed. */
function snapshotEntries(file: string): string[] {
  const b = readFileSync(file);
  const count = b.readUInt32BE(60);
  let pos = Number(b.readBigUInt64BE(64));
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = 40 + b.readUInt32BE(pos + 36) + b.readUInt16BE(pos + 12) + b.readUInt16BE(pos + 14);
    // qemu-img's file may end inside the padding of its last entry.
    const e = Buffer.alloc(Math.ceil(len / 8) * 8);
    b.copy(e, 0, pos, pos + e.length);
    e.fill(0, 0, 8);
    e.fill(0, 16, 24);
    out.push(e.toString('hex'));
    pos += e.length;
  }
  return out;
}

describe('snapshot -c, -l, -a, -d', () => {
  it('-c then -l then -a round trips: the data written after -c is undone', async () => {
    const f = makeImage('round.qcow2');
    const original = t.file('round-original.qcow2');
    copyFileSync(f, original);
    expect((await cli('snapshot', '-c', 'before', f)).code).toBe(0);
    checkClean(f);
    expect(same(f, original)).toBe(true);
    // qemu-img lists it, and so do we, exactly as qemu-img prints it.
    expect(qemuImg('snapshot', '-l', f)).toMatch(/^1\s+before\s+0 B /m);
    expect(await cliOk('snapshot', '-l', f)).toBe(qemuImg('snapshot', '-l', f));
    writeBoth([f], 'write -P 0x99 1M 4M');
    checkClean(f);
    expect(same(f, original)).toBe(false);
    // Reading the snapshot (convert -l) gives the state from before the write.
    const snapRaw = t.file('round-snap.raw');
    await cliOk('convert', '-l', 'snapshot.name=before', '-O', 'raw', f, snapRaw);
    expect(same(snapRaw, original)).toBe(true);
    expect((await cli('snapshot', '-a', 'before', f)).code).toBe(0);
    checkClean(f);
    expect(same(f, original)).toBe(true);
    expect(snapList(f)).toHaveLength(1);
    // Our reader reads what the active L1 table now says; so does our convert.
    const ours = t.file('round-ours.raw');
    const theirs = t.file('round-qemu.raw');
    await cliOk('convert', '-O', 'raw', f, ours);
    qemuImg('convert', '-O', 'raw', f, theirs);
    expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
    expect((await cli('snapshot', '-d', 'before', f)).code).toBe(0);
    checkClean(f);
    expect(snapList(f)).toEqual([]);
    expect(same(f, original)).toBe(true);
  });

  it('the snapshot we create is the one qemu-img creates: same list, and qemu-img -a/-d on it work', async () => {
    const [ours, theirs] = twins(makeImage('c.qcow2'), 'c');
    expect((await cli('snapshot', '-c', 'one', ours)).code).toBe(0);
    qemuImg('snapshot', '-c', 'one', theirs);
    expect(snapList(ours)).toEqual(snapList(theirs));
    expect(layoutFreeInfo(ours)).toEqual(layoutFreeInfo(theirs));
    // The table entry byte for byte as qemu-img writes it, but for where the L1 table is and the date.
    expect(snapshotEntries(ours)).toEqual(snapshotEntries(theirs));
    // The date is now, as qemu-img records it.
    const date = (JSON.parse(qemuImg('info', '--output=json', ours)) as { snapshots: { 'date-sec': number }[] }).snapshots[0]!['date-sec'];
    expect(Math.abs(date - Date.now() / 1000)).toBeLessThan(60);
    writeBoth([ours, theirs], 'write -P 0x77 2M 2M');
    checkClean(ours);
    expect(same(ours, theirs)).toBe(true);
    // qemu-img applies our snapshot and gets the data back, then deletes it without leaks.
    const q = t.file('c-ours-by-qemu.qcow2');
    copyFileSync(ours, q);
    qemuImg('snapshot', '-a', 'one', q);
    qemuImg('snapshot', '-a', 'one', theirs);
    checkClean(q);
    expect(same(q, theirs)).toBe(true);
    expect(same(q, t.file('c.qcow2'))).toBe(true);
    qemuImg('snapshot', '-d', 'one', q);
    checkClean(q);
    expect(same(q, t.file('c.qcow2'))).toBe(true);
  });

  it('-a and -d on snapshots qemu-img made give what qemu-img -a and -d give', async () => {
    const src = makeImage('qa.qcow2');
    qemuImg('snapshot', '-c', 'first', src);
    qemuIo('-c', 'write -P 0x44 10M 2M', '-c', 'write -P 0x45 0 64k', src);
    qemuImg('snapshot', '-c', 'second', src);
    qemuIo('-c', 'write -P 0x46 40M 3M', '-c', 'discard 20M 1M', src);
    const [ours, theirs] = twins(src, 'qa');
    for (const [op, name] of [
      ['-a', 'first'],
      ['-d', 'second'],
      ['-a', '2'],
      ['-d', 'first'],
    ]) {
      const r = await cli('snapshot', op!, name!, ours);
      const q = runStatus('qemu-img', ['snapshot', op!, name!, theirs]);
      expect(r.code, `${op} ${name}: ${r.stderr}`).toBe(q.status);
      checkClean(ours);
      expect(same(ours, theirs), `${op} ${name}`).toBe(true);
      expect(snapList(ours), `${op} ${name}`).toEqual(snapList(theirs));
      expect(layoutFreeInfo(ours)).toEqual(layoutFreeInfo(theirs));
    }
  });

  // Every layout qcow2 offers: small and large clusters, extended L2, 1..64-bit refcounts, v2,
  // compressed clusters (shared by snapshots as whole sectors) and a backing file.
  const LAYOUTS: [string, string[], boolean?][] = [
    ['default', []],
    ['4k clusters', ['-o', 'cluster_size=4k']],
    ['512-byte clusters', ['-o', 'cluster_size=512']],
    ['2M clusters', ['-o', 'cluster_size=2M']],
    ['extended L2', ['-o', 'extended_l2=on']],
    ['refcount_bits=2', ['-o', 'refcount_bits=2']],
    ['refcount_bits=64', ['-o', 'refcount_bits=64']],
    ['compat=0.10', ['-o', 'compat=0.10']],
    ['lazy refcounts', ['-o', 'lazy_refcounts=on']],
    ['compressed', [], true],
  ];
  for (const [label, opts, compressed] of LAYOUTS) {
    it(`${label}: -c, write, -c, -a, -d step by step as qemu-img`, async () => {
      const name = `l-${label.replace(/\W/g, '')}`;
      let src = makeImage(`${name}.qcow2`, opts);
      if (compressed) {
        const c = t.file(`${name}-c.qcow2`);
        qemuImg('convert', '-c', '-O', 'qcow2', src, c);
        src = c;
      }
      const [ours, theirs] = twins(src, name);
      const steps: [string, string, string?][] = [
        ['-c', 'a', 'write -P 0x51 1M 1M'],
        ['-c', 'b', 'write -P 0x52 20M 2M'],
        ['-c', 'a', 'write -z 0 512k'],
        ['-a', 'a'],
        ['-d', 'b'],
        ['-a', '3'],
        ['-d', 'a'],
      ];
      for (const [op, snap, after] of steps) {
        const r = await cli('snapshot', op, snap, ours);
        const q = runStatus('qemu-img', ['snapshot', op, snap, theirs]);
        expect(r.code, `${op} ${snap}: ${r.stderr}`).toBe(q.status);
        checkClean(ours);
        expect(same(ours, theirs), `${label}: after ${op} ${snap}`).toBe(true);
        expect(snapList(ours)).toEqual(snapList(theirs));
        expect(snapshotEntries(ours)).toEqual(snapshotEntries(theirs));
        if (after) writeBoth([ours, theirs], after);
        checkClean(ours);
      }
    });
  }

  it('with a backing file: the overlay keeps it, and -a shows the backing file again where it did', async () => {
    const base = makeImage('bk-base.qcow2');
    const top = t.file('bk-top.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'bk-base.qcow2', '-F', 'qcow2', top);
    qemuIo('-c', 'write -P 0x61 8M 1M', top);
    const [ours, theirs] = twins(top, 'bk');
    await cliOk('snapshot', '-c', 's', ours);
    qemuImg('snapshot', '-c', 's', theirs);
    writeBoth([ours, theirs], 'write -P 0x62 0 16M');
    await cliOk('snapshot', '-a', 's', ours);
    qemuImg('snapshot', '-a', 's', theirs);
    checkClean(ours);
    expect(same(ours, theirs)).toBe(true);
    expect(same(ours, top)).toBe(true);
    expect(JSON.parse(qemuImg('info', '--output=json', ours))['backing-filename']).toBe('bk-base.qcow2');
    expect(same(base, ours)).toBe(false);
  });
});

describe('snapshots of another size', () => {
  it('-a takes the virtual size the snapshot had, both ways, as qemu-img -a', async () => {
    const f = t.file('sz.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', f, '4M');
    qemuIo('-c', 'write -P 5 0 4M', f);
    qemuImg('snapshot', '-c', 'small', f);
    qemuImg('resize', f, '8M');
    qemuIo('-c', 'write -P 6 6M 1M', f);
    qemuImg('snapshot', '-c', 'big', f);
    const [ours, theirs] = twins(f, 'sz');
    for (const name of ['small', 'big']) {
      expect((await cli('snapshot', '-a', name, ours)).code).toBe(0);
      qemuImg('snapshot', '-a', name, theirs);
      checkClean(ours);
      expect(same(ours, theirs), name).toBe(true);
      expect(layoutFreeInfo(ours), name).toEqual(layoutFreeInfo(theirs));
    }
    expect(JSON.parse(qemuImg('info', '--output=json', ours))['virtual-size']).toBe(8 << 20);
  });
});

describe('snapshot errors: qemu-img exit codes, one line naming the file', () => {
  it('missing snapshots, duplicate names, unsupported formats, mixed actions', async () => {
    const f = makeImage('err.qcow2');
    const [ours, theirs] = twins(f, 'err');
    const raw = t.file('err.raw');
    qemuImg('create', '-q', '-f', 'raw', raw, '1M');
    const vmdk = t.file('err.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', vmdk, '1M');
    const cases: [string[], string, RegExp?][] = [
      [['-a', 'nope'], 'q', /Could not apply snapshot 'nope': Failed to load snapshot: No such file or directory/],
      [['-d', 'nope'], 'q', /Could not delete snapshot 'nope': snapshot not found/],
      [['-c', 'dup'], 'q'],
      [['-c', 'dup'], 'q'],
      // -d takes the first of two snapshots with one name.
      [['-d', 'dup'], 'q'],
      [['-c', ''], 'q'],
      [['-l', '-c', 'x'], 'q', /Cannot mix '-l', '-a', '-c', '-d'/],
      [['-c', 's'], 'raw', /Could not create snapshot 's': -95 \(Operation not supported\)/],
      [['-a', 's'], 'raw', /Could not apply snapshot 's': Block driver does not support snapshots/],
      [['-d', 's'], 'raw', /Could not delete snapshot 's': snapshot not found/],
      [['-c', 's'], 'vmdk', /Could not create snapshot 's'/],
      [['-a', 's'], 'vmdk', /Could not apply snapshot 's'/],
      [['-d', 's'], 'vmdk', /Could not delete snapshot 's'/],
    ];
    for (const [args, which, message] of cases) {
      const [a, b] = which === 'q' ? [ours, theirs] : which === 'raw' ? [raw, raw] : [vmdk, vmdk];
      const before = readFileSync(a);
      const r = await cli('snapshot', ...args, a);
      const q = runStatus('qemu-img', ['snapshot', ...args, b]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(q.status);
      if (message) {
        expect(q.stderr).toMatch(message);
        expect(r.stderr).toMatch(message);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        if (!args.includes('-l')) expect(r.stderr).toContain(a);
        expect(readFileSync(a).equals(before), args.join(' ')).toBe(true);
      }
      expect(snapList(ours)).toEqual(snapList(theirs));
    }
    checkClean(ours);
  });

  it('a LUKS-encrypted image: refused without its key as qemu-img refuses it; with it, a clean snapshot', async () => {
    const f = t.file('enc.qcow2');
    const secret = ['--object', 'secret,id=s0,data=pw'];
    qemuImgCalibrating(
      'create',
      '-q',
      '-f',
      'qcow2',
      ...secret,
      '-o',
      'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10',
      f,
      '4M',
    );
    const [ours, theirs] = twins(f, 'enc');
    const r = await cli('snapshot', '-c', 's', ours);
    const q = runStatus('qemu-img', ['snapshot', '-c', 's', theirs]);
    expect(r.code).toBe(q.status);
    expect(r.stderr).toContain("Parameter 'encrypt.key-secret' is required");
    const opts = (file: string) => [...secret, '--image-opts', `driver=qcow2,file.filename=${file},encrypt.key-secret=s0`];
    expect((await cli('snapshot', '-c', 's', ...opts(ours))).code).toBe(0);
    const c = runStatus('qemu-img', ['check', ...opts(ours)]);
    expect(c.status, c.stdout + c.stderr).toBe(0);
    expect(runStatus('qemu-img', ['snapshot', '-l', ...opts(ours)]).stdout).toMatch(/^1\s+s\s/m);
  });

  it('a refcount too narrow for a second reference: exit 1 as qemu-img, the image untouched', async () => {
    const f = t.file('r1.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'refcount_bits=1', f, '4M');
    qemuIo('-c', 'write 0 64k', f);
    const copy = t.file('r1-qemu.qcow2');
    copyFileSync(f, copy);
    const before = readFileSync(f);
    const r = await cli('snapshot', '-c', 's', f);
    expect(r.code).toBe(runStatus('qemu-img', ['snapshot', '-c', 's', copy]).status);
    expect(r.stderr).toContain("Could not create snapshot 's'");
    expect(readFileSync(f).equals(before)).toBe(true);
  });
});

describe('a stop after any write leaves the image from before or from after', () => {
  /** The image file through node:fs, dying (throwing) at write number `dieAt`. */
  async function openDying(file: string, dieAt: number): Promise<{ image: ImageFile; writes: () => number; close: () => Promise<void> }> {
    const fh = await fs.open(file, 'r+');
    const { size } = await fh.stat();
    let n = 0;
    const image: ImageFile = {
      name: file,
      size,
      read: async (offset, length) => {
        const buf = new Uint8Array(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        return buf.subarray(0, bytesRead);
      },
      write: async (offset, data) => {
        if (n++ === dieAt) throw new Error('killed');
        await fh.write(data, 0, data.length, offset);
      },
      sync: async () => {},
    };
    return { image, writes: () => n, close: () => fh.close() };
  }

  const EDITS: SnapshotEdit[] = [
    { op: 'create', name: 'new', dateSec: 1_700_000_000, dateNsec: 0 },
    { op: 'apply', name: 'first' },
    { op: 'delete', name: 'first' },
  ];
  for (const edit of EDITS) {
    it(`${edit.op}: stopped at every write in turn`, async () => {
      const src = makeImage(`die-${edit.op}.qcow2`, ['-o', 'cluster_size=4k']);
      qemuImg('snapshot', '-c', 'first', src);
      qemuIo('-c', 'write -P 0x71 0 1M', '-c', 'write -P 0x72 20M 3M', src);
      const after = t.file(`die-${edit.op}-after.qcow2`);
      copyFileSync(src, after);
      const full = await openDying(after, -1);
      await editQcow2Snapshots(full.image, edit);
      await full.close();
      const total = full.writes();
      expect(total).toBeGreaterThan(2);
      for (let k = 0; k < total; k++) {
        const f = t.file(`die-${edit.op}-${k}.qcow2`);
        copyFileSync(src, f);
        const d = await openDying(f, k);
        await expect(editQcow2Snapshots(d.image, edit)).rejects.toThrow('killed');
        await d.close();
        checkClean(f);
        // Every write but the last (the header) leaves the image as it was.
        expect(same(f, src), `stopped at write ${k}`).toBe(true);
        expect(snapList(f)).toEqual(snapList(src));
      }
      checkClean(after);
      // The finished edit did change something the checks above would notice.
      expect(same(after, src) && JSON.stringify(snapList(after)) === JSON.stringify(snapList(src))).toBe(false);
    });
  }
});
