import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The data path shows in the tree and points one way: io → codecs → image → formats → pipeline,
 * then cli/ and workers/, then web/ on top. A driver sees only io, codecs, image and its own
 * folder. The page imports only types from the worker side (the worker owns every byte).
 */
const ROOT = path.resolve(import.meta.dirname, '..');
const LEVEL: Record<string, number> = {
  'src-core/io': 0,
  'src-core/codecs': 1,
  'src-core/image': 2,
  'src-core/formats': 3,
  'src-core/pipeline': 4,
  cli: 5,
  workers: 5,
  web: 6,
};

function layerOf(rel: string): string | undefined {
  return Object.keys(LEVEL).find((l) => rel === l || rel.startsWith(`${l}/`));
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

interface Import {
  from: string;
  to: string;
  typeOnly: boolean;
}

function imports(): Import[] {
  const out: Import[] = [];
  for (const top of ['src-core', 'cli', 'workers', 'web']) {
    for (const file of sourceFiles(path.join(ROOT, top))) {
      const text = readFileSync(file, 'utf8');
      const re =
        /(?:^|\n)\s*(import|export)\s+(type\s+)?[^;'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|new URL\(\s*['"]([^'"]+)['"]/g;
      for (const m of text.matchAll(re)) {
        const spec = m[3] ?? m[4] ?? m[5]!;
        if (!spec.startsWith('.')) continue;
        const to = path.relative(ROOT, path.resolve(path.dirname(file), spec));
        // new URL('…worker.ts', import.meta.url) starts a worker: a boundary, not an import.
        if (m[5]) continue;
        out.push({ from: path.relative(ROOT, file), to, typeOnly: Boolean(m[2]) });
      }
    }
  }
  return out;
}

describe('layers point one way', () => {
  const all = imports();

  it('finds the imports it judges', () => {
    expect(all.length).toBeGreaterThan(300);
    expect(all.some((i) => i.from.startsWith('web/') && i.to.startsWith('workers/') && i.typeOnly)).toBe(true);
  });

  it('nothing imports a layer above its own', () => {
    const upward = all.filter((i) => {
      const a = layerOf(i.from);
      const b = layerOf(i.to);
      return a && b && LEVEL[b]! > LEVEL[a]!;
    });
    expect(upward.map((i) => `${i.from} → ${i.to}`)).toEqual([]);
  });

  it('no file outside web/ imports from web/, and web/ takes only types from workers/', () => {
    const bad = all.filter(
      (i) =>
        (i.to.startsWith('web/') && !i.from.startsWith('web/')) ||
        (i.from.startsWith('web/') && i.to.startsWith('workers/') && !i.typeOnly),
    );
    expect(bad.map((i) => `${i.from} → ${i.to}`)).toEqual([]);
  });

  it('cli/ and workers/ do not import each other', () => {
    const bad = all.filter(
      (i) => (i.from.startsWith('cli/') && i.to.startsWith('workers/')) || (i.from.startsWith('workers/') && i.to.startsWith('cli/')),
    );
    expect(bad.map((i) => `${i.from} → ${i.to}`)).toEqual([]);
  });

  it('a driver imports only io, codecs, image and its own folder', () => {
    const bad = all.filter((i) => {
      const m = /^src-core\/formats\/([^/]+)\//.exec(i.from);
      if (!m) return false;
      if (i.from === 'src-core/formats/registry.ts') return false;
      const own = `src-core/formats/${m[1]}/`;
      return !(i.to.startsWith(own) || /^src-core\/(io|codecs|image)\//.test(i.to));
    });
    expect(bad.map((i) => `${i.from} → ${i.to}`)).toEqual([]);
  });
});
