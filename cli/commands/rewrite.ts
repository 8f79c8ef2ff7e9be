/**
 * The commands that change an existing image: amend, rebase, commit and check -r. Each one
 * writes the changed image completely beside the old one and renames it over (../rewrite.ts),
 * so whenever it is killed the name holds the image as it was before or as it is after.
 */
import path from 'node:path';
import { InvalidArgumentError, UnsupportedError } from '../../src-core/io/errors.ts';
import { isAllZero, bytesEqual } from '../../src-core/io/struct.ts';
import { parseOptionString, parseSize } from '../../src-core/image/options.ts';
import { findDriver, openImage } from '../../src-core/image/open.ts';
import type { BackingRef, BlockDevice, CheckResult } from '../../src-core/image/types.ts';
import { drivers } from '../../src-core/formats/registry.ts';
import { imageSpec, openCliImage, parseSecrets, type CommonOpts } from '../context.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { NodeFileSource, NodeResolver } from '../nodeFiles.ts';
import { QemuProgress } from '../progress.ts';
import {
  fillByUnits,
  keptBacking,
  layerExtents,
  layerWindow,
  replaceImage,
  rewritableOptions,
  unitKind,
  type UnitContent,
} from '../rewrite.ts';
import { flatExtentFile } from '../rewriteOptions.ts';
import { refuseUnwritable } from './resizeInPlace.ts';
import { expectArgs, type Cmd } from './types.ts';

/** An image file as one layer: its own allocation, the backing file not opened. */
async function openLayer(file: string, format: string | undefined, opts: CommonOpts): Promise<BlockDevice> {
  return (await openCliImage({ filename: file, format }, opts, { noBacking: true })).device;
}

/**
 * The start of rebase and commit: the image named on the command line, the progress bar shown
 * at 0 (`progressMinSkip` as qemu-img's qemu_progress_init takes it) and the image opened as one layer.
 */
async function startRewrite(file: string, opts: Cmd<'rebase' | 'commit'>['opts'], progressMinSkip: number) {
  const spec = imageSpec(file, opts.imageOpts, opts.format);
  const progress = new QemuProgress(opts.progress && !opts.quiet, progressMinSkip);
  progress.print(0, 100);
  const layer = await openLayer(spec.filename, spec.format, opts);
  try {
    refuseUnwritable(layer.format, spec.filename);
  } catch (e) {
    await layer.close();
    throw e;
  }
  return { spec, progress, layer };
}

/** A backing file named as an image stores it: relative to that image's folder. */
function resolveBacking(imageFile: string, name: string): string {
  return path.isAbsolute(name) ? name : path.join(path.dirname(imageFile), name);
}

async function openWithChain(file: string, format: string | undefined, opts: CommonOpts): Promise<BlockDevice> {
  const src = await NodeFileSource.open(file);
  return openImage(src, drivers, {
    format,
    codecs: nodeCodecs,
    resolver: new NodeResolver([path.dirname(path.resolve(file))], !!opts.allowOutside),
  }).catch(async (e) => {
    await src.close();
    throw e;
  });
}

/** Whether a disk (through its chain) has anything but zeros in [from, to), by metadata. */
async function hasData(dev: BlockDevice | undefined, from: number, to: number): Promise<boolean> {
  if (!dev || from >= dev.virtualSize) return false;
  for await (const e of dev.extents(from, Math.min(to, dev.virtualSize))) if (e.kind === 'data') return true;
  return false;
}

/** Reads [off, off+len) of a disk, zeros past its end (a shorter backing file). */
async function readPadded(dev: BlockDevice | undefined, off: number, len: number): Promise<Uint8Array> {
  const out = new Uint8Array(len);
  if (!dev || off >= dev.virtualSize) return out;
  out.set((await dev.read(off, Math.min(len, dev.virtualSize - off))).subarray(0, len));
  return out;
}

/** The formats whose backing file name qemu-img 7.2 can change (rebase). */
const REBASABLE = new Set(['qcow2', 'qed']);
/** The formats whose backing file qemu-img 7.2 opens (commit has a base). */
const BACKED = new Set(['qcow2', 'qcow', 'qed', 'vmdk']);
/** The formats QEMU can empty after a commit (bdrv_make_empty). */
const EMPTIABLE = new Set(['qcow2', 'qcow', 'qed']);

// ---------------------------------------------------------------- amend

