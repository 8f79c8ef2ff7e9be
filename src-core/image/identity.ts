import { sha256 } from '@noble/hashes/sha2.js';
import { InvalidArgumentError } from '../io/errors.ts';
import { guidFromString, uuidToString } from '../io/guid.ts';
import { utf8Encode } from '../io/struct.ts';
import type { CreateOptions, CreateOptionSpec } from './types.ts';

/**
 * The one place writers get their ids and timestamps from. Normally they are random and now;
 * with `--reproducible` (`CreateOptions.reproducible`) every id is derived from a SHA-256 of
 * the source's fingerprint, the output format, its virtual size, the -o options and a label
 * naming the id, and every timestamp is 2000-01-01T00:00:00Z (VHD's epoch: its field is 0).
 * The same input and settings then give the same bytes; two different disks give different
 * ids because their fingerprints differ (pipeline/fingerprint.ts).
 */

/** 2000-01-01T00:00:00Z, the fixed time of reproducible mode. */
export const REPRODUCIBLE_TIME_MS = Date.UTC(2000, 0, 1);

export interface Identity {
  readonly reproducible: boolean;
  /** A version-4-shaped UUID in RFC 4122 (big-endian) byte order, named by `label`. */
  uuid(label: string): Uint8Array;
  /** The same id in the Microsoft GUID layout (first three fields little-endian: VDI, VHDX). */
  guid(label: string): Uint8Array;
  /** Milliseconds since 1970 for "created"/"modified" fields. */
  time(): number;
}

/** The `-o uuid=` option, shared by the drivers that store an image UUID. */
export function uuidOption(help: string): CreateOptionSpec {
  return { name: 'uuid', type: 'string', help };
}

function shape(b: Uint8Array): Uint8Array {
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}

/** RFC 4122 byte order → Microsoft layout (the same text form). */
export function toGuidLayout(uuid: Uint8Array): Uint8Array {
  return guidFromString(uuidToString(uuid));
}

export function identityFor(opts: Pick<CreateOptions, 'reproducible' | 'virtualSize' | 'options'>, format: string): Identity {
  const seed = opts.reproducible;
  if (!seed) {
    const uuid = () => shape(crypto.getRandomValues(new Uint8Array(16)));
    return { reproducible: false, uuid, guid: () => toGuidLayout(uuid()), time: () => Date.now() };
  }
  const settings = Object.entries(opts.options)
    .filter(([k]) => k !== 'uuid')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  const head = utf8Encode(`diskferry identity v1\n${format}\n${opts.virtualSize}\n${settings}\n`);
  const uuid = (label: string): Uint8Array => {
    const l = utf8Encode(label);
    const all = new Uint8Array(head.length + seed.source.length + l.length);
    all.set(head, 0);
    all.set(seed.source, head.length);
    all.set(l, head.length + seed.source.length);
    return shape(sha256(all).slice(0, 16));
  };
  return { reproducible: true, uuid, guid: (label) => toGuidLayout(uuid(label)), time: () => REPRODUCIBLE_TIME_MS };
}

/** `-o uuid=TEXT` as RFC 4122 bytes, or undefined when not given; anything else than a UUID is a one-line error. */
export function parseUuidOption(opts: Pick<CreateOptions, 'options' | 'filename'>): Uint8Array | undefined {
  const text = opts.options.uuid;
  if (text === undefined) return undefined;
  const h = text.replace(/^\{(.*)\}$/, '$1');
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(h))
    throw new InvalidArgumentError(`invalid uuid "${text}" (use the form 01234567-89ab-cdef-0123-456789abcdef)`, opts.filename);
  const hex = h.replace(/-/g, '');
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  if (b.every((x) => x === 0)) throw new InvalidArgumentError('invalid uuid: the nil UUID means "no id" to every format', opts.filename);
  return b;
}

/** Refuses reproducible mode where the format needs secret randomness (LUKS keys and salts). */
export function refuseReproducibleSecrets(opts: Pick<CreateOptions, 'reproducible' | 'filename'>, what: string): void {
  if (opts.reproducible)
    throw new InvalidArgumentError(
      `--reproducible cannot make ${what}: its keys and salts must be secret random bytes, never derived from the input`,
      opts.filename,
    );
}
