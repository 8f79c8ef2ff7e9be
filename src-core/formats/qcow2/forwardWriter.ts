import type { ByteSink } from '../../io/bytes.ts';
import { UnsupportedError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { isAllZero, padTo, writeBig64Table } from '../../io/struct.ts';
import { QCOW_DEFLATE } from '../../codecs/types.ts';
import type { CreateOptions, FormatDriver, ImageWriter } from '../../image/types.ts';
import { WriteOrder } from '../../image/writeOrder.ts';
import { encodeCompressed, OFLAG_COPIED } from './entries.ts';
import { entriesPerRefblock, refcountLayout, refcountMax, setRefcount } from './refcounts.ts';
import { parseQcow2Options, QCOW2_CREATE_OPTIONS, type Qcow2WriterConfig } from './createOptions.ts';
import { qcow2Header } from './headerWrite.ts';

/**
 * qcow2 written strictly front to back, for an output that cannot seek (a pipe): header,
 * refcount table, refcount blocks, L1, every L2 table, then the data clusters in guest order,
 * like QEMU's scripts/qcow2-to-stdout.py. All metadata comes first, so every cluster's place
 * must be known before the first byte leaves; it is learnt in a first pass over the source:
 *
 * 1. `plan` (a writer on a sink that keeps nothing) receives the whole conversion and records,
 *    for each guest cluster it is given, how many bytes it will take: the cluster size, or with
 *    -c the length of its compressed stream (compressed and thrown away; a cluster that does not
 *    shrink is stored plain, as qemu-img does). 4 bytes per entry of each L2 table touched.
 * 2. From those lengths alone the layout follows: data clusters (and byte-packed compressed
 *    streams) in guest order after the metadata, whose size depends only on how many clusters
 *    there are.
 * 3. `write` receives the same conversion again (the source is read twice; compression is
 *    deterministic, so each stream comes out the same length), writes the metadata, then each
 *    cluster where the plan put it. A cluster that differs from the plan (the source changed
 *    between the passes) is an error, not a corrupt file.
 */

/** What pass 1 learnt: per touched L2 table, the stored length of each entry (0: not written). */
export class ForwardPlan {
  readonly tables = new Map<number, Uint32Array>();
  constructor(
    readonly cfg: Qcow2WriterConfig,
    readonly size: number,
    readonly compress: boolean,
  ) {}
  get clusterSize(): number {
    return 2 ** this.cfg.clusterBits;
  }
  get l2Entries(): number {
    return this.clusterSize / (8 * (this.cfg.extendedL2 ? 2 : 1));
  }
  set(index: number, length: number): void {
    const n = this.l2Entries;
    const t = Math.floor(index / n);
    let table = this.tables.get(t);
    if (!table) this.tables.set(t, (table = new Uint32Array(n)));
    table[index % n] = length;
  }
  /** Touched L2 tables in guest order. */
  tableIndexes(): number[] {
    return [...this.tables.keys()].sort((a, b) => a - b);
  }
}

interface Placement {
  /** Guest cluster index. */
  index: number;
  /** Byte offset from the start of the data area. */
  at: number;
  length: number;
  compressed: boolean;
}

/**
 * Where each planned cluster goes, relative to the (cluster-aligned) data area: plain clusters
 * on the next cluster boundary, compressed streams byte-packed after the previous one (into the
 * next cluster when they do not fit, never back). A partly used cluster whose refcount reached
 * the maximum (refcount_bits=1, 2) takes no more streams.
 */
function* placements(plan: ForwardPlan): Generator<Placement> {
  const cs = plan.clusterSize;
  const max = refcountMax(plan.cfg.refcountBits);
  let pos = 0;
  /** The last cluster a stream touched and how many streams touch it. */
  let lastCluster = -1;
  let lastCount = 0;
  const n = plan.l2Entries;
  for (const t of plan.tableIndexes()) {
    const table = plan.tables.get(t)!;
    for (let i = 0; i < n; i++) {
      const length = table[i]!;
      if (!length) continue;
      const compressed = length < cs;
      let at = compressed ? pos : alignUp(pos, cs);
      if (compressed && Math.floor(at / cs) === lastCluster && lastCount >= max) at = alignUp(pos, cs);
      const first = Math.floor(at / cs);
      const last = Math.floor((at + length - 1) / cs);
      lastCount = first === lastCluster ? lastCount + 1 : 1;
      if (last !== first) lastCount = 1;
      lastCluster = last;
      pos = at + length;
      yield { index: t * n + i, at, length, compressed };
    }
  }
}

/** The refcount of each cluster of the data area, in order (every one is used at least once). */
function* dataRefcounts(plan: ForwardPlan): Generator<number> {
  const cs = plan.clusterSize;
  let cur = 0;
  let count = 0;
  for (const p of placements(plan)) {
    const first = Math.floor(p.at / cs);
    const last = Math.floor((p.at + p.length - 1) / cs);
    for (let c = first; c <= last; c++) {
      while (cur < c) {
        yield count;
        cur++;
        count = 0;
      }
      count++;
    }
  }
  if (count) yield count;
}

interface Layout {
  reftableOffset: number;
  reftableClusters: number;
  refblocksOffset: number;
  refblocks: number;
  l1Offset: number;
  l1Entries: number;
  l1Clusters: number;
  l2Offset: number;
  l2Tables: number;
  dataOffset: number;
  dataClusters: number;
}

function layoutOf(plan: ForwardPlan): Layout {
  const cs = plan.clusterSize;
  let dataBytes = 0;
  for (const p of placements(plan)) dataBytes = p.at + p.length;
  const dataClusters = Math.ceil(dataBytes / cs);
  const l1Entries = Math.ceil(plan.size / (cs * plan.l2Entries));
  const l1Clusters = Math.max(1, Math.ceil((l1Entries * 8) / cs));
  const l2Tables = plan.tables.size;
  const { blocks, tableClusters } = refcountLayout(1 + l1Clusters + l2Tables + dataClusters, cs, plan.cfg.refcountBits);
  const reftableOffset = cs;
  const refblocksOffset = reftableOffset + tableClusters * cs;
  const l1Offset = refblocksOffset + blocks * cs;
  const l2Offset = l1Offset + l1Clusters * cs;
  const dataOffset = l2Offset + l2Tables * cs;
  return {
    reftableOffset,
    reftableClusters: tableClusters,
    refblocksOffset,
    refblocks: blocks,
    l1Offset,
    l1Entries,
    l1Clusters,
    l2Offset,
    l2Tables,
    dataOffset,
    dataClusters,
  };
}

function checkForward(cfg: Qcow2WriterConfig, opts: CreateOptions): void {
  if (cfg.encryption)
    throw new UnsupportedError(opts.filename, 'an encrypted qcow2 cannot be written front to back (to a pipe); write it to a file');
  if (opts.backing)
    throw new UnsupportedError(
      opts.filename,
      'a qcow2 with a backing file cannot be written front to back (to a pipe); write it to a file',
    );
}

async function compressCluster(cfg: Qcow2WriterConfig, opts: CreateOptions, bytes: Uint8Array): Promise<Uint8Array | undefined> {
  const c = opts.codecs;
  const out = cfg.compressionType === 1 ? await c.zstdCompress(bytes, 3) : await c.deflateRaw(bytes, QCOW_DEFLATE);
  // Stored plain when compression does not make it smaller (as qemu-img does).
  return out.length < bytes.length ? out : undefined;
}

/** About 8 MiB of clusters may be compressing at once: enough to keep a pool of workers busy. */
const queueLimit = (cs: number) => Math.max(16, Math.floor((8 * 1024 * 1024) / cs));

/** Pass 1: records what each written cluster will take; writes nothing. */
class PlanningWriter implements ImageWriter {
  readonly granularity: number;
  private readonly order: WriteOrder;
  private pending: Promise<void>[] = [];
  constructor(
    private readonly plan: ForwardPlan,
    private readonly opts: CreateOptions,
  ) {
    this.granularity = plan.clusterSize;
    this.order = new WriteOrder('qcow2', this.granularity, alignUp(plan.size, this.granularity));
  }
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    const cs = this.granularity;
    for (let pos = 0; pos < data.length; pos += cs) {
      const unit = data.subarray(pos, pos + cs);
      if (isAllZero(unit)) continue; // reads as zero unallocated
      const index = (offset + pos) / cs;
      if (!this.plan.compress) {
        this.plan.set(index, cs);
        continue;
      }
      const p = compressCluster(this.plan.cfg, this.opts, padTo(unit, cs)).then((z) => this.plan.set(index, z ? z.length : cs));
      p.catch(() => {});
      this.pending.push(p);
    }
    const keep = queueLimit(cs);
    while (this.pending.length > keep) await this.pending.shift();
  }
  async finish(): Promise<void> {
    while (this.pending.length) await this.pending.shift();
  }
}

