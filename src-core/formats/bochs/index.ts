import type { FormatDriver } from '../../image/types.ts';
import { isBochsHeader } from './layout.ts';
import { BochsDevice } from './reader.ts';

/** Bochs growing redolog images, read-only (as in QEMU). */
export const bochsDriver: FormatDriver = {
  name: 'bochs',
  label: 'Bochs growing image',
  extensions: ['bochs'],
  probe: (head) => (isBochsHeader(head) ? 100 : 0),
  open: (src, ctx) => BochsDevice.open(src, ctx),
};
