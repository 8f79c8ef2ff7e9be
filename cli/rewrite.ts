/**
 * Changing an image "in place" without ever leaving a broken one: the new image is written
 * completely beside the old one (a hidden `.NAME.diskferry-PID.part`), flushed, given the old
 * file's mode, and renamed over it; then the folder is flushed. A kill at any moment leaves
 * either the old image or the new one under the name (and perhaps the hidden part file).
 *
 * Used by resize (qcow2), amend, rebase, commit and check -r (qcow2). The formats whose
 * creation options can be read back from the image (rewriteOptions.ts) can be rewritten.
 */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { UnsupportedError } from '../src-core/io/errors.ts';
import { alignUp } from '../src-core/io/int64.ts';
import { isAllZero } from '../src-core/io/struct.ts';
import { findDriver } from '../src-core/image/open.ts';
import type { BackingRef, BlockDevice, Extent, FormatDriver, ImageWriter } from '../src-core/image/types.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { nodeCodecs } from './nodeCodecs.ts';
import { creationOptions } from './rewriteOptions.ts';
import { NodeFileSink, NodeResolver } from './nodeFiles.ts';

export interface RewritePlan {
  /** The image file to replace. */
  file: string;
  format: FormatDriver;
  virtualSize: number;
  options: Record<string, string>;
  backing?: BackingRef;
  /** With options.preallocation: where it starts (resize: the old size). */
  preallocateFrom?: number;
  /** Writes the content, in increasing offset order. */
  fill(writer: ImageWriter): Promise<void>;
}

