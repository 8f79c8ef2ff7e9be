import { errorLine } from '../src-core/io/errors.ts';
import { chooseCodecs, releaseCodecs } from './codecs.ts';
import { describe, toInspectError } from './inspectFiles.ts';
import { checkImageUrl, UrlInput } from './io/urlInput.ts';
import type { InspectOptions, UrlInspection } from './protocol.ts';

/**
 * The preview of an image on a web server: the same description as a dropped file's, from
 * metadata alone (headers, tables, the allocation map's extents), with how many bytes that took.
 * A URL that cannot be read at all (invalid, CORS, no Range, 404) throws, so the page keeps it
 * next to the URL field; an image that opens and then fails is an inspection error, as for files.
 */
export async function inspectUrl(text: string, opts: InspectOptions): Promise<UrlInspection> {
  const url = checkImageUrl(text);
  const input = new UrlInput(url);
  await input.ready();
  const codecs = chooseCodecs();
  try {
    const image = await describe(url, opts.treatAsRaw?.includes(url) ? 'raw' : undefined, input, opts, codecs);
    return {
      url,
      inspection: { images: [image], compressed: [], errors: [], ignored: [], companions: image.companions },
      fetched: input.stats.bytesFetched,
    };
  } catch (e) {
    return {
      url,
      inspection: { images: [], compressed: [], errors: [toInspectError(url, e)], ignored: [], companions: [] },
      fetched: input.stats.bytesFetched,
      error: errorLine(e),
    };
  } finally {
    releaseCodecs(codecs);
  }
}