const AMENDABLE = new Set(['compat', 'lazy_refcounts', 'refcount_bits', 'size', 'backing_file', 'backing_fmt']);
const CREATE_ONLY = new Set([
  'cluster_size',
  'compression_type',
  'extended_l2',
  'preallocation',
  'encryption',
  'encrypt.format',
  'data_file',
  'data_file_raw',
]);

export async function amendCommand({ opts, args }: Cmd<'amend'>): Promise<number> {
  if (!opts.options.length) throw new InvalidArgumentError('Must specify options (-o)');
  const [file] = expectArgs(args, 1, 1, 'Expecting one image file name');
  const changes: Record<string, string> = {};
  for (const o of opts.options) Object.assign(changes, parseOptionString(o));
  const spec = imageSpec(file!, opts.imageOpts, opts.format);
  const progress = new QemuProgress(opts.progress && !opts.quiet, 1);
  const layer = await openLayer(spec.filename, spec.format, opts);
  try {
    refuseUnwritable(layer.format, spec.filename);
    if (layer.format === 'luks') {
      const secrets = parseSecrets(opts);
      const { amendLuks } = await import('./amendLuks.ts');
      await amendLuks({
        file: spec.filename,
        keySecret: spec.keySecret ? secrets.get(spec.keySecret) : undefined,
        changes,
        secrets,
        force: !!opts.force,
      });
      return 0;
    }
    if (layer.format !== 'qcow2')
      throw new UnsupportedError(spec.filename, `Format driver '${layer.format}' does not support option amendment`);
    const { format, options } = rewritableOptions(layer);
    let size = layer.virtualSize;
    let backing: BackingRef | undefined = keptBacking(layer);
    for (const [k, v] of Object.entries(changes)) {
      if (CREATE_ONLY.has(k)) {
        if (k === 'cluster_size' && parseSize(v) === Number(options.cluster_size)) continue;
        throw new InvalidArgumentError(`Invalid parameter '${k}' (this option is only supported for image creation)`, spec.filename);
      }
      if (!AMENDABLE.has(k)) throw new InvalidArgumentError(`Invalid parameter '${k}'`, spec.filename);
      if (k === 'size') size = parseSize(v, 'size');
      else if (k === 'backing_file') backing = v ? { name: v, format: backing?.format } : undefined;
      else if (k === 'backing_fmt') backing = backing ? { ...backing, format: v } : undefined;
      else options[k] = v;
    }
    if (size < layer.virtualSize && !opts.force) {
      // qemu-img amend shrinks only what is unallocated at the end; DiskFerry asks for --force.
      const ext = await layerExtents(layer, size, layer.virtualSize);
      if (ext.some((e) => e.kind !== 'unallocated'))
        throw new InvalidArgumentError('Cannot shrink: data beyond the new size (use --force to drop it)', spec.filename);
    }
    progress.print(0, 0);
    const copyTo = Math.min(size, layer.virtualSize);
    const chain = layer.backingRef ? await openWithChain(spec.filename, spec.format, opts) : undefined;
    try {
      await replaceImage({
        file: spec.filename,
        format,
        virtualSize: size,
        options,
        backing,
        fill: (w) =>
          fillByUnits(
            w,
            copyTo,
            (pos, end, g) => layerWindow(layer, pos, end, !!backing, chain, g),
            (done) => progress.print((100 * done) / copyTo),
          ),
      });
    } finally {
      await chain?.close();
    }
    progress.print(100, 0);
  } finally {
    progress.end();
    await layer.close();
  }
  return 0;
}

// ---------------------------------------------------------------- rebase

