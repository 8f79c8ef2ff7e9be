/**
 * The ImageWriter contract, checked in one place for every writer: data arrives aligned to the
 * writer's unit, at increasing offsets, and inside the disk. A caller that breaks it gets this
 * error instead of a silently corrupt image.
 */
export class WriteOrder {
  private end = 0;
  constructor(
    private readonly format: string,
    /** Writes start on multiples of this (cluster, block, sector). */
    private readonly unit: number,
    /** Nothing may be written at or past this guest offset. */
    private readonly diskEnd: number,
  ) {}

  check(offset: number, length: number): void {
    if (offset % this.unit !== 0 || offset < this.end) {
      throw new RangeError(
        `${this.format} writer: writes must be aligned to ${this.unit} bytes and in order (got ${offset} after ${this.end})`,
      );
    }
    if (offset + length > this.diskEnd) throw new RangeError(`${this.format} writer: write past the end of the disk`);
    this.end = offset + length;
  }
}
