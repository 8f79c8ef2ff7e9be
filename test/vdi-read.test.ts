import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { qemuImg, runStatus, tempDir, writePatternedRaw } from './helpers/sys.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import { MapResolver, MemorySource } from '../src-core/io/bytes.ts';

// VDIs made by qemu-img, and hand-edited copies of them, read as qemu-img reads them (or, where
// qemu-img cannot, as the VirtualBox format defines them).
const t = tempDir('diskferry-vdi-');
const MiB = 1024 * 1024;
const SIZE = 29 * MiB + 1536;
const src = t.file('src.raw');

const patterned = (file: string, size: number, seed: number) =>
  writePatternedRaw(
    file,
    size,
    [
      { offset: 0, length: 2 * MiB + 4321 },
      { offset: 6 * MiB + 512, length: 1500000 },
      { offset: size - 70000, length: 70000 },
    ],
    seed,
  );

beforeAll(() => {
  patterned(src, SIZE, 17);
  qemuImg('convert', '-f', 'raw', '-O', 'vdi', src, t.file('dynamic.vdi'));
  qemuImg('convert', '-f', 'raw', '-O', 'vdi', '-o', 'static=on', src, t.file('static.vdi'));
});
afterAll(() => t.cleanup());

/** The block map of a VDI, from the header fields (written here from the VirtualBox layout, not from our driver). */
function vdiLayout(b: Buffer) {
  return {
    offBlocks: b.readUInt32LE(0x154),
    offData: b.readUInt32LE(0x158),
    blocks: b.readUInt32LE(0x180),
    blockSize: b.readUInt32LE(0x178),
  };
}

describe('VDIs made by qemu-img read byte-identically', () => {
  it.each(['dynamic', 'static'])('%s', async (name) => {
    const f = t.file(`${name}.vdi`);
    await expectSameExport(f, t.file, name);
    await expectInfoMatches(f);
  });

  it('a ZERO block (0xfffffffe) over allocated data reads as zeros, as in qemu-img', async () => {
    const f = t.file('zero-block.vdi');
    copyFileSync(t.file('dynamic.vdi'), f);
    const b = readFileSync(f);
    const { offBlocks } = vdiLayout(b);
    expect(b.readUInt32LE(offBlocks + 4)).not.toBe(0xffffffff); // block 1 holds data
    b.writeUInt32LE(0xfffffffe, offBlocks + 4);
    writeFileSync(f, b);
    await expectSameExport(f, t.file, 'zero-block');
    const got = readFileSync(t.file('zero-block.ours.raw'));
    expect(got.subarray(MiB, 2 * MiB).every((x) => x === 0)).toBe(true);
    expect(
      readFileSync(src)
        .subarray(MiB, 2 * MiB)
        .some((x) => x !== 0),
    ).toBe(true);
  });

  it('honours offData and block extra (bytes before each block, which QEMU ignores)', async () => {
    const q = readFileSync(t.file('dynamic.vdi'));
    const { offBlocks, offData, blocks, blockSize } = vdiLayout(q);
    const EXTRA = 1024;
    const newOffData = 3 * MiB; // not where qemu puts it
    const slots = Math.max(
      0,
      ...Array.from({ length: blocks }, (_, i) => q.readUInt32LE(offBlocks + 4 * i))
        .filter((e) => e < 0xfffffffe)
        .map((e) => e + 1),
    );
    const out = Buffer.alloc(newOffData + slots * (blockSize + EXTRA));
    q.copy(out, 0, 0, offData);
    out.writeUInt32LE(newOffData, 0x158);
    out.writeUInt32LE(EXTRA, 0x17c);
    for (let s = 0; s < slots; s++) {
      const at = newOffData + s * (blockSize + EXTRA);
      out.fill(0xee, at, at + EXTRA); // garbage a reader must skip
      q.copy(out, at + EXTRA, offData + s * blockSize, offData + (s + 1) * blockSize);
    }
    const f = t.file('extra.vdi');
    writeFileSync(f, out);
    const mine = t.file('extra.ours.raw');
    await cliOk('convert', '-O', 'raw', f, mine);
    expect(readFileSync(mine).equals(readFileSync(src))).toBe(true);
  });
  it('map --output=json of the dynamic image equals qemu-img map', async () => {
    const f = t.file('dynamic.vdi');
    expect(JSON.parse(await cliOk('map', '--output=json', f))).toEqual(JSON.parse(qemuImg('map', '--output=json', f)));
  });
});

