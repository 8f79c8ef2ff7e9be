import { sha256 } from '@noble/hashes/sha2.js';
import { identityFor } from '../../image/identity.ts';
import type { CreateOptions, ReproducibleSeed } from '../../image/types.ts';
import { utf8Encode } from '../../io/struct.ts';

/**
 * Every name, id and time an OVA/OVF package carries besides the guest's bytes, in one place.
 * The OVF ids themselves are positional (file1, vmdisk1 …) and so the same on every run; what
 * varies is the tar members' mtime and, inside each disk, the VMDK writer's CID, which the VMDK
 * writer derives from the seed it is given (image/identity.ts).
 */
export interface PackageIdentity {
  /** Seconds since 1970 for every tar member header. */
  mtime: number;
  /** ovf:id of the n-th <File> (1-based). */
  fileId(n: number): string;
  /** ovf:diskId of the n-th <Disk>. */
  diskId(n: number): string;
  /** ovf:id of the VirtualSystem (and vssd:VirtualSystemIdentifier). */
  systemId(vmName: string): string;
  /** --reproducible: the seed the n-th disk's VMDK derives its ids from; undefined gives random ids. */
  diskSeed(n: number): ReproducibleSeed | undefined;
}

export function packageIdentity(mtime: number = Date.now() / 1000, seed?: ReproducibleSeed): PackageIdentity {
  return {
    mtime: Math.floor(mtime),
    fileId: (n) => `file${n}`,
    diskId: (n) => `vmdisk${n}`,
    systemId: (vmName) => vmName,
    // Each disk its own seed: two disks of one VM (of equal size) must not share a CID.
    diskSeed: (n) => (seed ? { source: sha256(concat(seed.source, utf8Encode(`ova disk ${n}`))) } : undefined),
  };
}

/**
 * The identity a package gets from its creation options: now and random ids, or with
 * `--reproducible` (`opts.reproducible`) the fixed time of image/identity.ts and disk ids
 * derived from the source's fingerprint, so the same input gives the same package bytes.
 */
export function packageIdentityFor(opts: Pick<CreateOptions, 'reproducible' | 'virtualSize' | 'options'>, kind: string): PackageIdentity {
  return packageIdentity(identityFor(opts, kind).time() / 1000, opts.reproducible);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const all = new Uint8Array(a.length + b.length);
  all.set(a, 0);
  all.set(b, a.length);
  return all;
}
