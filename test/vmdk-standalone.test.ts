import { copyFileSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portableCodecs } from '../src-core/codecs/portable.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import { MemorySource, type ByteSource, type FileResolver } from '../src-core/io/bytes.ts';
import { MissingFileError } from '../src-core/io/errors.ts';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuImg, runStatus, tempDir, writePatternedRaw } from './helpers/sys.ts';
import { buildCowd, esxDescriptor } from './helpers/vmdkEsx.ts';

// A sparse extent opened on its own has no descriptor (no CID at byte 512): qemu-img refuses it
// ("Invalid argument"), and so do we, naming the descriptor to open instead when we can find it.
const t = tempDir();
afterAll(() => t.cleanup());

const GiB = 2 ** 30;
const split = t.file('split.vmdk');
beforeAll(() => {
  const raw = t.file('src.raw');
  // 5 GiB: three pieces, with data in the first and the last.
  writePatternedRaw(raw, 5 * GiB, [
    { offset: 0, length: 1 << 20 },
    { offset: 5 * GiB - (1 << 20), length: 1 << 20 },
  ]);
  qemuImg('convert', '-O', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', raw, split);
});

async function expectBothRefuse(file: string, ours: RegExp): Promise<void> {
  const q = runStatus('qemu-img', ['info', file]);
  expect(q.status).toBe(1);
  expect(q.stderr, q.stderr).toContain('Invalid argument');
  const r = await cli('info', file);
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(ours);
}

describe('a sparse extent opened without its descriptor', () => {
  it('a piece of a twoGbMaxExtentSparse set: refused, naming the descriptor beside it', async () => {
    expect(runStatus('qemu-img', ['info', split]).status).toBe(0);
    await cliOk('info', split);
    for (const piece of ['split-s001.vmdk', 'split-s003.vmdk']) {
      await expectBothRefuse(t.file(piece), /sparse VMDK extent without a descriptor of its own.*open split\.vmdk instead/);
    }
  });

  it('the descriptor is found by content when its name does not follow the piece', async () => {
    const dir = t.file('renamed');
    mkdirSync(dir);
    copyFileSync(t.file('split-s002.vmdk'), `${dir}/split-s002.vmdk`);
    writeFileSync(`${dir}/other.vmdk`, 'version=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 10 FLAT "x.raw" 0\n');
    writeFileSync(`${dir}/disk.vmdk`, readFileSync(split));
    await expectBothRefuse(`${dir}/split-s002.vmdk`, /belongs to disk\.vmdk; open disk\.vmdk instead/);
  });

  it('without the descriptor, or a resolver that cannot list: the likely name', async () => {
    const dir = t.file('alone');
    mkdirSync(dir);
    copyFileSync(t.file('split-s001.vmdk'), `${dir}/split-s001.vmdk`);
    await expectBothRefuse(`${dir}/split-s001.vmdk`, /open its descriptor file \(probably split\.vmdk\) instead/);
    // A resolver with no list(): only the derived name is tried.
    const files = new Map<string, ByteSource>([['split.vmdk', new MemorySource(new Uint8Array(readFileSync(split)), 'split.vmdk')]]);
    const resolver: FileResolver = {
      async open(name) {
        const f = files.get(name);
        if (!f) throw new MissingFileError('split-s001.vmdk', name);
        return f;
      },
    };
    const piece = new MemorySource(new Uint8Array(readFileSync(t.file('split-s001.vmdk'))), 'split-s001.vmdk');
    await expect(openImage(piece, drivers, { codecs: portableCodecs, resolver })).rejects.toThrow(
      /^split-s001\.vmdk: .*open split\.vmdk instead$/,
    );
  });

  it('a monolithicSparse file whose embedded descriptor is blank', async () => {
    const f = t.file('blank.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', f, '64M');
    const fd = openSync(f, 'r+');
    writeSync(fd, Buffer.alloc(20 * 512), 0, 20 * 512, 512);
    closeSync(fd);
    await expectBothRefuse(
      f,
      /blank\.vmdk: this is a sparse VMDK extent without a descriptor of its own \(no CID\): open the descriptor file that lists it instead/,
    );
  });

  it('an embedded descriptor with CID but no parentCID is refused as qemu-img refuses it', async () => {
    const f = t.file('nopcid.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', f, '64M');
    const text = readFileSync(f)
      .subarray(512, 512 + 20 * 512)
      .toString('latin1')
      .replace('parentCID', 'parentXID');
    const fd = openSync(f, 'r+');
    writeSync(fd, Buffer.from(text, 'latin1'), 0, text.length, 512);
    closeSync(fd);
    await expectBothRefuse(f, /without a descriptor of its own/);
  });

  it('a COWD (vmfsSparse) delta alone: refused; through its descriptor it reads', async () => {
    const raw = new Uint8Array(1 << 20).fill(7);
    writeFileSync(t.file('esx-delta.vmdk'), buildCowd(raw));
    writeFileSync(t.file('esx.vmdk'), esxDescriptor('vmfsSparse', 'VMFSSPARSE', raw.length / 512, 'esx-delta.vmdk'));
    await expectBothRefuse(t.file('esx-delta.vmdk'), /COWD \(vmfsSparse\) extent .*open esx\.vmdk instead/);
    await cliOk('info', t.file('esx.vmdk'));
  });
});

describe('the page: dropping a split set, pieces first', () => {
  it('shows the descriptor as the one image and the pieces as its companions', async () => {
    const { inspectFiles } = await import('../workers/inspectFiles.ts');
    const names = ['split-s001.vmdk', 'split-s002.vmdk', 'split-s003.vmdk', 'split.vmdk'];
    const files = names.map((n) => ({ file: new File([readFileSync(t.file(n))], n), path: `vm/${n}` }));
    const r = await inspectFiles(files, {});
    expect(r.errors).toEqual([]);
    expect(r.images.map((i) => i.path)).toEqual(['vm/split.vmdk']);
    expect(r.images[0]!.companions.sort()).toEqual(names.slice(0, 3).map((n) => `vm/${n}`));
    // A piece dropped alone is an error that names the descriptor to drop.
    const alone = await inspectFiles(files.slice(1, 2), {});
    expect(alone.images).toEqual([]);
    expect(alone.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/vm\/split-s002\.vmdk: .*open its descriptor file \(probably split\.vmdk\) instead/),
    ]);
  });
});
