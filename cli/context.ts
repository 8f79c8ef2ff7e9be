import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ByteSource } from '../src-core/io/bytes.ts';
import { InvalidArgumentError } from '../src-core/io/errors.ts';
import { utf8Encode } from '../src-core/io/struct.ts';
import { parseOptionString } from '../src-core/image/options.ts';
import { openImage } from '../src-core/image/open.ts';
import type { BlockDevice, OpenContext, Secrets } from '../src-core/image/types.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { nodeCodecs } from './nodeCodecs.ts';
import { NodeFileSource, NodeResolver } from './nodeFiles.ts';
import { optValue, optValues, type ParsedArgs } from './args.ts';

/** --object secret,id=ID,data=…|file=… → secrets by id. Other object types are refused. */
export function parseSecrets(p: ParsedArgs): Secrets {
  const secrets: Secrets = new Map();
  for (const text of optValues(p, '--object')) {
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
  for (const [k, v] of Object.entries(o)) if (k !== 'driver' && k !== 'filename' && !k.startsWith('file.') && !k.startsWith('encrypt.')) driverOptions[k] = v;
  return { filename, format: o.driver, keySecret: o['encrypt.key-secret'] ?? (o.driver === 'luks' ? o['key-secret'] : undefined), driverOptions };
}

export interface OpenedImage {
  device: BlockDevice;
  source: ByteSource;
}

/** Opens an image file and its backing chain with the CLI's resolver and codecs. */
export async function openCliImage(
  spec: ImageSpec,
  p: ParsedArgs,
  extra: Partial<OpenContext> = {},
): Promise<OpenedImage> {
  const secrets = parseSecrets(p);
  let password: Uint8Array | undefined;
  if (spec.keySecret) {
    password = secrets.get(spec.keySecret);
    if (!password) throw new InvalidArgumentError(`no secret with id "${spec.keySecret}" (give it with --object secret,id=…)`);
  }
  const allowOutside = p.opts.some(([k]) => k === '--allow-outside-paths');
  const resolver = new NodeResolver([path.dirname(path.resolve(spec.filename))], allowOutside);
  const source = await NodeFileSource.open(spec.filename);
  const snapshotArg = optValue(p, '-l');
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
}

/** -l snapshot.name=NAME, -l snapshot.id=ID, or -l NAME_OR_ID. */
export function parseSnapshotArg(text: string): { id?: string; name?: string } {
  if (text.includes('snapshot.')) {
    const o = parseOptionString(text);
    return { id: o['snapshot.id'], name: o['snapshot.name'] };
  }
  return { name: text };
}
