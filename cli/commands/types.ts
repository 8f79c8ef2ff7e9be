import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import type { ParsedCommand } from '../parse.ts';
import type { CommandName } from '../spec.ts';

/** A parsed command line of one subcommand. */
export type Cmd<N extends CommandName> = Extract<ParsedCommand, { name: N }>;

/** A command line qemu-img rejects before opening anything: exit 1 for every command. */
export class UsageError extends InvalidArgumentError {}

/** The operands, checked for count (qemu-img's "Expecting one image file name"). */
export function expectArgs(args: string[], min: number, max: number, message: string): string[] {
  if (args.length < min || args.length > max) throw new UsageError(message);
  return args;
}

/** --output human|json → true for json. */
export function outputJson(v: string | undefined): boolean {
  if (v === undefined || v === 'human') return false;
  if (v === 'json') return true;
  throw new UsageError(`--output expects 'human' or 'json', not '${v}'`);
}
