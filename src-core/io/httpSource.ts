import { BoundedCache } from './boundedCache.ts';
import type { ByteSource } from './bytes.ts';
import { CancelledError, DiskFerryError, ErrorCode, UnsupportedError, assertNotAborted } from './errors.ts';

/**
 * A disk image on a web server, read with ranged GETs (RFC 9110 §14): never the whole file,
 * only the ranges the format reader asks for, widened to whole blocks (read-ahead) and kept in
 * a bounded cache. The core has no `fetch` of its own: the platform passes one in (Node's and
 * the browser's global fetch both fit `FetchLike`).
 */

/** The part of a fetch Response this source uses. */
export interface FetchResponse {
  readonly status: number;
  readonly statusText?: string;
  readonly headers: { get(name: string): string | null };
  readonly body: {
    getReader(): {
      read(): Promise<{ done: boolean; value?: Uint8Array }>;
      cancel(reason?: unknown): Promise<void>;
    };
  } | null;
}

export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; signal?: AbortSignal },
) => Promise<FetchResponse>;

/** What went over the wire, for tests and progress displays. */
export interface HttpStats {
  /** Body bytes received (every attempt, including bytes of a response cut off halfway). */
  bytesFetched: number;
  requests: number;
  retries: number;
}

export interface HttpSourceOptions {
  fetch: FetchLike;
  signal?: AbortSignal;
  /** Reads are widened to whole blocks of this size (read-ahead); default 1 MiB. */
  blockSize?: number;
  /** Blocks kept (least recently used go first) when no shared `cache` is given; default 32. */
  cacheBlocks?: number;
  /** One bound for the blocks of several sources (a resolver shares its own with every companion). */
  cache?: HttpBlockCache;
  /** Attempts after the first for one range without any progress; default 5. */
  retries?: number;
  /** First pause before a retry, doubled each time; default 250 ms. */
  backoffMs?: number;
  /** A request that brings no bytes for this long is abandoned and retried; default 30 s (0: never). */
  timeoutMs?: number;
  /** Shared counters (a resolver passes one to every companion file). */
  stats?: HttpStats;
  /** Name in error messages; default the URL. */
  name?: string;
}

export const NO_RANGE_DETAIL = 'server does not support range requests; download the file first';

export function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** A failure worth another attempt: network errors, 5xx, 408/429, a body cut short. */
class TransientError extends Error {}

/**
 * Blocks of several sources under one bound: an image of hundreds of extents keeps at most
 * `maxBlocks` blocks in memory in all, not that many per extent.
 */
export class HttpBlockCache {
  private readonly lru: BoundedCache<Uint8Array>;
  private sources = 0;
  constructor(maxBlocks = 64) {
    this.lru = new BoundedCache(Math.max(2, maxBlocks));
  }
  /** A key space of its own for one source (2^32 blocks each). */
  register(): number {
    return this.sources++ * 2 ** 32;
  }
  get(key: number): Uint8Array | undefined {
    return this.lru.get(key);
  }
  has(key: number): boolean {
    return this.lru.has(key);
  }
  set(key: number, block: Uint8Array): void {
    this.lru.set(key, block);
  }
}

export function newHttpStats(): HttpStats {
  return { bytesFetched: 0, requests: 0, retries: 0 };
}

export class HttpSource implements ByteSource {
  readonly stats: HttpStats;
  private readonly cache: HttpBlockCache;
  /** This source's key space in the cache. */
  private readonly keyBase: number;
  private readonly inflight = new Map<number, Promise<Uint8Array>>();
  private readonly blockSize: number;
  private closed = false;
  /** ETag and Last-Modified of the first answer: every later one must match (the file did not change). */
  private version?: Version;

  private constructor(
    readonly url: string,
    readonly name: string,
    readonly size: number,
    private readonly opts: HttpSourceOptions,
  ) {
    this.stats = opts.stats ?? newHttpStats();
    this.blockSize = opts.blockSize ?? 1 << 20;
    this.cache = opts.cache ?? new HttpBlockCache(opts.cacheBlocks ?? 32);
    this.keyBase = this.cache.register();
  }

