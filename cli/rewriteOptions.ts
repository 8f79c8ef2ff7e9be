/**
 * The creation options that rebuild an image like the one given, per format: what rewrite.ts
 * needs to write a changed copy of it. What an image keeps that no option recreates (a VDI's
 * UUIDs, a VMDK's CID and adapter type, a VHD's creator) comes out new, as it does when
 * qemu-img writes into such an image (QEMU gives a VMDK a new CID on its first write).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UnsupportedError } from '../src-core/io/errors.ts';
import { parseDescriptor } from '../src-core/formats/vmdk/descriptor.ts';
import type { BlockDevice, ImageInfo } from '../src-core/image/types.ts';

type Extra = Record<string, unknown>;
type OptionsOf = (info: ImageInfo, extra: Extra, file: string) => Record<string, string>;

const qcow2Options: OptionsOf = (info, d, file) => {
  if (d['data-file']) throw new UnsupportedError(file, 'has an external data file; DiskFerry does not rewrite those');
  if (Array.isArray(d.bitmaps) && d.bitmaps.length)
    throw new UnsupportedError(file, 'has persistent bitmaps, which DiskFerry cannot rewrite (they would be lost)');
  const options: Record<string, string> = {};
  if (info['cluster-size']) options.cluster_size = String(info['cluster-size']);
  if (typeof d.compat === 'string') options.compat = d.compat;
  if (typeof d['refcount-bits'] === 'number') options.refcount_bits = String(d['refcount-bits']);
  if (typeof d['compression-type'] === 'string') options.compression_type = d['compression-type'];
  if (d['extended-l2'] === true) options.extended_l2 = 'on';
  if (d['lazy-refcounts'] === true) options.lazy_refcounts = 'on';
  return options;
};

const OPTIONS_OF: Record<string, OptionsOf> = {
  raw: () => ({}),
  qcow2: qcow2Options,
  // qemu-img offers no options for qcow but encryption, which is refused before this.
  qcow: () => ({}),
  qed: (info, x) => ({ cluster_size: String(info['cluster-size']), table_size: String(x['qed-table-size']) }),
  vdi: (_info, x, file) => {
    if (x['vdi-type'] !== 'normal' && x['vdi-type'] !== 'fixed')
      throw new UnsupportedError(file, `is a ${String(x['vdi-type'])} VDI; DiskFerry rewrites only normal and fixed ones`);
    return { static: x['vdi-type'] === 'fixed' ? 'on' : 'off' };
  },
  vpc: (_info, x, file) => {
    if (x['vhd-disk-type'] === 'differencing') throw new UnsupportedError(file, 'is a differencing VHD; DiskFerry does not rewrite those');
    const options: Record<string, string> = { subformat: String(x['vhd-disk-type']) };
    if (x['vhd-size-from'] === 'current-size') options.force_size = 'on';
    return options;
  },
  vhdx: (_info, x, file) => {
    if (x.subformat === 'differencing') throw new UnsupportedError(file, 'is a differencing VHDX; DiskFerry does not rewrite those');
    return { subformat: String(x.subformat), block_size: String(x['block-size']), log_size: String(x['log-size']) };
  },
  vmdk: (info, _x, file) => {
    const d = (info['format-specific']?.data ?? {}) as Extra;
    const type = d['create-type'];
    // One file: a rewrite of a descriptor with extents would have to recreate every extent file.
    if (type !== 'monolithicSparse' && type !== 'streamOptimized')
      throw new UnsupportedError(file, `is a ${String(type)} VMDK; DiskFerry rewrites only monolithicSparse and streamOptimized ones`);
    return { subformat: type };
  },
};

/** The creation options of an image like this one; refuses what a rewrite would lose. */
export function creationOptions(layer: BlockDevice): Record<string, string> {
  const info = layer.info();
  const file = layer.filename;
  if (info.snapshots?.length)
    throw new UnsupportedError(file, 'has internal snapshots, which DiskFerry cannot rewrite (they would be lost)');
  if (info.encrypted) throw new UnsupportedError(file, 'is encrypted; DiskFerry does not rewrite encrypted images');
  const of = OPTIONS_OF[layer.format];
  if (!of) throw new UnsupportedError(file, `DiskFerry does not rewrite ${layer.format} images`);
  const d = (info['format-specific']?.data ?? {}) as Extra;
  return of(info, layer.format === 'qcow2' ? d : ((info.extra ?? {}) as Extra), file);
}

/**
 * A VMDK whose data is one FLAT extent from its start (monolithicFlat): the extent file, which
 * is raw and is what a rewrite replaces (the descriptor stays as it is). Else undefined.
 */
export async function flatExtentFile(layer: BlockDevice, file: string): Promise<string | undefined> {
  if (layer.format !== 'vmdk') return undefined;
  const d = (layer.info()['format-specific']?.data ?? {}) as Extra;
  if (d['create-type'] !== 'monolithicFlat') return undefined;
  const desc = parseDescriptor(file, await readFile(file, 'latin1'));
  const e = desc.extents[0];
  if (desc.extents.length !== 1 || e?.type !== 'FLAT' || e.offset !== 0 || !e.file)
    throw new UnsupportedError(file, 'is a flat VMDK whose data is not one extent file from its start; DiskFerry does not rewrite it');
  return path.resolve(path.dirname(file), e.file);
}
