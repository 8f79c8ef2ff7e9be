import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync, ftruncateSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A temporary folder per test file, removed afterwards. */
export function tempDir(prefix = 'diskferry-'): { dir: string; file: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, file: (name) => path.join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs a tool and returns stdout; throws with its stderr on failure. */
export function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    cwd: opts.cwd,
    input: opts.input,
    maxBuffer: 64 << 20,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Runs a tool and returns its status and output without throwing. */
export function runStatus(cmd: string, args: string[], cwd?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd, maxBuffer: 64 << 20 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export const qemuImg = (...args: string[]) => run('qemu-img', args);
export const qemuIo = (...args: string[]) => run('qemu-io', args);

/** qemu-img compare's verdict (0 identical, 1 different, 2 error). */
export function qemuCompare(a: string, b: string, ...extra: string[]): number {
  return runStatus('qemu-img', ['compare', ...extra, a, b]).status;
}

/** Deterministic pseudo-random bytes (xorshift32). */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const WORDS = 'the quick brown fox jumps over lazy dog disk image cluster sector block table header extent'.split(' ');

/**
 * Fills a chunk the way real disks look: text (compresses well), random (does not), and runs
 * of zeros, chosen per 4 KiB page.
 */
export function patternChunk(len: number, rand: () => number): Uint8Array {
  const out = new Uint8Array(len);
  for (let page = 0; page < len; page += 4096) {
    const kind = rand() % 4;
    const end = Math.min(page + 4096, len);
    if (kind === 0) continue; // zeros
    if (kind === 1) {
      for (let i = page; i < end; i++) out[i] = rand() & 0xff;
    } else {
      let i = page;
      while (i < end) {
        const w = WORDS[rand() % WORDS.length]! + ' ';
        for (let k = 0; k < w.length && i < end; k++) out[i++] = w.charCodeAt(k);
      }
    }
  }
  return out;
}

export interface Region {
  offset: number;
  length: number;
}

/** Writes a sparse raw file of `size` bytes with patterned data in `regions`. */
export function writePatternedRaw(file: string, size: number, regions: Region[], seed = 1): void {
  const rand = prng(seed);
  const fd = openSync(file, 'w');
  try {
    ftruncateSync(fd, size);
    for (const r of regions) {
      const len = Math.min(r.length, size - r.offset);
      if (len <= 0) continue;
      writeSync(fd, patternChunk(len, rand), 0, len, r.offset);
    }
  } finally {
    closeSync(fd);
  }
}

/** A raw file with data scattered over it: a few MiB of mixed content with holes. */
export function standardRaw(file: string, size: number, seed = 1): void {
  const MiB = 1 << 20;
  const regions: Region[] = [];
  for (let off = 0; off < size; off += 3 * MiB) regions.push({ offset: off + Math.floor((off % (5 * MiB)) / 5), length: MiB + 12345 });
  regions.push({ offset: Math.max(0, size - 70000), length: 70000 });
  writePatternedRaw(file, size, regions, seed);
}

export function writeText(file: string, text: string): void {
  writeFileSync(file, text);
}

/**
 * qemu-img for commands that derive an encryption key: it times PBKDF2 with RUSAGE_THREAD and,
 * on a busy machine, sometimes fails with "Unable to get accurate CPU usage". That is qemu's
 * calibration, not the image, so retry that failure (only that one); returns stdout.
 */
export function qemuImgCalibrating(...args: string[]): string {
  let last = '';
  for (let i = 0; i < 6; i++) {
    const r = runStatus('qemu-img', args);
    if (r.status === 0) return r.stdout;
    last = r.stderr;
    if (!/accurate CPU usage/.test(last)) break;
  }
  throw new Error(`qemu-img ${args.join(' ')}: ${last}`);
}
