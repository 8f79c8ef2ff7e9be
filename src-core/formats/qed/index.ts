import type { FormatDriver } from '../../image/types.ts';
import { checkQed } from './check.ts';
import { isQed } from './header.ts';
import { QedDevice } from './reader.ts';
import { createQedWriter, QED_CREATE_OPTIONS } from './writer.ts';

export const qedDriver: FormatDriver = {
  name: 'qed',
  label: 'QEMU enhanced disk (QED)',
  extensions: ['qed'],
  // QEMU's bdrv_qed_probe: the magic alone scores 100.
  probe: (head) => (isQed(head) ? 100 : 0),
  open: (src, ctx) => QedDevice.open(src, ctx),
  create: createQedWriter,
  check: checkQed,
  createOptions: QED_CREATE_OPTIONS,
};
