import { readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { drivers } from '../src-core/formats/registry.ts';
import { ExtentEndTracker } from '../src-core/image/integrity.ts';
import { looksLikeText, rawDoubt } from '../src-core/image/rawDoubts.ts';
import { suggestOutputName } from '../web/state/outputName.ts';
import { inspectFiles } from '../workers/inspectFiles.ts';
import { checkPlan } from '../workers/convertJob.ts';
import type { ConvertPlan, PickedFile } from '../workers/protocol.ts';
import { qemuImg, qemuIo, tempDir } from './helpers/sys.ts';

const MiB = 1024 * 1024;
const tmp = tempDir('diskferry-inspect-');
afterAll(() => tmp.cleanup());

/** A file from disk as the page holds it: a File and its path in the drop. */
function picked(file: string, dropPath = path.basename(file)): PickedFile {
  return { file: new File([readFileSync(file)], path.basename(file)), path: dropPath };
}

const plan = (files: PickedFile[], extra: Partial<ConvertPlan> = {}): ConvertPlan => ({
  files,
  path: files[0]!.path,
  target: 'qcow2',
  options: {},
  compress: false,
  verify: false,
  outputName: 'out.qcow2',
  ...extra,
});

describe('rawDoubt: what only raw claims is not silently a raw disk', () => {
  const bin = new Uint8Array(4096).map((_, i) => (i * 37) & 0xff);
  it('refuses an empty file outright', () => {
    expect(rawDoubt(new Uint8Array(0), 0, 'x.img', drivers, true)?.kind).toBe('empty');
  });
  it('says when the name claims a format the bytes do not have', () => {
    const d = rawDoubt(bin, 65536, 'disk.vmdk', drivers, true);
    expect(d?.kind).toBe('misnamed');
    expect(d?.reason).toMatch(/VMDK/);
  });
  it('knows text and tiny files', () => {
    const text = new TextEncoder().encode('these are my notes about the VM\n');
    expect(looksLikeText(text)).toBe(true);
    expect(rawDoubt(text, text.length, 'notes.txt', drivers, true)?.kind).toBe('text');
    expect(rawDoubt(bin.subarray(0, 100), 100, 'blob', drivers, true)?.kind).toBe('tiny');
  });
  it('takes raw names, and a lone binary file, as raw', () => {
    expect(rawDoubt(bin, 1 << 20, 'disk.img', drivers, false)).toBeUndefined();
    expect(rawDoubt(bin, 1 << 20, 'disk.dat', drivers, true)).toBeUndefined();
    expect(rawDoubt(bin, 1 << 20, 'disk.dat', drivers, false)?.kind).toBe('unknown');
  });
});

describe('suggestOutputName never suggests a source name', () => {
  it('keeps the plain name when it is free', () => {
    expect(suggestOutputName('vm/disk.vmdk', 'qcow2', 'converted', ['vm/disk.vmdk'])).toBe('disk.qcow2');
  });
  it('qualifies a name that a dropped file already has (any case), and numbers it if needed', () => {
    expect(suggestOutputName('disk.vmdk', 'vmdk', 'stream', ['disk.vmdk'])).toBe('disk.stream.vmdk');
    expect(suggestOutputName('Disk.qcow2', 'qcow2', 'converted', ['Disk.qcow2', 'disk.CONVERTED.qcow2'])).toBe('Disk.converted-2.qcow2');
  });
});

describe('ExtentEndTracker', () => {
  it('finds files shorter than their tables say, and tolerates a short last sector', () => {
    const t = new ExtentEndTracker('a.vmdk');
    t.add({ offset: 0, length: 65536, kind: 'data', hostOffset: 10 * MiB });
    t.add({ offset: 0, length: 1000, kind: 'data', hostOffset: 0, hostFile: 'b.raw' });
    t.add({ offset: 0, length: 65536, kind: 'data', hostOffset: 99 * MiB, depth: 1 });
    const sizes: Record<string, number> = { 'a.vmdk': 5 * MiB, 'b.raw': 600 };
    expect(t.shortfalls((f) => sizes[f])).toEqual([{ file: 'a.vmdk', size: 5 * MiB, expected: 10 * MiB + 65536 }]);
  });
});

describe('inspectFiles, as the page sees a drop', () => {
  it('refuses the empty file, explains the text file and the false .vmdk, and reads them as raw only when asked', async () => {
    const empty = tmp.file('empty.img');
    writeFileSync(empty, '');
    const notes = tmp.file('notes.txt');
    writeFileSync(notes, 'root password is in the safe, not here\n');
    const fake = tmp.file('random.vmdk');
    writeFileSync(
      fake,
      new Uint8Array(65536).map((_, i) => (i * 7919 + 13) & 0xff),
    );
    const files = [picked(empty), picked(notes), picked(fake)];
    const r = await inspectFiles(files, {});
    expect(r.images).toEqual([]);
    const why = Object.fromEntries(r.ignored.map((i) => [i.path, i]));
    expect(why['empty.img']).toMatchObject({ rawAllowed: false });
    expect(why['empty.img']!.reason).toMatch(/empty/);
    expect(why['notes.txt']!.reason).toMatch(/text file/);
    expect(why['random.vmdk']!.reason).toMatch(/VMDK/);
    const asRaw = await inspectFiles(files, { treatAsRaw: ['random.vmdk', 'empty.img'] });
    expect(asRaw.images.map((i) => [i.path, i.format, i.forcedRaw])).toEqual([['random.vmdk', 'raw', true]]);
    expect(asRaw.ignored.map((i) => i.path).sort()).toEqual(['empty.img', 'notes.txt']);
  });

  it('a truncated VMDK previews with the incomplete-file warning', async () => {
    const vmdk = tmp.file('cut.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', vmdk, String(128 * MiB));
    qemuIo('-f', 'vmdk', '-c', `write -P 0x3c 0 ${40 * MiB}`, vmdk);
    truncateSync(vmdk, 10 * MiB);
    const [img] = (await inspectFiles([picked(vmdk)], {})).images;
    expect(img?.incomplete).toBe(true);
    expect(img?.warnings.join('\n')).toMatch(/incomplete \(10 MiB of ~4\d\.\d MiB\)/);
    const whole = tmp.file('whole.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', whole, String(128 * MiB));
    qemuIo('-f', 'vmdk', '-c', `write -P 0x3c 0 ${4 * MiB}`, whole);
    expect((await inspectFiles([picked(whole)], {})).images[0]?.incomplete).toBe(false);
  });

  it('a split VMDK missing extents names every one of them', async () => {
    const dir = tmp.file('split');
    (await import('node:fs')).mkdirSync(dir);
    qemuImg('create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', path.join(dir, 'big.vmdk'), String(5 * 1024 * MiB));
    const parts = readdirSync(dir).sort();
    expect(parts).toEqual(['big-s001.vmdk', 'big-s002.vmdk', 'big-s003.vmdk', 'big.vmdk']);
    const r = await inspectFiles([picked(path.join(dir, 'big.vmdk')), picked(path.join(dir, 'big-s002.vmdk'))], {});
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.missing).toEqual(['big-s001.vmdk', 'big-s003.vmdk']);
    expect(r.errors[0]!.message).toContain('"big-s001.vmdk", "big-s003.vmdk"');
  });
});

