import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ByteSource, FileResolver } from '../src-core/io/bytes.ts';
import { isHttpUrl } from '../src-core/io/httpSource.ts';
import { InvalidArgumentError } from '../src-core/io/errors.ts';
import { utf8Encode } from '../src-core/io/struct.ts';
import { parseOptionString } from '../src-core/image/options.ts';
import { openImage } from '../src-core/image/open.ts';
import type { BlockDevice, OpenContext, Secrets } from '../src-core/image/types.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { nodeCodecs } from './nodeCodecs.ts';
import { NodeFileSource, NodeResolver } from './nodeFiles.ts';
import { nodeScratch } from './nodeScratch.ts';
import { cliSignal } from './cancel.ts';
import { unwrapContainer, type ContainerProgress } from '../src-core/image/containers/index.ts';

/** `-` names standard input as a source (cli/stdin.ts) and standard output as convert's target (cli/stdio.ts). */
export const STDIO = '-';

/** The options every image-opening command shares (a subset of each command's opts). */
export interface CommonOpts {
  object?: string[];
  allowOutside?: boolean;
  /** -l: an internal snapshot to read. */
  snapshot?: string;
  /** -p and -q: whether unpacking a compressed container shows progress. */
  progress?: boolean;
  quiet?: boolean;
  /** --verify reads the source twice, so a raw image in a container is unpacked, not streamed. */
  verify?: boolean;
  /** The disk is read once, front to back: a stream VMDK on standard input may be read as it arrives. */
  forwardStdin?: boolean;
}

/** --object secret,id=ID,data=…|file=… → secrets by id. Other object types are refused. */
export function parseSecrets(p: CommonOpts): Secrets {
  const secrets: Secrets = new Map();
  for (const text of p.object ?? []) {
    const o = parseOptionString(text);
    const type = Object.keys(o)[0];
    if (type !== 'secret' || !o.id) throw new InvalidArgumentError(`unsupported --object "${text}" (only secret,id=…,data=…|file=…)`);
    if (o.data !== undefined) secrets.set(o.id, utf8Encode(o.data));
    else if (o.file !== undefined) secrets.set(o.id, new Uint8Array(readFileSync(o.file)));
    else throw new InvalidArgumentError(`secret "${o.id}" needs data= or file=`);
  }
  return secrets;
}

/** An image named on the command line: a path, or with --image-opts a driver=…,file.filename=… string. */
export interface ImageSpec {
  filename: string;
  format?: string;
  keySecret?: string;
  /** Other --image-opts keys, for the format driver (file.* and encrypt.* are ours). */
  driverOptions?: Record<string, string>;
}

export function imageSpec(arg: string, imageOpts: boolean, format: string | undefined): ImageSpec {
  if (!imageOpts) return { filename: arg, format };
  const o = parseOptionString(arg);
  const filename = o['file.filename'] ?? o.filename;
  if (!filename) throw new InvalidArgumentError(`--image-opts "${arg}" has no file.filename`);
  const driverOptions: Record<string, string> = {};
  for (const [k, v] of Object.entries(o))
    if (k !== 'driver' && k !== 'filename' && !k.startsWith('file.') && !k.startsWith('encrypt.')) driverOptions[k] = v;
  return {
    filename,
    format: o.driver,
    keySecret: o['encrypt.key-secret'] ?? (o.driver === 'luks' ? o['key-secret'] : undefined),
    driverOptions,
  };
}

export interface OpenedImage {
  device: BlockDevice;
  /** The file under the device; absent when the disk is read as it arrives (a stream VMDK on stdin). */
  source?: ByteSource;
}

/** Opens an image file and its backing chain with the CLI's resolver and codecs. */
export async function openCliImage(
  spec: ImageSpec,
  p: CommonOpts,
  extra: Partial<OpenContext> = {},
  /** Where a compressed container's image is unpacked when it needs random access (beside the output). */
  scratchDir?: string,
): Promise<OpenedImage> {
  const secrets = parseSecrets(p);
  let password: Uint8Array | undefined;
  if (spec.keySecret) {
    password = secrets.get(spec.keySecret);
    if (!password) throw new InvalidArgumentError(`no secret with id "${spec.keySecret}" (give it with --object secret,id=…)`);
  }
  const allowOutside = !!p.allowOutside;
  let opened: { file: ByteSource; resolver: FileResolver };
  if (isHttpUrl(spec.filename)) {
    // http(s):// URLs are read with ranged GETs; their companions are fetched relative to the URL.
    opened = await (await import('./httpFiles.ts')).openUrl(spec.filename, allowOutside);
  } else if (spec.filename === STDIO) {
    // Standard input (cli/stdin.ts): a stream VMDK may be read as it arrives, anything else is
    // read in place or from a scratch copy; what it names resolves from the current folder.
    const { openStdin } = await import('./stdin.ts');
    const stdin = await openStdin({
      scratchDir,
      signal: cliSignal(),
      forward: !!p.forwardStdin && (spec.format === undefined || spec.format === 'vmdk'),
      codecs: nodeCodecs,
    });
    if ('device' in stdin) return { device: stdin.device };
    opened = { file: stdin.file, resolver: new NodeResolver([path.resolve('.')], allowOutside) };
  } else {
    opened = {
      file: await NodeFileSource.open(spec.filename),
      resolver: new NodeResolver([path.dirname(path.resolve(spec.filename))], allowOutside),
    };
  }
  const { file, resolver } = opened;
  // A .gz/.xz/.zst/.bz2/.zip holding an image opens as that image (-f raw keeps the bytes as they are).
  const onProgress = p.progress && !p.quiet ? unpackProgress(spec.filename) : undefined;
  const source =
    spec.format === 'raw'
      ? file
      : await unwrapContainer(file, { drivers, scratch: nodeScratch(scratchDir), randomAccess: !!p.verify, onProgress });
  const snapshotArg = p.snapshot;
  try {
    const device = await openImage(source, drivers, {
      format: spec.format,
      resolver,
      codecs: nodeCodecs,
      password,
      snapshot: snapshotArg ? parseSnapshotArg(snapshotArg) : undefined,
      driverOptions: spec.driverOptions,
      ...extra,
    });
    return { device, source };
  } catch (e) {
    await source.close?.();
    throw e;
  }
}

/** -l snapshot.name=NAME, -l snapshot.id=ID, or -l NAME_OR_ID. */
export function parseSnapshotArg(text: string): { id?: string; name?: string } {
  if (text.includes('snapshot.')) {
    const o = parseOptionString(text);
    return { id: o['snapshot.id'], name: o['snapshot.name'] };
  }
  return { name: text };
}

/** -p while a container is measured or unpacked before the conversion starts. */
function unpackProgress(name: string): (p: ContainerProgress) => void {
  let last = -1;
  return (p) => {
    if (p.phase === 'stream') return;
    const pct = p.compressedTotal ? Math.floor((1000 * p.compressedDone) / p.compressedTotal) / 10 : 100;
    if (pct === last) return;
    last = pct;
    process.stderr.write(`\r    (${p.phase === 'measure' ? 'reading' : 'unpacking'} ${path.basename(name)}: ${pct.toFixed(1)}/100%)   `);
  };
}