export async function rebaseCommand({ opts, args }: Cmd<'rebase'>): Promise<number> {
  const [file] = expectArgs(args, 1, 1, 'Expecting one image file name');
  if (!opts.unsafe && opts.backing === undefined) throw new InvalidArgumentError('Must specify backing file (-b) or use unsafe mode (-u)');
  if (opts.compress) throw new UnsupportedError(file!, 'rebase -c is not supported (the clusters written stay uncompressed)');
  const { spec, progress, layer } = await startRewrite(file!, opts, 2);
  let oldChain: BlockDevice | undefined;
  let oldTop: BlockDevice | undefined;
  let newBacking: BlockDevice | undefined;
  try {
    const newName = opts.backing ?? '';
    // QEMU changes the backing file name in qcow2 and QED headers only (bdrv_change_backing_file).
    if (!REBASABLE.has(layer.format))
      throw new UnsupportedError(spec.filename, `Could not change the backing file to '${newName}': Operation not supported`);
    const { format, options } = rewritableOptions(layer);
    let newFormat = opts.backingFormat;
    if (!opts.unsafe) {
      if (layer.backingRef) {
        oldTop = await openWithChain(spec.filename, spec.format, opts);
        oldChain = oldTop.backing;
      }
      if (newName) {
        newBacking = await openWithChain(resolveBacking(spec.filename, newName), newFormat, opts);
        newFormat ??= newBacking.format;
      }
    }
    const backing: BackingRef | undefined = newName ? { name: newName, format: newFormat } : undefined;
    const size = layer.virtualSize;
    await replaceImage({
      file: spec.filename,
      format,
      virtualSize: size,
      options,
      backing,
      fill: (w) =>
        fillByUnits(
          w,
          size,
          async (pos, end, g) => {
            // Safe: a partly allocated cluster keeps what it showed over the old backing file.
            const own = await layerWindow(layer, pos, end, !!backing, opts.unsafe ? undefined : oldTop, g);
            if (opts.unsafe) return own;
            const ext = await layerExtents(layer, pos, end);
            // Where the image has nothing of its own, it showed the old backing file: if the new
            // one differs there, the old bytes are copied into the image.
            const holes = ext.some((e) => e.kind === 'unallocated') || ext.length === 0;
            // Neither backing file has data here: both read as zeros, nothing to compare.
            const differs = holes && ((await hasData(oldChain, pos, end)) || (await hasData(newBacking, pos, end)));
            if (!differs) return own;
            const oldBytes = await readPadded(oldChain, pos, end - pos);
            const newBytes = await readPadded(newBacking, pos, end - pos);
            return (off, len): UnitContent => {
              if (unitKind(ext, off, len) !== 'unallocated') return own(off, len);
              const o = oldBytes.subarray(off - pos, off - pos + len);
              const n = newBytes.subarray(off - pos, off - pos + len);
              if (bytesEqual(o, n)) return { kind: 'skip' };
              if (isAllZero(o)) return backing ? { kind: 'zero' } : { kind: 'skip' };
              return { kind: 'data', bytes: o.slice() };
            };
          },
          (done) => progress.print((100 * done) / size),
        ),
    });
    progress.print(100, 0);
  } finally {
    progress.end();
    await layer.close();
    // Closing the old chain's top closes its backing files too.
    await (oldTop ?? oldChain)?.close();
    await newBacking?.close();
  }
  return 0;
}

// ---------------------------------------------------------------- commit

