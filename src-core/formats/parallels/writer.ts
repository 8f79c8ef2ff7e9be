import type { ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { isAllZero, padTo } from '../../io/struct.ts';
import { checkOptions, parseSize } from '../../image/options.ts';
import type { CreateOptions, CreateOptionSpec, ImageWriter } from '../../image/types.ts';
import { WriteOrder } from '../../image/writeOrder.ts';
import { buildPrlHeader, DEFAULT_CLUSTER, MAX_TRACKS, PRL_HEADER_BYTES } from './header.ts';

export const PRL_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  { name: 'cluster_size', type: 'size', default: '1M', help: 'Parallels image cluster size (a multiple of 512)' },
  {
    name: 'preallocation',
    type: 'enum',
    values: ['off', 'falloc', 'full'],
    default: 'off',
    help: 'accepted as qemu-img does; the image file is the same',
  },
];

/** QEMU: the disk may have at most 2^32 clusters (MAX_PARALLELS_IMAGE_FACTOR). */
const MAX_FACTOR = 2 ** 32;

/**
 * Writes a "WithouFreSpacExt" image as qemu-img convert -O parallels does: header and BAT
 * padded to a whole cluster, then data clusters appended in guest order (all-zero clusters stay
 * unallocated), the file ending at the last cluster. Header and BAT are written last.
 */
export class ParallelsWriter implements ImageWriter {
  readonly granularity: number;
  private readonly out: SinkBuffer;
  private readonly bat: Uint32Array;
  private readonly dataOff: number;
  private readonly size: number;
  private allocated = 0;
  private readonly order: WriteOrder;

  constructor(
    private readonly sink: ByteSink,
    opts: CreateOptions,
  ) {
    const cs = alignUp(
      opts.options.cluster_size !== undefined ? parseSize(opts.options.cluster_size, 'cluster_size') : DEFAULT_CLUSTER,
      512,
    );
    if (cs <= 0 || cs / 512 > MAX_TRACKS) throw new InvalidArgumentError(`invalid Parallels cluster size ${cs}`);
    this.size = alignUp(opts.virtualSize, 512);
    if (this.size >= MAX_FACTOR * cs) throw new InvalidArgumentError(`image size ${this.size} is too large for the cluster size ${cs}`);
    const entries = Math.ceil(this.size / cs);
    if (entries * 4 > 0x7fffffff) throw new InvalidArgumentError(`Parallels BAT of ${entries} entries is too large`);
    this.granularity = cs;
    this.bat = new Uint32Array(entries);
    this.dataOff = alignUp(PRL_HEADER_BYTES + 4 * entries, cs);
    this.out = new SinkBuffer(sink);
    this.order = new WriteOrder('parallels', cs, entries * cs);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    const cs = this.granularity;
    for (let pos = 0; pos < data.length; pos += cs) {
      const cluster = data.subarray(pos, pos + cs);
      if (isAllZero(cluster)) continue;
      const index = (offset + pos) / cs;
      const host = this.dataOff + this.allocated * cs;
      this.allocated++;
      // BAT entries count clusters from the start of the file; data_off is cluster-aligned.
      this.bat[index] = host / cs;
      await this.out.write(host, padTo(cluster, cs));
    }
  }

  async writeZeroes(): Promise<void> {}

  async finish(): Promise<void> {
    await this.out.flush();
    const cs = this.granularity;
    const meta = new Uint8Array(this.dataOff);
    meta.set(buildPrlHeader({ clusterSize: cs, virtualSize: this.size, batEntries: this.bat.length, dataOffSectors: this.dataOff / 512 }));
    const v = new DataView(meta.buffer);
    for (let i = 0; i < this.bat.length; i++) if (this.bat[i]) v.setUint32(PRL_HEADER_BYTES + 4 * i, this.bat[i]!, true);
    await this.sink.write(0, meta);
    const end = this.dataOff + this.allocated * cs;
    if (this.sink.truncate) await this.sink.truncate(end);
  }
}

export async function createParallelsWriter(sink: ByteSink, opts: CreateOptions): Promise<ImageWriter> {
  checkOptions('parallels', opts.options, PRL_CREATE_OPTIONS);
  if (opts.backing) throw new UnsupportedError(opts.filename, 'a Parallels image stores no backing file name (no -B for parallels)');
  if (opts.compress) throw new UnsupportedError(opts.filename, 'Parallels images have no compression (-c)');
  return new ParallelsWriter(sink, opts);
}
