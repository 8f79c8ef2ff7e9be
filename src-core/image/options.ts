import { InvalidArgumentError } from '../io/errors.ts';
import type { CreateOptionSpec } from './types.ts';

const SUFFIX: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50, e: 2 ** 60 };

/** qemu-img sizes: a number with an optional k/M/G/T/P/E suffix (powers of 1024). */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgtpe]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new InvalidArgumentError(`invalid ${what} "${text}"`);
  const value = Math.round(Number(m[1]) * SUFFIX[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(`${what} "${text}" is too large`);
  return value;
}

export function parseBool(text: string | undefined, what: string): boolean {
  if (text === undefined) return false;
  const t = text.toLowerCase();
  if (['on', 'true', 'yes', '1', ''].includes(t)) return true;
  if (['off', 'false', 'no', '0'].includes(t)) return false;
  throw new InvalidArgumentError(`invalid value "${text}" for ${what} (use on or off)`);
}

/** Parses `key=val,key2=val2` as qemu-img -o does (`,,` escapes a comma). */
export function parseOptionString(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ',' && text[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (c === ',') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  for (const p of parts) {
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq < 0) out[p] = 'on';
    else out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

/** Refuses options a format does not know, naming them, as qemu-img does. */
export function checkOptions(format: string, options: Record<string, string>, specs: readonly CreateOptionSpec[]): void {
  for (const key of Object.keys(options)) {
    if (key === 'size' || key === 'backing_file' || key === 'backing_fmt') continue;
    const spec = specs.find((s) => s.name === key);
    if (!spec)
      throw new InvalidArgumentError(
        `invalid option "${key}" for format ${format} (known: ${specs.map((s) => s.name).join(', ') || 'none'})`,
      );
    if (spec.type === 'enum' && spec.values && !spec.values.includes(options[key]!)) {
      throw new InvalidArgumentError(`invalid value "${options[key]}" for ${key} (one of ${spec.values.join(', ')})`);
    }
  }
}
