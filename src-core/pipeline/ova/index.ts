import { baseName } from '../../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { findDriver } from '../../image/open.ts';
import type { FormatDriver } from '../../image/types.ts';
import { packageIdentity, packageIdentityFor, type PackageIdentity } from './identity.ts';
import { checkDiskCount } from './ovf.ts';
import { OVA_CREATE_OPTIONS, vmSettings } from './vmSettings.ts';
import { compressionStreamGzip, gcpTarDriver } from '../gcpTar.ts';
import { checkPackageCreate, diskLayout, PackageWriter, type PackageKind, type PackagePlan } from './writer.ts';

/**
 * `-O ova` and `-O ovf` (and `--target=esxi`): writer-only drivers convert() streams into, as the
 * Google Cloud tarball is. They live in the pipeline, not among the formats, because they carry
 * another format (VMDK) inside; the registry's `ova` driver is the reader.
 *
 * Several disks: the caller hands convert() one device with the disks at the starts
 * `diskLayout(sizes)` gives (`sequenceDevice`), and passes the same sizes here; each becomes
 * its own VMDK and its own <Disk> on the one controller.
 */
/**
 * `identity` pins the package's times and ids (tests); by default they come from the creation
 * options when the package is created: now and random, or fixed with `--reproducible`.
 * `forward` is forwardPackage's: one identity for both passes, and the first pass's findings.
 */
export function packageDriver(
  kind: PackageKind,
  diskSizes?: number[],
  identity?: PackageIdentity,
  forward?: {
    identity: (opts: Parameters<typeof packageIdentityFor>[0]) => PackageIdentity;
    plan?: () => PackagePlan | undefined;
    made?: (w: PackageWriter) => void;
  },
): FormatDriver {
  return {
    name: kind,
    label:
      kind === 'ova'
        ? 'OVA (OVF descriptor, manifest and stream VMDKs in one tar)'
        : 'OVF package (descriptor, stream VMDKs and manifest side by side)',
    title: kind.toUpperCase(),
    extensions: [kind],
    probe: () => 0,
    open: () => Promise.reject(new UnsupportedError('', `an ${kind.toUpperCase()} is read through the ova driver`)),
    createOptions: OVA_CREATE_OPTIONS,
    async create(sink, opts) {
      checkPackageCreate(kind, opts.filename, opts.compress, opts.backing);
      const sizes = diskSizes ?? [opts.virtualSize];
      const { spans, end } = diskLayout(sizes);
      if (end !== opts.virtualSize && !(sizes.length === 1 && end === Math.ceil(opts.virtualSize / 512) * 512))
        throw new InvalidArgumentError(
          `the disks of the package take ${end} bytes together, but ${opts.virtualSize} were given`,
          opts.filename,
        );
      const main = opts.filename === '-' ? 'vm.ova' : baseName(opts.filename);
      const stem = main.includes('.') ? main.slice(0, main.lastIndexOf('.')) : main;
      const settings = vmSettings(opts.options, stem);
      checkDiskCount(settings, sizes.length, opts.filename);
      const w = new PackageWriter({
        kind,
        sink,
        filename: opts.filename,
        resolver: opts.resolver,
        codecs: opts.codecs,
        settings,
        spans,
        identity: identity ?? forward?.identity(opts) ?? packageIdentityFor(opts, kind),
        plan: forward?.plan?.(),
      });
      forward?.made?.(w);
      if (!main.toLowerCase().endsWith(`.${kind}`))
        w.warnings.push(`${opts.filename} does not end in .${kind}; importers look for that extension`);
      return w;
    },
  };
}

/**
 * An OVA written front to back (to a pipe), in two passes as the front-to-back qcow2 is: `plan`
 * runs the conversion into a sink that keeps nothing and learns each disk's size and digest;
 * `write` then writes the descriptor and manifest first and every disk after its header. The
 * stream VMDKs are compressed twice.
 */
export function forwardPackage(diskSizes?: number[], identity?: PackageIdentity): { plan: FormatDriver; write: FormatDriver } {
  let first: PackageWriter | undefined;
  // One identity for both passes, made on the first: --reproducible's, or now with a random
  // seed for the disks' ids (each pass drawing its own CIDs would make different disks).
  let shared = identity;
  const pick = (opts: Parameters<typeof packageIdentityFor>[0]) =>
    (shared ??= opts.reproducible
      ? packageIdentityFor(opts, 'ova')
      : packageIdentity(Date.now() / 1000, { source: crypto.getRandomValues(new Uint8Array(32)) }));
  return {
    plan: packageDriver('ova', diskSizes, undefined, { identity: pick, made: (w) => (first = w) }),
    write: packageDriver('ova', diskSizes, undefined, {
      identity: pick,
      plan: () => {
        if (!first) throw new RangeError('OVA written in order: the planning pass has not run');
        return first.planned;
      },
    }),
  };
}

export { diskLayout, DISK_ALIGN, type PackageKind } from './writer.ts';
export { packageIdentity, packageIdentityFor, type PackageIdentity } from './identity.ts';

/** Writers the page offers that the registry (readers and writers of disk formats) does not hold. */
export const PAGE_ONLY_WRITERS: readonly string[] = ['gcp-tar'];

/**
 * The writer for a format name on the page: `ova` is the package writer (the registry's `ova`
 * driver only reads), `gcp-tar` the Google Cloud tarball through the platform's
 * CompressionStream; everything else is the registry's driver. (`ovf` writes several files and
 * several disks need several sources: both are the CLI's.)
 */
export function pageWriterFor(name: string, registry: readonly FormatDriver[]): FormatDriver {
  if (name === 'ova') return packageDriver('ova');
  if (name === 'gcp-tar') return gcpTarDriver(compressionStreamGzip);
  return findDriver(registry, name);
}
