import type { FormatDriver } from '../../image/types.ts';
import { isQcow1 } from './header.ts';
import { QcowDevice } from './reader.ts';
import { QCOW_CREATE_OPTIONS, QcowWriter } from './writer.ts';

export const qcowDriver: FormatDriver = {
  name: 'qcow',
  label: 'QEMU copy-on-write v1 (qcow)',
  compression: { help: 'each cluster deflated (zlib); smaller file, slower to write' },
  extensions: ['qcow', 'img'],
  // Same magic as qcow2: only version 1 is ours (qcow_probe).
  probe: (head) => (isQcow1(head) ? 100 : 0),
  open: (src, ctx) => QcowDevice.open(src, ctx),
  create: (sink, opts) => QcowWriter.create(sink, opts),
  createOptions: QCOW_CREATE_OPTIONS,
};
