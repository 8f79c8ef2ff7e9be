import { copyFileSync, statSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { qemuImg, qemuIo, runStatus, tempDir } from './helpers/sys.ts';

// preallocation=off|metadata|falloc|full for qcow2 (create, convert, resize) and raw (resize),
// each against qemu-img's own: the same map (what is allocated, and as zeros or data), check
// clean, compare equal, the same exit codes.
const t = tempDir();
afterAll(() => t.cleanup());
const MiB = 1 << 20;
const MODES = ['off', 'metadata', 'falloc', 'full'];

/**
 * qemu-img map --output=json, as a list of what each guest range is (present, zero, data),
 * without host offsets: qemu-img lays out falloc/full data before the L2 tables, DiskFerry in
 * guest order among them, so the host offsets and the splitting of ranges differ.
 */
function map(file: string, ...fmt: string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const { offset: _o, ...e } of JSON.parse(qemuImg('map', ...fmt, '--output=json', file)) as Record<string, unknown>[]) {
    const last = out[out.length - 1];
    const key = (x: Record<string, unknown>) => JSON.stringify([x.depth, x.present, x.zero, x.data]);
    if (last && key(last) === key(e) && (last.start as number) + (last.length as number) === e.start)
      last.length = (last.length as number) + (e.length as number);
    else out.push(e);
  }
  return out;
}

function checkClean(file: string): void {
  const r = runStatus('qemu-img', ['check', file]);
  expect(r.status, r.stdout + r.stderr).toBe(0);
}

function expectSameImage(ours: string, theirs: string, what: string): void {
  expect(runStatus('qemu-img', ['compare', ours, theirs]).status, what).toBe(0);
  expect(map(ours), what).toEqual(map(theirs));
}

/** Bytes the file occupies on disk. */
const onDisk = (f: string) => statSync(f).blocks * 512;

