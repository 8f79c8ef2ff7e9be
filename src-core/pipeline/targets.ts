import { InvalidArgumentError, UnsupportedError } from '../io/errors.ts';
import { alignUp } from '../io/int64.ts';

/**
 * Destinations: the files each cloud or hypervisor accepts, as qemu-img settings plus the few
 * rules qemu-img leaves to the user (Azure's whole MiB, Google's whole GiB and tarball). The
 * one source of truth for `diskferry convert --target=NAME` and the page's presets.
 */

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

export type TargetName = 'aws' | 'azure' | 'gcp' | 'esxi' | 'esxi-datastore' | 'hyperv' | 'virtualbox' | 'proxmox' | 'openstack' | 'xcp-ng';

/** How the output's virtual size is chosen from the source's. */
export interface SizeRule {
  /** The virtual size is rounded up to a multiple of this. */
  multiple: number;
  /** Smallest virtual size the destination accepts (after rounding). */
  min?: number;
  /** Largest virtual size the destination accepts (after rounding). */
  max?: number;
  /** Names the rule in messages: "Azure needs …". */
  why: string;
}

/** What the image file goes into: nothing, a Google Cloud image tarball, or an OVA (pipeline/ova/). */
export type Packaging = 'none' | 'gcp-tar' | 'ova';

export interface Target {
  name: TargetName;
  /** The qemu-img format (-O). */
  format: string;
  /** -o key=value pairs the destination needs: a different value given by the user is an error. */
  options: Readonly<Record<string, string>>;
  /** -o key=value pairs the destination is given unless the user says otherwise. */
  defaults?: Readonly<Record<string, string>>;
  /** -c */
  compress: boolean;
  size?: SizeRule;
  packaging: Packaging;
  /** One line: what the destination gets and why. */
  description: string;
  /** Set when DiskFerry cannot make this destination's file yet: what is missing. */
  notYet?: string;
}

export const TARGETS: readonly Target[] = [
  {
    name: 'aws',
    format: 'vmdk',
    options: { subformat: 'streamOptimized' },
    compress: false,
    packaging: 'none',
    description: 'AWS VM Import: a stream-optimized VMDK (compressed by its nature) to upload to S3.',
  },
  {
    name: 'azure',
    format: 'vpc',
    options: { subformat: 'fixed', force_size: 'on' },
    compress: false,
    size: { multiple: MiB, min: 20 * MiB, max: 32 * TiB, why: 'Azure accepts fixed VHDs of a whole number of MiB, from 20 MiB to 32 TiB' },
    packaging: 'none',
    description: 'Azure managed disk upload: a fixed VHD whose size is a whole number of MiB (20 MiB to 32 TiB).',
  },
  {
    name: 'gcp',
    format: 'raw',
    options: {},
    compress: false,
    size: { multiple: GiB, why: 'Google Cloud imports disks of a whole number of GiB' },
    packaging: 'gcp-tar',
    description: 'Google Cloud image import: disk.raw of a whole number of GiB in a gzip-compressed GNU tar (.tar.gz).',
  },
  {
    name: 'esxi',
    format: 'vmdk',
    options: { subformat: 'streamOptimized' },
    compress: false,
    packaging: 'ova',
    description: 'VMware ESXi / vCenter: an OVA (OVF descriptor, SHA256 manifest, stream-optimized VMDK), imported as a new VM.',
  },
  {
    name: 'esxi-datastore',
    format: 'vmdk',
    options: { subformat: 'vmfs' },
    defaults: { adapter_type: 'lsilogic' },
    compress: false,
    packaging: 'none',
    description:
      'ESXi datastore: a createType "vmfs" descriptor (x.vmdk) and its flat extent (x-flat.vmdk), uploaded side by side and attached to a VM.',
  },
  {
    name: 'hyperv',
    format: 'vhdx',
    options: { subformat: 'dynamic' },
    compress: false,
    packaging: 'none',
    description: 'Hyper-V (Windows Server 2012 and later): a dynamic VHDX, its native disk.',
  },
  {
    name: 'virtualbox',
    format: 'vdi',
    options: {},
    compress: false,
    packaging: 'none',
    description: 'VirtualBox: a dynamic VDI, its own format.',
  },
  {
    name: 'proxmox',
    format: 'qcow2',
    options: { compression_type: 'zlib' },
    compress: true,
    packaging: 'none',
    description: 'Proxmox VE / KVM: qcow2 with zlib compression, for qm importdisk.',
  },
  {
    name: 'openstack',
    format: 'qcow2',
    options: {},
    compress: false,
    packaging: 'none',
    description: 'OpenStack Glance: qcow2 (disk_format=qcow2, container_format=bare).',
  },
  {
    name: 'xcp-ng',
    format: 'vpc',
    options: { subformat: 'dynamic' },
    compress: false,
    packaging: 'none',
    description: 'XCP-ng / Xen Orchestra: a dynamic VHD, the format its storage repositories keep.',
  },
];

