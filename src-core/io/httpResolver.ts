import type { FileResolver } from './bytes.ts';
import { DiskFerryError, ErrorCode, MissingFileError } from './errors.ts';
import { HttpBlockCache, HttpSource, newHttpStats, type HttpSourceOptions, type HttpStats } from './httpSource.ts';

/** Opens companion files (backing files, extents) relative to the referencing file's URL. */
export class HttpResolver implements FileResolver {
  readonly stats: HttpStats;
  private readonly origin: string;
  constructor(
    /** The top image's URL: companions must be on its origin unless `allowOtherOrigins`. */
    top: string,
    private readonly opts: HttpSourceOptions & { allowOtherOrigins?: boolean },
  ) {
    this.origin = new URL(top).origin;
    this.stats = opts.stats ?? newHttpStats();
    this.cache = opts.cache ?? new HttpBlockCache(opts.cacheBlocks);
  }
  private readonly cache: HttpBlockCache;
  resolve(name: string, relativeTo: string): string {
    return new URL(name, relativeTo).href;
  }
  async open(name: string, relativeTo: string): Promise<HttpSource> {
    let url: URL;
    try {
      url = new URL(name, relativeTo);
    } catch {
      throw new MissingFileError(relativeTo, name);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new DiskFerryError(ErrorCode.Unsafe, relativeTo, `refers to "${name}", which is not an http(s) URL; refused`);
    }
    if (!this.opts.allowOtherOrigins && url.origin !== this.origin) {
      throw new DiskFerryError(
        ErrorCode.Unsafe,
        relativeTo,
        `refers to "${name}", on another server than the image; refused (allow with --allow-outside-paths)`,
      );
    }
    try {
      return await HttpSource.open(url.href, { ...this.opts, stats: this.stats, cache: this.cache, name: undefined });
    } catch (e) {
      if (e instanceof DiskFerryError && e.code === ErrorCode.MissingFile) throw new MissingFileError(relativeTo, name);
      throw e;
    }
  }
}