export async function commitCommand({ opts, args }: Cmd<'commit'>): Promise<number> {
  const [file] = expectArgs(args, 1, 1, 'Expecting one image file name');
  const { spec, progress, layer: top } = await startRewrite(file!, opts, 1);
  let base: BlockDevice | undefined;
  let topChain: BlockDevice | undefined;
  let baseChain: BlockDevice | undefined;
  try {
    // qemu-img 7.2 never opens the parent of a differencing VHD, VHDX or VDI.
    if (!top.backingRef || !BACKED.has(top.format)) throw new InvalidArgumentError('Image does not have a backing file', spec.filename);
    const baseFile = resolveBacking(spec.filename, top.backingRef.name);
    if (opts.base !== undefined && path.resolve(opts.base) !== path.resolve(baseFile) && opts.base !== top.backingRef.name) {
      throw new InvalidArgumentError(
        `Did not find '${opts.base}' in the backing chain of '${file}' (DiskFerry commits into the immediate backing file only)`,
      );
    }
    // A top QEMU cannot empty (no bdrv_make_empty: VMDK) keeps its clusters, as qemu-img leaves it.
    const empty = !opts.drop && opts.base === undefined && EMPTIABLE.has(top.format);
    const topOpts = empty ? rewritableOptions(top) : undefined;
    base = await openLayer(baseFile, top.backingRef.format, opts);
    if (base.format === 'parallels')
      throw new UnsupportedError(
        baseFile,
        "Block format 'parallels' does not support reopening files (qemu-img 7.2 cannot commit into it)",
      );
    topChain = await openWithChain(spec.filename, spec.format, opts);
    baseChain = base.backingRef ? await openWithChain(baseFile, top.backingRef.format, opts) : undefined;
    // A flat VMDK: its raw extent file is rewritten, its descriptor kept.
    const flat = await flatExtentFile(base, baseFile);
    const baseOpts = flat ? { format: findDriver(drivers, 'raw'), options: {} } : rewritableOptions(base);
    if (baseOpts.options.subformat === 'streamOptimized' && base.format === 'vmdk') await refuseStreamOverwrite(top, base);
    const baseBacking = keptBacking(base);
    const baseSize = base.virtualSize;
    const b = base;
    // 1. The base gets the top's data over its own: written beside it and renamed over it.
    await replaceImage({
      file: flat ?? baseFile,
      format: baseOpts.format,
      virtualSize: baseSize,
      options: baseOpts.options,
      backing: baseBacking,
      fill: (w) =>
        fillByUnits(
          w,
          baseSize,
          async (pos, end, g) => {
            const topExt = await layerExtents(top, pos, end);
            const fromTop = await layerWindow(top, pos, end, true, topChain, g);
            const fromBase = await layerWindow(b, pos, end, !!baseBacking, baseChain, g);
            return (off, len) => {
              const k = unitKind(topExt, off, len);
              if (k === 'unallocated' || off >= top.virtualSize) return fromBase(off, len);
              const c = fromTop(off, len);
              if (c.kind === 'zero') return baseBacking ? c : { kind: 'skip' };
              if (c.kind === 'data' && !baseBacking && isAllZero(c.bytes)) return { kind: 'skip' };
              return c;
            };
          },
          (done) => progress.print((100 * done) / baseSize),
        ),
    });
    // 2. Unless -d (or -b): the top is emptied, its clusters now all read from the base.
    if (topOpts) {
      await replaceImage({
        file: spec.filename,
        format: topOpts.format,
        virtualSize: top.virtualSize,
        options: topOpts.options,
        backing: keptBacking(top),
        fill: async () => {},
      });
    }
    progress.print(100, 0);
  } finally {
    progress.end();
    await top.close();
    await base?.close();
    await topChain?.close();
    await baseChain?.close();
  }
  if (!opts.quiet) process.stdout.write('Image committed.\n');
  return 0;
}

/**
 * QEMU writes a streamOptimized VMDK only into grains it has not yet written: a commit whose top
 * covers a grain the base already holds fails there ("Could not write to allocated cluster").
 * DiskFerry refuses before writing anything (qemu-img leaves the base half committed).
 */
async function refuseStreamOverwrite(top: BlockDevice, base: BlockDevice): Promise<void> {
  const grain = base.info()['cluster-size'] ?? 65536;
  const end = Math.min(top.virtualSize, base.virtualSize);
  for (const e of await layerExtents(top, 0, end)) {
    if (e.kind === 'unallocated') continue;
    const from = Math.floor(e.offset / grain) * grain;
    const to = Math.min(end, Math.ceil((e.offset + e.length) / grain) * grain);
    if ((await layerExtents(base, from, to)).some((b) => b.kind !== 'unallocated'))
      throw new UnsupportedError(base.filename, 'Could not write to allocated cluster for streamOptimized');
  }
}

// ---------------------------------------------------------------- check -r

/** check -r: the image rewritten as it reads (a fresh image has no leaks). */
export async function repairImage(
  file: string,
  r: CheckResult,
  mode: 'leaks' | 'all',
  cmd: Cmd<'check'>,
): Promise<{ leaks: number; corruptions: number }> {
  if (mode === 'leaks' && r.corruptions)
    throw new UnsupportedError(file, 'has corruptions as well as leaks: DiskFerry repairs both at once (-r all) or neither');
  const layer = await openLayer(file, cmd.opts.format, cmd.opts);
  let chain: BlockDevice | undefined;
  try {
    const { format, options } = rewritableOptions(layer);
    const backing = keptBacking(layer);
    chain = layer.backingRef ? await openWithChain(file, cmd.opts.format, cmd.opts) : undefined;
    await replaceImage({
      file,
      format,
      virtualSize: layer.virtualSize,
      options,
      backing,
      fill: (w) => fillByUnits(w, layer.virtualSize, (pos, end, g) => layerWindow(layer, pos, end, !!backing, chain, g)),
    });
  } finally {
    await layer.close();
    await chain?.close();
  }
  return { leaks: r.leaks ?? 0, corruptions: mode === 'all' ? (r.corruptions ?? 0) : 0 };
}
