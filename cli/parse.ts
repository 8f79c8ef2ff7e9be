/**
 * The one command-line parser: argv → a typed command object, nothing run. GNU getopt_long
 * rules as qemu-img uses them: options and operands in any order, `--` ends options, short
 * flags cluster (-pc), short values attach or follow (-Oqcow2, -O qcow2), long values after
 * `=` or as the next word, long names may be shortened to a unique prefix. An operand that
 * looks like a negative number (resize FILE -1G) stays an operand.
 */
import { InvalidArgumentError } from '../src-core/io/errors.ts';
import { COMMANDS, type CommandName, type OptDef, type OptSpec, type Opts, type OptsOf } from './spec.ts';

export type ParsedCommand = { [N in CommandName]: { name: N; opts: OptsOf<N>; args: string[] } }[CommandName];

export type ParsedLine = ParsedCommand | { name: 'help'; command?: CommandName } | { name: 'version' };

const asList = (v: string | readonly string[] | undefined): readonly string[] => (v === undefined ? [] : typeof v === 'string' ? [v] : v);

export function isCommand(name: string): name is CommandName {
  return Object.prototype.hasOwnProperty.call(COMMANDS, name);
}

/** Parses a whole command line (without the program name). */
export function parseCommandLine(argv: readonly string[]): ParsedLine {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    return { name: 'help', command: rest[0] && isCommand(rest[0]) ? rest[0] : undefined };
  }
  if (first === '-V' || first === '--version' || first === 'version') return { name: 'version' };
  if (!isCommand(first)) throw new InvalidArgumentError(`unknown command "${first}" (diskferry --help lists them)`);
  if (rest.includes('-h') || rest.includes('--help')) {
    // qemu-img prints a command's help as soon as it meets -h, whatever else is there.
    const i = Math.min(...['-h', '--help'].map((h) => (rest.includes(h) ? rest.indexOf(h) : Infinity)));
    const dd = rest.indexOf('--');
    if (dd < 0 || i < dd) return { name: 'help', command: first };
  }
  const { opts, args } = parseOptions(rest, COMMANDS[first].options);
  return { name: first, opts, args } as ParsedCommand;
}

/** Parses options against one spec. */
export function parseOptions<S extends OptSpec>(argv: readonly string[], spec: S): { opts: Opts<S>; args: string[] } {
  const byShort = new Map<string, [string, OptDef]>();
  const byLong = new Map<string, [string, OptDef]>();
  const opts: Record<string, string | string[] | boolean | undefined> = {};
  for (const [key, def] of Object.entries(spec)) {
    for (const s of asList(def.short)) byShort.set(s, [key, def]);
    for (const l of asList(def.long)) byLong.set(l, [key, def]);
    opts[key] = def.multi ? [] : def.arg ? undefined : false;
  }
  const set = (key: string, def: OptDef, value: string | undefined) => {
    if (def.multi) (opts[key] as string[]).push(value!);
    else opts[key] = def.arg ? value : true;
  };
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      let hit = byLong.get(name);
      if (!hit) {
        const cands = [...byLong.keys()].filter((l) => l.startsWith(name));
        const keys = new Set(cands.map((c) => byLong.get(c)![0]));
        if (keys.size > 1) throw new InvalidArgumentError(`option '--${name}' is ambiguous (${cands.map((c) => `--${c}`).join(', ')})`);
        if (!cands.length) throw new InvalidArgumentError(`unrecognized option '--${name}'`);
        hit = byLong.get(cands[0]!)!;
      }
      const [key, def] = hit;
      if (!def.arg && eq >= 0 && def.valueTo) {
        const value = a.slice(eq + 1);
        if (!def.valueTo.values.includes(value))
          throw new InvalidArgumentError(
            `option '--${name}' takes no value or ${def.valueTo.values.map((v) => `=${v}`).join(', ')}, not "${value}"`,
          );
        opts[def.valueTo.key] = value;
        continue;
      }
      if (!def.arg) {
        if (eq >= 0) throw new InvalidArgumentError(`option '--${name}' doesn't allow an argument`);
        set(key, def, undefined);
        continue;
      }
      const value = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new InvalidArgumentError(`option '--${name}' requires an argument`);
      set(key, def, value);
      continue;
    }
    if (a.length < 2 || a[0] !== '-' || (/^-\d/.test(a) && !byShort.has(a[1]!))) {
      args.push(a);
      continue;
    }
    // A cluster of short options: -pc, -Oqcow2, -O qcow2.
    for (let k = 1; k < a.length; k++) {
      const letter = a[k]!;
      const hit = byShort.get(letter);
      if (!hit) throw new InvalidArgumentError(`invalid option -- '${letter}'`);
      const [key, def] = hit;
      if (!def.arg) {
        set(key, def, undefined);
        continue;
      }
      let value: string | undefined = a.slice(k + 1);
      if (!value) value = argv[++i];
      if (value === undefined) throw new InvalidArgumentError(`option requires an argument -- '${letter}'`);
      set(key, def, value);
      break;
    }
  }
  return { opts: opts as Opts<S>, args };
}

/** A command's --help, laid out as qemu-img 10.1's cmd_help(). */
export function commandHelp(name: CommandName): string {
  const c = COMMANDS[name];
  const lines = [
    'Usage:',
    `  diskferry ${name} ${c.syntax}`,
    `${c.description}.`,
    '',
    'Arguments:',
    '  -h, --help',
    '     print this help and exit',
  ];
  for (const def of Object.values(c.options) as OptDef[]) {
    if (def.short === undefined && def.long === undefined) continue;
    const names = [...asList(def.short).map((s) => `-${s}`), ...asList(def.long).map((l) => `--${l}`)].join(', ');
    lines.push(`  ${names}${def.arg ? ` ${def.meta ?? 'VALUE'}` : ''}`, `     ${def.help}`);
  }
  for (const [arg, text] of c.args) lines.push(`  ${arg}`, `     ${text}`);
  return lines.join('\n') + '\n';
}
