import { errorLine, isDiskFerryError } from '../src-core/io/errors.ts';
import { checkCommand } from './commands/check.ts';
import { compareCommand } from './commands/compare.ts';
import { convertCommand } from './commands/convert.ts';
import { infoCommand } from './commands/info.ts';
import { mapCommand } from './commands/map.ts';
import { measureCommand } from './commands/measure.ts';
import { snapshotCommand } from './commands/snapshot.ts';
import { drivers } from '../src-core/formats/registry.ts';

const USAGE = `DiskFerry — qemu-img-compatible disk image conversion

usage: diskferry <command> [options]
  info [-f FMT] [--output=json] [--backing-chain] [--disk N|NAME] FILE
  convert [-f FMT] -O FMT [-c] [-o k=v,…] [-B FILE -F FMT] [-l snapshot.name=NAME] [-p] [--verify] [--disk N|NAME] SRC DST
  compare [-f FMT] [-F FMT] [-s] A B
  check [-f FMT] [--output=json] FILE
  map [-f FMT] [--output=json] FILE
  measure [--output=json] -O FMT [-o k=v,…] (SRC | --size SIZE)
  snapshot -l FILE

ova:       --disk N|NAME picks a disk of an OVA (default: the first in the OVF)
secrets:   --object secret,id=ID,data=PASSWORD  or  --object secret,id=ID,file=PATH
safety:    names inside images (backing files, extents) may not leave the image's folder
           unless --allow-outside-paths is given.
formats:   ${drivers.map((d) => d.name).join(' ')}
`;

type Command = (argv: string[], signal: AbortSignal) => Promise<number>;
const COMMANDS: Record<string, Command> = {
  info: infoCommand,
  convert: convertCommand,
  compare: compareCommand,
  check: checkCommand,
  map: mapCommand,
  measure: measureCommand,
  snapshot: snapshotCommand,
};

/** Runs one command; returns the exit status (qemu-img's conventions). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 1;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`diskferry: unknown command "${name}"\n\n${USAGE}`);
    return 1;
  }
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await cmd(rest, abort.signal);
  } catch (e) {
    process.stderr.write(`diskferry ${name}: ${errorLine(e)}\n`);
    if (!isDiskFerryError(e) && process.env.DISKFERRY_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    // compare reports errors as 2, everything else as 1 (qemu-img).
    return name === 'compare' ? 2 : abort.signal.aborted ? 130 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const isEntry = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (isEntry) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
