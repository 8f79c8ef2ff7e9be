// The target form: format, options, compression and presets. Each change is a plain edit of the
// store's `target`, kept consistent here (options that no longer apply go, Compress unticks where
// the target cannot be compressed), so the form, the estimate and the plan all read one choice.
import { optionApplies } from './formats.ts';
import { PRESETS } from './presets.ts';
import { initialTarget, useApp, type TargetChoice } from './store.ts';

const set = useApp.setState;
const get = useApp.getState;

/** Options and presets change the target; verify and the output password do not undo a preset. */
export function updateTarget(patch: Partial<TargetChoice>): void {
  set({ target: { ...get().target, ...patch } });
}

export function setCompress(compress: boolean): void {
  set({ target: { ...get().target, compress, preset: undefined } });
}

export function setTargetFormat(format: string): void {
  // Options belong to a format: a new format starts from its defaults, uncompressed.
  set({ target: { ...get().target, format, options: {}, compress: false, preset: undefined } });
}

export function setOption(name: string, value: string | undefined): void {
  const options = { ...get().target.options };
  if (value === undefined || value === '') delete options[name];
  else options[name] = value;
  // Options that mean nothing any more (encryption details once encryption is off) go too.
  for (const k of Object.keys(options)) if (!optionApplies(k, options)) delete options[k];
  const target = { ...get().target, options, preset: undefined };
  // A subformat that cannot be compressed (VMDK other than streamOptimized) unticks Compress.
  if (!compressAllowed(target)) target.compress = false;
  set({ target });
}

/** Whether the target as chosen can be compressed (qemu-img -c). */
export function compressAllowed(t: TargetChoice): boolean {
  const c = get().formats.find((f) => f.name === t.format)?.compression;
  if (!c) return false;
  return !c.subformat || !t.options.subformat || t.options.subformat === c.subformat;
}

/** The output keeps the source's encryption: qcow2 with LUKS, the one format QEMU boots encrypted. */
export function encryptOutput(): void {
  const t = get().target;
  set({ target: { ...t, format: 'qcow2', options: { 'encrypt.format': 'luks' }, compress: false, preset: undefined } });
}

export function applyPreset(id: string): void {
  const p = PRESETS.find((x) => x.id === id);
  const fmt = get().formats.find((f) => f.name === p?.target);
  if (!p || !fmt) return;
  // Only options the target's writer declares: a preset must never make the writer refuse.
  const known = new Set(fmt.createOptions.map((o) => o.name));
  const options = Object.fromEntries(Object.entries(p.options).filter(([k]) => known.has(k)));
  const t = get().target;
  set({
    target: {
      ...initialTarget,
      format: p.target,
      options,
      compress: p.compress,
      preset: id,
      destination: p.destination,
      snapshot: t.snapshot,
      verify: t.verify,
      reproducible: t.reproducible,
      outputPassword: t.outputPassword,
    },
  });
}
