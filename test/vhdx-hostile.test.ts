import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemorySource } from '../src-core/io/bytes.ts';
import { DiskFerryError } from '../src-core/io/errors.ts';
import { VhdxDevice } from '../src-core/formats/vhdx/reader.ts';
import { checkVhdx } from '../src-core/formats/vhdx/check.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { prng, qemuImg, qemuIo, tempDir } from './helpers/sys.ts';
import { batSector, makeDirty } from './helpers/vhdxLog.ts';

// Damaged files must give a typed, one-line error (or read), quickly and without huge allocations.
const t = tempDir('diskferry-vhdxbad-');
let clean: Uint8Array;
let dirty: Uint8Array;
const MiB = 1 << 20;

beforeAll(() => {
  const f = t.file('x.vhdx');
  qemuImg('create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', f, '12M');
  qemuIo('-f', 'vhdx', '-c', 'write -P 7 0 2M', '-c', 'write -P 8 9M 1M', f);
  clean = new Uint8Array(readFileSync(f));
  const d = t.file('d.vhdx');
  qemuImg('create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', d, '12M');
  qemuIo('-f', 'vhdx', '-c', 'write -P 7 0 2M', d);
  const { offset, bytes } = batSector(d, 0);
  makeDirty(
    d,
    [
      {
        sequence: 9n,
        ops: [
          { data: new Uint8Array(bytes), offset },
          { zero: 8192, offset: 5 * MiB },
        ],
      },
    ],
    0,
  );
  dirty = new Uint8Array(readFileSync(d));
});
afterAll(() => t.cleanup());

/** Opens, checks and reads the whole image; only typed errors may escape. */
async function exercise(bytes: Uint8Array): Promise<'ok' | 'error'> {
  const src = new MemorySource(bytes, 'bad.vhdx');
  try {
    await checkVhdx(src, { codecs: nodeCodecs });
    const dev = await VhdxDevice.open(src, { codecs: nodeCodecs });
    for (let pos = 0; pos < dev.virtualSize; pos += 4 * MiB) await dev.read(pos, Math.min(4 * MiB, dev.virtualSize - pos));
    return 'ok';
  } catch (e) {
    if (!(e instanceof DiskFerryError)) throw e;
    expect(e.message).not.toContain('\n');
    expect(e.message.startsWith('bad.vhdx: ')).toBe(true);
    return 'error';
  }
}

/** The metadata-bearing areas of a QEMU layout (1 MiB blocks, 1 MiB log): header section, log, BAT, metadata. */
const HOT: [number, number][] = [
  [0, 0x400],
  [64 * 1024, 80],
  [128 * 1024, 80],
  [192 * 1024, 80],
  [256 * 1024, 80],
  [MiB, 4096 * 2],
  [2 * MiB, 128],
  [3 * MiB, 256],
  [3 * MiB + 64 * 1024, 64],
];

describe('hostile VHDX input', () => {
  it('random byte and field mutations of metadata areas', async () => {
    const rand = prng(4242);
    const outcomes = { ok: 0, error: 0 };
    const started = Date.now();
    for (let n = 0; n < 160; n++) {
      const base = n % 2 ? dirty : clean;
      const b = base.slice();
      const [start, len] = HOT[rand() % HOT.length]!;
      const at = start + (rand() % len);
      const kind = rand() % 3;
      if (kind === 0) b[at] ^= 1 << (rand() % 8);
      else if (kind === 1) b.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f].slice(0, 1 + (rand() % 8)), at);
      else b[at] = rand() & 0xff;
      outcomes[await exercise(b)]++;
    }
    expect(outcomes.error).toBeGreaterThan(10);
    expect(outcomes.ok).toBeGreaterThan(10);
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it('truncation at every interesting boundary', async () => {
    for (const len of [0, 7, 8, 4096, 64 * 1024 + 100, 192 * 1024, 300 * 1024, MiB, 2 * MiB + 8, 3 * MiB + 10, 4 * MiB, clean.length - 1]) {
      const r = await exercise(clean.slice(0, len));
      if (len < clean.length - MiB) expect(r).toBe('error');
    }
  });

  it('a BAT entry with a FileOffsetMB beyond 2^53 is a typed error', async () => {
    const b = clean.slice();
    new DataView(b.buffer).setBigUint64(2 * MiB + 8, 0xfffffffffff00006n, true);
    expect(await exercise(b)).toBe('error');
  });
});
