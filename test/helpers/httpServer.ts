import { createReadStream, promises as fs } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface RequestLog {
  method: string;
  path: string;
  range?: string;
  status: number;
  /** Body bytes written to the socket (a dropped response counts what went out before the drop). */
  bytesSent: number;
}

export interface TestServer {
  /** http://127.0.0.1:PORT */
  base: string;
  log: RequestLog[];
  /** Answer every request with 200 and the whole file, as a server without Range support does. */
  ignoreRange: boolean;
  /** Cut the connection halfway through the body of every Nth request (0: never). */
  dropEvery: number;
  /** Answer with 503 on every Nth request (0: never). */
  failEvery: number;
  /** Send half the body of every Nth request, then nothing more, keeping the connection open (0: never). */
  stallEvery: number;
  /**
   * Let pages of any origin read the files (a browser's cross-origin range reads): answer
   * preflights, allow the Range header and expose Content-Range. Off: no CORS header at all.
   */
  cors: boolean;
  /** With `cors`: the response headers a page may read besides the safelisted ones ('' sends none). */
  corsExposes: string;
  bytesSent(filter?: (r: RequestLog) => boolean): number;
  close(): Promise<void>;
}

/**
 * A static file server on 127.0.0.1 for a temp folder, honouring single byte ranges
 * (206 + Content-Range) like nginx, with switches for the failures a client must survive.
 */
export async function startServer(root: string): Promise<TestServer> {
  let count = 0;
  const state: TestServer = {
    base: '',
    log: [],
    ignoreRange: false,
    dropEvery: 0,
    failEvery: 0,
    stallEvery: 0,
    cors: false,
    corsExposes: 'Content-Range, Content-Length, Accept-Ranges, ETag',
    bytesSent: (f) => state.log.filter(f ?? (() => true)).reduce((n, r) => n + r.bytesSent, 0),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const n = ++count;
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = path.join(root, path.normalize(rel));
    const entry: RequestLog = { method: req.method ?? '', path: rel, range: req.headers.range, status: 0, bytesSent: 0 };
    state.log.push(entry);
    const cors: Record<string, string> = state.cors
      ? { 'Access-Control-Allow-Origin': '*', ...(state.corsExposes && { 'Access-Control-Expose-Headers': state.corsExposes }) }
      : {};
    const reply = (status: number, headers: Record<string, string | number> = {}) => {
      entry.status = status;
      res.writeHead(status, { ...cors, ...headers });
    };
    if (req.method === 'OPTIONS') {
      // A preflight: without CORS, no Access-Control-* headers, so the browser refuses the request.
      reply(204, state.cors ? { 'Access-Control-Allow-Methods': 'GET, HEAD', 'Access-Control-Allow-Headers': 'Range' } : {});
      res.end();
      return;
    }
    if (state.failEvery && n % state.failEvery === 0) {
      reply(503);
      res.end();
      return;
    }
    const st = await fs.stat(file).catch(() => undefined);
    if (!st?.isFile() || !file.startsWith(root)) {
      reply(404);
      res.end();
      return;
    }
    let start = 0;
    let end = st.size - 1;
    let status = 200;
    const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (m && !state.ignoreRange) {
      if (m[1] === '') {
        start = Math.max(0, st.size - Number(m[2]));
      } else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(end, Number(m[2]));
      }
      if (start >= st.size) {
        reply(416, { 'Content-Range': `bytes */${st.size}` });
        res.end();
        return;
      }
      status = 206;
    }
    const length = end - start + 1;
    const headers: Record<string, string | number> = {
      'Content-Length': length,
      'Accept-Ranges': state.ignoreRange ? 'none' : 'bytes',
      ETag: `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`,
      'Last-Modified': st.mtime.toUTCString(),
    };
    if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
    reply(status, headers);
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    const drop = state.dropEvery > 0 && n % state.dropEvery === 0;
    const stall = state.stallEvery > 0 && n % state.stallEvery === 0;
    const limit = drop || stall ? Math.max(1, Math.floor(length / 2)) : length;
    const stream = createReadStream(file, { start, end: start + limit - 1 });
    stream.on('data', (chunk) => {
      entry.bytesSent += chunk.length;
      res.write(chunk);
    });
    stream.on('end', () => {
      if (drop) res.socket?.destroy();
      else if (!stall) res.end();
    });
    stream.on('error', () => res.socket?.destroy());
    res.on('close', () => stream.destroy());
  }
  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.socket?.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
