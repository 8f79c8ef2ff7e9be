import type { ByteSink, ByteSource, FileResolver } from '../../src-core/io/bytes.ts';
import { baseName } from '../../src-core/io/bytes.ts';
import { OpfsSink } from './opfsSink.ts';

/**
 * The resolver a writer gets in the OPFS (download) mode: it reads companions from the dropped
 * files as before, and creates the extra files of a multi-file output (split or flat VMDK
 * extents) next to the main output in OPFS, each to be downloaded when the conversion is done.
 * With a user-picked file (FSA) there is no folder to put siblings in, so that mode passes the
 * input resolver alone and such formats refuse with a typed error.
 */
export class OpfsOutputResolver implements FileResolver {
  /** Extra output files, in the order the writer created them. */
  readonly created: { name: string; sink: OpfsSink }[] = [];

  constructor(
    private readonly input: FileResolver,
    /** Prefix that keeps this conversion's OPFS entries apart from any other's. */
    private readonly prefix: string,
  ) {}

  open(name: string, relativeTo: string): Promise<ByteSource> {
    return this.input.open(name, relativeTo);
  }

  list(relativeTo: string): Promise<string[]> {
    return this.input.list?.(relativeTo) ?? Promise.resolve([]);
  }

  async create(name: string): Promise<ByteSink> {
    // The writer names siblings as the descriptor refers to them: a bare file name.
    const display = baseName(name.replace(/\\/g, '/'));
    const sink = await OpfsSink.create(`${this.prefix}${display}`, display);
    this.created.push({ name: display, sink });
    return sink;
  }

  async removeAll(): Promise<void> {
    for (const c of this.created) await c.sink.remove();
  }
}
