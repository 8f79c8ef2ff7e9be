import { promises as fs } from 'node:fs';
import { DiskFerryError, InvalidArgumentError } from '../../src-core/io/errors.ts';
import { formatInfoHuman } from '../../src-core/pipeline/info.ts';
import {
  editQcow2Snapshots,
  RefcountOverflowError,
  SnapshotNotFoundError,
  type ImageFile,
  type SnapshotEdit,
} from '../../src-core/formats/qcow2/snapshotWrite.ts';
import { imageSpec, openCliImage } from '../context.ts';
import { expectArgs, type Cmd } from './types.ts';

/**
 * qemu-img snapshot: -l lists internal snapshots; -c, -a and -d change a qcow2 image in place
 * (src-core/formats/qcow2/snapshotWrite.ts: new metadata first, the header last, so a kill
 * leaves the image from before or from after). Messages and exit codes are qemu-img 7.2's.
 */
export async function snapshotCommand({ opts, args }: Cmd<'snapshot'>): Promise<number> {
  const actions = [opts.list, opts.create !== undefined, opts.apply !== undefined, opts.delete !== undefined].filter(Boolean).length;
  if (actions > 1) throw new InvalidArgumentError("Cannot mix '-l', '-a', '-c', '-d'");
  const [file] = expectArgs(args, 1, 1, 'Expecting one image file name');
  const spec = imageSpec(file!, opts.imageOpts, opts.format);
  const { device } = await openCliImage(spec, opts, { noBacking: true });
  let format: string;
  try {
    format = device.format;
    // qemu-img opens an encrypted image only with its key, even to list or change snapshots.
    const info = device.info();
    const d = (info['format-specific']?.data ?? {}) as { encrypt?: { format?: string } };
    if (info.encrypted && d.encrypt?.format === 'luks' && !spec.keySecret)
      throw new InvalidArgumentError(`Could not open '${spec.filename}': Parameter 'encrypt.key-secret' is required for cipher`);
    if (!actions || opts.list) {
      const info = device.info();
      if (!info.snapshots?.length) return 0;
      const text = formatInfoHuman({ ...info, 'format-specific': undefined, extra: undefined });
      process.stdout.write(text.slice(text.indexOf('Snapshot list:')) + '\n');
      return 0;
    }
  } finally {
    await device.close();
  }
  const edit: SnapshotEdit =
    opts.create !== undefined
      ? { op: 'create', name: opts.create, ...now() }
      : opts.apply !== undefined
        ? { op: 'apply', name: opts.apply }
        : { op: 'delete', name: opts.delete! };
  const what = { create: 'create', apply: 'apply', delete: 'delete' }[edit.op];
  const fail = (detail: string) => new InvalidArgumentError(`Could not ${what} snapshot '${edit.name}': ${detail}`, spec.filename);
  // Formats without internal snapshots: qemu-img's words for each action.
  if (format !== 'qcow2') {
    throw fail(
      edit.op === 'create'
        ? '-95 (Operation not supported)'
        : edit.op === 'apply'
          ? 'Block driver does not support snapshots'
          : 'snapshot not found',
    );
  }
  const image = await openImageFile(spec.filename);
  try {
    await editQcow2Snapshots(image, edit);
  } catch (e) {
    if (e instanceof SnapshotNotFoundError)
      throw fail(edit.op === 'apply' ? 'Failed to load snapshot: No such file or directory' : 'snapshot not found');
    if (e instanceof RefcountOverflowError)
      throw fail(`${edit.op === 'create' ? '-22 (Invalid argument)' : 'Failed to load snapshot: Invalid argument'} (${e.detail})`);
    if (e instanceof DiskFerryError) throw fail(e.detail);
    throw e;
  } finally {
    await image.close();
  }
  return 0;
}

/** The time as qemu-img records it: seconds, and microseconds as nanoseconds. */
function now(): { dateSec: number; dateNsec: number } {
  const us = BigInt(Date.now()) * 1000n + ((process.hrtime.bigint() / 1000n) % 1000n);
  return { dateSec: Number(us / 1_000_000n), dateNsec: Number(us % 1_000_000n) * 1000 };
}

/** The image file opened for reading and writing in place (never created, never truncated). */
async function openImageFile(file: string): Promise<ImageFile & { close(): Promise<void> }> {
  const fh = await fs.open(file, 'r+');
  const { size } = await fh.stat();
  return {
    name: file,
    size,
    async read(offset, length) {
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (!bytesRead) break;
        done += bytesRead;
      }
      return buf.subarray(0, done);
    },
    async write(offset, data) {
      let done = 0;
      while (done < data.length) done += (await fh.write(data, done, data.length - done, offset + done)).bytesWritten;
    },
    sync: () => fh.sync(),
    close: () => fh.close(),
  };
}
