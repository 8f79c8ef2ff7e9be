/**
 * The zero test with wasm SIMD: 64 bytes per branch, ~3× the JS word loop in Chromium (where
 * typed-array loads pay the V8 sandbox's checks) and in Node. Data cannot be handed to wasm in
 * place, so it is copied in 64 KiB pieces (they stay in the core's cache for the test) and the
 * test stops at the first piece that is not zero. zero-wasm/zero.c is the source, build.sh
 * prints these bytes; without WebAssembly SIMD the caller falls back to JS.
 */
import { wasm } from './wasmApi.ts';

// prettier-ignore
const ZERO_WASM = new Uint8Array([0,97,115,109,1,0,0,0,1,7,1,96,2,127,127,1,127,2,15,1,3,101,110,118,6,109,101,109,111,114,121,2,0,2,3,2,1,0,4,5,1,112,1,1,1,6,8,1,127,1,65,128,136,4,11,7,15,1,11,122,101,114,111,95,112,114,101,102,105,120,0,0,10,82,1,80,1,3,127,65,0,33,2,2,64,3,64,32,2,34,3,65,192,0,106,34,2,32,1,75,13,1,32,0,32,3,106,34,4,65,16,106,253,0,0,0,32,4,253,0,0,0,253,80,32,4,65,32,106,253,0,0,0,253,80,32,4,65,48,106,253,0,0,0,253,80,253,83,69,13,0,11,11,32,3,11]);

const PIECE = 64 * 1024;
/** Where pieces are copied: above the 64 KiB the module's (unused) stack pointer starts in. */
const BASE = 2 * 64 * 1024;

interface ZeroScanner {
  heap: Uint8Array;
  zeroPrefix: (ptr: number, length: number) => number;
}

let scanner: ZeroScanner | null | undefined;

function load(): ZeroScanner | null {
  if (!wasm) return null;
  try {
    const memory = new wasm.Memory({ initial: (BASE + PIECE) / 65536 });
    const instance = new wasm.Instance(new wasm.Module(ZERO_WASM), { env: { memory } });
    return { heap: new Uint8Array(memory.buffer), zeroPrefix: instance.exports.zero_prefix as ZeroScanner['zeroPrefix'] };
  } catch {
    return null; // no WebAssembly, no SIMD, or a policy that forbids compiling it
  }
}

/**
 * How many leading bytes of `b` are zero, counted in whole 64-byte blocks (so at most its length
 * rounded down to 64; the caller tests the rest), or undefined when wasm SIMD is not available.
 */
export function wasmZeroPrefix(b: Uint8Array): number | undefined {
  if (scanner === undefined) scanner = load();
  if (!scanner) return undefined;
  const { heap, zeroPrefix } = scanner;
  const whole = b.length - (b.length % 64);
  for (let off = 0; off < whole; off += PIECE) {
    const n = Math.min(PIECE, whole - off);
    heap.set(b.subarray(off, off + n), BASE);
    const z = zeroPrefix(BASE, n);
    if (z < n) return off + z;
  }
  return whole;
}
