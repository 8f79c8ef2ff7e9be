import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

/** File types the service worker precaches: the shell, worker chunks, wasm, manifest and icons. */
const PRECACHE_EXT = /\.(html|js|css|wasm|webmanifest|png|svg|ico)$/;

/** Every file below `dir`, as URL paths. */
function publicFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...publicFiles(full, `${prefix}/${name}`));
    else out.push(`${prefix}/${name}`);
  }
  return out;
}

/**
 * Writes the precache list and a version into the service worker (web/sw/serviceWorker.ts,
 * built as /sw.js). The version is a hash of the content-hashed file names, so any change to
 * the app produces a new service worker, which the page offers as an update.
 */
function precacheManifest(): Plugin {
  return {
    name: 'diskferry-precache-manifest',
    apply: 'build',
    generateBundle(_options, bundle) {
      const sw = Object.values(bundle).find((c) => c.fileName === 'sw.js');
      if (!sw || sw.type !== 'chunk') throw new Error('service worker chunk sw.js is missing from the build');
      // index.html is emitted by Vite after this hook runs, so it is named explicitly.
      const files = [
        ...new Set([
          '/index.html',
          ...Object.keys(bundle)
            .filter((f) => f !== 'sw.js' && PRECACHE_EXT.test(f))
            .map((f) => `/${f}`),
          ...publicFiles('public').filter((f) => PRECACHE_EXT.test(f)),
        ]),
      ].sort();
      const version = `v${createHash('sha256').update(files.join('\n')).digest('hex').slice(0, 12)}`;
      sw.code = sw.code
        .replace('__DISKFERRY_VERSION__', version)
        .replace('__DISKFERRY_PRECACHE__', JSON.stringify(files).replace(/\\/g, '\\\\').replace(/'/g, "\\'"));
    },
  };
}

/** deflate.wasm is libdeflate (MIT): its licence travels with the built app, as it does with the CLI's bundle. */
function wasmLicences(): Plugin {
  return {
    name: 'diskferry-wasm-licences',
    apply: 'build',
    generateBundle() {
      const source = readFileSync('src-core/codecs/deflate-wasm/LICENSE.libdeflate', 'utf8');
      this.emitFile({ type: 'asset', fileName: 'licenses/libdeflate.txt', source });
    },
  };
}

export default defineConfig({
  plugins: [react(), precacheManifest(), wasmLicences()],
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    outDir: 'dist',
    rollupOptions: {
      input: { main: 'index.html', sw: 'web/sw/serviceWorker.ts' },
      output: { entryFileNames: (chunk) => (chunk.name === 'sw' ? 'sw.js' : 'assets/[name]-[hash].js') },
    },
  },
  preview: { host: '127.0.0.1', port: 4173, strictPort: true },
});
