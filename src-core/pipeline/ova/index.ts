import { baseName } from '../../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { findDriver } from '../../image/open.ts';
import type { FormatDriver, ReproducibleSeed } from '../../image/types.ts';
import { packageIdentity, type PackageIdentity } from './identity.ts';
import { checkDiskCount } from './ovf.ts';
import { OVA_CREATE_OPTIONS, vmSettings } from './vmSettings.ts';
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
export function packageDriver(
  kind: PackageKind,
  diskSizes?: number[],
  identity: PackageIdentity = packageIdentity(),
  forward?: { plan?: () => PackagePlan | undefined; made?: (w: PackageWriter) => void; diskSeed?: ReproducibleSeed },
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
        identity,
        plan: forward?.plan?.(),
        diskSeed: forward?.diskSeed,
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
export function forwardPackage(
  diskSizes?: number[],
  identity: PackageIdentity = packageIdentity(),
): { plan: FormatDriver; write: FormatDriver } {
  let first: PackageWriter | undefined;
  // One random seed for the disks' ids in both passes (else each pass draws its own CIDs).
  const diskSeed = { source: crypto.getRandomValues(new Uint8Array(32)) };
  return {
    plan: packageDriver('ova', diskSizes, identity, { made: (w) => (first = w), diskSeed }),
    write: packageDriver('ova', diskSizes, identity, {
      diskSeed,
      plan: () => {
        if (!first) throw new RangeError('OVA written in order: the planning pass has not run');
        return first.planned;
      },
    }),
  };
}

export { diskLayout, DISK_ALIGN, type PackageKind } from './writer.ts';
export { packageIdentity, type PackageIdentity } from './identity.ts';

/**
 * The writer for a format name on the page: `ova` is the package writer (the registry's `ova`
 * driver only reads); everything else is the registry's driver. (`ovf` writes several files and
 * several disks need several sources: both are the CLI's.)
 */
export function pageWriterFor(name: string, registry: readonly FormatDriver[]): FormatDriver {
  return name === 'ova' ? packageDriver('ova') : findDriver(registry, name);
}