/** Pass 2: the file, front to back. */
class ForwardWriter implements ImageWriter {
  readonly granularity: number;
  readonly warnings: string[] = [];
  private readonly cs: number;
  private readonly layout: Layout;
  private readonly out: SinkBuffer;
  private readonly order: WriteOrder;
  private readonly next: Generator<Placement>;
  private started = false;
  /** File offset just past the last byte written. */
  private pos = 0;
  private queue: { index: number; bytes: Uint8Array; packed: Promise<Uint8Array | undefined> | undefined }[] = [];

  constructor(
    sink: ByteSink,
    private readonly plan: ForwardPlan,
    private readonly opts: CreateOptions,
  ) {
    this.cs = plan.clusterSize;
    this.granularity = this.cs;
    this.layout = layoutOf(plan);
    this.out = new SinkBuffer(sink);
    this.order = new WriteOrder('qcow2', this.cs, alignUp(plan.size, this.cs));
    this.next = placements(plan);
  }

  private async put(offset: number, bytes: Uint8Array): Promise<void> {
    if (offset < this.pos) throw new RangeError(`qcow2 forward writer: ${offset} is behind ${this.pos}`);
    await this.out.write(offset, bytes);
    this.pos = offset + bytes.length;
  }

  /** Everything before the data: header, refcount table and blocks, L1, L2 tables. */
  private async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const L = this.layout;
    const cs = this.cs;
    await this.put(0, padTo(this.header(), cs));
    const reftable = new BigUint64Array((L.reftableClusters * cs) / 8);
    for (let b = 0; b < L.refblocks; b++) reftable[b] = BigInt(L.refblocksOffset + b * cs);
    await this.put(L.reftableOffset, writeBig64Table(reftable));
    await this.writeRefblocks();
    const l1 = new BigUint64Array((L.l1Clusters * cs) / 8);
    this.plan.tableIndexes().forEach((t, k) => (l1[t] = BigInt(L.l2Offset + k * cs) | OFLAG_COPIED));
    await this.put(L.l1Offset, writeBig64Table(l1));
    await this.writeL2Tables();
  }

  private async writeRefblocks(): Promise<void> {
    const L = this.layout;
    const bits = this.plan.cfg.refcountBits;
    const per = entriesPerRefblock(this.cs, bits);
    const metaClusters = L.dataOffset / this.cs;
    const total = metaClusters + L.dataClusters;
    const data = dataRefcounts(this.plan);
    let cluster = 0;
    for (let b = 0; b < L.refblocks; b++) {
      const block = new Uint8Array(this.cs);
      for (let k = 0; k < per && cluster < total; k++, cluster++) {
        const n = cluster < metaClusters ? 1 : data.next().value;
        if (typeof n !== 'number' || n < 1) throw new RangeError('qcow2 forward writer: data area has an unused cluster');
        setRefcount(block, k, bits, n);
      }
      await this.put(L.refblocksOffset + b * this.cs, block);
    }
  }

  private async writeL2Tables(): Promise<void> {
    const L = this.layout;
    const words = this.plan.cfg.extendedL2 ? 2 : 1;
    const n = this.plan.l2Entries;
    const places = placements(this.plan);
    let p = places.next();
    const tables = this.plan.tableIndexes();
    for (let k = 0; k < tables.length; k++) {
      const t = tables[k]!;
      const table = new BigUint64Array(n * words);
      while (!p.done && Math.floor(p.value.index / n) === t) {
        const { index, at, length, compressed } = p.value;
        const i = (index % n) * words;
        const host = L.dataOffset + at;
        if (compressed) table[i] = encodeCompressed(host, length, this.plan.cfg.clusterBits);
        else {
          table[i] = BigInt(host) | OFLAG_COPIED;
          if (words === 2) table[i + 1] = 0xffffffffn; // every subcluster allocated
        }
        p = places.next();
      }
      await this.put(L.l2Offset + k * this.cs, writeBig64Table(table));
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    await this.start();
    const cs = this.cs;
    for (let pos = 0; pos < data.length; pos += cs) {
      const unit = data.subarray(pos, pos + cs);
      if (isAllZero(unit)) continue;
      const bytes = padTo(unit, cs);
      const packed = this.plan.compress ? compressCluster(this.plan.cfg, this.opts, bytes) : undefined;
      packed?.catch(() => {});
      this.queue.push({ index: (offset + pos) / cs, bytes, packed });
    }
    await this.drain(this.plan.compress ? queueLimit(cs) : 0);
  }

  private async drain(keep: number): Promise<void> {
    while (this.queue.length > keep) {
      const c = this.queue.shift()!;
      const stored = c.packed ? ((await c.packed) ?? c.bytes) : c.bytes;
      const p = this.next.next();
      if (p.done || p.value.index !== c.index || p.value.length !== stored.length)
        throw new UnsupportedError(
          this.opts.filename,
          `the source changed between the two passes of a front-to-back qcow2 (guest offset ${c.index * this.cs})`,
        );
      await this.put(this.layout.dataOffset + p.value.at, stored);
    }
  }

  async finish(): Promise<void> {
    await this.start();
    await this.drain(0);
    const rest = this.next.next();
    if (!rest.done)
      throw new UnsupportedError(
        this.opts.filename,
        `the source changed between the two passes of a front-to-back qcow2 (guest offset ${rest.value.index * this.cs})`,
      );
    // The file ends on a cluster boundary: the last cluster is whole, as its refcount says.
    const end = this.layout.dataOffset + this.layout.dataClusters * this.cs;
    if (end > this.pos) await this.put(this.pos, new Uint8Array(end - this.pos));
    await this.out.flush();
  }

  private header(): Uint8Array {
    const L = this.layout;
    return qcow2Header(this.plan.cfg, this.cs, {
      size: this.plan.size,
      cryptMethod: 0,
      l1Entries: L.l1Entries,
      l1Offset: L.l1Offset,
      reftableOffset: L.reftableOffset,
      reftableClusters: L.reftableClusters,
    });
  }
}

/**
 * The two drivers a front-to-back qcow2 conversion runs, in this order, over the same source:
 * `plan` (its sink receives nothing), then `write`. Both take qcow2's -o options.
 */
export function forwardQcow2(): { plan: FormatDriver; write: FormatDriver } {
  let plan: ForwardPlan | undefined;
  const base = {
    label: 'qcow2 written front to back',
    extensions: ['qcow2'],
    probe: () => 0,
    open: () => Promise.reject(new UnsupportedError('', 'a writer only')),
    createOptions: QCOW2_CREATE_OPTIONS,
  };
  return {
    plan: {
      ...base,
      name: 'qcow2',
      async create(_sink, opts) {
        const cfg = parseQcow2Options(opts);
        checkForward(cfg, opts);
        plan = new ForwardPlan(cfg, alignUp(opts.virtualSize, 512), !!opts.compress);
        return new PlanningWriter(plan, opts);
      },
    },
    write: {
      ...base,
      name: 'qcow2',
      async create(sink, opts) {
        if (!plan) throw new RangeError('qcow2 forward writer: the planning pass has not run');
        return new ForwardWriter(sink, plan, opts);
      },
    },
  };
}