describe('checkPlan: what fails before the save dialog', () => {
  it('a missing backing file, an option the target refuses, compression the target lacks', async () => {
    const base = tmp.file('base.qcow2');
    const top = tmp.file('top.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', base, String(16 * MiB));
    qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top);
    await expect(checkPlan(plan([picked(top)]), true)).rejects.toThrow(/"[^"]*base\.qcow2" not found/);
    const files = [picked(top), picked(base)];
    await expect(checkPlan(plan(files), true)).resolves.toMatchObject({ requiredBytes: expect.any(Number) });
    await expect(checkPlan(plan(files, { options: { compat: '0.10', compression_type: 'zstd' } }), true)).rejects.toThrow(/compat=1.1/);
    await expect(checkPlan(plan(files, { target: 'vhdx', compress: true, outputName: 'o.vhdx' }), true)).rejects.toThrow(
      /cannot be compressed/,
    );
    // A multi-file output can only go where its siblings can be created.
    const split = { target: 'vmdk', options: { subformat: 'twoGbMaxExtentSparse' }, outputName: 'o.vmdk' };
    await expect(checkPlan(plan(files, split), true)).resolves.toBeDefined();
    await expect(checkPlan(plan(files, split), false)).rejects.toThrow(/several files/);
  });
});

describe('sameFileAsSource: the page refuses to write over a dropped file', () => {
  /** A stand-in handle; handles with the same `entry` are the same file on disk. */
  const handle = (file: File, entry: string = Math.random().toString()) =>
    ({
      name: file.name,
      entry,
      getFile: async () => file,
      isSameEntry: async (o: { entry: string }) => o.entry === entry,
    }) as unknown as FileSystemFileHandle;
  it('knows a handle that is the same entry as a source handle', async () => {
    const { sameFileAsSource } = await import('../web/adapters/pickOutput.ts');
    const src = new File(['disk bytes'], 'disk.vmdk', { lastModified: 1000 });
    const srcHandle = handle(src, 'disk-entry');
    const picked = handle(new File(['disk bytes'], 'renamed-view.vmdk', { lastModified: 1 }), 'disk-entry');
    expect((await sameFileAsSource(picked, [{ file: src, path: 'disk.vmdk', handle: srcHandle }]))?.path).toBe('disk.vmdk');
    const other = handle(new File(['x'], 'other.vmdk'));
    expect(await sameFileAsSource(other, [{ file: src, path: 'disk.vmdk', handle: srcHandle }])).toBeUndefined();
  });
  it('without handles, the same name, size and time is the same file; a new empty file never is', async () => {
    const { sameFileAsSource } = await import('../web/adapters/pickOutput.ts');
    const src = new File(['disk bytes'], 'disk.qcow2', { lastModified: 5000 });
    const files = [{ file: src, path: 'vm/disk.qcow2' }];
    expect((await sameFileAsSource(handle(new File(['disk bytes'], 'disk.qcow2', { lastModified: 5000 })), files))?.path).toBe(
      'vm/disk.qcow2',
    );
    expect(await sameFileAsSource(handle(new File(['disk bytes'], 'disk.qcow2', { lastModified: 6000 })), files)).toBeUndefined();
    expect(await sameFileAsSource(handle(new File([], 'disk.qcow2', { lastModified: 5000 })), files)).toBeUndefined();
  });
});
