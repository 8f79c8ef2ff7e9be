// Shapes that cross the page ↔ worker boundary. Only structured-cloneable data lives here;
// the page imports this file with `import type` only.
import type { CreateOptionSpec, ImageInfo, SnapshotInfo } from '../src-core/image/types.ts';
import type { LintFacts } from '../src-core/pipeline/lint/types.ts';
import type { PickedFile } from './io/fileSet.ts';

export type { LintFacts };

export type { PickedFile };

export interface FormatSummary {
  name: string;
  label: string;
  /** The name users know it by (VHD for vpc); `name` is the CLI's. */
  title: string;
  extensions: string[];
  canWrite: boolean;
  createOptions: CreateOptionSpec[];
  /** What -c does for this target; absent when it cannot compress. */
  compression?: { help: string; subformat?: string };
}

/** Allocation of the disk in equal cells, as shares 0…1 of each cell. Drawn from extents only. */
export interface AllocationSummary {
  cells: number;
  cellBytes: number;
  data: number[];
  compressed: number[];
  zero: number[];
  unallocated: number[];
  /** Whole-disk byte totals per kind. */
  totals: { data: number; compressed: number; zero: number; unallocated: number };
  /** The backing file supplies some data (depth > 0). */
  fromBacking: number;
  /** The scan stopped early (time limit): the map shows the start only. */
  partial: boolean;
}

export interface ImageSummary {
  path: string;
  format: string;
  label: string;
  info: ImageInfo;
  /** `qemu-img info --output=json` text. */
  json: string;
  virtualSize: number;
  /** Bytes of every file the image is made of (the image plus its extents/backing files). */
  filesBytes: number;
  /** Paths of the companion files that were opened (extents, backing files). */
  companions: string[];
  snapshots: SnapshotInfo[];
  warnings: string[];
  /** The tables point past the end of a file: the copy is incomplete (the warnings say how much). */
  incomplete: boolean;
  /** The backing file the image names and the drop lacks (the layer alone is shown). */
  missingBacking?: string;
  /** Opened as raw because the user chose "treat as raw". */
  forcedRaw: boolean;
  map?: AllocationSummary;
  /** What the pre-flight check judges (pipeline/lint `gatherFacts`): absent when they could not be read. */
  facts?: LintFacts;
}

export interface InspectError {
  path: string;
  code: string;
  message: string;
  /** Companion files the image names and the drop lacks (code 'missing-file'). */
  missing?: string[];
}

/** A dropped file that is not taken as a disk image, and why. */
export interface IgnoredFile {
  path: string;
  reason: string;
  /** The user may still choose to read it as a raw disk. */
  rawAllowed: boolean;
}

/** A compressed file (.gz .xz .zst .bz2 .zip): the page offers to unpack it first. */
export interface CompressedFile {
  path: string;
  /** gzip, xz, zstd, bzip2 or zip. */
  kind: string;
  size: number;
}

export interface Inspection {
  images: ImageSummary[];
  /** Compressed files whose image needs unpacking before it can be read. */
  compressed: CompressedFile[];
  errors: InspectError[];
  /** Files that are not disk images (or not ones DiskFerry reads as such without being asked). */
  ignored: IgnoredFile[];
  /** Files that are parts of an image (extents, backing files). */
  companions: string[];
}

/** The preview of an image on a web server (workers/inspectUrl.ts). */
export interface UrlInspection {
  /** The URL as fetched (checked, without its #fragment): the image's path. */
  url: string;
  inspection: Inspection;
  /** Bytes fetched from the server to describe it (metadata only, in whole 1 MiB blocks). */
  fetched: number;
}

export interface InspectOptions {
  password?: string;
  /** Paths the user chose to read as raw disks whatever their name or contents. */
  treatAsRaw?: string[];
}

export type OutputTarget =
  | {
      kind: 'fsa';
      handle: FileSystemFileHandle;
      /**
       * The save dialog created this file (it did not exist before): only then may a failed or
       * cancelled conversion remove it. A file the user chose to replace keeps its old content.
       */
      createdByDialog: boolean;
    }
  | { kind: 'opfs'; name: string; /** Prefix for extra files of a multi-file output. */ prefix: string };

/** Everything a conversion needs except where it goes: checked before the save dialog opens. */
export interface ConvertPlan {
  files: PickedFile[];
  /** The source is this image on a web server (read with ranged GETs; `files` is empty, `path` is the URL). */
  url?: string;
  path: string;
  /** Forced source format (the user's "treat as raw"); probed when absent. */
  format?: string;
  target: string;
  options: Record<string, string>;
  compress: boolean;
  /** Re-read the finished output and compare it with the source before calling it a success. */
  verify: boolean;
  /** Password of an encrypted source image. */
  password?: string;
  /** Password for an encrypted output (stored as secret `sec0`, referenced by encrypt.key-secret). */
  outputPassword?: string;
  snapshot?: { id?: string; name?: string };
  outputName: string;
  /** convert --reproducible: ids derived from the source and the settings, fixed timestamps (the CLI's bytes). */
  reproducible?: boolean;
  /**
   * A destination of the table (pipeline/targets.ts) whose size rule applies: the output's
   * virtual size is rounded up as `convert --target=NAME` rounds it (Azure's whole MiB, Google's GiB).
   */
  destination?: string;
}

export interface ConvertRequest extends ConvertPlan {
  output: OutputTarget;
}

/** The output's size before converting (pipeline/estimate.ts). */
export interface Estimate {
  bytes: number;
  /** Non-zero bytes of the source's data (for raw-like sources, the real data share). */
  nonZeroBytes: number;
  /** Converted whole (exact) or through a sample. */
  exact: boolean;
  /** Seconds the conversion's computing takes, as the estimate measured it (writing not included). */
  seconds: number;
}

/** What the checks before the save dialog learned. */
export interface PlanCheck {
  /** Bytes the output needs at most (qemu-img measure's fully-allocated figure, or the required one). */
  requiredBytes?: number;
  /** Files the writer creates beside the output (a flat extent, split pieces): such an output takes the OPFS route. */
  companions: string[];
}

export interface ConvertOutcome {
  outputName: string;
  size: number;
  virtualSize: number;
  dataBytes: number;
  seconds: number;
  warnings: string[];
  /** The output was read back and found identical to the source (verify after write). */
  verified: boolean;
  /** The finished OPFS file, for the page to download (OPFS path only). */
  file?: File;
  /** Extra files of a multi-file output (split/flat VMDK extents), OPFS path only. */
  extraFiles?: { name: string; file: File }[];
}

export interface ProgressReport {
  done: number;
  total: number;
  rate: number;
  eta?: number;
  phase: 'opening' | 'reading' | 'finalizing' | 'verifying' | 'done';
}
