import { zlibStreamParams, type Codecs } from './types.ts';
import { portableCodecs } from './portable.ts';
import { WasmDeflater, type WasmModule } from './deflate-wasm/loader.ts';

/**
 * Codecs whose deflate (raw and zlib-wrapped) is libdeflate in WebAssembly (deflate-wasm/):
 * many times pako's speed. Everything else, and any platform that cannot instantiate wasm,
 * stays on `base` (pako and friends).
 */
export async function createWasmCodecs(module: Uint8Array | WasmModule, base: Codecs = portableCodecs): Promise<Codecs> {
  const z = await WasmDeflater.create(module);
  return {
    ...base,
    deflateRaw: (data, p) => z.deflate(data, p),
    zlibDeflate: (data, level) => z.deflate(data, zlibStreamParams(level), true),
  };
}
