import { baseName } from '../../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { findDriver } from '../../image/open.ts';
import type { FormatDriver } from '../../image/types.ts';
import { packageIdentityFor, type PackageIdentity } from './identity.ts';
import { checkDiskCount } from './ovf.ts';
import { OVA_CREATE_OPTIONS, vmSettings } from './vmSettings.ts';
import { compressionStreamGzip, gcpTarDriver } from '../gcpTar.ts';
import { checkPackageCreate, diskLayout, PackageWriter, type PackageKind } from './writer.ts';

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
 */
export function packageDriver(kind: PackageKind, diskSizes?: number[], identity?: PackageIdentity): FormatDriver {
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
      const main = baseName(opts.filename);
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
        identity: identity ?? packageIdentityFor(opts, kind),
      });
      if (!main.toLowerCase().endsWith(`.${kind}`))
        w.warnings.push(`${opts.filename} does not end in .${kind}; importers look for that extension`);
      return w;
    },
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