/** Writes the new image beside `plan.file` and renames it over; nothing changes on failure. */
export async function replaceImage(plan: RewritePlan): Promise<void> {
  const dir = path.dirname(path.resolve(plan.file));
  const tmp = path.join(dir, `.${path.basename(plan.file)}.diskferry-${process.pid}.part`);
  const st = await fs.stat(plan.file);
  const sink = await NodeFileSink.create(tmp);
  try {
    const writer = await plan.format.create!(sink, {
      virtualSize: plan.virtualSize,
      options: plan.options,
      backing: plan.backing,
      preallocateFrom: plan.preallocateFrom,
      codecs: nodeCodecs,
      filename: plan.file,
      resolver: new NodeResolver([dir], true),
    });
    await plan.fill(writer);
    await writer.finish();
    await sink.close();
    await syncFile(tmp);
    await fs.chmod(tmp, st.mode & 0o7777);
    await fs.rename(tmp, plan.file);
  } catch (e) {
    await sink.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await syncDir(dir);
}

/** fsync by name, once the sink that wrote the file is closed. */
export async function syncFile(file: string): Promise<void> {
  const fh = await fs.open(file, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync on the folder, so the rename itself is on the disk. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, constants.O_RDONLY).catch(() => undefined);
  if (!fh) return;
  await fh.sync().catch(() => {});
  await fh.close();
}

/** The driver and creation options that rebuild an image like this one (rewriteOptions.ts). */
export function rewritableOptions(layer: BlockDevice): { format: FormatDriver; options: Record<string, string> } {
  const options = creationOptions(layer);
  return { format: findDriver(drivers, layer.format), options };
}

const WINDOW = 4 * 1024 * 1024;

/** What a unit of the new image gets. */
export type UnitContent = { kind: 'skip' } | { kind: 'zero' } | { kind: 'data'; bytes: Uint8Array };

/**
 * Walks the new image in windows of whole writer units and writes what `unit` decides for each:
 * data (runs of units written together), zero (writeZeroes, or zeros where the writer has none
 * and zeros must be explicit), or nothing (unallocated: the backing file shows through).
 */
export async function fillByUnits(
  writer: ImageWriter,
  size: number,
  window: (pos: number, end: number, unit: number) => Promise<(off: number, len: number) => UnitContent>,
  onProgress?: (done: number) => void,
): Promise<void> {
  const g = writer.granularity;
  const batch = Math.max(g, alignUp(WINDOW, g));
  for (let pos = 0; pos < size; pos += batch) {
    const end = Math.min(pos + batch, size);
    const unit = await window(pos, end, g);
    let run: Uint8Array[] = [];
    let runStart = -1;
    const flush = async () => {
      if (runStart < 0) return;
      const total = run.reduce((n, b) => n + b.length, 0);
      const buf = run.length === 1 ? run[0]! : new Uint8Array(total);
      if (run.length > 1) {
        let o = 0;
        for (const b of run) {
          buf.set(b, o);
          o += b.length;
        }
      }
      await writer.write(runStart, buf);
      run = [];
      runStart = -1;
    };
    for (let off = pos; off < end; off += g) {
      const len = Math.min(g, end - off);
      const c = unit(off, len);
      if (c.kind === 'data') {
        if (runStart < 0) runStart = off;
        run.push(c.bytes);
        continue;
      }
      await flush();
      if (c.kind === 'zero') {
        if (writer.writeZeroes) await writer.writeZeroes(off, len);
        else await writer.write(off, new Uint8Array(len));
      }
    }
    await flush();
    onProgress?.(end);
  }
}

/** One layer's own allocation in [from, to): extents clipped, no reads. */
export async function layerExtents(layer: BlockDevice, from: number, to: number): Promise<Extent[]> {
  const out: Extent[] = [];
  const end = Math.min(to, layer.virtualSize);
  if (from >= end) return out;
  for await (const e of layer.extents(from, end)) out.push(e);
  return out;
}

/** The kind of a unit from a layer's extents: data wins over zero over unallocated. */
export function unitKind(extents: Extent[], off: number, len: number): Extent['kind'] {
  let kind: Extent['kind'] = 'unallocated';
  for (const e of extents) {
    if (e.offset >= off + len || e.offset + e.length <= off) continue;
    if (e.kind === 'data') return 'data';
    if (e.kind === 'zero') kind = 'zero';
  }
  return kind;
}

/** Whether a unit is partly allocated (data or zero) and partly not: subclusters (extended_l2). */
export function unitMixed(extents: Extent[], off: number, len: number): boolean {
  let allocated = 0;
  for (const e of extents) {
    if (e.kind === 'unallocated') continue;
    allocated += Math.max(0, Math.min(e.offset + e.length, off + len) - Math.max(e.offset, off));
  }
  return allocated > 0 && allocated < len;
}

/**
 * A window function that copies one layer as it is: its data, its explicit zeros (which hide a
 * backing file) and its holes. `hasBacking` false: zeros need not be written at all.
 * A unit only partly allocated over a backing file (extended_l2 subclusters; the writer
 * allocates whole clusters) is filled from `fillFrom`, the view the image should keep there.
 */
export async function layerWindow(
  layer: BlockDevice,
  pos: number,
  end: number,
  hasBacking: boolean,
  fillFrom?: BlockDevice,
  unit = 0,
): Promise<(off: number, len: number) => UnitContent> {
  const ext = await layerExtents(layer, pos, end);
  const anyData = ext.some((e) => e.kind === 'data');
  const readEnd = Math.min(end, layer.virtualSize);
  const bytes = anyData && readEnd > pos ? await layer.read(pos, readEnd - pos) : undefined;
  // Allocated and unallocated ranges both in one unit (of `unit` bytes; 0: unknown, assume so).
  let mayMix = hasBacking && ext.some((e) => e.kind === 'unallocated') && ext.some((e) => e.kind !== 'unallocated');
  if (mayMix && unit > 0) {
    mayMix = false;
    for (let off = pos; off < readEnd && !mayMix; off += unit) mayMix = unitMixed(ext, off, Math.min(unit, readEnd - off));
  }
  const fill = mayMix && fillFrom && readEnd > pos ? await fillFrom.read(pos, readEnd - pos) : undefined;
  return (off, len) => {
    if (off >= layer.virtualSize) return { kind: 'skip' };
    if (mayMix && unitMixed(ext, off, Math.min(len, layer.virtualSize - off))) {
      if (!fill)
        throw new UnsupportedError(
          layer.filename,
          'partly allocated clusters over a backing file (extended_l2 subclusters): the backing file is needed to rewrite them',
        );
      const slice = fill.subarray(off - pos, off - pos + len);
      return { kind: 'data', bytes: slice.length === len ? slice : padTo(slice, len) };
    }
    const kind = unitKind(ext, off, len);
    if (kind === 'data' && bytes) {
      const slice = bytes.subarray(off - pos, off - pos + len);
      const out = slice.length === len ? slice : padTo(slice, len);
      if (!hasBacking && isAllZero(out)) return { kind: 'skip' };
      return { kind: 'data', bytes: out };
    }
    if (kind === 'zero' && hasBacking) return { kind: 'zero' };
    return { kind: 'skip' };
  };
}

function padTo(b: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  out.set(b);
  return out;
}

/** The backing file as the image names it, kept as it is. */
export function keptBacking(layer: BlockDevice): BackingRef | undefined {
  return layer.backingRef ? { name: layer.backingRef.name, format: layer.backingRef.format } : undefined;
}
