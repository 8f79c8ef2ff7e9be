import type { ByteSink, ByteSource, FileResolver } from '../io/bytes.ts';
import type { Codecs } from '../codecs/types.ts';

/** What a guest range holds, learned from metadata alone (no data reads). */
export type ExtentKind = 'data' | 'zero' | 'unallocated';

export interface Extent {
  offset: number;
  length: number;
  kind: ExtentKind;
  compressed?: boolean;
  /** 0 = the top image, 1 = its backing file, … (set by the chain). */
  depth?: number;
  /** Where the bytes sit in the file, when they sit there uncompressed and unencrypted. */
  hostOffset?: number;
  /** The file that holds them, when it is not the image file itself (extents, data files). */
  hostFile?: string;
  /**
   * A 'zero' extent that the format maps to its file like data, where the file has a hole:
   * qemu-img map prints it as zero and data at once (fixed VHD, flat VMDK).
   */
  mappedData?: boolean;
}

/** The `qemu-img info --output=json` model. Keys are qemu-img's, so JSON output is a plain dump. */
export interface ImageInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'actual-size'?: number;
  'cluster-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  encrypted?: boolean;
  'dirty-flag'?: boolean;
  snapshots?: SnapshotInfo[];
  'format-specific'?: { type: string; data: Record<string, unknown> };
  /** DiskFerry additions, never printed in qemu-img-compatible JSON. */
  extra?: Record<string, unknown>;
}

export interface SnapshotInfo {
  id: string;
  name: string;
  'vm-state-size': number;
  'date-sec': number;
  'date-nsec': number;
  'vm-clock-sec': number;
  'vm-clock-nsec': number;
  icount?: number;
}

/**
 * An opened image layer. `extents` describes only this layer ('unallocated' = look in the
 * backing file); `read` returns this layer's bytes with unallocated ranges as zeros. The chain
 * (image/chain.ts) composes layers with their backing files.
 */
export interface BlockDevice {
  readonly format: string;
  readonly filename: string;
  readonly virtualSize: number;
  extents(from?: number, to?: number): AsyncIterable<Extent>;
  read(offset: number, length: number): Promise<Uint8Array>;
  info(): ImageInfo;
  close(): Promise<void>;
  /** Set by a driver whose image refers to a backing file; the opener resolves it. */
  readonly backingRef?: BackingRef;
  /** Set by the chain: the opened backing device. */
  readonly backing?: BlockDevice;
}

export interface BackingRef {
  /** The name as stored in the image. */
  name: string;
  format?: string;
}

/** Limits mirrored from QEMU plus our own; drivers check them before allocating. */
export interface Limits {
  maxChainDepth: number;
  maxTableBytes: number;
}

export const DEFAULT_LIMITS: Limits = { maxChainDepth: 64, maxTableBytes: 64 * 1024 * 1024 };

/** Secrets by id, as `--object secret,id=ID,data=…` supplies them. */
export type Secrets = Map<string, Uint8Array>;

export interface OpenContext {
  resolver?: FileResolver;
  codecs: Codecs;
  /** Snapshot to read, by id or name (qemu-img -l snapshot.name= / snapshot.id=). */
  snapshot?: { id?: string; name?: string };
  /** Key for encrypted images (the secret's bytes). */
  password?: Uint8Array;
  limits?: Limits;
  /** Do not resolve backing files (qemu-img info without --backing-chain still reports them). */
  noBacking?: boolean;
  /** Format to force for the backing file. */
  backingFormat?: string;
  /** The top image driver's runtime options, from --image-opts (e.g. vpc force_size_calc=current_size). */
  driverOptions?: Record<string, string>;
  signal?: AbortSignal;
  /** The registry, for containers (OVA) that open an image inside themselves; set by openImage. */
  drivers?: readonly FormatDriver[];
  /** Containers (OVA): which disk to open, by 1-based number or member name (CLI --disk). */
  member?: string;
}

/** What reproducible mode hashes besides the settings: a fingerprint of the source's content (pipeline/fingerprint.ts). */
export interface ReproducibleSeed {
  source: Uint8Array;
}

