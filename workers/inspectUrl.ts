import { UnsupportedError } from '../src-core/io/errors.ts';
import { chooseCodecs, releaseCodecs } from './codecs.ts';
import { classify, describe, toInspectError } from './inspectFiles.ts';
import { checkImageUrl, UrlInput } from './io/urlInput.ts';
import type { Inspection, InspectOptions, UrlInspection } from './protocol.ts';

/**
 * The preview of an image on a web server: the same description as a dropped file's, from
 * metadata alone (headers, tables, the allocation map's extents), with how many bytes that took.
 * A URL that cannot be read at all (invalid, CORS, no Range, 404, a compressed file) throws, so
 * the page keeps it next to the URL field; an image that opens and then fails is an inspection
 * error, and a file that is no disk is set aside with the reason, as for dropped files.
 */
export async function inspectUrl(text: string, opts: InspectOptions): Promise<UrlInspection> {
  const url = checkImageUrl(text);
  const input = new UrlInput(url);
  await input.ready();
  const empty: Inspection = { images: [], compressed: [], errors: [], ignored: [], companions: [] };
  const asRaw = opts.treatAsRaw?.includes(url) ?? false;
  if (!asRaw) {
    // The file name is the URL's path: its query says nothing about the format.
    const found = await classify(input.source(url), new URL(url).pathname, true);
    if (found.as === 'compressed')
      throw new UnsupportedError(
        url,
        `this is a ${found.kind}-compressed file, which the page unpacks only when dropped: download it and drop it`,
      );
    if (found.as === 'ignored')
      return {
        url,
        fetched: input.stats.bytesFetched,
        inspection: { ...empty, ignored: [{ path: url, reason: found.reason, rawAllowed: found.rawAllowed }] },
      };
  }
  const codecs = chooseCodecs();
  try {
    const image = await describe(url, asRaw ? 'raw' : undefined, input, opts, codecs);
    return { url, fetched: input.stats.bytesFetched, inspection: { ...empty, images: [image], companions: image.companions } };
  } catch (e) {
    return { url, fetched: input.stats.bytesFetched, inspection: { ...empty, errors: [toInspectError(url, e)] } };
  } finally {
    releaseCodecs(codecs);
  }
}
