/**
 * The few members of the WebAssembly JS API the core uses, typed once: src-core's lib is ES2022
 * only (no DOM, no Node types), and the page's and the CLI's projects type it differently.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface WasmModule {}

interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (m: WasmModule, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer };
  instantiate(m: WasmModule, imports: object): Promise<{ exports: Record<string, unknown> }>;
  compile(bytes: Uint8Array): Promise<WasmModule>;
}

/** The host's WebAssembly, or undefined where there is none. */
export const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