describe('create -o preallocation', () => {
  for (const extra of [[], ['-o', 'cluster_size=4k'], ['-o', 'extended_l2=on,cluster_size=128k'], ['-o', 'compat=0.10']]) {
    for (const mode of MODES) {
      it(`qcow2 ${extra.join(' ')} preallocation=${mode}: as qemu-img create`, async () => {
        const ours = t.file(`c-${mode}-ours.qcow2`);
        const theirs = t.file(`c-${mode}-qemu.qcow2`);
        const r = await cli('create', '-f', 'qcow2', ...extra, '-o', `preallocation=${mode}`, ours, '5M');
        const q = runStatus('qemu-img', ['create', '-f', 'qcow2', ...extra, '-o', `preallocation=${mode}`, theirs, '5M']);
        expect(r.code, r.stderr).toBe(q.status);
        expect(r.stdout.replace(ours, 'F')).toBe(q.stdout.replace(theirs, 'F'));
        checkClean(ours);
        expectSameImage(ours, theirs, mode);
        const m = map(ours);
        // Off: nothing allocated; metadata: allocated zero clusters; falloc, full: allocated data
        // (extended L2 keeps the subclusters unallocated in every mode, as qemu-img does).
        const unallocated = mode === 'off' || extra.join().includes('extended_l2');
        if (unallocated) expect(m.every((e) => e.data === false)).toBe(true);
        else expect(m.every((e) => e.data === true && e.zero === (mode === 'metadata'))).toBe(true);
        if (mode === 'falloc' || mode === 'full') expect(onDisk(ours)).toBeGreaterThanOrEqual(5 * MiB);
        if (mode === 'metadata') expect(statSync(ours).size).toBe(statSync(theirs).size);
      });
    }
  }

  it('refusals as qemu-img: with -c, over a backing file without extended_l2, raw metadata', async () => {
    const base = t.file('r-base.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', base, '4M');
    const cases: [string, string[], string][] = [
      ['convert -c', ['convert', '-c', '-O', 'qcow2', '-o', 'preallocation=metadata', base, 'OUT'], 'Compression and preallocation'],
      [
        'create -b',
        ['create', '-f', 'qcow2', '-b', 'r-base.qcow2', '-F', 'qcow2', '-o', 'preallocation=full', 'OUT'],
        'Backing file and preallocation',
      ],
      ['raw metadata', ['create', '-f', 'raw', '-o', 'preallocation=metadata', 'OUT', '1M'], 'Unsupported preallocation mode: metadata'],
    ];
    for (const [name, args, message] of cases) {
      const ours = t.file(`ref-ours-${name.replace(/\W/g, '')}`);
      const theirs = t.file(`ref-qemu-${name.replace(/\W/g, '')}`);
      const r = await cli(...args.map((a) => (a === 'OUT' ? ours : a)));
      const q = runStatus(
        'qemu-img',
        args.map((a) => (a === 'OUT' ? theirs : a)),
        t.dir,
      );
      expect(r.code, `${name}: ${r.stderr}`).toBe(q.status);
      expect(q.stderr, name).toContain(message);
      expect(r.stderr, name).toContain(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('convert -o preallocation', () => {
  it('qcow2: data where the source has it, every other cluster preallocated as qemu-img does', async () => {
    const src = t.file('cv-src.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', src, '6M');
    qemuIo('-c', 'write -P 0x11 0 1M', '-c', 'write -P 0x12 3M 64k', src);
    for (const mode of MODES) {
      const ours = t.file(`cv-${mode}-ours.qcow2`);
      const theirs = t.file(`cv-${mode}-qemu.qcow2`);
      const r = await cli('convert', '-O', 'qcow2', '-o', `preallocation=${mode}`, src, ours);
      expect(r.code, r.stderr).toBe(0);
      qemuImg('convert', '-O', 'qcow2', '-o', `preallocation=${mode}`, src, theirs);
      checkClean(ours);
      expectSameImage(ours, theirs, mode);
    }
  });
});

describe('resize --preallocation', () => {
  for (const mode of MODES) {
    it(`qcow2 and raw, growing with preallocation=${mode}: as qemu-img resize`, async () => {
      for (const fmt of ['qcow2', 'raw']) {
        const src = t.file(`rs-src.${fmt}`);
        qemuImg('create', '-q', '-f', fmt, src, '2M');
        qemuIo('-f', fmt, '-c', 'write -P 0x21 0 1M', src);
        const ours = t.file(`rs-${mode}-ours.${fmt}`);
        const theirs = t.file(`rs-${mode}-qemu.${fmt}`);
        copyFileSync(src, ours);
        copyFileSync(src, theirs);
        const r = await cli('resize', '-f', fmt, `--preallocation=${mode}`, ours, '+3M');
        const q = runStatus('qemu-img', ['resize', '-f', fmt, `--preallocation=${mode}`, theirs, '+3M']);
        expect(r.code, `${fmt}: ${r.stderr}`).toBe(q.status);
        if (q.status !== 0) {
          expect(r.stderr).toContain('Unsupported preallocation mode: metadata');
          continue;
        }
        expect(r.stdout).toBe(q.stdout);
        if (fmt === 'qcow2') checkClean(ours);
        expect(runStatus('qemu-img', ['compare', '-f', fmt, '-F', fmt, ours, theirs]).status).toBe(0);
        // The new area has the same allocation kind.
        expect(map(ours, '-f', fmt), `${fmt} ${mode}`).toEqual(map(theirs, '-f', fmt));
        if (mode === 'falloc' || mode === 'full') expect(onDisk(ours)).toBeGreaterThanOrEqual(4 * MiB);
      }
    });
  }

  it('shrinking with preallocation is refused as qemu-img refuses it', async () => {
    const f = t.file('rs-shrink.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', f, '4M');
    const r = await cli('resize', '--shrink', '--preallocation=full', f, '2M');
    const q = runStatus('qemu-img', ['resize', '--shrink', '--preallocation=full', f, '2M']);
    expect(r.code).toBe(q.status);
    expect(q.stderr).toContain('Preallocation can only be used for growing images');
    expect(r.stderr).toContain('Preallocation can only be used for growing images');
  });
});
