import path from 'node:path';
import type { ByteSink, ByteSource, FileResolver } from '../src-core/io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../src-core/io/errors.ts';
import type { FormatDriver } from '../src-core/image/types.ts';
import type { OutputPlace } from '../src-core/pipeline/job.ts';
import { STDIO } from './context.ts';
import { NodeResolver } from './nodeFiles.ts';
import { RateLimitedSink } from './sinks.ts';
import { StdoutSink, stdoutStream } from './stdoutSink.ts';

/** What may go to a pipe, for the error that refuses the rest. */
const FORWARD_ONLY = 'raw, qcow2, vmdk (subformat=streamOptimized or -c), vpc (subformat=fixed), ova and --target=gcp';

/**
 * Whether `target` with these options can be written front to back. raw, a fixed VHD (data then
 * footer), a streamOptimized VMDK (grains, tables and the directory after the data they map) and
 * the Google Cloud tarball are written in file order anyway; qcow2 has a writer of its own for
 * it (formats/qcow2/forwardWriter.ts), and an OVA is written in two passes (pipeline/ova forwardPackage). Every other layout writes its tables last, in front of
 * the data, so it is refused before anything is read.
 */
export function checkForwardOnly(target: FormatDriver, options: Record<string, string>, compress: boolean): void {
  const sub = options.subformat;
  const ok =
    target.name === 'raw' ||
    target.name === 'qcow2' ||
    target.name === 'gcp-tar' ||
    target.name === 'ova' ||
    (target.name === 'vmdk' && (sub === 'streamOptimized' || (sub === undefined && compress))) ||
    (target.name === 'vpc' && sub === 'fixed');
  if (ok) return;
  const what = sub ? `${target.name} (subformat=${sub})` : target.name;
  throw new InvalidArgumentError(`${what} cannot be written to "-" (standard output): only ${FORWARD_ONLY} are written front to back`);
}

/**
 * Standard output as the CLI's output place: the bytes go straight out (nothing to rename or
 * remove, so a failed run leaves only a short stream, which the exit status reports), and the
 * output cannot be opened again (--verify) or have companion files (split extents).
 */
export class StdoutPlace implements OutputPlace<void> {
  readonly name = STDIO;
  readonly resolver: FileResolver;
  private sink: StdoutSink | undefined;

  constructor(
    allowOutside: boolean,
    /** -r: bytes per second (0: no limit). */
    private readonly rate = 0,
    /** The command's cancel (SIGINT, SIGTERM): it also interrupts a write the reader holds up. */
    private readonly signal?: AbortSignal,
  ) {
    const reader = new NodeResolver([path.resolve('.')], allowOutside);
    // Reads only: a writer that wants a companion file beside a stream has nowhere to put it.
    this.resolver = {
      open: (name, relativeTo) => reader.open(name, relativeTo),
      create: () => Promise.reject(new UnsupportedError('stdout', 'a stream output cannot have companion files')),
    };
  }

  async create(): Promise<ByteSink> {
    const { stream, owned } = stdoutStream();
    this.sink = new StdoutSink(stream, 'stdout', { owned, signal: this.signal });
    return this.rate ? new RateLimitedSink(this.sink, this.rate) : this.sink;
  }

  reopen(): Promise<{ source: ByteSource; resolver: FileResolver }> {
    return Promise.reject(new UnsupportedError('stdout', 'standard output cannot be read back'));
  }

  async commit(): Promise<void> {}

  /** What was sent stays sent; the stream stops so that a stalled reader cannot hold the exit up. */
  async discard(): Promise<void> {
    this.sink?.destroy();
  }
}
