import type { SinkBuffer } from '../io/sinkBuffer.ts';
import { writeBig64Table } from '../io/struct.ts';

/**
 * The one second-level table a writer fills at a time (qcow and qcow2 writers take the guest in
 * order, so a table is finished once the writer moves past it): moving to another table writes
 * the open one to its place first.
 */
export class OpenTable {
  private open: { index: number; offset: number; table: BigUint64Array } | undefined;

  constructor(private readonly out: SinkBuffer) {}

  /**
   * Table `index`. When it is not the open one, the open one is written out and `place` makes
   * the new one: it chooses its file offset (and points the first-level entry at it).
   */
  async get(index: number, place: () => { offset: number; table: BigUint64Array }): Promise<BigUint64Array> {
    if (this.open?.index !== index) {
      await this.flush();
      this.open = { index, ...place() };
    }
    return this.open.table;
  }

  /** Writes the open table out (big-endian entries); the next get() opens a fresh one. */
  async flush(): Promise<void> {
    if (!this.open) return;
    await this.out.write(this.open.offset, writeBig64Table(this.open.table));
    this.open = undefined;
  }
}
