import { InvalidArgumentError } from '../src-core/io/errors.ts';

/** Command-line spec: which flags take a value. Long options may be given as --x=v or --x v. */
export interface ArgSpec {
  withValue: string[];
  flags: string[];
}

export interface ParsedArgs {
  /** Options in order (repeatable ones such as --object and -o keep every value). */
  opts: [string, string][];
  positional: string[];
}

export function parseArgs(argv: string[], spec: ArgSpec): ParsedArgs {
  const opts: [string, string][] = [];
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    let name = a;
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      name = a.slice(0, eq);
      value = a.slice(eq + 1);
    }
    if (spec.flags.includes(name) && value === undefined) {
      opts.push([name, '']);
      continue;
    }
    if (!spec.withValue.includes(name)) {
      // Short options with the value attached: -Ovmdk, -fqcow2.
      const short = a.slice(0, 2);
      if (!a.startsWith('--') && a.length > 2 && spec.withValue.includes(short)) {
        opts.push([short, a.slice(2)]);
        continue;
      }
      throw new InvalidArgumentError(`unknown option ${name}`);
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new InvalidArgumentError(`option ${name} needs a value`);
    }
    opts.push([name, value]);
  }
  return { opts, positional };
}

export function optValue(p: ParsedArgs, ...names: string[]): string | undefined {
  let v: string | undefined;
  for (const [k, val] of p.opts) if (names.includes(k)) v = val;
  return v;
}

export function optValues(p: ParsedArgs, ...names: string[]): string[] {
  return p.opts.filter(([k]) => names.includes(k)).map(([, v]) => v);
}

export function hasFlag(p: ParsedArgs, ...names: string[]): boolean {
  return p.opts.some(([k]) => names.includes(k));
}