/** Creation options, `-o key=value` as strings, plus what the pipeline knows. */
export interface CreateOptions {
  virtualSize: number;
  /** -o key=value pairs, raw strings as the user wrote them. */
  options: Record<string, string>;
  /** -c */
  compress?: boolean;
  /** -B/-F: the backing file name to store and its format. */
  backing?: BackingRef;
  resolver?: FileResolver;
  codecs: Codecs;
  /** Secrets by id, for encrypt.key-secret. */
  secrets?: Secrets;
  /** Name of the output file, for companion files and error messages. */
  filename: string;
  /** With -o preallocation: the guest offset it starts at (resize preallocates only the new area). */
  preallocateFrom?: number;
  /**
   * --reproducible: ids derived from the source's fingerprint and the settings, timestamps
   * fixed (image/identity.ts `identityFor`); absent, ids are random and times are now.
   */
  reproducible?: ReproducibleSeed;
}

/**
 * Receives guest data in increasing offset order and lays it out in a format.
 * Data arrives in whole `granularity` units (the last unit of the disk may be short). The caller
 * never changes a buffer it handed to write(), so a writer may pass it on uncopied
 * (SinkBuffer.writeOwned) and hold it until finish();
 * ranges not written stay unallocated, and `writeZeroes` marks ranges that must read as zero
 * even over a backing file.
 *
 * Sinks: whoever opens a sink closes it. The writer never closes the sink it was given to
 * `create()`: its caller closes it after finish() (or aborts/discards it on failure). Companion
 * sinks the writer opened itself through `resolver.create()` are its own, closed in finish().
 * A writer that buffers writes (SinkBuffer) flushes them before finish() returns.
 */
export interface ImageWriter {
  readonly granularity: number;
  write(offset: number, data: Uint8Array): Promise<void>;
  writeZeroes?(offset: number, length: number): Promise<void>;
  /**
   * Writes the metadata and makes the image complete: everything written reaches the given sink
   * (which stays open for the caller to close), and companion files are closed.
   */
  finish(): Promise<void>;
  /** Warnings to show the user (e.g. legacy AES). */
  readonly warnings?: string[];
}

export interface FormatDriver {
  readonly name: string;
  /** A human label for the page. */
  readonly label: string;
  /** The short name users know it by, where it is not `name` (VHD for vpc, VMDK for vmdk). */
  readonly title?: string;
  readonly extensions: readonly string[];
  /** 0 = not mine … 100 = certain; `head` holds the first bytes (at least 4 KiB where the file has them). */
  probe(head: Uint8Array, size: number, filename: string, src: ByteSource): number | Promise<number>;
  open(src: ByteSource, ctx: OpenContext): Promise<BlockDevice>;
  create?(sink: ByteSink, opts: CreateOptions): Promise<ImageWriter>;
  /** qemu-img measure for this format as the target. */
  measure?(opts: CreateOptions, source: BlockDevice | undefined): Promise<MeasureResult>;
  /** qemu-img check: consistency of the metadata. */
  check?(src: ByteSource, ctx: OpenContext): Promise<CheckResult>;
  /** Options `create` understands, for the CLI's validation and the page's form. */
  readonly createOptions?: readonly CreateOptionSpec[];
  /**
   * What `-c` does for this target, in one line for the page; absent when the writer cannot
   * compress (it then refuses `-c`). A format whose `-c` needs a subformat names it here.
   */
  readonly compression?: { help: string; subformat?: string };
}

export interface CreateOptionSpec {
  name: string;
  type: 'bool' | 'size' | 'string' | 'enum' | 'number';
  values?: readonly string[];
  default?: string;
  help: string;
}

export interface MeasureResult {
  required: number;
  'fully-allocated': number;
  bitmaps?: number;
}

/** `qemu-img check --output=json`, fields present only when non-zero (as qemu-img prints them). */
export interface CheckResult {
  filename: string;
  format: string;
  'check-errors': number;
  'image-end-offset'?: number;
  'total-clusters'?: number;
  'allocated-clusters'?: number;
  'fragmented-clusters'?: number;
  'compressed-clusters'?: number;
  corruptions?: number;
  leaks?: number;
  /** Human-readable findings, one line each (not part of the JSON). */
  messages: string[];
}

/** qemu-img check's exit status: 0 clean, 2 corruptions, 3 leaks only. */
export function checkExitCode(r: CheckResult): number {
  if (r['check-errors']) return 1;
  if (r.corruptions) return 2;
  if (r.leaks) return 3;
  return 0;
}