describe('differencing VDI', () => {
  const DSIZE = 8 * MiB;

  /** Makes `child` a differencing image of `parent` (VirtualBox: type 4, linkage = parent's create UUID). */
  function linkChild(child: string, parent: string) {
    const p = readFileSync(parent);
    const c = readFileSync(child);
    c.writeUInt32LE(4, 0x4c);
    p.copy(c, 0x1a8, 0x188, 0x198); // uuidLinkage = parent uuidCreate
    p.copy(c, 0x1b8, 0x198, 0x1a8); // uuidParentModify = parent uuidModify
    writeFileSync(child, c);
  }

  it('reads FREE blocks from the parent found by UUID among the files next to it', async () => {
    const dir = tempDir('diskferry-vdi-diff-');
    try {
      const baseRaw = dir.file('base.raw');
      writePatternedRaw(baseRaw, DSIZE, [{ offset: 0, length: DSIZE }], 3);
      qemuImg('convert', '-f', 'raw', '-O', 'vdi', baseRaw, dir.file('Base Disk.vdi'));
      // A decoy with another UUID: picking a parent by name or by order would take it.
      qemuImg('convert', '-f', 'raw', '-O', 'vdi', baseRaw, dir.file('another.vdi'));
      const childRaw = dir.file('child.raw');
      writePatternedRaw(
        childRaw,
        DSIZE,
        [
          { offset: MiB, length: 1000 },
          { offset: 5 * MiB, length: 2 * MiB },
        ],
        4,
      );
      const child = dir.file('child.vdi');
      qemuImg('convert', '-f', 'raw', '-O', 'vdi', childRaw, child);
      linkChild(child, dir.file('Base Disk.vdi'));
      // Block 6 becomes ZERO: zeros even over the parent.
      const c = readFileSync(child);
      const { offBlocks } = vdiLayout(c);
      c.writeUInt32LE(0xfffffffe, offBlocks + 6 * 4);
      writeFileSync(child, c);
      const map = Array.from({ length: 8 }, (_, i) => c.readUInt32LE(offBlocks + 4 * i));
      expect(map.filter((e) => e === 0xffffffff).length).toBeGreaterThan(2);

      const base = readFileSync(baseRaw);
      const kid = readFileSync(childRaw);
      const want = Buffer.alloc(DSIZE);
      map.forEach((e, i) => {
        const from = e === 0xffffffff ? base : e === 0xfffffffe ? Buffer.alloc(DSIZE) : kid;
        from.copy(want, i * MiB, i * MiB, (i + 1) * MiB);
      });
      const mine = dir.file('out.raw');
      const r = await cli('convert', '-O', 'raw', child, mine);
      expect(r.stderr).toBe('');
      expect(readFileSync(mine).equals(want)).toBe(true);
      // qemu-img cannot open it at all: this is beyond the oracle.
      expect(runStatus('qemu-img', ['info', child]).stderr).toContain('non-NULL link UUID');
      const human = await cliOk('info', child);
      expect(human).toContain('backing file: Base Disk.vdi');
      expect(human).toContain('vdi-type: diff');

      // The page's path: dropped files in memory, the parent found through FileResolver.list.
      const files = new Map<string, MemorySource>();
      for (const n of ['child.vdi', 'Base Disk.vdi', 'another.vdi'])
        files.set(`vm/${n}`, new MemorySource(new Uint8Array(readFileSync(dir.file(n))), `vm/${n}`));
      const dev = await openImage(files.get('vm/child.vdi')!, drivers, { codecs: nodeCodecs, resolver: new MapResolver(files) });
      try {
        expect(Buffer.from(await dev.read(0, DSIZE)).equals(want)).toBe(true);
      } finally {
        await dev.close();
      }
    } finally {
      dir.cleanup();
    }
  });

  it('a missing parent is an error that names the UUID to look for', async () => {
    const dir = tempDir('diskferry-vdi-lone-');
    try {
      copyFileSync(t.file('dynamic.vdi'), dir.file('p.vdi'));
      copyFileSync(t.file('static.vdi'), dir.file('c.vdi'));
      linkChild(dir.file('c.vdi'), dir.file('p.vdi'));
      const p = readFileSync(dir.file('p.vdi'));
      // Break the link: the parent's create UUID no longer matches.
      p[0x188] ^= 0xff;
      writeFileSync(dir.file('p.vdi'), p);
      const r = await cli('convert', '-O', 'raw', dir.file('c.vdi'), dir.file('out.raw'));
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/parent image "a VDI whose UUID is [0-9a-f-]{36}/);
    } finally {
      dir.cleanup();
    }
  });
});

