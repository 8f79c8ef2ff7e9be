#!/usr/bin/env node
/**
 * Builds the CLI's one optional native piece, cli/native/holes.c (lseek SEEK_DATA/SEEK_HOLE),
 * into OUTDIR/holes-<platform>-<arch>.node (default .cache/native, where `tsx cli/bin.ts` finds
 * it; scripts/build-cli.mjs builds it beside the bundle). Needs a C compiler (cc) and Node's
 * headers; without them it says so and the CLI reads sparse files whole instead.
 * Exit code 0 either way, unless --require is given (npm test: the tests count on it here).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const required = args.includes('--require');
const outdir = path.resolve(args.find((a) => !a.startsWith('--')) ?? path.join(ROOT, '.cache', 'native'));
const out = path.join(outdir, `holes-${process.platform}-${process.arch}.node`);
const include = [path.join(path.dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'].find(
  (d) => existsSync(path.join(d, 'node_api.h')),
);

function skip(why) {
  process.stderr.write(`build-native: ${why}; the CLI will read sparse raw files whole\n`);
  process.exit(required ? 1 : 0);
}

if (process.platform !== 'linux') skip(`SEEK_DATA is only built for Linux here (this is ${process.platform})`);
if (!include) skip("Node's headers (node_api.h) were not found");
mkdirSync(outdir, { recursive: true });
try {
  execFileSync('cc', ['-O2', '-Wall', '-shared', '-fPIC', `-I${include}`, path.join(ROOT, 'cli', 'native', 'holes.c'), '-o', out], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
} catch (e) {
  skip(`cc failed (${e.message.split('\n')[0]})`);
}
