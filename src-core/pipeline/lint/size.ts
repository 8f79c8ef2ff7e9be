import type { LintFacts, LintResult, LintRule } from './types.ts';

const MiB = 1024 * 1024;

function sizeText(n: number): string {
  for (const [u, s] of [
    [1024 * 1024 * MiB, 'TiB'],
    [1024 * MiB, 'GiB'],
    [MiB, 'MiB'],
  ] as const)
    if (n >= u && n % u === 0) return `${n / u} ${s}`;
  return `${n} bytes`;
}

/** The destination's size rule (targets.ts): a whole multiple, a minimum, a maximum. */
const sizeRule: LintRule = (target, f) => {
  const rule = target.size;
  if (!rule) return undefined;
  const n = f.virtualSize;
  const fail = (why: string): LintResult => ({
    rule: 'size',
    status: 'fail',
    reason: `${rule.why}; ${why} (diskferry convert --target=${target.name} rounds it up)`,
  });
  if (n % rule.multiple) return fail(`this disk is ${n} bytes, not a whole ${sizeText(rule.multiple)}`);
  if (rule.min !== undefined && n < rule.min)
    return { rule: 'size', status: 'fail', reason: `${rule.why}; this disk is ${sizeText(n)}, below ${sizeText(rule.min)}` };
  if (rule.max !== undefined && n > rule.max)
    return { rule: 'size', status: 'fail', reason: `${rule.why}; this disk is ${sizeText(n)}, above ${sizeText(rule.max)}` };
  return { rule: 'size', status: 'pass', reason: `${rule.why}; this disk is ${sizeText(n)}` };
};

/** A fixed VHD is its data followed by a 512-byte footer: Azure checks the file is exactly that. */
const fixedVhdFileRule: LintRule = (target, f) => {
  if (target.name !== 'azure' || f.format !== 'vpc' || f.subformat !== 'fixed' || f.container) return undefined;
  const want = f.virtualSize + 512;
  return f.fileSize === want
    ? { rule: 'vhd-file-size', status: 'pass', reason: `the file is the disk plus its 512-byte footer (${f.fileSize} bytes)` }
    : {
        rule: 'vhd-file-size',
        status: 'fail',
        reason: `Azure wants the file to be the disk plus a 512-byte footer, ${want} bytes; it is ${f.fileSize}`,
      };
};

/** gcloud compute images create: one member named disk.raw, in GNU oldgnu format ("The tar archive is not a valid image" otherwise). */
const tarballRule: LintRule = (target, f: LintFacts) => {
  if (target.name !== 'gcp' || f.container !== 'gcp-tar' || !f.tar) return undefined;
  const m = f.tar.members;
  const fail = (reason: string): LintResult => ({ rule: 'tarball', status: 'fail', reason });
  if (m.length !== 1 || m[0]!.name !== 'disk.raw')
    return fail(`Google Cloud wants exactly one member named disk.raw; this tarball holds ${m.map((x) => x.name).join(', ') || 'nothing'}`);
  if (m[0]!.format !== 'oldgnu')
    return fail(`Google Cloud wants the GNU oldgnu tar format (tar --format=oldgnu); this one is ${m[0]!.format}`);
  return { rule: 'tarball', status: 'pass', reason: 'one member, disk.raw, in GNU oldgnu format, gzip-compressed' };
};

export const SIZE_RULES: readonly LintRule[] = [sizeRule, fixedVhdFileRule, tarballRule];
