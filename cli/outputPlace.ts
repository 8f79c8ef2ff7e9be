import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ByteSink, ByteSource, FileResolver } from '../src-core/io/bytes.ts';
import { InvalidArgumentError } from '../src-core/io/errors.ts';
import type { OutputPlace } from '../src-core/pipeline/job.ts';
import { NodeFileSink, NodeFileSource, NodeResolver } from './nodeFiles.ts';
import { RateLimitedSink } from './sinks.ts';

export interface CliPlaceOptions {
  /** -n: write into this existing file (or block device) in place: no temporary file, never truncated. */
  inPlace?: boolean;
  /** -n: the existing file must hold at least this many bytes. */
  minSize?: number;
  /** -r: bytes per second (0: no limit). */
  rate?: number;
}

/**
 * The CLI's output: a hidden temporary file `.NAME.diskferry-PID.part` beside the destination,
 * renamed over it when complete; companions (split or flat extents) are created beside it under
 * their final names. With -n the destination itself is written and nothing is created or removed.
 */
export class CliOutputPlace implements OutputPlace<void> {
  readonly name: string;
  /** The file the bytes go to: the temporary file, or the destination itself with -n. */
  readonly file: string;
  /** Creates companion files beside the destination (and reads nothing outside its folder's rules: allowOutside). */
  readonly resolver: NodeResolver;
  private sink: NodeFileSink | undefined;
  private discarded = false;

  constructor(
    dst: string,
    private readonly opts: CliPlaceOptions = {},
  ) {
    this.name = dst;
    this.file = opts.inPlace ? dst : path.join(path.dirname(dst), `.${path.basename(dst)}.diskferry-${process.pid}.part`);
    this.resolver = new NodeResolver([path.dirname(path.resolve(dst))], true);
  }

  async create(): Promise<ByteSink> {
    const fileSink = this.opts.inPlace ? await NodeFileSink.openExisting(this.name) : await NodeFileSink.create(this.file);
    this.sink = fileSink;
    if (this.opts.inPlace && fileSink.size < (this.opts.minSize ?? 0)) {
      throw new InvalidArgumentError('output file is smaller than input file', this.name);
    }
    return this.opts.rate ? new RateLimitedSink(fileSink, this.opts.rate) : fileSink;
  }

  /** What was written (still under its temporary name); companions resolve from the final name. */
  async reopen(): Promise<{ source: ByteSource; resolver: FileResolver }> {
    const src = await NodeFileSource.open(this.file, this.name);
    const source: ByteSource = {
      name: this.name,
      size: src.size,
      allocatedSize: src.allocatedSize,
      read: (o, l) => src.read(o, l),
      close: () => src.close(),
    };
    return { source, resolver: new NodeResolver([path.dirname(path.resolve(this.name))], true) };
  }

  async commit(): Promise<void> {
    if (!this.opts.inPlace) await fs.rename(this.file, this.name);
  }

  /** Nothing half-written survives: the temporary main file and any extents made so far. */
  async discard(): Promise<void> {
    if (this.discarded) return;
    this.discarded = true;
    await this.sink?.close().catch(() => {});
    if (!this.opts.inPlace) await fs.rm(this.file, { force: true }).catch(() => {});
    await this.resolver.closeCreated();
    for (const f of this.resolver.created) await fs.rm(f, { force: true }).catch(() => {});
  }
}