  /**
   * Opens `url`: one GET of the first block with `Range`, which tells the size (Content-Range),
   * proves the server honours ranges (206) and brings the header every reader starts with.
   */
  static async open(url: string, opts: HttpSourceOptions): Promise<HttpSource> {
    const name = opts.name ?? url;
    const blockSize = opts.blockSize ?? 1 << 20;
    const stats = opts.stats ?? newHttpStats();
    const o = { ...opts, stats, blockSize };
    type First = { size: number; data: Uint8Array; version?: Version };
    const first = await withRetries(name, o, (progressed) =>
      request(o, async (wd): Promise<First> => {
        const res = await get(o, url, 0, blockSize - 1, wd);
        if (res.status === 206) {
          const cr = parseContentRange(res.headers.get('content-range'));
          if (!cr || cr.start !== 0 || cr.size === undefined) {
            await cancelBody(res);
            throw new DiskFerryError(ErrorCode.Io, name, `bad Content-Range "${res.headers.get('content-range') ?? ''}" in a 206 response`);
          }
          const want = Math.min(blockSize, cr.size);
          const data = new Uint8Array(want);
          const got = await readBody(res, data, 0, stats, wd, progressed);
          if (got < want) throw new TransientError(`response ended after ${got} of ${want} bytes`);
          return { size: cr.size, data, version: versionOf(res) };
        }
        if (res.status === 416) {
          // Nothing at offset 0: an empty file.
          const cr = parseContentRange(res.headers.get('content-range'));
          await cancelBody(res);
          if (cr?.size === 0) return { size: 0, data: new Uint8Array(0) };
          throw new DiskFerryError(ErrorCode.Io, name, 'HTTP 416 (range not satisfiable) for the first bytes of the file');
        }
        if (res.status === 200) {
          // A server that ignores Range sends the whole file. One that fits in the first block
          // is simply kept; anything bigger would have to be downloaded for every read.
          const len = Number(res.headers.get('content-length') ?? NaN);
          if (Number.isFinite(len) && len <= blockSize) {
            const data = new Uint8Array(len);
            const got = await readBody(res, data, 0, stats, wd);
            if (got < len) throw new TransientError(`response ended after ${got} of ${len} bytes`);
            return { size: len, data };
          }
          await cancelBody(res);
          throw new UnsupportedError(name, NO_RANGE_DETAIL);
        }
        await cancelBody(res);
        throw statusError(res, name);
      }),
    );
    const src = new HttpSource(url, name, first.size, o);
    src.version = first.version;
    if (first.size) src.cache.set(src.keyBase, first.data);
    return src;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(this.size, offset + length);
    if (offset >= end) return new Uint8Array(0);
    if (this.closed) throw new DiskFerryError(ErrorCode.Io, this.name, 'read after close');
    const bs = this.blockSize;
    const firstBlock = Math.floor(offset / bs);
    const lastBlock = Math.floor((end - 1) / bs);
    this.schedule(firstBlock, lastBlock);
    const blocks: Promise<Uint8Array>[] = [];
    for (let b = firstBlock; b <= lastBlock; b++) blocks.push(this.block(b));
    const got = await Promise.all(blocks);
    if (got.length === 1) {
      const s = offset - firstBlock * bs;
      return got[0]!.slice(s, s + (end - offset));
    }
    const out = new Uint8Array(end - offset);
    for (let i = 0; i < got.length; i++) {
      const blockStart = (firstBlock + i) * bs;
      const a = Math.max(offset, blockStart);
      const b = Math.min(end, blockStart + got[i]!.length);
      out.set(got[i]!.subarray(a - blockStart, b - blockStart), a - offset);
    }
    return out;
  }

  async close(): Promise<void> {
    // Its blocks in a shared cache age out with the others.
    this.closed = true;
  }

  /** A cached or in-flight block (schedule() has started every missing one). */
  private block(b: number): Promise<Uint8Array> {
    const hit = this.cache.get(this.keyBase + b);
    if (hit) return Promise.resolve(hit);
    const pending = this.inflight.get(b);
    if (pending) return pending;
    this.schedule(b, b);
    return this.inflight.get(b)!;
  }

