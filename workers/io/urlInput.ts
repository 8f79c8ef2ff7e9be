import type { ByteSource, FileResolver } from '../../src-core/io/bytes.ts';
import { DiskFerryError, ErrorCode, InvalidArgumentError } from '../../src-core/io/errors.ts';
import { HttpResolver } from '../../src-core/io/httpResolver.ts';
import { HttpBlockCache, HttpSource, isHttpUrl, newHttpStats, type FetchLike, type HttpStats } from '../../src-core/io/httpSource.ts';
import { corsFetch } from './corsFetch.ts';

/** Blocks (1 MiB each) one remote image and its companions keep in memory at most. */
const CACHE_BLOCKS = 64;

/**
 * A disk image on a web server, with its companions (backing files, VMDK extents) resolved
 * relative to its URL on the same origin (src-core/io/httpResolver.ts): the remote counterpart
 * of FileSetResolver. Paths are URLs. Nothing is fetched until `ready()`, so a job can create
 * its output place first and still clean it up when the server cannot be read.
 */
export class UrlInput implements FileResolver {
  readonly stats: HttpStats = newHttpStats();
  /** Companion URLs handed out through `open`, even if only looked at. */
  readonly opened = new Set<string>();
  private readonly holds = new Map<string, number>();
  private readonly sources = new Map<string, HttpSource>();
  private readonly cache = new HttpBlockCache(CACHE_BLOCKS);
  private readonly http: HttpResolver;
  private top: Promise<HttpSource> | undefined;

  constructor(
    readonly url: string,
    private readonly signal?: AbortSignal,
    private readonly fetchFn: FetchLike = corsFetch,
  ) {
    this.http = new HttpResolver(url, { fetch: fetchFn, signal, stats: this.stats, cache: this.cache });
  }

  /** Opens the image's URL: one ranged GET that tells its size and proves the server honours Range. */
  ready(): Promise<void> {
    this.top ??= HttpSource.open(this.url, { fetch: this.fetchFn, signal: this.signal, stats: this.stats, cache: this.cache }).then((s) => {
      this.sources.set(this.url, s);
      return s;
    });
    return this.top.then(() => undefined);
  }

  /** An opened file by its URL: the image itself (after `ready()`) or a companion opened since. */
  source(url: string): ByteSource {
    const s = this.sources.get(url);
    if (!s) throw new DiskFerryError(ErrorCode.Io, url, 'not opened yet');
    return s;
  }

  async open(name: string, relativeTo: string): Promise<ByteSource> {
    const s = await this.http.open(name, relativeTo);
    this.sources.set(s.url, s);
    this.opened.add(s.url);
    this.holds.set(s.url, (this.holds.get(s.url) ?? 0) + 1);
    let closed = false;
    return {
      name: s.name,
      size: s.size,
      read: (offset, length) => s.read(offset, length),
      close: async () => {
        if (closed) return;
        closed = true;
        this.holds.set(s.url, this.holds.get(s.url)! - 1);
      },
    };
  }

  /** Companions the opened image holds now. */
  get inUse(): string[] {
    return [...this.holds].filter(([, n]) => n > 0).map(([u]) => u);
  }
}

/**
 * The URL as the page may fetch it: http(s) only, absolute, no credentials in it. The message
 * is the one line the page shows under the field.
 */
export function checkImageUrl(text: string): string {
  const t = text.trim();
  let url: URL;
  try {
    url = new URL(t);
  } catch {
    throw new InvalidArgumentError(`"${t}" is not a URL; enter the full address, such as https://example.com/disk.qcow2`);
  }
  if (!isHttpUrl(url.href)) throw new InvalidArgumentError(`"${t}" is not an http:// or https:// URL; only web servers can be read`);
  if (url.username || url.password)
    throw new InvalidArgumentError('the URL holds a user name or password; the page does not send credentials, so it cannot read it');
  url.hash = '';
  return url.href;
}