describe('check counts what qemu-img check counts', () => {
  it.each([
    ['clean', (_b: Buffer, _o: number) => {}],
    ['duplicate index', (b: Buffer, o: number) => b.writeUInt32LE(b.readUInt32LE(o), o + 4 * 6)],
    ['index too large and count mismatch', (b: Buffer, o: number) => b.writeUInt32LE(1000, o + 4)],
    ['allocated count mismatch', (b: Buffer) => b.writeUInt32LE(b.readUInt32LE(0x184) + 2, 0x184)],
  ] as [string, (b: Buffer, o: number) => void][])('%s', async (name, damage) => {
    const f = t.file(`check-${name.replace(/ /g, '-')}.vdi`);
    const b = readFileSync(t.file('dynamic.vdi'));
    damage(b, vdiLayout(b).offBlocks);
    writeFileSync(f, b);
    const theirs = runStatus('qemu-img', ['check', '--output=json', f]);
    const ours = await cli('check', '--output=json', f);
    expect(theirs.status).toBe(name === 'clean' ? 0 : 2);
    expect(ours.code).toBe(theirs.status);
    expect(JSON.parse(ours.stdout)).toEqual(JSON.parse(theirs.stdout));
  });
});

describe('hostile headers and maps give typed one-line errors', () => {
  const expectTyped = async (file: string, what: RegExp) => {
    const r = await cli('convert', '-O', 'raw', file, `${file}.out`);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(what);
  };
  const patched = (name: string, edit: (b: Buffer) => void) => {
    const b = readFileSync(t.file('dynamic.vdi'));
    edit(b);
    const f = t.file(name);
    writeFileSync(f, b);
    return f;
  };
  it('a block count whose map would run past the file', async () => {
    const f = patched('many-blocks.vdi', (b) => {
      b.writeUInt32LE(0x1fffff00, 0x180);
      b.writeBigUInt64LE(BigInt(0x1fffff00) * BigInt(MiB), 0x170);
    });
    await expectTyped(f, /block map ends past the end of the file/);
  });
  it('a map index far beyond the data', async () => {
    const f = patched('far-index.vdi', (b) => b.writeUInt32LE(0x10000000, vdiLayout(b).offBlocks));
    await expectTyped(f, /truncated file/);
  });
  it('a disk size larger than its blocks, and a block size QEMU cannot read', async () => {
    await expectTyped(
      patched('too-big.vdi', (b) => b.writeBigUInt64LE(BigInt(SIZE) * 4n, 0x170)),
      /disk size \d+ is larger than its \d+ blocks/,
    );
    await expectTyped(
      patched('odd-block.vdi', (b) => b.writeUInt32LE(1000, 0x178)),
      /block size 1000 is not a multiple of 512/,
    );
  });
});
