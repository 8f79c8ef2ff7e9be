import type { FormatSummary } from '../../workers/protocol.ts';

/**
 * The order formats are offered in: by how often people need them (KVM/Proxmox, VMware,
 * Hyper-V, Azure/Virtual PC, VirtualBox, raw), then the rarer ones, then anything new.
 */
const ORDER = ['qcow2', 'vmdk', 'vhdx', 'vpc', 'vdi', 'raw', 'qcow', 'parallels', 'qed', 'luks', 'cloop', 'cow'];

export function orderFormats(formats: readonly FormatSummary[]): FormatSummary[] {
  const rank = (f: FormatSummary) => {
    const i = ORDER.indexOf(f.name);
    return i < 0 ? ORDER.length : i;
  };
  return [...formats].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

/** "VHD" for vpc: the name a user reads; the CLI's name goes beside it where it helps. */
export function formatTitle(formats: readonly FormatSummary[], name: string): string {
  return formats.find((f) => f.name === name)?.title ?? name;
}

/** "VHD (vpc)" where the names differ, else just the name. */
export function titleWithCliName(formats: readonly FormatSummary[], name: string): string {
  const t = formatTitle(formats, name);
  return t.toLowerCase() === name ? t : `${t} (${name})`;
}

/** Deprecated spellings the form never offers (qemu-img still takes them on the command line). */
const DEPRECATED = new Set(['encryption']);

/**
 * Whether an option means anything with the others as chosen: the encryption details only once
 * encryption is on, and the LUKS ones only for LUKS. The rest always apply.
 */
export function optionApplies(name: string, options: Readonly<Record<string, string>>): boolean {
  if (DEPRECATED.has(name)) return false;
  if (!name.startsWith('encrypt.') || name === 'encrypt.format') return true;
  const format = options['encrypt.format'];
  if (!format) return false;
  return name === 'encrypt.key-secret' || format === 'luks';
}
