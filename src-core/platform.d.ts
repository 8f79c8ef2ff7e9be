// The only host globals src-core relies on. Browsers, workers and Node all provide them;
// declaring them here (instead of pulling in lib.dom or @types/node) keeps the core honest.
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: Uint8Array): string;
}
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
interface AbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}
declare const console: { log(...a: unknown[]): void; warn(...a: unknown[]): void; error(...a: unknown[]): void };
declare function setTimeout(fn: () => void, ms?: number): unknown;
declare function queueMicrotask(fn: () => void): void;
declare const performance: { now(): number };
declare const crypto: { getRandomValues<T extends Uint8Array>(a: T): T };
declare function clearTimeout(id: unknown): void;
declare class URL {
  constructor(url: string, base?: string);
  readonly href: string;
  readonly origin: string;
  readonly protocol: string;
  readonly pathname: string;
  toString(): string;
}
declare class AbortController {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
}
