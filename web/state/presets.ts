import { findTarget, TARGETS, type Target, type TargetName } from '../../src-core/pipeline/targets.ts';

export const MiB = 1024 * 1024;

/**
 * Destinations a newcomer is likely to have in mind, and the qemu-img settings each one wants:
 * one preset for every destination of the table (src-core/pipeline/targets.ts, the same one
 * `diskferry convert --target=NAME` applies), plus raw. They only set the target form; the form
 * still shows (and lets the user change) every value.
 */
export interface Preset {
  id: string;
  title: string;
  /** One line: what the preset produces and why. */
  blurb: string;
  target: string;
  options: Record<string, string>;
  compress: boolean;
  /** The table's entry: its size rule applies and its importer's rules are the pre-flight check. */
  destination?: TargetName;
}

/** The page's names and one-line explanations; everything else comes from the table. */
const LOOKS: Record<TargetName, { title: string; blurb: string }> = {
  proxmox: { title: 'Proxmox / KVM', blurb: 'qcow2 with zlib compression: small, and what QEMU-based hosts use natively.' },
  aws: { title: 'AWS import', blurb: 'Stream-optimized VMDK, the format VM Import/Export expects.' },
  azure: {
    title: 'Azure',
    blurb: 'Fixed-size VHD of a whole number of MiB (20 MiB to 32 TiB): the size is rounded up for you, the added space is zeros.',
  },
  gcp: {
    title: 'Google Cloud',
    blurb: 'disk.raw of a whole number of GiB in a gzip-compressed GNU tar (.tar.gz), for gcloud compute images create.',
  },
  hyperv: { title: 'Hyper-V', blurb: 'Dynamic VHDX, the native disk of Hyper-V (Windows Server 2012 and later).' },
  esxi: {
    title: 'VMware ESXi',
    blurb: 'An OVA (OVF descriptor, SHA256 manifest, stream-optimized VMDK) to deploy as a new VM in ESXi or vCenter.',
  },
  'esxi-datastore': {
    title: 'ESXi datastore',
    blurb: 'A createType "vmfs" descriptor and its -flat.vmdk: upload both to a datastore and attach the disk to a VM.',
  },
  virtualbox: { title: 'VirtualBox', blurb: 'Dynamic VDI, VirtualBox’s own format.' },
  openstack: { title: 'OpenStack', blurb: 'qcow2 for Glance (disk_format=qcow2, container_format=bare).' },
  'xcp-ng': { title: 'XCP-ng', blurb: 'Dynamic VHD, the format XCP-ng’s storage repositories keep (Xen Orchestra imports it as it is).' },
};

/**
 * A destination's settings from the table. Packaged destinations are written as formats of their
 * own on the page: `ova` (its disks are stream VMDKs by nature) and `gcp-tar` (disk.raw inside).
 */
function fromTable(t: Target): Preset {
  const base = { id: t.name, ...LOOKS[t.name], destination: t.name };
  if (t.packaging === 'ova') return { ...base, target: 'ova', options: {}, compress: false };
  if (t.packaging === 'gcp-tar') return { ...base, target: 'gcp-tar', options: {}, compress: false };
  return {
    ...base,
    target: t.format,
    options: { ...t.defaults, ...t.options },
    compress: t.compress,
  };
}

/** The order the buttons show in: the common hypervisors, the clouds, then the rest. */
const ORDER: readonly TargetName[] = [
  'proxmox',
  'aws',
  'azure',
  'gcp',
  'hyperv',
  'esxi',
  'esxi-datastore',
  'virtualbox',
  'openstack',
  'xcp-ng',
];

export const PRESETS: readonly Preset[] = [
  ...ORDER.map((name) => fromTable(findTarget(name))),
  ...TARGETS.filter((t) => !ORDER.includes(t.name)).map(fromTable),
  {
    id: 'raw',
    title: 'v86 / raw',
    blurb: 'A plain byte-for-byte disk: for v86, dd, or anything that wants raw.',
    target: 'raw',
    options: {},
    compress: false,
  },
];

export function presetById(id: string | undefined): Preset | undefined {
  return PRESETS.find((p) => p.id === id);
}

/** The destination the user picked (it stays while they change the format or options: the pre-flight check judges the change). */
export function destinationOf(choice: { destination?: string }): Preset | undefined {
  return choice.destination ? PRESETS.find((p) => p.destination === choice.destination) : undefined;
}

/**
 * The destination whose size rule applies to the choice: only while the choice still writes the
 * destination's format (as `--target=NAME` with extra -o pairs); another format is the user's own.
 */
export function sizingPreset(choice: { destination?: string; format: string }): Preset | undefined {
  const p = destinationOf(choice);
  return p && p.target === choice.format ? p : undefined;
}
