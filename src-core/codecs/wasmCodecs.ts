import type { Codecs } from './types.ts';
import { portableCodecs } from './portable.ts';
import { WasmDeflater, type WasmModule } from './zlib-wasm/loader.ts';

/**
 * Codecs whose raw deflate is stock zlib in WebAssembly (zlib-wasm/): 2–3× pako's speed and
 * byte-identical to qemu-img's clusters. Everything else, and any platform that cannot
 * instantiate wasm, stays on `base` (pako and friends).
 */
export async function createWasmCodecs(module: Uint8Array | WasmModule, base: Codecs = portableCodecs): Promise<Codecs> {
  const z = await WasmDeflater.create(module);
  return { ...base, deflateRaw: (data, p) => z.deflateRaw(data, p) };
}
