import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cliOk } from './helpers/cli.ts';
import { strictInflateRaw, StrictInflateError } from './helpers/strictInflate.ts';
import { patternChunk, prng, qemuCompare, qemuImg, runStatus, tempDir } from './helpers/sys.ts';
import { WasmDeflater } from '../src-core/codecs/deflate-wasm/loader.ts';
import { createWasmCodecs } from '../src-core/codecs/wasmCodecs.ts';
import { QCOW_DEFLATE, zlibStreamParams } from '../src-core/codecs/types.ts';
import { convert } from '../src-core/pipeline/convert.ts';
import { qcow2Driver } from '../src-core/formats/qcow2/index.ts';
import { rawDriver } from '../src-core/formats/raw/index.ts';
import { MemorySink, MemorySource } from '../src-core/io/bytes.ts';
import { portableCodecs } from '../src-core/codecs/portable.ts';

// qcow2 compressed clusters must decode with a 4 KiB window (QEMU deflates them with
// windowBits -12, and a reader may size its window accordingly). zlib's own inflate does not
// enforce that reliably, so these tests decode with test/helpers/strictInflate.ts.

const t = tempDir();
const WASM = readFileSync(new URL('../src-core/codecs/deflate-wasm/deflate.wasm', import.meta.url));
const CS = 65536;

/** A cluster that a 32 KiB-window compressor would encode with 8 KiB back-references. */
function repeatedCluster(seed: number): Uint8Array {
  const rand = prng(seed);
  const block = new Uint8Array(8192).map(() => rand() & 0xff);
  const out = new Uint8Array(CS);
  for (let o = 0; o < CS; o += block.length) out.set(block, o);
  return out;
}

function sampleClusters(): Uint8Array[] {
  const rand = prng(7);
  return [
    patternChunk(CS, rand),
    patternChunk(CS, rand),
    repeatedCluster(3),
    new Uint8Array(CS).map(() => rand() & 0xff), // incompressible
    new Uint8Array(CS).fill(0x41),
    patternChunk(512, rand),
    patternChunk(256 * 1024, rand),
  ];
}

/** Stock zlib as Debian ships it (what qemu-img links), through the system python3: QEMU's qcow2 settings, or zlib's deflate() at level 6 for a zlib stream. */
function stockZlibDeflate(data: Uint8Array, stream = false): Uint8Array {
  const f = t.file('stock-in.bin');
  writeFileSync(f, data);
  const args = stream ? '6,zlib.DEFLATED,15,8' : '6,zlib.DEFLATED,-12,9';
  const py = `import sys,zlib;c=zlib.compressobj(${args});d=open(sys.argv[1],"rb").read();sys.stdout.buffer.write(c.compress(d)+c.flush())`;
  const r = spawnSync('/usr/bin/python3', ['-c', py, f], { maxBuffer: 64 << 20 });
  expect(r.status).toBe(0);
  return new Uint8Array(r.stdout);
}

afterAll(() => t.cleanup());

describe('the strict 4 KiB-window check', () => {
  it('rejects a valid stream that reaches back 8 KiB', () => {
    const data = repeatedCluster(5);
    const wide = zlib.deflateRawSync(data, { level: 6, windowBits: 15, memLevel: 9 });
    expect(new Uint8Array(zlib.inflateRawSync(wide))).toEqual(data);
    expect(() => strictInflateRaw(wide, 4096, CS)).toThrow(StrictInflateError);
    const loose = strictInflateRaw(wide, 32768, CS);
    expect(loose.out).toEqual(data);
    expect(loose.maxDistanceUsed).toBeGreaterThan(4096);
  });
});

