import type { BlockDevice } from '../image/types.ts';
import { isAllZero } from '../io/struct.ts';

/** Data windows in a row (from the end) after which the scout gives up: the disk is full there. */
const GIVE_UP_AFTER = 2;
/** Windows in front of the conversion's next read left to it: its own read-ahead covers them. */
const MARGIN_WINDOWS = 3;

/**
 * Reads a disk whose format says nothing about zeros (raw, fixed VHD/VHDX, flat VMDK) from the
 * end backwards, while the conversion works forwards, and remembers which windows are all
 * zeros, so that the conversion need not read them again.
 *
 * Why: such a disk must be read whole to find its holes, and the conversion reads it in order.
 * Where the data comes first (a disk used from its start), reading stops while that data drains
 * into the output, and the holes after it are read only then. The scout reads them meanwhile, on
 * its own opened copy of the source (its own reads, no read-ahead), one window at a time. It
 * stops where the conversion is about to read, after two data windows in a row (a disk full at
 * its end: what it read is not wasted twice more), or when stopped. Sources with an allocation
 * map never need it: their holes are known without reading.
 */
export class ZeroScout {
  private readonly zero = new Set<number>();
  /** The start of the next window the conversion will read. */
  private next = 0;
  private stopped = false;
  private readonly running: Promise<void>;
  /** Bytes the scout read. */
  bytesRead = 0;

  constructor(
    private readonly device: BlockDevice,
    private readonly window: number,
    private readonly virtualSize: number,
    /** A window found all zeros (progress: the conversion will not read it). */
    private readonly onZero: (bytes: number) => void,
  ) {
    this.running = this.run().catch(() => {
      // A failed read only ends the scouting: the conversion reads those windows itself.
    });
  }

  /** True when the window starting at `pos` was read and is all zeros. */
  isZero(pos: number): boolean {
    return this.zero.has(pos);
  }

  /**
   * The conversion is about to look at the window at `pos` (and asks isZero right after): the
   * scout keeps its distance, and marks no window at or before it any more.
   */
  reading(pos: number): void {
    this.next = pos;
  }

  /** Ends the scouting; resolves when no read of the scout is in flight any more. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async run(): Promise<void> {
    let pos = Math.floor((this.virtualSize - 1) / this.window) * this.window;
    let dataInARow = 0;
    while (!this.stopped && pos >= this.next + MARGIN_WINDOWS * this.window) {
      const end = Math.min(pos + this.window, this.virtualSize);
      const bytes = await this.device.read(pos, end - pos);
      this.bytesRead += bytes.length;
      // The conversion may have come this far during the read: then it reads the window itself.
      if (pos <= this.next) return;
      if (isAllZero(bytes)) {
        this.zero.add(pos);
        this.onZero(end - pos);
        dataInARow = 0;
      } else if (++dataInARow >= GIVE_UP_AFTER) return;
      pos -= this.window;
    }
  }
}
