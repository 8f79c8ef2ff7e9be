import { findTarget, type TargetName } from '../../src-core/pipeline/targets.ts';

export const MiB = 1024 * 1024;

/**
 * Destinations a newcomer is likely to have in mind, and the qemu-img settings each one wants.
 * They only set the target form; the form still shows (and lets the user change) every value.
 * Format, options and -c come from the destinations table (src-core/pipeline/targets.ts), the
 * same one `diskferry convert --target=NAME` applies.
 */
export interface Preset {
  id: string;
  title: string;
  /** One line: what the preset produces and why. */
  blurb: string;
  target: string;
  options: Record<string, string>;
  compress: boolean;
  /** Azure accepts only fixed VHDs whose virtual size is a whole number of MiB. */
  needsWholeMiB?: boolean;
}

/** A destination's settings from the table; Azure's size rule shows as needsWholeMiB. */
function fromTable(name: TargetName): Pick<Preset, 'target' | 'options' | 'compress' | 'needsWholeMiB'> {
  const t = findTarget(name);
  // An OVA is written as the `ova` format on the page; its disks are stream VMDKs by nature.
  if (t.packaging === 'ova') return { target: 'ova', options: {}, compress: false };
  return {
    target: t.format,
    options: { ...t.defaults, ...t.options },
    compress: t.compress,
    ...(t.size?.multiple === MiB && { needsWholeMiB: true }),
  };
}

export const PRESETS: readonly Preset[] = [
  {
    id: 'proxmox',
    title: 'Proxmox / KVM',
    blurb: 'qcow2 with zlib compression: small, and what QEMU-based hosts use natively.',
    ...fromTable('proxmox'),
  },
  {
    id: 'aws',
    title: 'AWS import',
    blurb: 'Stream-optimized VMDK, the format VM Import/Export expects.',
    ...fromTable('aws'),
  },
  {
    id: 'azure',
    title: 'Azure',
    blurb: 'Fixed-size VHD; Azure requires a virtual size that is a whole number of MiB.',
    ...fromTable('azure'),
  },
  {
    id: 'hyperv',
    title: 'Hyper-V',
    blurb: 'Dynamic VHDX, the native disk of Hyper-V (Windows Server 2012 and later).',
    ...fromTable('hyperv'),
  },
  {
    id: 'esxi',
    title: 'VMware ESXi',
    blurb: 'An OVA (OVF descriptor, SHA256 manifest, stream-optimized VMDK) to deploy as a new VM in ESXi or vCenter.',
    ...fromTable('esxi'),
  },
  {
    id: 'esxi-datastore',
    title: 'ESXi datastore',
    blurb: 'A createType "vmfs" descriptor and its -flat.vmdk: upload both to a datastore and attach the disk to a VM.',
    ...fromTable('esxi-datastore'),
  },
  {
    id: 'virtualbox',
    title: 'VirtualBox',
    blurb: 'Dynamic VDI, VirtualBox’s own format.',
    ...fromTable('virtualbox'),
  },
  {
    id: 'raw',
    title: 'v86 / raw',
    blurb: 'A plain byte-for-byte disk: for v86, dd, or anything that wants raw.',
    target: 'raw',
    options: {},
    compress: false,
  },
];