describe('deflate.wasm (libdeflate 1.14 with a match-distance limit)', () => {
  it("has no imports, and its qcow2 clusters decode with a 4 KiB window, no larger than stock zlib with QEMU's settings (+1 %)", async () => {
    const mod = new WebAssembly.Module(WASM);
    expect(WebAssembly.Module.imports(mod)).toEqual([]);
    const z = await WasmDeflater.create(WASM);
    let ours = 0;
    let stock = 0;
    for (const c of sampleClusters()) {
      const out = z.deflate(c, QCOW_DEFLATE);
      const dec = strictInflateRaw(out, 4096, c.length);
      expect(dec.out).toEqual(c);
      expect(dec.maxDistanceUsed).toBeLessThanOrEqual(4096);
      ours += out.length;
      stock += stockZlibDeflate(c).length;
    }
    expect(ours / stock).toBeLessThanOrEqual(1.01);
  });

  it('reaches back as far as the window allows: past 4 KiB for a zlib stream, never for a cluster (the patch is what limits it)', async () => {
    const z = await WasmDeflater.create(WASM);
    const c = repeatedCluster(5);
    // Alternating the two settings on one compressor: the limit is set on every change.
    for (let round = 0; round < 2; round++) {
      const wide = strictInflateRaw(z.deflate(c, zlibStreamParams(6)), 32768, CS);
      expect(wide.out).toEqual(c);
      expect(wide.maxDistanceUsed).toBeGreaterThan(4096);
      const narrow = strictInflateRaw(z.deflate(c, QCOW_DEFLATE), 4096, CS);
      expect(narrow.out).toEqual(c);
      expect(narrow.maxDistanceUsed).toBeLessThanOrEqual(4096);
    }
  });

  it("makes zlib streams (RFC 1950) that zlib inflates, within 3 % of zlib's deflate() at level 6", async () => {
    const z = await WasmDeflater.create(WASM);
    let ours = 0;
    let stock = 0;
    for (const c of sampleClusters()) {
      const out = z.deflate(c, zlibStreamParams(6), true);
      expect(out[0]).toBe(0x78);
      expect(new Uint8Array(zlib.inflateSync(out))).toEqual(c);
      ours += out.length;
      stock += stockZlibDeflate(c, true).length;
    }
    // On the bench disk's real grains libdeflate's level 5 comes out 0.3 % smaller than zlib's 6
    // (docs/performance.md); on these samples, half of whose pages are noise or zeros, ~2.5 % larger.
    expect(ours / stock).toBeLessThanOrEqual(1.03);
  });

  it('writes into a caller buffer and says -1 when the stream does not fit', async () => {
    const z = await WasmDeflater.create(WASM);
    const rand = prng(9);
    const noise = new Uint8Array(CS).map(() => rand() & 0xff);
    expect(z.deflateInto(noise, new Uint8Array(CS), QCOW_DEFLATE)).toBe(-1);
    const text = patternChunk(CS, rand);
    const out = new Uint8Array(CS);
    const n = z.deflateInto(text, out, QCOW_DEFLATE);
    expect(n).toBeGreaterThan(0);
    expect(strictInflateRaw(out.subarray(0, n), 4096, CS).out).toEqual(text);
  });
});

// --- qcow2 outputs: every compressed cluster, found through L1/L2 by hand ---------------------

interface CompressedCluster {
  guest: number;
  bytes: Uint8Array;
}

/** Walks a qcow2 file's L1 and L2 tables (spec: docs/interop/qcow2.txt) and returns each compressed cluster's stored bytes. */
function compressedClusters(file: string): CompressedCluster[] {
  const buf = readFileSync(file);
  const clusterBits = buf.readUInt32BE(20);
  const cs = 2 ** clusterBits;
  const l1Size = buf.readUInt32BE(36);
  const l1Off = Number(buf.readBigUInt64BE(40));
  const x = 62 - (clusterBits - 8);
  const out: CompressedCluster[] = [];
  for (let i = 0; i < l1Size; i++) {
    const l2Off = Number(buf.readBigUInt64BE(l1Off + 8 * i) & 0x00fffffffffffe00n);
    if (!l2Off) continue;
    for (let j = 0; j < cs / 8; j++) {
      const e = buf.readBigUInt64BE(l2Off + 8 * j);
      if (!(e & (1n << 62n))) continue;
      const host = Number(e & ((1n << BigInt(x)) - 1n));
      const sectors = Number((e >> BigInt(x)) & ((1n << BigInt(clusterBits - 8)) - 1n)) + 1;
      const end = Math.min(buf.length, Math.floor(host / 512) * 512 + sectors * 512);
      out.push({ guest: (i * (cs / 8) + j) * cs, bytes: buf.subarray(host, end) });
    }
  }
  return out;
}

