import type { Target } from '../targets.ts';

/**
 * What the pre-flight check knows about one file: plain data gathered once (facts.ts, the CLI's
 * tarball scan), so the rules are pure functions the page can run on facts from a worker.
 */
export interface LintFacts {
  /** The file's name as the user gave it. */
  file: string;
  /** What wraps the disk: an OVA, or a Google Cloud tarball (gzip'd tar). */
  container?: 'ova' | 'gcp-tar';
  /** The disk's format (driver name), inside the container if there is one. */
  format: string;
  /**
   * vmdk: the descriptor's createType; vpc and vhdx: fixed, dynamic or differencing; vdi:
   * normal, fixed or diff (VirtualBox's names).
   */
  subformat?: string;
  /** VMDK sparse header version (stream-optimized files from VMware and DiskFerry are 3). */
  vmdkVersion?: number;
  virtualSize: number;
  /** Bytes of the disk file (the member's size inside a container). */
  fileSize: number;
  backingFile?: string;
  dataFile?: string;
  /** qcow2: whether every allocated cluster lies after the one before it in guest order. */
  clustersInOrder?: boolean;
  /** The guest's first two sectors: an MBR boot signature (0x55AA at 510), a GPT header at LBA 1, neither, or unreadable (encrypted). */
  partitionTable: 'gpt' | 'mbr' | 'none' | 'unknown';
  /** The image's own id where the format stores one (VDI, VHD, VHDX, VMDK ddb.uuid.image), lower-case text. */
  uuid?: string;
  ova?: OvaFacts;
  tar?: TarFacts;
}

export interface OvaFacts {
  /** The OVF's first member name, and whether it is the first member (OVF 1.0 §5.3). */
  ovfFirst: boolean;
  /** <vssd:VirtualSystemType> values, e.g. "vmx-13" or "virtualbox-2.2". */
  families: string[];
  virtualHardwareSection: boolean;
  /** The manifest's digest algorithm, or none. */
  manifest: 'sha256' | 'sha1' | 'sha512' | 'other' | 'none';
}

/** A tarball's members: name, size and header format ('oldgnu' is GNU's magic "ustar  \0", which tar --format=oldgnu and gnu write). */
export interface TarFacts {
  members: { name: string; size: number; format: 'oldgnu' | 'ustar' | 'v7' }[];
}

export type LintStatus = 'pass' | 'warn' | 'fail';

export interface LintResult {
  /** A short stable id: format, subformat, vmdk-version, size, tarball, standalone, cluster-order, partition-table, ovf-family, uuid-clash. */
  rule: string;
  status: LintStatus;
  /** One line: what the destination's importer wants and what this file has. */
  reason: string;
}

/** One rule: undefined when it does not apply to this file or destination. */
export type LintRule = (target: Target, facts: LintFacts) => LintResult | undefined;
