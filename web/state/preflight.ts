import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import { alignUp } from '../../src-core/io/int64.ts';
import { lintClashes, type LintFacts, type LintResult } from '../../src-core/pipeline/lint/index.ts';
import { vmSettings } from '../../src-core/pipeline/ova/vmSettings.ts';
import { findTarget, targetVirtualSize, type TargetName } from '../../src-core/pipeline/targets.ts';
import { humanSize } from '../units.ts';
import type { Preset } from './presets.ts';
import type { TargetChoice } from './store.ts';

/**
 * What the form's choice will write, worked out before converting: the output's virtual size
 * (the destination's size rule applied, as `convert --target=NAME` applies it) and the facts the
 * pre-flight check judges (pipeline/lint: `lintImage` on the planned output, the same rules the
 * CLI's `diskferry lint` runs on the finished file).
 */

/**
 * The output's size under a preset's destination rule, with what was rounded, or why the
 * destination refuses it (then `size` is the rounded size the rule judges).
 */
export interface SizePlan {
  size: number;
  rounded?: string;
  error?: string;
}

export function plannedSize(preset: Preset | undefined, sourceSize: number): SizePlan {
  if (!preset?.destination) return { size: sourceSize };
  const target = findTarget(preset.destination);
  let size: number;
  try {
    size = targetVirtualSize(target, sourceSize);
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    return { size: alignUp(sourceSize, target.size!.multiple), error: e.message.replace(/^--target=[\w-]+: /, '') };
  }
  if (size === sourceSize) return { size };
  const exact = sourceSize % (64 * 1024) ? ` (${sourceSize} bytes)` : '';
  return {
    size,
    rounded: `rounded up from ${humanSize(sourceSize)}${exact} to ${humanSize(size)} (${preset.title} wants a whole number of ${humanSize(target.size!.multiple).replace(/^1 /, '')}); the added space is zeros, the guest’s data is unchanged`,
  };
}

/** Subformats as the rules name them (pipeline/lint/facts.ts), for what each writer makes by default. */
function plannedSubformat(format: string, options: Readonly<Record<string, string>>): string | undefined {
  const sub = options.subformat;
  switch (format) {
    case 'vmdk':
      return sub ?? 'monolithicSparse';
    case 'vpc':
    case 'vhdx':
      return sub ?? 'dynamic';
    case 'vdi':
      return options.static === 'on' ? 'fixed' : 'normal';
    default:
      return undefined;
  }
}

/**
 * The facts of the file the form would write for a source with `source` facts (as the inspector
 * gathered them): the writer's format and subformat, the planned size, no backing file (a
 * conversion flattens the chain), the source guest's partition table, an id only where the user
 * pinned one (-o uuid=; otherwise the writer makes a new one).
 */
export function plannedFacts(source: LintFacts, choice: TargetChoice, size: number, outputName: string): LintFacts {
  const { format, options } = choice;
  const facts: LintFacts = {
    file: outputName,
    format,
    virtualSize: size,
    fileSize: 0,
    partitionTable: source.partitionTable,
    ...(options.uuid && { uuid: options.uuid.toLowerCase() }),
  };
  if (format === 'ova') {
    const dot = outputName.lastIndexOf('.');
    let family = 'vmx-13';
    try {
      family = vmSettings(options, dot > 0 ? outputName.slice(0, dot) : outputName).family;
    } catch {
      // An option the writer refuses: the check before saving says so in its own words.
    }
    return {
      ...facts,
      container: 'ova',
      format: 'vmdk',
      subformat: 'streamOptimized',
      vmdkVersion: 3,
      ova: { ovfFirst: true, families: [family], virtualHardwareSection: true, manifest: 'sha256' },
    };
  }
  if (format === 'gcp-tar') {
    return { ...facts, container: 'gcp-tar', format: 'raw', tar: { members: [{ name: 'disk.raw', size, format: 'oldgnu' }] } };
  }
  const subformat = plannedSubformat(format, options);
  return {
    ...facts,
    subformat,
    ...(format === 'vmdk' && subformat === 'streamOptimized' && { vmdkVersion: 3 }),
    // A fixed VHD is its data and a 512-byte footer.
    ...(format === 'vpc' && subformat === 'fixed' && { fileSize: size + 512 }),
    ...(format === 'qcow2' && { clustersInOrder: true, dataFile: options.data_file || undefined }),
  };
}

/**
 * "UUID clashes within a drop" for the planned outputs of several dropped disks: the table's
 * clash rule (lintClashes) when the user pinned an id (-o uuid=, the same for every disk),
 * otherwise a pass, since each converted disk gets its own id, saying when the dropped disks
 * themselves share one (as they are, VirtualBox would refuse the second).
 */
export function dropClash(
  destination: TargetName,
  planned: LintFacts,
  plannedAll: readonly LintFacts[],
  sources: readonly LintFacts[],
): LintResult | undefined {
  if (sources.length < 2) return undefined;
  const target = findTarget(destination);
  if (planned.uuid) return lintClashes(target, plannedAll).get(planned.file);
  const shared = sources.filter((s) => s.uuid && sources.some((o) => o !== s && o.uuid === s.uuid));
  const note = shared.length
    ? ` (the dropped ${shared.map((s) => s.file).join(' and ')} share UUID ${shared[0]!.uuid}: as they are, ${target.name === 'hyperv' ? 'Hyper-V' : 'VirtualBox'} would refuse the second)`
    : '';
  return { rule: 'uuid-clash', status: 'pass', reason: `each converted disk gets its own new UUID${note}` };
}
