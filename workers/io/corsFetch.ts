import { DiskFerryError, ErrorCode } from '../../src-core/io/errors.ts';
import type { FetchLike, FetchResponse } from '../../src-core/io/httpSource.ts';

/**
 * The browser's fetch for HttpSource, with cross-origin refusals told apart from network errors
 * (docs/browser.md, Reading from a URL). A server on another origin must let this page read
 * its answer (Access-Control-Allow-Origin), accept the Range header (a preflight may ask), and
 * expose Content-Range. When it does not, fetch throws the same bare TypeError as a network
 * failure, which HttpSource would retry for seconds; so after a TypeError one request without
 * CORS (an opaque answer the page cannot read) asks whether the server answers at all. If it
 * does, the refusal is CORS's: an error that is not retried, saying so.
 */
export const corsFetch: FetchLike = async (url, init) => {
  const cross = isCrossOrigin(url);
  let res: Response;
  try {
    // no-store: never fill the HTTP cache with a disk image (or answer a range from it).
    res = await fetch(url, { ...init, mode: 'cors', credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    if (!cross || init.signal?.aborted || !(await answersWithoutCors(url, init.signal))) throw e;
    throw corsError(url, 'it sends no Access-Control-Allow-Origin for this page, or does not allow the Range header');
  }
  if (cross && res.status === 206 && !res.headers.get('content-range')) {
    await res.body?.cancel().catch(() => {});
    throw corsError(url, 'it does not expose the Content-Range header (Access-Control-Expose-Headers)');
  }
  return res as FetchResponse;
};

function isCrossOrigin(url: string): boolean {
  return new URL(url).origin !== self.location.origin;
}

/** Whether the server answers a request the page may not read (mode no-cors): it is up, only CORS stops us. */
async function answersWithoutCors(url: string, signal?: AbortSignal): Promise<boolean> {
  try {
    // Range: a privileged no-cors header, so a server that honours it sends one byte, not the disk.
    const res = await fetch(url, { mode: 'no-cors', credentials: 'omit', cache: 'no-store', headers: { Range: 'bytes=0-0' }, signal });
    await res.body?.cancel().catch(() => {});
    return true;
  } catch {
    return false;
  }
}

/** The one line the page shows (no file prefix: it names the server itself). */
export function corsError(url: string, why: string): DiskFerryError {
  const origin = new URL(url).origin;
  return new DiskFerryError(
    ErrorCode.Io,
    '',
    `The server at ${origin} does not allow this page to read the file (CORS): ${why}; download it and drop the file instead`,
  );
}