  /** Starts one GET for every run of consecutive blocks in [first, last] neither cached nor in flight. */
  private schedule(first: number, last: number): void {
    let b = first;
    while (b <= last) {
      if (this.cache.has(this.keyBase + b) || this.inflight.has(b)) {
        b++;
        continue;
      }
      let e = b;
      while (e + 1 <= last && !this.cache.has(this.keyBase + e + 1) && !this.inflight.has(e + 1)) e++;
      const runStart = b * this.blockSize;
      const runEnd = Math.min(this.size, (e + 1) * this.blockSize);
      const run = this.fetchRange(runStart, runEnd);
      for (let k = b; k <= e; k++) {
        const off = (k - b) * this.blockSize;
        const p = run.then((data) => {
          const block = data.slice(off, Math.min(data.length, off + this.blockSize));
          this.cache.set(this.keyBase + k, block);
          return block;
        });
        p.catch(() => {}).finally(() => this.inflight.delete(k));
        this.inflight.set(k, p);
      }
      b = e + 1;
    }
  }

  /** Bytes [start, end) of the file; a response cut short is continued where it stopped. */
  private async fetchRange(start: number, end: number): Promise<Uint8Array> {
    const out = new Uint8Array(end - start);
    let got = 0;
    await withRetries(this.name, this.opts, async (progressed) => {
      while (got < out.length) {
        await request(this.opts, async (wd) => {
          const from = start + got;
          const res = await get(this.opts, this.url, from, end - 1, wd);
          if (res.status === 206) {
            const cr = parseContentRange(res.headers.get('content-range'));
            if (!cr || cr.start !== from) {
              await cancelBody(res);
              throw new DiskFerryError(
                ErrorCode.Io,
                this.name,
                `server answered a request for bytes ${from}-${end - 1} with "${res.headers.get('content-range') ?? 'no Content-Range'}"`,
              );
            }
            const changed = changeOf(this.version, versionOf(res), this.size, cr.size);
            if (changed) {
              await cancelBody(res);
              throw new DiskFerryError(ErrorCode.Io, this.name, `file changed on the server while it was being read (${changed})`);
            }
          } else if (res.status === 200) {
            await cancelBody(res);
            throw new UnsupportedError(this.name, NO_RANGE_DETAIL);
          } else {
            await cancelBody(res);
            throw statusError(res, this.name);
          }
          const before = got;
          got = await readBody(res, out, got, this.stats, wd, progressed, (n) => (got = n));
          if (got < out.length) throw new TransientError(`response ended after ${got - before} of ${end - from} bytes`);
        });
      }
    });
    return out;
  }
}

/** What identifies one version of a file on a server. */
interface Version {
  etag?: string;
  lastModified?: string;
}

function versionOf(res: FetchResponse): Version {
  return { etag: res.headers.get('etag') ?? undefined, lastModified: res.headers.get('last-modified') ?? undefined };
}

/** How `now` differs from `first`, or undefined when nothing says the file changed. */
function changeOf(first: Version | undefined, now: Version, size: number, nowSize: number | undefined): string | undefined {
  if (nowSize !== undefined && nowSize !== size) return `size ${size} → ${nowSize}`;
  if (first?.etag && now.etag && first.etag !== now.etag) return `ETag ${first.etag} → ${now.etag}`;
  if (first?.lastModified && now.lastModified && first.lastModified !== now.lastModified)
    return `Last-Modified ${first.lastModified} → ${now.lastModified}`;
  return undefined;
}

/**
 * One request's own abort: fired by the caller's signal, or by the watchdog when no bytes came
 * for `timeoutMs` (a server that accepts and then stalls), which makes it a transient failure.
 */
class Watchdog {
  private readonly ac = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  timedOut = false;
  private readonly onOuter = () => this.ac.abort();
  constructor(
    readonly ms: number,
    private readonly outer?: AbortSignal,
  ) {
    outer?.addEventListener('abort', this.onOuter, { once: true });
    this.kick();
  }
  get signal(): AbortSignal {
    return this.ac.signal;
  }
  /** Bytes arrived: the clock starts again. */
  kick(): void {
    if (!this.ms) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.ac.abort();
    }, this.ms);
  }
  done(): void {
    clearTimeout(this.timer);
    this.outer?.removeEventListener('abort', this.onOuter);
  }
}

async function request<T>(opts: HttpSourceOptions, fn: (wd: Watchdog) => Promise<T>): Promise<T> {
  const wd = new Watchdog(opts.timeoutMs ?? 30_000, opts.signal);
  try {
    return await fn(wd);
  } catch (e) {
    if (wd.timedOut && !opts.signal?.aborted && !(e instanceof TransientError)) throw new TransientError(`no data for ${wd.ms / 1000} s`);
    throw e;
  } finally {
    wd.done();
  }
}

