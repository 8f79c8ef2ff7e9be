import type { Target } from '../targets.ts';
import type { LintFacts, LintResult } from './types.ts';

/**
 * Ids shared by several files given at once: VirtualBox refuses to register a second disk with
 * a UUID it knows ("Cannot register the hard disk … because a hard disk … with UUID … already
 * exists"), and Hyper-V confuses disks with one page 83 id; elsewhere a shared id only warns.
 * One result per file that has an id.
 */
export function lintClashes(target: Target, all: readonly LintFacts[]): Map<string, LintResult> {
  const refuses = target.name === 'virtualbox' || target.name === 'hyperv';
  const byId = new Map<string, string[]>();
  for (const f of all) if (f.uuid) byId.set(f.uuid, [...(byId.get(f.uuid) ?? []), f.file]);
  const out = new Map<string, LintResult>();
  for (const f of all) {
    if (!f.uuid) continue;
    const others = byId.get(f.uuid)!.filter((x) => x !== f.file);
    out.set(
      f.file,
      others.length
        ? {
            rule: 'uuid-clash',
            status: refuses ? 'fail' : 'warn',
            reason: `UUID ${f.uuid} is also ${others.join(', ')}'s: ${refuses ? `${target.name === 'hyperv' ? 'Hyper-V' : 'VirtualBox'} refuses the second disk` : 'VirtualBox and Hyper-V would refuse the second disk'} (give each its own -o uuid=)`,
          }
        : { rule: 'uuid-clash', status: 'pass', reason: `UUID ${f.uuid} is this file's alone among those given` },
    );
  }
  return out;
}
