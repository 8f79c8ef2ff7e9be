/**
 * `convert --target=NAME`: the destinations table (src-core/pipeline/targets.ts) applied to a
 * convert command line before it runs, and the packaging the CLI writes (the Google Cloud
 * tarball through Node's zlib).
 */
import { once } from 'node:events';
import { constants, createGzip, type ZlibParams } from 'node:zlib';
import type { ByteSink } from '../src-core/io/bytes.ts';
import { InvalidArgumentError } from '../src-core/io/errors.ts';
import type { FormatDriver } from '../src-core/image/types.ts';
import { gcpTarDriver, type StreamOut } from '../src-core/pipeline/gcpTar.ts';
import { resolveTarget, targetVirtualSize, type Target } from '../src-core/pipeline/targets.ts';
import type { OptsOf } from './spec.ts';

export interface AppliedTarget {
  target: Target;
  /** Replaces the -O driver when the destination packages the disk (gcp-tar). */
  driver?: FormatDriver;
  /** The output's virtual size for the source's (the table's size rule). */
  virtualSize(sourceSize: number): number;
}

/**
 * Checks -O/-o/-c against the table, then sets them from it: `opts.targetFormat`,
 * `opts.compress` and the parsed `options` (the user's own extra -o pairs stay).
 */
export function applyTarget(opts: OptsOf<'convert'>, options: Record<string, string>): AppliedTarget {
  const name = opts.target!;
  if (opts.noCreate || opts.targetImageOpts)
    throw new InvalidArgumentError(`--target=${name} makes a new file; it cannot be combined with -n or --target-image-opts`);
  if (opts.backing || options.backing_file)
    throw new InvalidArgumentError(`--target=${name} makes a standalone disk; it cannot have a backing file (-b)`);
  const r = resolveTarget(name, { format: opts.targetFormat, options, compress: opts.compress });
  if (r.target.packaging === 'gcp-tar' && opts.verify)
    throw new InvalidArgumentError(`--verify cannot re-read a tarball (--target=${name}); tar -xzf it and compare disk.raw instead`);
  opts.targetFormat = r.format;
  opts.compress = r.compress;
  for (const k of Object.keys(options)) delete options[k];
  Object.assign(options, r.options);
  return {
    target: r.target,
    driver: r.target.packaging === 'gcp-tar' ? gcpTarDriver(nodeGzip) : undefined,
    virtualSize: (n) => targetVirtualSize(r.target, n),
  };
}

/** Node's zlib gzip writing sequentially into a sink, with backpressure both ways. */
export function nodeGzip(sink: ByteSink): StreamOut {
  const gz = createGzip();
  let offset = 0;
  const pump = (async () => {
    for await (const chunk of gz as AsyncIterable<Buffer>) {
      await sink.write(offset, chunk);
      offset += chunk.length;
    }
  })();
  let failure: unknown;
  pump.catch((e: unknown) => {
    failure = e ?? new Error('gzip output failed');
    gz.destroy();
  });
  return {
    async write(data) {
      if (failure) throw failure;
      if (!gz.write(data)) await Promise.race([once(gz, 'drain'), pump]);
      if (failure) throw failure;
    },
    // Zeros through zlib's run-length strategy compress as small and about three times faster.
    async hint(kind) {
      if (failure) throw failure;
      const strategy = kind === 'zeros' ? constants.Z_RLE : constants.Z_DEFAULT_STRATEGY;
      await Promise.race([
        new Promise<void>((resolve) => (gz as unknown as ZlibParams).params(constants.Z_DEFAULT_COMPRESSION, strategy, () => resolve())),
        pump,
      ]);
      if (failure) throw failure;
    },
    async end() {
      gz.end();
      await pump;
    },
  };
}