function get(opts: HttpSourceOptions, url: string, first: number, last: number, wd: Watchdog): Promise<FetchResponse> {
  assertNotAborted(opts.signal);
  opts.stats!.requests++;
  return opts.fetch(url, {
    method: 'GET',
    // identity: a compressed body would make the byte offsets meaningless.
    headers: { Range: `bytes=${first}-${last}`, 'Accept-Encoding': 'identity' },
    signal: wd.signal,
  });
}

/** Reads a response body into `out` from `at`; returns the new fill level. Extra bytes are dropped. */
async function readBody(
  res: FetchResponse,
  out: Uint8Array,
  at: number,
  stats: HttpStats,
  wd: Watchdog,
  /** Called once bytes arrived (a retry after a cut continues at once). */
  progressed?: () => void,
  /** The fill level after every chunk, so a cut keeps what arrived. */
  onFill?: (pos: number) => void,
): Promise<number> {
  if (!res.body) return at;
  const reader = res.body.getReader();
  let pos = at;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || !value) break;
      wd.kick();
      stats.bytesFetched += value.length;
      const n = Math.min(value.length, out.length - pos);
      out.set(value.subarray(0, n), pos);
      pos += n;
      onFill?.(pos);
      if (n) progressed?.();
      if (pos >= out.length) break;
    }
  } catch (e) {
    if (pos > at) {
      // Keep what arrived; the caller asks for the rest.
      throw new TransientError(`connection lost after ${pos - at} bytes (${errorText(e)})`);
    }
    throw e;
  } finally {
    if (pos >= out.length) await reader.cancel().catch(() => {});
  }
  return pos;
}

async function cancelBody(res: FetchResponse): Promise<void> {
  await res.body
    ?.getReader()
    .cancel()
    .catch(() => {});
}

function statusError(res: FetchResponse, name: string): Error {
  const text = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  if (res.status >= 500 || res.status === 408 || res.status === 429) return new TransientError(text);
  if (res.status === 404 || res.status === 410)
    return new DiskFerryError(ErrorCode.MissingFile, name, `${text}: no such file on the server`);
  return new DiskFerryError(ErrorCode.Io, name, text);
}

/** `bytes START-END/SIZE`, or `bytes *` + `/SIZE` (416). */
export function parseContentRange(h: string | null): { start?: number; end?: number; size?: number } | undefined {
  if (!h) return undefined;
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(h.trim());
  if (!m) return undefined;
  return {
    start: m[1] !== undefined ? Number(m[1]) : undefined,
    end: m[2] !== undefined ? Number(m[2]) : undefined,
    size: m[3] !== '*' ? Number(m[3]) : undefined,
  };
}

/**
 * Runs `attempt` until it succeeds, retrying transient failures (network errors, 5xx, a body
 * cut short) with doubling pauses. An attempt that made progress before it failed is continued
 * at once and restarts the count, so a long read over a flaky link finishes, while a server
 * that never answers fails after `retries` pauses (0.25 + 0.5 + … ≈ 8 s by default).
 */
async function withRetries<T>(name: string, opts: HttpSourceOptions, attempt: (progressed: () => void) => Promise<T>): Promise<T> {
  const max = opts.retries ?? 5;
  const base = opts.backoffMs ?? 250;
  let failures = 0;
  for (;;) {
    assertNotAborted(opts.signal);
    let progressed = false;
    try {
      return await attempt(() => {
        progressed = true;
      });
    } catch (e) {
      if (opts.signal?.aborted) throw new CancelledError();
      if (e instanceof DiskFerryError) throw e;
      // Anything else is the network's doing (fetch's TypeError, a reset, a cut body).
      opts.stats!.retries++;
      // Bytes arrived before the cut: the link works, ask for the rest at once.
      if (progressed) {
        failures = 0;
        continue;
      }
      if (failures >= max) throw new DiskFerryError(ErrorCode.Io, name, `${errorText(e)} (gave up after ${max} retries)`);
      failures++;
      await sleep(base * 2 ** (failures - 1), opts.signal);
    }
  }
}

function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof Error && cause.message ? `${e.message}: ${cause.message}` : e.message;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
