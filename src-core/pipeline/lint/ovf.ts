import type { LintResult, LintRule } from './types.ts';

/** The newest VMware hardware family ESXi knows (vmx-21: ESXi 8.0 U2); vmx-13 runs on ESXi 6.5 and later. */
const NEWEST_VMX = 21;
const WIDELY_RUN_VMX = 13;

function vmxNumber(family: string): number | undefined {
  const m = /^vmx-(\d+)$/i.exec(family.trim());
  return m ? Number(m[1]) : undefined;
}

/** The OVF's hardware family (<vssd:VirtualSystemType>) against what the destination's importer knows. */
const familyRule: LintRule = (target, f) => {
  const o = f.ova;
  if (f.container !== 'ova' || !o) return undefined;
  const r = (status: LintResult['status'], reason: string): LintResult => ({ rule: 'ovf-family', status, reason });
  if (!o.virtualHardwareSection)
    return r('fail', 'the OVF has no VirtualHardwareSection: importers refuse it (no CPUs, memory or disk controller)');
  if (!o.families.length) return r('fail', 'the OVF names no hardware family (<vssd:VirtualSystemType>)');
  const text = o.families.join(', ');
  if (target.name === 'esxi' || target.name === 'aws') {
    const who = target.name === 'esxi' ? 'ESXi' : 'VM Import';
    const vmx = o.families.map(vmxNumber).filter((n): n is number => n !== undefined);
    if (!vmx.length) return r('fail', `${who} wants a VMware family (vmx-NN); this OVF says ${text}`);
    const n = Math.min(...vmx);
    if (n > NEWEST_VMX) return r('fail', `no ESXi release knows vmx-${n} (newest: vmx-${NEWEST_VMX})`);
    if (n > WIDELY_RUN_VMX) return r('warn', `vmx-${n} needs a recent ESXi (vmx-${WIDELY_RUN_VMX} runs on ESXi 6.5 and later)`);
    return r('pass', `${text}: ${who} knows it`);
  }
  if (target.name === 'virtualbox') return r('pass', `${text}: VirtualBox imports any family`);
  return r('pass', `${text}`);
};

/** OVF 1.0 §5.3: the descriptor comes first in an OVA; ovftool and ESXi stop otherwise. */
const ovfFirstRule: LintRule = (_target, f) => {
  if (f.container !== 'ova' || !f.ova) return undefined;
  return f.ova.ovfFirst
    ? { rule: 'ovf-first', status: 'pass', reason: 'the .ovf is the first member of the OVA' }
    : { rule: 'ovf-first', status: 'fail', reason: 'the .ovf must be the first member of an OVA (OVF 1.0 §5.3); importers stop otherwise' };
};

/** The manifest's digests: SHA256 everywhere current; SHA1 still read but flagged by vSphere 8. */
const manifestRule: LintRule = (target, f) => {
  if (f.container !== 'ova' || !f.ova) return undefined;
  switch (f.ova.manifest) {
    case 'sha256':
      return { rule: 'ovf-manifest', status: 'pass', reason: 'a SHA256 manifest' };
    case 'sha1':
      return {
        rule: 'ovf-manifest',
        status: target.name === 'esxi' ? 'warn' : 'pass',
        reason: 'a SHA1 manifest: vSphere 8 flags it as weak (ESXi 6.0 and older read only SHA1)',
      };
    case 'none':
      return { rule: 'ovf-manifest', status: 'warn', reason: 'no manifest: the importer cannot check that the disks arrived whole' };
    default:
      return { rule: 'ovf-manifest', status: 'warn', reason: 'a manifest with digests the importers may not know (use SHA256)' };
  }
};

export const OVF_RULES: readonly LintRule[] = [ovfFirstRule, familyRule, manifestRule];
