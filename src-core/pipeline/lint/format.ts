import type { TargetName } from '../targets.ts';
import type { LintFacts, LintResult, LintRule } from './types.ts';

/** How a file is named in reasons: "a streamOptimized vmdk", "a fixed vpc inside an OVA". */
export function describe(f: LintFacts): string {
  const what = `${f.subformat ? `${f.subformat} ` : ''}${f.format}`;
  return f.container === 'ova' ? `an OVA holding a ${what}` : f.container === 'gcp-tar' ? `a tarball holding ${what}` : `a ${what}`;
}

type Verdict = 'pass' | 'warn';

/**
 * What each destination's importer takes, by container or format (`*` for any other), with the
 * reason when it is second best. Anything not listed fails. DiskFerry's own choice for each
 * destination is the targets table's (targets.ts); importers accept more than that one.
 */
const ACCEPTS: Record<TargetName, { key: string; verdict: Verdict; why: string }[]> = {
  aws: [
    { key: 'vmdk', verdict: 'pass', why: 'VM Import takes VMDKs (stream-optimized)' },
    { key: 'ova', verdict: 'pass', why: 'VM Import takes OVAs' },
    { key: 'vpc', verdict: 'pass', why: 'VM Import takes VHDs' },
    { key: 'vhdx', verdict: 'pass', why: 'VM Import takes VHDX' },
    { key: 'raw', verdict: 'pass', why: 'VM Import takes raw disks (uploaded whole, zeros included)' },
  ],
  azure: [{ key: 'vpc', verdict: 'pass', why: 'Azure takes fixed VHDs' }],
  gcp: [{ key: 'gcp-tar', verdict: 'pass', why: 'gcloud compute images create takes disk.raw in a .tar.gz' }],
  esxi: [
    { key: 'ova', verdict: 'pass', why: 'ESXi and vCenter import OVAs' },
    {
      key: 'vmdk',
      verdict: 'warn',
      why: 'ESXi runs a bare VMDK only after an OVF import or vmkfstools -i; an OVA imports in one step',
    },
  ],
  'esxi-datastore': [{ key: 'vmdk', verdict: 'pass', why: 'a datastore holds a VMDK descriptor and its extent' }],
  hyperv: [
    { key: 'vhdx', verdict: 'pass', why: 'Hyper-V runs VHDX' },
    { key: 'vpc', verdict: 'pass', why: 'Hyper-V runs VHDs (generation 1 VMs only)' },
  ],
  virtualbox: [
    { key: 'vdi', verdict: 'pass', why: 'VirtualBox runs VDI, its own format' },
    { key: 'vmdk', verdict: 'pass', why: 'VirtualBox runs VMDKs' },
    { key: 'vpc', verdict: 'pass', why: 'VirtualBox runs VHDs' },
    { key: 'ova', verdict: 'pass', why: 'VirtualBox imports OVAs' },
    { key: 'parallels', verdict: 'pass', why: 'VirtualBox runs Parallels disks' },
    { key: 'vhdx', verdict: 'warn', why: 'VirtualBox reads VHDX with limits (no differencing, read-mostly); VDI is safer' },
    { key: 'qed', verdict: 'warn', why: 'VirtualBox reads QED only in part; VDI is safer' },
  ],
  proxmox: [
    { key: 'qcow2', verdict: 'pass', why: 'Proxmox runs qcow2' },
    { key: 'raw', verdict: 'pass', why: 'Proxmox runs raw disks' },
    { key: 'vmdk', verdict: 'pass', why: 'Proxmox runs VMDKs (qm importdisk converts them)' },
    { key: '*', verdict: 'warn', why: 'qm importdisk converts what qemu-img reads; qcow2 runs as it is' },
  ],
  openstack: [
    { key: 'qcow2', verdict: 'pass', why: 'Glance takes qcow2' },
    { key: 'raw', verdict: 'pass', why: 'Glance takes raw' },
    { key: 'vmdk', verdict: 'pass', why: 'Glance takes VMDK' },
    { key: 'vpc', verdict: 'pass', why: 'Glance takes VHD (disk_format=vhd)' },
    { key: 'vhdx', verdict: 'pass', why: 'Glance takes VHDX' },
    { key: 'vdi', verdict: 'pass', why: 'Glance takes VDI' },
    { key: 'ova', verdict: 'warn', why: 'Glance keeps an OVA (container_format=ova) only with its import task; a bare qcow2 is simpler' },
  ],
  'xcp-ng': [
    { key: 'vpc', verdict: 'pass', why: 'XCP-ng keeps VHDs in its storage repositories' },
    { key: 'qcow2', verdict: 'pass', why: 'XCP-ng 8.3 and Xen Orchestra import qcow2' },
    { key: 'ova', verdict: 'pass', why: 'Xen Orchestra imports OVAs' },
    { key: 'vmdk', verdict: 'warn', why: 'Xen Orchestra converts a VMDK to VHD on import; a dynamic VHD imports as it is' },
    { key: 'raw', verdict: 'warn', why: 'Xen Orchestra imports raw disks whole, zeros included; a dynamic VHD is smaller' },
  ],
};

