import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cliOk } from '../helpers/cli.ts';
import { qemuImg, qemuIo, run, writePatternedRaw } from '../helpers/sys.ts';
import { buildBochs } from '../helpers/bochs.ts';
import { buildDmg } from '../helpers/dmg.ts';

/** A small, valid image of one format: the seed the mutations start from. */
export interface FuzzSeedImage {
  variant: string;
  bytes: Uint8Array;
  /** Byte ranges worth mutating besides the first 4 KiB (tables, footers). */
  hot: [number, number][];
}

type Maker = (file: (name: string) => string) => Promise<FuzzSeedImage[]>;

const KiB = 1024;

/** The password of encrypted seed images; exercise() opens every image with it. */
export const FUZZ_PASSWORD = 'fuzz';

function sourceRaw(file: (name: string) => string): string {
  const raw = file('fuzz-src.raw');
  writePatternedRaw(
    raw,
    4 << 20,
    [
      { offset: 0, length: 96 * KiB },
      { offset: 1 << 20, length: 64 * KiB },
      { offset: (4 << 20) - 40 * KiB, length: 40 * KiB },
    ],
    99,
  );
  return raw;
}

/** qemu-img convert to `fmt` with options; the whole small file is hot. */
function viaQemu(fmt: string, variants: [string, string[]][]): Maker {
  return async (file) =>
    variants.map(([variant, args]) => {
      const out = file(`fuzz-${fmt}-${variant}.img`);
      qemuImg('convert', '-f', 'raw', ...args, '-O', fmt, sourceRaw(file), out);
      const bytes = new Uint8Array(readFileSync(out));
      return { variant, bytes, hot: [[0, bytes.length]] as [number, number][] };
    });
}

/** Every registered driver needs a seed image here; the fuzz test fails for a format without one. */
export const FUZZ_MAKERS: Record<string, Maker> = {
  raw: viaQemu('raw', [['plain', []]]),
  qcow2: async (file) => {
    const base = await viaQemu('qcow2', [
      ['4k', ['-o', 'cluster_size=4k']],
      ['compressed', ['-c', '-o', 'cluster_size=4k']],
      ['zstd-extl2', ['-c', '-o', 'cluster_size=16k,compression_type=zstd,extended_l2=on']],
      ['v2', ['-o', 'compat=0.10,cluster_size=4k']],
    ])(file);
    const snap = file('fuzz-qcow2-snap.img');
    qemuImg('convert', '-O', 'qcow2', '-o', 'cluster_size=4k', file('fuzz-src.raw'), snap);
    qemuImg('snapshot', '-c', 'one', snap);
    qemuIo('-c', 'write -P 7 0 8k', snap);
    const bytes = new Uint8Array(readFileSync(snap));
    return [...base, { variant: 'snapshot', bytes, hot: [[0, bytes.length]] }];
  },
  qcow: viaQemu('qcow', [['plain', []]]),
  vmdk: viaQemu('vmdk', [
    ['sparse', []],
    ['stream', ['-o', 'subformat=streamOptimized']],
  ]),
  vdi: viaQemu('vdi', [
    ['dynamic', []],
    ['static', ['-o', 'static=on']],
  ]),
  vpc: viaQemu('vpc', [
    ['dynamic', []],
    ['fixed', ['-o', 'subformat=fixed']],
  ]),
  parallels: viaQemu('parallels', [
    ['64k', ['-o', 'cluster_size=64k']],
    ['4k', ['-o', 'cluster_size=4k']],
  ]),
  qed: viaQemu('qed', [['4k', ['-o', 'cluster_size=4k,table_size=2']]]),
  luks: async (file) => {
    // Made by our writer with the fewest PBKDF2 rounds it allows (iter-time=1), so that every
    // case can unlock and decrypt with FUZZ_PASSWORD quickly; qemu-img's fewest are far more.
    const out = file('fuzz.luks');
    await cliOk(
      'convert',
      '--object',
      `secret,id=s,data=${FUZZ_PASSWORD}`,
      '-f',
      'raw',
      '-O',
      'luks',
      '-o',
      'key-secret=s,iter-time=1',
      sourceRaw(file),
      out,
    );
    const bytes = new Uint8Array(readFileSync(out));
    // The header and the start of slot 0's key material.
    return [{ variant: 'default', bytes, hot: [[0, 8192]] }];
  },
  vhdx: async (file) => {
    // vhdx is 1 MiB aligned: only the metadata up to the first data block is worth mutating.
    const [img] = await viaQemu('vhdx', [['dynamic', ['-o', 'block_size=1M']]])(file);
    return [{ ...img!, hot: [[0, 4 << 20]] }];
  },
  ova: async (file) => {
    // A tar of an .ovf and a stream-optimized disk, as OVA exports are.
    writeFileSync(
      file('fuzz.ovf'),
      '<?xml version="1.0"?><Envelope><References><File ovf:href="fuzz-disk1.vmdk"/></References></Envelope>\n',
    );
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', sourceRaw(file), file('fuzz-disk1.vmdk'));
    const out = file('fuzz.ova');
    run('tar', ['--format=ustar', '-cf', out, '-C', path.dirname(out), 'fuzz.ovf', 'fuzz-disk1.vmdk']);
    const bytes = new Uint8Array(readFileSync(out));
    // The tar headers and the disk's own header and grain directory.
    return [
      {
        variant: 'stream',
        bytes,
        hot: [
          [0, 8192],
          [bytes.length - 65536, bytes.length],
        ],
      },
    ];
  },
  cloop: async (file) => {
    const out = file('fuzz.cloop');
    run('create_compressed_fs', ['-q', '-B', '65536', sourceRaw(file), out]);
    const bytes = new Uint8Array(readFileSync(out));
    return [{ variant: 'v2', bytes, hot: [[0, 1024]] }];
  },
  cow: async (file) => {
    const out = file('fuzz.cow');
    await cliOk('convert', '-f', 'raw', '-O', 'cow', sourceRaw(file), out);
    const bytes = new Uint8Array(readFileSync(out));
    return [{ variant: 'v2', bytes, hot: [[0, 2048]] }];
  },
  bochs: async (file) => {
    // Built from the layout (no tool writes bochs); header, catalog and the first bitmaps are hot.
    const disk = new Uint8Array(readFileSync(sourceRaw(file)));
    return [
      { variant: 'v2-4k', bytes: buildBochs(disk, { extentSize: 4096 }), hot: [[0, 8192]] },
      { variant: 'v1-64k', bytes: buildBochs(disk, { version: 1, extentSize: 65536 }), hot: [[0, 4096]] },
    ];
  },
  dmg: async (file) => {
    // Built from the layout; the plist or resource fork and the koly trailer sit at the end.
    const disk = new Uint8Array(readFileSync(sourceRaw(file)));
    const tailHot = (b: Uint8Array, n: number): [number, number][] => [
      [0, 1024],
      [Math.max(0, b.length - n), b.length],
    ];
    const xml = buildDmg(disk, { chunkSectors: 256, types: ['zlib', 'raw', 'bzip2', 'adc'] });
    const rsrc = buildDmg(disk, { chunkSectors: 512, types: ['zlib', 'raw'], table: 'rsrc', splitMish: true });
    return [
      { variant: 'xml-mixed', bytes: xml, hot: tailHot(xml, 4096) },
      { variant: 'rsrc', bytes: rsrc, hot: tailHot(rsrc, 2048) },
    ];
  },
};
