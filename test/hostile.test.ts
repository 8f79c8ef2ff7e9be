import { existsSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drivers } from '../src-core/formats/registry.ts';
import { cli } from './helpers/cli.ts';
import { tempDir } from './helpers/sys.ts';
import { FUZZ_MAKERS, type FuzzSeedImage } from './fuzz/fixtures.ts';

// For every format: a file cut short and a file with a damaged header end in one readable line
// that names the file, in info and in convert, and convert leaves no output behind.
const t = tempDir('diskferry-hostile-');
const seeds = new Map<string, FuzzSeedImage>();

/** raw has no header: every byte string is a valid raw disk. */
const HEADERLESS = new Set(['raw']);

/** How to damage each format's header so that it is no longer that format's header. */
function damageHeader(format: string, img: Uint8Array): Uint8Array {
  const out = img.slice();
  const flip = (at: number, n = 4) => {
    for (let i = at; i < at + n; i++) out[i] = out[i]! ^ 0xff;
  };
  switch (format) {
    case 'vpc':
      flip(0); // the footer copy at the start …
      flip(out.length - 512); // … and the footer itself
      break;
    case 'cloop':
      out.set([0, 0, 0, 3], 128); // block size 3: not a multiple of 512
      break;
    case 'vdi':
      flip(0x40); // the signature; the text before it is free-form
      break;
    case 'ova':
      flip(257, 5); // the ustar magic of the first member
      break;
    case 'dmg':
      flip(out.length - 512); // the koly trailer's magic: a dmg's header is at its end
      break;
    default:
      flip(0);
  }
  return out;
}

beforeAll(async () => {
  for (const d of drivers) {
    const make = FUZZ_MAKERS[d.name];
    if (make && !HEADERLESS.has(d.name)) seeds.set(d.name, (await make(t.file))[0]!);
  }
});
afterAll(() => t.cleanup());

async function expectOneLineError(format: string, file: string): Promise<void> {
  for (const args of [
    ['info', '-f', format, file],
    ['convert', '-f', format, '-O', 'raw', file, `${file}.out`],
  ]) {
    const r = await cli(...args);
    expect(r.code, `${args[0]} ${format}: ${r.stderr}`).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toContain(file);
    expect(lines[0]).not.toMatch(/TypeError|RangeError|undefined|at .*\.ts:/);
  }
  expect(existsSync(`${file}.out`)).toBe(false);
}

const formats = drivers.map((d) => d.name).filter((n) => !HEADERLESS.has(n));

describe('damaged files give one typed line', () => {
  it('every format with a header is covered', () => {
    expect(formats.filter((f) => !FUZZ_MAKERS[f])).toEqual([]);
  });

  it.each(formats)('%s: truncated', async (format) => {
    const img = seeds.get(format)!;
    for (const len of [0, 64, 300]) {
      const file = t.file(`trunc-${len}.${format}`);
      writeFileSync(file, img.bytes.subarray(0, len));
      await expectOneLineError(format, file);
    }
  });

  it.each(formats)('%s: corrupted header', async (format) => {
    const file = t.file(`bad-header.${format}`);
    writeFileSync(file, damageHeader(format, seeds.get(format)!.bytes));
    await expectOneLineError(format, file);
  });
});