export function findTarget(name: string): Target {
  const t = TARGETS.find((x) => x.name === name);
  if (!t) throw new InvalidArgumentError(`unknown --target "${name}" (one of ${TARGETS.map((x) => x.name).join(', ')})`);
  return t;
}

/** What the user gave besides --target: -O, -o pairs, -c. */
export interface ExplicitSettings {
  format?: string;
  options?: Record<string, string>;
  compress?: boolean;
}

export interface ResolvedTarget {
  target: Target;
  format: string;
  options: Record<string, string>;
  compress: boolean;
}

/**
 * The table's settings, with the user's own -o pairs added where the table says nothing. An
 * explicit -O, -o key or -c that contradicts the table is an error naming both.
 */
export function resolveTarget(name: string, given: ExplicitSettings = {}): ResolvedTarget {
  const target = findTarget(name);
  if (target.notYet) throw new UnsupportedError(`--target=${name}`, `not yet: ${target.notYet}`);
  if (given.format !== undefined && given.format !== target.format) {
    throw new InvalidArgumentError(`--target=${name} writes ${target.format}, but -O ${given.format} was given`);
  }
  const options: Record<string, string> = { ...target.defaults, ...target.options };
  for (const [k, v] of Object.entries(given.options ?? {})) {
    const want = target.options[k];
    if (want !== undefined && want !== v)
      throw new InvalidArgumentError(`--target=${name} sets -o ${k}=${want}, but -o ${k}=${v} was given`);
    options[k] = v;
  }
  if (given.compress && !target.compress)
    throw new InvalidArgumentError(`--target=${name} writes ${target.format} without -c, but -c was given`);
  return { target, format: target.format, options, compress: target.compress };
}

function sizeText(n: number): string {
  const units: [number, string][] = [
    [TiB, 'TiB'],
    [GiB, 'GiB'],
    [MiB, 'MiB'],
  ];
  for (const [u, s] of units) if (n >= u && n % u === 0) return `${n / u} ${s}`;
  return `${n} bytes`;
}

/**
 * The output's virtual size for a source of `sourceSize` bytes: rounded up to the rule's
 * multiple (the added space reads as zeros; the guest's bytes never change), refused outside
 * the destination's limits.
 */
export function targetVirtualSize(target: Target, sourceSize: number): number {
  const rule = target.size;
  if (!rule) return sourceSize;
  const size = alignUp(sourceSize, rule.multiple);
  if (rule.min !== undefined && size < rule.min) {
    throw new InvalidArgumentError(
      `--target=${target.name}: the disk is ${sourceSize} bytes (${sizeText(size)} rounded), but ${rule.why}: at least ${sizeText(rule.min)} (${rule.min} bytes)`,
    );
  }
  if (rule.max !== undefined && size > rule.max) {
    throw new InvalidArgumentError(
      `--target=${target.name}: the disk is ${sourceSize} bytes (${sizeText(size)} rounded), but ${rule.why}: at most ${sizeText(rule.max)} (${rule.max} bytes)`,
    );
  }
  return size;
}
