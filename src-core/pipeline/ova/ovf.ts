import { InvalidArgumentError } from '../../io/errors.ts';
import type { PackageIdentity } from './identity.ts';
import type { VmSettings } from './vmSettings.ts';

/**
 * The OVF descriptor (DMTF DSP0243 OVF 1.0 envelope) in the shape VMware's ovftool writes:
 * References, DiskSection, NetworkSection, then one VirtualSystem with its OperatingSystemSection
 * and VirtualHardwareSection (System, then rasd Items for CPU, memory, the controller, each disk
 * and the NIC, then VMware's firmware key). Elements inside an Item are in the CIM schema's
 * (alphabetical) order, which strict readers check.
 */

export const STREAM_VMDK_FORMAT = 'http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized';

export interface OvfDisk {
  /** Member / file name of the VMDK. */
  href: string;
  /** Bytes of the VMDK file. */
  fileSize: number;
  /** Virtual size in bytes. */
  capacity: number;
  /** Guest bytes holding data (what a thin disk needs on the datastore). */
  populatedSize: number;
}

/** CIM_OperatingSystem.OsType for VMware guest ids (the ids VirtualBox's importer maps too). */
function cimOsType(guest: string): number {
  const table: [RegExp, number][] = [
    [/^ubuntu64Guest$/, 94],
    [/^ubuntuGuest$/, 93],
    [/^debian\d*_64Guest$/, 96],
    [/^debian\d*Guest$/, 95],
    [/^rhel\d*_64Guest$/, 80],
    [/^rhel\d*Guest$/, 79],
    [/^sles\d*_64Guest$/, 85],
    [/^freebsd\d*_64Guest$/, 78],
    [/^otherLinux64Guest$/, 101],
    [/^otherLinuxGuest$/, 36],
    [/^other\w*(64|_64)Guest$|^otherGuest64$/, 102],
  ];
  for (const [re, id] of table) if (re.test(guest)) return id;
  // Anything else 64-bit is "Other 64-Bit", the rest "Other"; vmw:osType says exactly what it is.
  return /64/.test(guest) ? 102 : 1;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** ovf:capacity with the largest whole unit, as ovftool writes it. */
function capacity(bytes: number): string {
  for (const [shift, unit] of [
    [30, 'byte * 2^30'],
    [20, 'byte * 2^20'],
  ] as const) {
    const u = 2 ** shift;
    if (bytes % u === 0) return `ovf:capacity="${bytes / u}" ovf:capacityAllocationUnits="${unit}"`;
  }
  return `ovf:capacity="${bytes}" ovf:capacityAllocationUnits="byte"`;
}

interface ControllerItem {
  resourceType: number;
  subType?: string;
  description: string;
  element: string;
  /** Unit numbers disks take on it, in order. */
  units: number[];
}

function controllerItem(s: VmSettings): ControllerItem {
  const vbox = s.family.startsWith('virtualbox');
  // SCSI unit 7 is the controller itself.
  const scsiUnits = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  switch (s.controller) {
    case 'lsilogic':
      return {
        resourceType: 6,
        subType: vbox ? 'LsiLogic' : 'lsilogic',
        description: 'SCSI Controller',
        element: 'SCSI controller 0',
        units: scsiUnits,
      };
    case 'pvscsi':
      return { resourceType: 6, subType: 'VirtualSCSI', description: 'SCSI Controller', element: 'SCSI controller 0', units: scsiUnits };
    case 'sata':
      return {
        resourceType: 20,
        subType: vbox ? 'AHCI' : 'vmware.sata.ahci',
        description: 'SATA Controller',
        element: 'SATA controller 0',
        units: Array.from({ length: 30 }, (_, i) => i),
      };
    case 'ide':
      return {
        resourceType: 5,
        subType: vbox ? 'PIIX4' : undefined,
        description: 'IDE Controller',
        element: 'IDE controller 0',
        units: [0, 1],
      };
  }
}

/** One rasd Item; `fields` are written in the order given (callers keep them alphabetical). */
function item(fields: [string, string | number | undefined][]): string {
  const lines = fields.filter(([, v]) => v !== undefined).map(([k, v]) => `        <rasd:${k}>${esc(String(v))}</rasd:${k}>`);
  return `      <Item>\n${lines.join('\n')}\n      </Item>\n`;
}

/** A controller has so many places for disks (IDE: master and slave of one channel). */
export function checkDiskCount(s: VmSettings, count: number, file?: string): void {
  const units = controllerItem(s).units.length;
  if (count > units)
    throw new InvalidArgumentError(`the ${s.controller} controller takes at most ${units} disks; ${count} were given`, file);
}

export function buildOvf(s: VmSettings, disks: OvfDisk[], id: PackageIdentity): string {
  const ctl = controllerItem(s);
  checkDiskCount(s, disks.length);
  const vbox = s.family.startsWith('virtualbox');
  const nic = vbox ? 'E1000' : 'VmxNet3';
  const sys = id.systemId(s.name);
  let instance = 1;
  const files = disks
    .map((d, i) => `    <File ovf:href="${esc(d.href)}" ovf:id="${id.fileId(i + 1)}" ovf:size="${d.fileSize}"/>\n`)
    .join('');
  const diskLines = disks
    .map(
      (d, i) =>
        `    <Disk ${capacity(d.capacity)} ovf:diskId="${id.diskId(i + 1)}" ovf:fileRef="${id.fileId(i + 1)}" ovf:format="${STREAM_VMDK_FORMAT}" ovf:populatedSize="${d.populatedSize}"/>\n`,
    )
    .join('');
  const network = s.network
    ? '  <NetworkSection>\n' +
      '    <Info>The list of logical networks</Info>\n' +
      `    <Network ovf:name="${esc(s.network)}">\n` +
      `      <Description>The ${esc(s.network)} network</Description>\n` +
      '    </Network>\n' +
      '  </NetworkSection>\n'
    : '';
  let items = item([
    ['AllocationUnits', 'hertz * 10^6'],
    ['Description', 'Number of Virtual CPUs'],
    ['ElementName', `${s.cpus} virtual CPU(s)`],
    ['InstanceID', instance++],
    ['ResourceType', 3],
    ['VirtualQuantity', s.cpus],
  ]);
  items += item([
    ['AllocationUnits', 'byte * 2^20'],
    ['Description', 'Memory Size'],
    ['ElementName', `${s.memory}MB of memory`],
    ['InstanceID', instance++],
    ['ResourceType', 4],
    ['VirtualQuantity', s.memory],
  ]);
  const controllerId = instance++;
  items += item([
    ['Address', 0],
    ['Description', ctl.description],
    ['ElementName', ctl.element],
    ['InstanceID', controllerId],
    ['ResourceSubType', ctl.subType],
    ['ResourceType', ctl.resourceType],
  ]);
  disks.forEach((_d, i) => {
    items += item([
      ['AddressOnParent', ctl.units[i]],
      ['ElementName', `Hard disk ${i + 1}`],
      ['HostResource', `ovf:/disk/${id.diskId(i + 1)}`],
      ['InstanceID', instance++],
      ['Parent', controllerId],
      ['ResourceType', 17],
    ]);
  });
  if (s.network) {
    items += item([
      ['AddressOnParent', 7],
      ['AutomaticAllocation', 'true'],
      ['Connection', s.network],
      ['Description', `${nic} ethernet adapter on "${s.network}"`],
      ['ElementName', 'Network adapter 1'],
      ['InstanceID', instance++],
      ['ResourceSubType', nic],
      ['ResourceType', 10],
    ]);
  }
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<!--Generated by DiskFerry-->\n' +
    '<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" ' +
    'xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" ' +
    'xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" ' +
    'xmlns:vmw="http://www.vmware.com/schema/ovf" ' +
    'xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" ' +
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n' +
    '  <References>\n' +
    files +
    '  </References>\n' +
    '  <DiskSection>\n' +
    '    <Info>Virtual disk information</Info>\n' +
    diskLines +
    '  </DiskSection>\n' +
    network +
    `  <VirtualSystem ovf:id="${esc(sys)}">\n` +
    '    <Info>A virtual machine</Info>\n' +
    `    <Name>${esc(s.name)}</Name>\n` +
    `    <OperatingSystemSection ovf:id="${cimOsType(s.guestOs)}" vmw:osType="${s.guestOs}">\n` +
    '      <Info>The kind of installed guest operating system</Info>\n' +
    '    </OperatingSystemSection>\n' +
    '    <VirtualHardwareSection>\n' +
    '      <Info>Virtual hardware requirements</Info>\n' +
    '      <System>\n' +
    '        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>\n' +
    '        <vssd:InstanceID>0</vssd:InstanceID>\n' +
    `        <vssd:VirtualSystemIdentifier>${esc(sys)}</vssd:VirtualSystemIdentifier>\n` +
    `        <vssd:VirtualSystemType>${s.family}</vssd:VirtualSystemType>\n` +
    '      </System>\n' +
    items +
    `      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="${s.firmware}"/>\n` +
    '    </VirtualHardwareSection>\n' +
    '  </VirtualSystem>\n' +
    '</Envelope>\n'
  );
}
