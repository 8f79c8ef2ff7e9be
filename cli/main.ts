/**
 * The command line: parse (parse.ts, spec.ts: argv → a typed command object), then run the
 * command, whose module is imported only now, so `info` never loads the compression pool,
 * the wasm codecs or another command's code.
 */
import { errorLine, isDiskFerryError } from '../src-core/io/errors.ts';
import { commandHelp, parseCommandLine, type ParsedCommand } from './parse.ts';
import { COMMANDS, type CommandName } from './spec.ts';
import { UsageError } from './commands/types.ts';
import { setCliSignal } from './cancel.ts';

type Runner<N extends CommandName> = (cmd: Extract<ParsedCommand, { name: N }>, signal: AbortSignal) => Promise<number>;
type Loaders = { [N in CommandName]: () => Promise<Runner<N>> };

const RUNNERS: Loaders = {
  amend: async () => (await import('./commands/rewrite.ts')).amendCommand,
  check: async () => (await import('./commands/check.ts')).checkCommand,
  commit: async () => (await import('./commands/rewrite.ts')).commitCommand,
  compare: async () => (await import('./commands/compare.ts')).compareCommand,
  convert: async () => (await import('./commands/convert.ts')).convertCommand,
  create: async () => (await import('./commands/create.ts')).createCommand,
  dd: async () => (await import('./commands/dd.ts')).ddCommand,
  info: async () => (await import('./commands/info.ts')).infoCommand,
  lint: async () => (await import('./commands/lint.ts')).lintCommand,
  map: async () => (await import('./commands/map.ts')).mapCommand,
  measure: async () => (await import('./commands/measure.ts')).measureCommand,
  rebase: async () => (await import('./commands/rewrite.ts')).rebaseCommand,
  resize: async () => (await import('./commands/resize.ts')).resizeCommand,
  snapshot: async () => (await import('./commands/snapshot.ts')).snapshotCommand,
};

async function usage(): Promise<string> {
  const { drivers } = await import('../src-core/formats/registry.ts');
  const cmds = (Object.keys(COMMANDS) as CommandName[]).map((n) => `  ${n.padEnd(9)}${COMMANDS[n].description}`);
  return `DiskFerry — qemu-img-compatible disk image conversion

usage: diskferry <command> [options]   (diskferry <command> --help for its options)
${cmds.join('\n')}

Spellings are qemu-img 10.1's (long and short options) and 7.2's (convert -B, create -F).
ova:       --disk N|NAME picks a disk of an OVA (default: the first in the OVF)
secrets:   --object secret,id=ID,data=PASSWORD  or  --object secret,id=ID,file=PATH
safety:    names inside images (backing files, extents) may not leave the image's folder
           unless --allow-outside-paths is given.
urls:      an image may be an http:// or https:// URL (read with range requests); its
           backing files and extents come from the same server.
signals:   SIGINT and SIGTERM cancel and remove the unfinished output (exit 130, 143).
formats:   ${drivers.map((d) => d.name).join(' ')}
`;
}

/** Runs one command; returns the exit status (qemu-img's conventions). */
export async function main(argv: string[]): Promise<number> {
  let cmd;
  try {
    cmd = parseCommandLine(argv);
  } catch (e) {
    process.stderr.write(`diskferry${argv[0] && argv[0] in COMMANDS ? ` ${argv[0]}` : ''}: ${errorLine(e)}\n`);
    // lint keeps 1 for "a rule failed": a bad command line is 2 there.
    return argv[0] === 'lint' ? 2 : 1;
  }
  if (cmd.name === 'help') {
    process.stdout.write(cmd.command ? commandHelp(cmd.command) : await usage());
    // qemu-img with no command at all fails; an asked-for help succeeds.
    return argv.length ? 0 : 1;
  }
  if (cmd.name === 'version') {
    const { version } = await import('./version.ts');
    process.stdout.write(`diskferry version ${await version()} (qemu-img 10.1 compatible command line)\n`);
    return 0;
  }
  const abort = new AbortController();
  // SIGINT (Ctrl-C) and SIGTERM (kill, docker stop, Kubernetes) both cancel: the command stops,
  // removes what it was writing and exits 130 or 143 (128 + the signal's number).
  let signalled = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signalled = sig === 'SIGTERM' ? 143 : 130;
    abort.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  setCliSignal(abort.signal);
  try {
    const run = (await RUNNERS[cmd.name]()) as Runner<CommandName>;
    return await run(cmd as never, abort.signal);
  } catch (e) {
    process.stderr.write(`diskferry ${cmd.name}: ${errorLine(e)}\n`);
    if (!isDiskFerryError(e) && process.env.DISKFERRY_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    // compare reports errors as 2, everything else as 1 (qemu-img); a bad command line is 1.
    // lint's 1 means "a rule failed", so its errors and bad command lines are 2.
    if (cmd.name === 'lint' && !abort.signal.aborted) return 2;
    if (e instanceof UsageError) return 1;
    return cmd.name === 'compare' ? 2 : abort.signal.aborted ? signalled || 130 : 1;
  } finally {
    setCliSignal(undefined);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

// Run directly from sources (`tsx cli/main.ts`); the bundle's entry is cli/bin.ts.
const isEntry = import.meta.url.endsWith('/cli/main.ts') && !!process.argv[1]?.replace(/\\/g, '/').endsWith('cli/main.ts');
if (isEntry) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
