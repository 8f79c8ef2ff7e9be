import { readFileSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk, expectOneLineFailure } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { prng, qemuCompare, qemuImg, run, standardRaw, tempDir } from './helpers/sys.ts';
import { portableCodecs } from '../src-core/codecs/portable.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import { MemorySource } from '../src-core/io/bytes.ts';

// cloop (docs/formats/cloop.md): images cloop-utils' create_compressed_fs makes read exactly as
// qemu-img reads them; images we write read identically in qemu-img (-f cloop) and through
// extract_compressed_fs; the older and newer layouts, which no tool here writes, are built below
// from the notes.
const t = tempDir();
const src = t.file('src.raw');
const SIZE = 3 * 1024 * 1024 + 1536; // not a multiple of any block size: the last block is padded

/** The disk a cloop of `src` holds: the source zero-padded to whole blocks. */
function padded(file: string, blockSize: number): Uint8Array {
  const b = readFileSync(file);
  const out = new Uint8Array(Math.ceil(b.length / blockSize) * blockSize);
  out.set(b);
  return out;
}

const REF_CASES: [string, string[]][] = [
  ['B64k', ['-B', '65536']],
  ['B16k', ['-B', '16384']],
  ['B128k-stored', ['-B', '131072', '-L', '0']], // level 0: zlib "stored" blocks
  ['B32k-7zip', ['-B', '32768', '-L', '-1']], // advancecomp's deflate inside the zlib wrapper
];

beforeAll(() => {
  standardRaw(src, SIZE, 13);
  for (const [name, args] of REF_CASES) run('create_compressed_fs', ['-q', ...args, src, t.file(`${name}.cloop`)]);
});
afterAll(() => t.cleanup());

describe('create_compressed_fs images read byte-identically to qemu-img', () => {
  it.each(REF_CASES)('%s', async (name, args) => {
    const f = t.file(`${name}.cloop`);
    expect(readFileSync(f).subarray(11, 15).toString()).toBe('V2.0');
    await expectSameExport(f, t.file, name, ['-f', 'cloop']);
    await expectInfoMatches(f);
    const info = JSON.parse(await cliOk('info', '--output=json', f)); // probed
    expect(info.format).toBe('cloop');
    expect(info['virtual-size']).toBe(padded(src, Number(args[1])).length);
  });
});

describe('cloop we write (V2.0)', () => {
  it.each([
    ['default', [] as string[], 65536],
    ['block_size=16k', ['-o', 'block_size=16k'], 16384],
    ['block_size=256k', ['-o', 'block_size=256k'], 256 * 1024],
  ])('%s: qemu-img and extract_compressed_fs read it identically', async (name, opts, bs) => {
    const out = t.file(`ours-${name}.cloop`);
    await cliOk('convert', '-O', 'cloop', ...opts, src, out);
    const bytes = readFileSync(out);
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(v.getUint32(128)).toBe(bs);
    expect(v.getUint32(132)).toBe(Math.ceil(SIZE / bs));
    // qemu-img probes it as cloop (its probe wants the exact V2.0 preamble) and finds it identical.
    expect(JSON.parse(qemuImg('info', '--output=json', out)).format).toBe('cloop');
    expect(qemuCompare(out, src, '-f', 'cloop', '-F', 'raw')).toBe(0);
    qemuImg('convert', '-f', 'cloop', '-O', 'raw', out, t.file(`ours-${name}.qemu.raw`));
    writeFileSync(t.file(`ours-${name}.expected.raw`), padded(src, bs));
    run('cmp', [t.file(`ours-${name}.qemu.raw`), t.file(`ours-${name}.expected.raw`)]);
    run('extract_compressed_fs', [out, t.file(`ours-${name}.extract.raw`)]);
    run('cmp', [t.file(`ours-${name}.extract.raw`), t.file(`ours-${name}.expected.raw`)]);
  });

  it('the default output is no more than 1 % larger than create_compressed_fs output', async () => {
    const out = t.file('ours-size.cloop');
    await cliOk('convert', '-O', 'cloop', src, out);
    expect(readFileSync(out).length).toBeLessThanOrEqual(readFileSync(t.file('B64k.cloop')).length * 1.01);
  });

  it('bad block sizes and a backing file are refused', async () => {
    for (const bs of ['1000', '0', '128M']) {
      const r = await cli('convert', '-O', 'cloop', '-o', `block_size=${bs}`, src, t.file('bad.cloop'));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/block_size must be a multiple of 512/);
    }
    const r = await cli('convert', '-O', 'cloop', '-B', 'src.raw', src, t.file('bad.cloop'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/backing file/);
  });
});

