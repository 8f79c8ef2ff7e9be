import type { FormatDriver } from '../../image/types.ts';
import { isQcow2 } from './header.ts';
import { checkQcow2 } from './check.ts';
import { measureQcow2 } from './measure.ts';
import { Qcow2Device } from './reader.ts';
import { QCOW2_CREATE_OPTIONS } from './createOptions.ts';
import { createQcow2Writer } from './writer.ts';

export const qcow2Driver: FormatDriver = {
  name: 'qcow2',
  label: 'QEMU copy-on-write v2/v3 (qcow2)',
  compression: { help: 'each cluster deflated (zlib, or zstd with compression_type=zstd); smaller file, slower to write' },
  extensions: ['qcow2', 'qcow2c', 'img'],
  probe: (head) => (isQcow2(head) ? 100 : 0),
  open: (src, ctx) => Qcow2Device.open(src, ctx),
  create: createQcow2Writer,
  measure: measureQcow2,
  check: checkQcow2,
  createOptions: QCOW2_CREATE_OPTIONS,
};
