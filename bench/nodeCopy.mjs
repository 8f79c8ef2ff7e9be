/**
 * The floor under any Node program's conversion of a file whose data comes first: read its
 * first `bytes` in 4 MiB windows into one reused buffer and write them out at once (256 KiB
 * write(2)s, as the CLI's file sink) — no zero test, no format, no start-up beyond Node's own.
 * Usage: node bench/nodeCopy.mjs SOURCE OUT BYTES   (npm run bench, the `node` row of that case)
 */
import { promises as fs } from 'node:fs';

const [source, out, bytesArg] = process.argv.slice(2);
const bytes = Number(bytesArg);
const WINDOW = 4 * 1024 * 1024;
const PIECE = 256 * 1024;
const src = await fs.open(source, 'r');
const dst = await fs.open(out, 'w');
const buf = Buffer.allocUnsafeSlow(WINDOW);
for (let pos = 0; pos < bytes; pos += WINDOW) {
  const n = Math.min(WINDOW, bytes - pos);
  const { bytesRead } = await src.read(buf, 0, n, pos);
  for (let o = 0; o < bytesRead; o += PIECE) await dst.write(buf, o, Math.min(PIECE, bytesRead - o), pos + o);
}
await dst.close();
await src.close();