// ——— Layouts no tool here writes, built from the notes' table ———

const BS = 4096;
const PREAMBLE = (version: string) =>
  `#!/bin/sh\n#${version} Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\nexit $?\n`;

/** A small disk of distinct blocks, one of them all zero. */
function blocks(n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const b = new Uint8Array(BS);
    if (i !== 2) for (let k = 0; k < BS; k++) b[k] = (k * (i + 3) + (k >> 7)) & 0xff;
    out.push(b);
  }
  return out;
}

function header(version: string, blockSize: number, n: number): Uint8Array {
  const h = new Uint8Array(136);
  h.set(new TextEncoder().encode(PREAMBLE(version)));
  const v = new DataView(h.buffer);
  v.setUint32(128, blockSize);
  v.setUint32(132, n);
  return h;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Index entries for blocks stored back to back from `start`: offsets written by `put`. */
function index(payloads: Uint8Array[], start: number, width: number, put: (v: DataView, i: number, off: number) => void): Uint8Array {
  const idx = new Uint8Array((payloads.length + 1) * width);
  const v = new DataView(idx.buffer);
  let off = start;
  payloads.forEach((p, i) => {
    put(v, i, off);
    off += p.length;
  });
  put(v, payloads.length, off);
  return idx;
}

const VARIANTS: Record<string, () => Uint8Array> = {
  // n+1 BE32 absolute offsets (first = 136 + 4(n+1))
  'V0.68': () => {
    const p = blocks(5).map((b) => deflateSync(b, { level: 9 }));
    return concat([header('V0.68', BS, 5), index(p, 136 + 4 * 6, 4, (v, i, o) => v.setUint32(i * 4, o)), ...p]);
  },
  // n+1 LE64 offsets
  'V1.0': () => {
    const p = blocks(5).map((b) => deflateSync(b, { level: 9 }));
    return concat([header('V1.0', BS, 5), index(p, 136 + 8 * 6, 8, (v, i, o) => v.setBigUint64(i * 8, BigInt(o), true)), ...p]);
  },
  // num_blocks = 0xFFFFFFFF; data from 136; at EOF n BE32 sizes, then {BE32 entry size, BE32 n}
  'V3.0': () => {
    const p = blocks(5).map((b) => deflateSync(b, { level: 9 }));
    const tail = new Uint8Array(4 * 5 + 8);
    const v = new DataView(tail.buffer);
    p.forEach((x, i) => v.setUint32(i * 4, x.length));
    v.setUint32(20, 4);
    v.setUint32(24, 5);
    return concat([header('V3.0', BS, 0xffffffff), ...p, tail]);
  },
  // V4.0 header first: compressor in the top 4 bits (block 1 stored uncompressed: flag 1)
  'V4.0': () => {
    const raw = blocks(5);
    const p = raw.map((b, i) => (i === 1 ? b : deflateSync(b, { level: 9 })));
    const idx = index(p, 136 + 8 * 6, 8, (v, i, o) => v.setBigUint64(i * 8, BigInt(o) | (i === 1 ? 1n << 60n : 0n)));
    return concat([header('V4.0', BS, 5), idx, ...p]);
  },
  // V4.0 footer: data from 0, then the index, then the 136-byte header as the last bytes
  'V4.0-footer': () => {
    const p = blocks(5).map((b) => deflateSync(b, { level: 9 }));
    return concat([...p, index(p, 0, 8, (v, i, o) => v.setBigUint64(i * 8, BigInt(o))), header('V4.0', BS, 5)]);
  },
};

describe('cloop layouts from the notes read identically', () => {
  const expected = concat(blocks(5));
  it.each(Object.keys(VARIANTS))('%s', async (name) => {
    const f = t.file(`variant-${name}.cloop`);
    writeFileSync(f, VARIANTS[name]!());
    const out = t.file(`variant-${name}.raw`);
    await cliOk('convert', '-O', 'raw', f, out); // probed, not forced
    expect(new Uint8Array(readFileSync(out))).toEqual(expected);
    const info = JSON.parse(await cliOk('info', '--output=json', f));
    expect(info.format).toBe('cloop');
    expect(info['virtual-size']).toBe(5 * BS);
  });

  it('V2.0 built the same way reads identically in qemu-img too (the builder is sound)', async () => {
    const p = blocks(5).map((b) => deflateSync(b, { level: 9 }));
    const f = t.file('variant-V2.0.cloop');
    writeFileSync(f, concat([header('V2.0', BS, 5), index(p, 136 + 8 * 6, 8, (v, i, o) => v.setBigUint64(i * 8, BigInt(o))), ...p]));
    writeFileSync(t.file('variant-expected.raw'), expected);
    expect(qemuCompare(f, t.file('variant-expected.raw'), '-f', 'cloop', '-F', 'raw')).toBe(0);
    await expectSameExport(f, t.file, 'variant-V2.0', ['-f', 'cloop']);
  });
});

describe('cloop probing and hostile headers', () => {
  it('a shell script is not a cloop image', async () => {
    const f = t.file('script.img');
    writeFileSync(f, new TextEncoder().encode('#!/bin/sh\n# just a script\necho hello\n'.padEnd(4096, ' ')));
    expect(JSON.parse(await cliOk('info', '--output=json', f)).format).toBe('raw');
  });

  const mutated = (edit: (v: DataView, b: Uint8Array) => void) => {
    const b = new Uint8Array(readFileSync(t.file('B64k.cloop')));
    edit(new DataView(b.buffer), b);
    return b;
  };
  it.each([
    ['block_size 1000', (v: DataView) => v.setUint32(128, 1000), /block_size 1000 must be a multiple of 512/],
    ['block_size 0', (v: DataView) => v.setUint32(128, 0), /block_size cannot be zero/],
    ['decreasing offsets', (v: DataView) => v.setBigUint64(136 + 8 * 3, 200n), /offsets not monotonically increasing|overlaps/],
    [
      'a block past the end',
      (v: DataView, b: Uint8Array) => v.setBigUint64(136 + 8 * v.getUint32(132), BigInt(b.length + 1000)),
      /past the end of the file/,
    ],
    [
      'a damaged block',
      (v: DataView, b: Uint8Array) => b.fill(0x55, Number(v.getBigUint64(136)), Number(v.getBigUint64(136)) + 32),
      /cloop block 0 cannot be decompressed|inflates to/,
    ],
  ])('%s gives a one-line typed error', async (name, edit, message) => {
    const f = t.file(`bad-${name.replace(/\W+/g, '-')}.cloop`);
    writeFileSync(f, mutated(edit));
    await expectOneLineFailure(['convert', '-f', 'cloop', '-O', 'raw', f, t.file('bad.raw')], message);
  });
});

describe('cloop random reads through the core (portable codecs, in-memory source)', () => {
  it('unaligned reads across block boundaries equal the padded source', async () => {
    const rand = prng(5);
    for (const name of ['B16k', 'B128k-stored']) {
      const bs = name === 'B16k' ? 16384 : 131072;
      const dev = await openImage(new MemorySource(new Uint8Array(readFileSync(t.file(`${name}.cloop`))), name), drivers, {
        codecs: portableCodecs,
      });
      const want = padded(src, bs);
      expect(dev.virtualSize).toBe(want.length);
      for (let i = 0; i < 80; i++) {
        const off = rand() % dev.virtualSize;
        const len = Math.min(1 + (rand() % (3 * bs)), dev.virtualSize - off);
        expect(Buffer.compare(await dev.read(off, len), want.subarray(off, off + len)), `${name} at ${off}+${len}`).toBe(0);
      }
      await dev.close();
    }
  });
});
