/**
 * Tables read from an image (L2 tables, grain tables, sector bitmaps), at most `max` kept: the
 * least recently used goes first. Readers walk a disk mostly in order, so a few tables cover
 * the working set, and a walk over a huge disk stays bounded in memory.
 */
export class BoundedCache<V> {
  private readonly map = new Map<number, V>();
  constructor(private readonly max: number) {}

  get(key: number): V | undefined {
    const hit = this.map.get(key);
    if (hit !== undefined) {
      // Map keeps insertion order: re-inserting makes this the most recently used.
      this.map.delete(key);
      this.map.set(key, hit);
    }
    return hit;
  }

  set(key: number, value: V): void {
    if (!this.map.has(key) && this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, value);
  }

  has(key: number): boolean {
    return this.map.has(key);
  }

  /** The cached value, or `load()`'s, remembered. */
  async getOrLoad(key: number, load: () => Promise<V>): Promise<V> {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const value = await load();
    this.set(key, value);
    return value;
  }

  clear(): void {
    this.map.clear();
  }
}
