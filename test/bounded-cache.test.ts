import { describe, expect, it } from 'vitest';
import { BoundedCache } from '../src-core/io/boundedCache.ts';

describe('BoundedCache', () => {
  it('keeps at most max entries and drops the least recently used', () => {
    const c = new BoundedCache<string>(2);
    c.set(1, 'a');
    c.set(2, 'b');
    expect(c.get(1)).toBe('a'); // 1 is now the most recently used
    c.set(3, 'c');
    expect(c.has(2)).toBe(false);
    expect(c.get(1)).toBe('a');
    expect(c.get(3)).toBe('c');
    c.set(3, 'C'); // replacing an entry evicts nothing
    expect(c.has(1)).toBe(true);
    expect(c.get(3)).toBe('C');
    c.clear();
    expect(c.has(1) || c.has(3)).toBe(false);
  });

  it('loads a missing entry once and serves it from memory after', async () => {
    const c = new BoundedCache<number>(4);
    let loads = 0;
    const load = async () => ++loads;
    expect(await c.getOrLoad(7, load)).toBe(1);
    expect(await c.getOrLoad(7, load)).toBe(1);
    expect(loads).toBe(1);
    await expect(c.getOrLoad(8, async () => Promise.reject(new Error('bad table')))).rejects.toThrow('bad table');
    expect(c.has(8)).toBe(false);
  });
});