function readAt(file: string, offset: number, length: number): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

function expectClean(file: string): void {
  const r = runStatus('qemu-img', ['check', '--output=json', file]);
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout);
  expect(j['check-errors']).toBe(0);
  expect(j.corruptions).toBeUndefined();
  expect(j.leaks).toBeUndefined();
  expect(j['compressed-clusters']).toBeGreaterThan(0);
}

/** Every compressed cluster decodes with a 4 KiB window to the source's bytes. */
function expectStrictClusters(file: string, src: string): number {
  const clusters = compressedClusters(file);
  for (const c of clusters) {
    const { out, maxDistanceUsed } = strictInflateRaw(c.bytes, 4096, CS);
    expect(maxDistanceUsed).toBeLessThanOrEqual(4096);
    expect(out.length).toBe(CS);
    expect(Buffer.from(out).equals(Buffer.from(readAt(src, c.guest, CS)))).toBe(true);
  }
  return clusters.length;
}

describe('compressed qcow2 written through the worker pool and the wasm codec', () => {
  const src = t.file('src.raw');
  const ref = t.file('ref.qcow2');
  const SIZE = 24 * 1024 * 1024;
  const saved = { ...process.env };

  beforeAll(() => {
    // Text, noise and zeros (patternChunk) and 8 KiB repeats, which tempt a wider window,
    // in 128 KiB runs with 64 KiB holes between them.
    const rand = prng(21);
    const fd = openSync(src, 'w');
    for (let off = 0, k = 0; off + 2 * CS <= SIZE; off += 3 * CS, k++) {
      const chunk = k % 5 === 4 ? Buffer.concat([repeatedCluster(k), repeatedCluster(k + 1000)]) : patternChunk(2 * CS, rand);
      writeSync(fd, chunk, 0, chunk.length, off);
    }
    ftruncateSync(fd, SIZE);
    closeSync(fd);
    qemuImg('convert', '-c', '-f', 'raw', '-O', 'qcow2', src, ref);
    expectClean(ref);
  });

  afterEach(() => {
    process.env = { ...saved };
  });

  it.each([
    ['wasm', '2'],
    ['wasm', '1'],
    ['native', '2'],
  ])('pool engine %s with %s workers: qemu-img check and compare pass, clusters decode with a 4 KiB window', async (engine, workers) => {
    process.env.DISKFERRY_DEFLATE = engine;
    process.env.DISKFERRY_WORKERS = workers;
    const out = t.file(`pool-${engine}-${workers}.qcow2`);
    await cliOk('convert', '-c', '-f', 'raw', '-O', 'qcow2', src, out);
    expectClean(out);
    expect(qemuCompare(src, out)).toBe(0);
    const n = expectStrictClusters(out, src);
    expect(n).toBeGreaterThan(50);
    const ratio = statSync(out).size / statSync(ref).size;
    // wasm: libdeflate (QCOW_DEFLATE), within the 1 %. native: Node's zlib is
    // Chromium's, whose streams come out ~1.7 % larger.
    expect(ratio).toBeLessThanOrEqual(engine === 'wasm' ? 1.01 : 1.03);
  });

  it('the in-thread wasm Codecs through convert() gives a file qemu-img accepts', async () => {
    const codecs = await createWasmCodecs(WASM, portableCodecs);
    const data = new Uint8Array(readFileSync(src));
    const source = await rawDriver.open(new MemorySource(data, 'src.raw'), { codecs });
    const sink = new MemorySink('wasm.qcow2');
    await convert({ source, target: qcow2Driver, sink, create: { options: {}, compress: true, codecs, filename: 'wasm.qcow2' } });
    const out = t.file('wasm.qcow2');
    writeFileSync(out, sink.bytes);
    expectClean(out);
    expect(qemuCompare(src, out)).toBe(0);
    expect(expectStrictClusters(out, src)).toBeGreaterThan(50);
  });
});
