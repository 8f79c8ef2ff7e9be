#!/usr/bin/env node
/**
 * Builds what the npm package ships (npm run build:cli; run by `prepare` and `prepack`):
 *   dist/cli/diskferry.js      the `diskferry` command (cli/bin.ts), ESM with a #! line
 *   dist/cli/index.js          the library entry (cli/lib.ts)
 *   dist/cli/deflateWorker.js  the compression worker thread (cli/pool/deflateWorker.ts)
 *   dist/cli/chunk-*.js        code shared by those and loaded on demand (import())
 *   dist/cli/deflate.wasm (+ LICENSE.libdeflate), zstd.wasm
 *   dist/cli/holes-<platform>-<arch>.node  lseek SEEK_DATA/SEEK_HOLE (optional; scripts/build-native.mjs)
 *   dist/types/**.d.ts         declarations for the library (tsc)
 * Everything the CLI needs is bundled: the package has no runtime dependencies.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'dist', 'cli');
const TYPES = path.join(ROOT, 'dist', 'types');
const outdir = process.argv[2] ? path.resolve(process.argv[2]) : OUT;

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

// CommonJS dependencies inside an ESM bundle expect require, __filename and __dirname
// (@bokuweb/zstd-wasm reads zstd.wasm from __dirname): give every output file its own.
const shim =
  "import{createRequire as __dfRequire}from'node:module';import{fileURLToPath as __dfPath}from'node:url';import{dirname as __dfDir}from'node:path';" +
  'const require=__dfRequire(import.meta.url);const __filename=__dfPath(import.meta.url);const __dirname=__dfDir(__filename);';

await esbuild.build({
  absWorkingDir: ROOT,
  entryPoints: {
    diskferry: 'cli/bin.ts',
    index: 'cli/lib.ts',
    deflateWorker: 'cli/pool/deflateWorker.ts',
  },
  outdir,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  banner: { js: shim },
  define: { __DISKFERRY_VERSION__: JSON.stringify(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version) },
  legalComments: 'none',
  logLevel: 'warning',
});
// The #! line must be the file's first line: esbuild puts the banner first, so add it after.
const bin = path.join(outdir, 'diskferry.js');
writeFileSync(bin, '#!/usr/bin/env node\n' + readFileSync(bin, 'utf8'));
chmodSync(bin, 0o755);
copyFileSync(path.join(ROOT, 'src-core/codecs/deflate-wasm/deflate.wasm'), path.join(outdir, 'deflate.wasm'));
copyFileSync(path.join(ROOT, 'node_modules/@bokuweb/zstd-wasm/dist/common/zstd.wasm'), path.join(outdir, 'zstd.wasm'));
// deflate.wasm is libdeflate: its licence travels with it.
copyFileSync(path.join(ROOT, 'src-core/codecs/deflate-wasm/LICENSE.libdeflate'), path.join(outdir, 'LICENSE.libdeflate'));
// lseek(SEEK_DATA) for sparse files, where this machine can build it (optional: without it the CLI reads holes).
execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-native.mjs'), outdir], { stdio: 'inherit' });

if (outdir === OUT && !process.env.DISKFERRY_NO_TYPES) {
  rmSync(TYPES, { recursive: true, force: true });
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.lib.json'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
}
