import { InvalidArgumentError } from '../../io/errors.ts';
import { checkOptions, parseSize } from '../../image/options.ts';
import type { CreateOptionSpec } from '../../image/types.ts';

/**
 * The virtual machine an OVF describes around its disks: `-o name=,cpus=,memory=,firmware=,
 * controller=,network=,guest_os=,hw_family=`. Defaults make a small 64-bit Linux VM that ESXi
 * 6.5 and later import as is.
 */

export const CONTROLLERS = ['lsilogic', 'pvscsi', 'sata', 'ide'] as const;
export type Controller = (typeof CONTROLLERS)[number];

/** Hardware families by destination; any `vmx-NN` is accepted too. */
export const FAMILIES: Readonly<Record<string, string>> = {
  // ESXi 6.5 and later (vmx-13); older hosts refuse newer families, newer hosts take older ones.
  esxi: 'vmx-13',
  // VirtualBox writes and prefers its own family name; VMware products refuse it.
  virtualbox: 'virtualbox-2.2',
  // AWS VM Import reads OVAs exported from ESXi 5.5 and later; vmx-10 is the ESXi 5.5 family.
  aws: 'vmx-10',
};

export interface VmSettings {
  name: string;
  cpus: number;
  /** MiB */
  memory: number;
  firmware: 'bios' | 'efi';
  controller: Controller;
  /** Network the one NIC connects to; empty: no NIC and no NetworkSection. */
  network: string;
  /** VMware's guest id (vmw:osType), e.g. otherLinux64Guest, ubuntu64Guest, windows2019srv_64Guest. */
  guestOs: string;
  /** vssd:VirtualSystemType: vmx-NN or virtualbox-2.2. */
  family: string;
}

export const OVA_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  { name: 'name', type: 'string', help: 'VM name (default: the output file name without its extension)' },
  { name: 'cpus', type: 'number', default: '1', help: 'virtual CPUs' },
  { name: 'memory', type: 'size', default: '1024', help: 'memory in MiB (or with a unit: 2G)' },
  { name: 'firmware', type: 'enum', values: ['bios', 'efi'], default: 'bios', help: 'BIOS or EFI boot' },
  { name: 'controller', type: 'enum', values: CONTROLLERS, default: 'lsilogic', help: 'disk controller' },
  { name: 'network', type: 'string', default: 'VM Network', help: 'network the NIC connects to ("none": no NIC)' },
  { name: 'guest_os', type: 'string', default: 'otherLinux64Guest', help: 'guest OS type (VMware guest id)' },
  {
    name: 'hw_family',
    type: 'string',
    default: 'esxi',
    help: 'virtual hardware family: esxi (vmx-13), aws (vmx-10), virtualbox (virtualbox-2.2) or vmx-NN',
  },
  // --target=esxi names the disk format; the disks inside an OVA are always streamOptimized.
  {
    name: 'subformat',
    type: 'enum',
    values: ['streamOptimized'],
    default: 'streamOptimized',
    help: 'the disks inside (always streamOptimized)',
  },
];

/** Memory: a bare number is MiB (as ovftool and VirtualBox take it); with a unit, whole MiB. */
function memoryMiB(text: string): number {
  const mib = /^\d+$/.test(text.trim()) ? Number(text) : parseSize(text, 'memory') / (1024 * 1024);
  if (!Number.isInteger(mib) || mib < 4 || mib > 24 * 1024 * 1024)
    throw new InvalidArgumentError(`memory must be a whole number of MiB from 4 MiB to 24 TiB, not "${text}"`);
  return mib;
}

/** The settings from -o pairs; `stem` is the output's name without its extension. */
export function vmSettings(options: Record<string, string>, stem: string): VmSettings {
  checkOptions('ova', options, OVA_CREATE_OPTIONS);
  const cpus = Number(options.cpus ?? '1');
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 768)
    throw new InvalidArgumentError(`cpus must be a whole number from 1 to 768, not "${options.cpus}"`);
  const familyText = options.hw_family ?? 'esxi';
  const family = FAMILIES[familyText] ?? familyText;
  if (!/^vmx-\d{2}$/.test(family) && family !== 'virtualbox-2.2')
    throw new InvalidArgumentError(`hw_family must be esxi, aws, virtualbox, vmx-NN or virtualbox-2.2, not "${familyText}"`);
  const name = options.name ?? stem;
  if (!name.trim()) throw new InvalidArgumentError('the VM name (-o name=) is empty');
  const guestOs = options.guest_os ?? 'otherLinux64Guest';
  if (!/^[A-Za-z0-9_-]+$/.test(guestOs))
    throw new InvalidArgumentError(`guest_os must be a VMware guest id such as otherLinux64Guest, not "${guestOs}"`);
  const network = options.network ?? 'VM Network';
  return {
    name,
    cpus,
    memory: memoryMiB(options.memory ?? '1024'),
    firmware: (options.firmware ?? 'bios') as VmSettings['firmware'],
    controller: (options.controller ?? 'lsilogic') as Controller,
    network: network === 'none' ? '' : network,
    guestOs,
    family,
  };
}
