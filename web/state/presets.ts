/**
 * Destinations a newcomer is likely to have in mind, and the qemu-img settings each one wants.
 * They only set the target form; the form still shows (and lets the user change) every value.
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

export const PRESETS: readonly Preset[] = [
  {
    id: 'proxmox',
    title: 'Proxmox / KVM',
    blurb: 'qcow2 with zlib compression: small, and what QEMU-based hosts use natively.',
    target: 'qcow2',
    options: { compression_type: 'zlib' },
    compress: true,
  },
  {
    id: 'aws',
    title: 'AWS import',
    blurb: 'Stream-optimized VMDK, the format VM Import/Export expects.',
    target: 'vmdk',
    options: { subformat: 'streamOptimized' },
    compress: false,
  },
  {
    id: 'azure',
    title: 'Azure',
    blurb: 'Fixed-size VHD; Azure requires a virtual size that is a whole number of MiB.',
    target: 'vpc',
    options: { subformat: 'fixed', force_size: 'on' },
    compress: false,
    needsWholeMiB: true,
  },
  {
    id: 'hyperv',
    title: 'Hyper-V',
    blurb: 'Dynamic VHDX, the native disk of Hyper-V (Windows Server 2012 and later).',
    target: 'vhdx',
    options: { subformat: 'dynamic' },
    compress: false,
  },
  {
    id: 'esxi',
    title: 'VMware ESXi',
    blurb: 'Stream-optimized VMDK: what an OVF/OVA import into ESXi or vCenter carries (a datastore runs it only after that import).',
    target: 'vmdk',
    options: { subformat: 'streamOptimized' },
    compress: false,
  },
  {
    id: 'virtualbox',
    title: 'VirtualBox',
    blurb: 'Dynamic VDI, VirtualBox’s own format.',
    target: 'vdi',
    options: {},
    compress: false,
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

export const MiB = 1024 * 1024;
