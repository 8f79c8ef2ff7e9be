/**
 * Images named by an http:// or https:// URL: read with ranged GETs through Node's global
 * fetch (src-core/io/httpSource.ts); backing files and extents are fetched relative to the URL.
 */
import { HttpBlockCache, HttpSource, newHttpStats, type FetchLike, type FetchResponse, type HttpStats } from '../src-core/io/httpSource.ts';
import { HttpResolver } from '../src-core/io/httpResolver.ts';
import { cliSignal } from './cancel.ts';

export const nodeFetch: FetchLike = (url, init) => fetch(url, init as RequestInit) as Promise<FetchResponse>;

/** Bytes fetched by every URL source this process opened (DISKFERRY_STATS prints them). */
export const httpStats: HttpStats = newHttpStats();

export async function openUrl(url: string, allowOutside: boolean): Promise<{ file: HttpSource; resolver: HttpResolver }> {
  // One cache of 64 MiB for the image and all its companions (backing files, extents).
  const opts = { fetch: nodeFetch, signal: cliSignal(), stats: httpStats, cache: new HttpBlockCache(64) };
  const file = await HttpSource.open(url, opts);
  return { file, resolver: new HttpResolver(url, { ...opts, allowOtherOrigins: allowOutside }) };
}