const NAMES: Record<string, string> = {
  vpc: 'VHD',
  vhdx: 'VHDX',
  vmdk: 'VMDK',
  vdi: 'VDI',
  ova: 'OVA',
  parallels: 'Parallels',
  qed: 'QED',
  'gcp-tar': 'disk.raw in a .tar.gz',
};

const formatRule: LintRule = (target, f) => {
  const keys = [f.container ?? f.format, '*'];
  const hit = ACCEPTS[target.name].find((a) => keys.includes(a.key));
  if (!hit) {
    const wants = ACCEPTS[target.name].map((a) => NAMES[a.key] ?? a.key).join(', ');
    return {
      rule: 'format',
      status: 'fail',
      reason: `${target.name} takes ${wants}; this is ${describe(f)} (diskferry convert --target=${target.name} makes one)`,
    };
  }
  return { rule: 'format', status: hit.verdict, reason: `${hit.why}; this is ${describe(f)}` };
};

/** VMDK create types OpenStack's Glance (and Nova's VMware driver) accept. */
const OPENSTACK_VMDK = ['streamOptimized', 'monolithicSparse'];

const subformatRule: LintRule = (target, f) => {
  const sub = f.subformat ?? '';
  const r = (status: LintResult['status'], reason: string): LintResult => ({ rule: 'subformat', status, reason });
  switch (target.name) {
    case 'azure':
      if (f.format !== 'vpc') return undefined;
      return sub === 'fixed'
        ? r('pass', 'Azure takes only fixed VHDs; this one is fixed')
        : r('fail', `Azure takes only fixed VHDs; this one is ${sub}`);
    case 'aws':
    case 'esxi':
      if (f.format !== 'vmdk') return undefined;
      return sub === 'streamOptimized'
        ? r('pass', `${target.name === 'aws' ? 'VM Import' : 'an OVF import'} takes stream-optimized VMDKs; this one is streamOptimized`)
        : r('fail', `${target.name === 'aws' ? 'VM Import' : 'an OVF import'} takes only stream-optimized VMDKs; this one is ${sub}`);
    case 'esxi-datastore':
      if (f.format !== 'vmdk') return undefined;
      if (sub === 'vmfs') return r('pass', 'a datastore runs createType "vmfs" with its -flat.vmdk; this one is vmfs');
      if (sub === 'monolithicFlat' || sub === 'vmfsThin' || sub === 'vmfsSparse')
        return r('warn', `a datastore runs createType "vmfs"; ${sub} may run, vmkfstools -i makes it native`);
      return r(
        'fail',
        `a datastore runs createType "vmfs" (hosted types fail with "disk type 7"); this one is ${sub} (vmkfstools -i converts it)`,
      );
    case 'openstack':
      if (f.format !== 'vmdk') return undefined;
      return OPENSTACK_VMDK.includes(sub)
        ? r('pass', `Glance takes VMDKs of type ${OPENSTACK_VMDK.join(' or ')}; this one is ${sub}`)
        : r('fail', `Glance refuses VMDKs other than ${OPENSTACK_VMDK.join(' and ')}; this one is ${sub}`);
    case 'xcp-ng':
      if (f.format !== 'vpc') return undefined;
      return sub === 'dynamic'
        ? r('pass', 'XCP-ng keeps dynamic VHDs; this one is dynamic')
        : sub === 'fixed'
          ? r('warn', 'XCP-ng imports a fixed VHD whole; a dynamic one is smaller')
          : r('fail', `XCP-ng imports standalone VHDs; this one is ${sub}`);
    case 'hyperv':
      if (f.format !== 'vpc' && f.format !== 'vhdx') return undefined;
      return sub === 'differencing'
        ? r('warn', 'Hyper-V runs a differencing disk only beside its parent')
        : r('pass', `Hyper-V runs ${sub} ${f.format === 'vpc' ? 'VHDs' : 'VHDX'}`);
    default:
      return undefined;
  }
};

/** ESXi's and AWS's importers read stream-optimized VMDKs of version 3 (VMware's own since ESXi 6). */
const vmdkVersionRule: LintRule = (target, f) => {
  if (f.format !== 'vmdk' || f.subformat !== 'streamOptimized' || f.vmdkVersion === undefined) return undefined;
  if (target.name !== 'esxi' && target.name !== 'aws') return undefined;
  return f.vmdkVersion === 3
    ? { rule: 'vmdk-version', status: 'pass', reason: 'the stream-optimized VMDK is version 3, as VMware writes them' }
    : {
        rule: 'vmdk-version',
        status: 'fail',
        reason: `${target.name === 'aws' ? 'VM Import' : 'ESXi'} wants stream-optimized VMDKs of version 3; this one is version ${f.vmdkVersion}`,
      };
};

export const FORMAT_RULES: readonly LintRule[] = [formatRule, subformatRule, vmdkVersionRule];
