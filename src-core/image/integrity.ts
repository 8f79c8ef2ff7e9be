import { alignUp } from '../io/int64.ts';
import type { Extent } from './types.ts';

/** A file that the image's own tables say is longer than it is. */
export interface Shortfall {
  /** The file's name (the image itself, or an extent / data file). */
  file: string;
  /** Its real size. */
  size: number;
  /** At least this many bytes, as far as the tables read so far tell. */
  expected: number;
}

/**
 * Finds files cut short, from metadata alone: every extent that says where its bytes sit in a
 * file (`hostOffset`) must end inside that file. A copy interrupted half-way keeps its header
 * and tables but loses the data at the end, so this catches it before a conversion reads the
 * missing bytes. Only the top layer is checked: backing files get their own preview.
 */
export class ExtentEndTracker {
  private readonly ends = new Map<string, number>();

  constructor(private readonly imageName: string) {}

  add(e: Extent): void {
    if (e.kind !== 'data' || e.hostOffset === undefined || (e.depth ?? 0) > 0) return;
    const file = e.hostFile ?? this.imageName;
    const end = e.hostOffset + e.length;
    if (end > (this.ends.get(file) ?? 0)) this.ends.set(file, end);
  }

  /** The files whose extents reach past their end, given each file's size (unknown names are skipped). */
  shortfalls(sizeOf: (file: string) => number | undefined): Shortfall[] {
    const out: Shortfall[] = [];
    for (const [file, expected] of this.ends) {
      const size = sizeOf(file);
      // Raw-like layouts read a short last sector as zeros (QEMU rounds the size up to 512).
      if (size !== undefined && expected > alignUp(size, 512)) out.push({ file, size, expected });
    }
    return out;
  }
}
