import type { FormatDriver } from '../../image/types.ts';
import { checkVdi } from './check.ts';
import { isVdi } from './header.ts';
import { VdiDevice } from './reader.ts';
import { createVdiWriter, VDI_CREATE_OPTIONS } from './writer.ts';

export const vdiDriver: FormatDriver = {
  name: 'vdi',
  label: 'VirtualBox disk image (VDI)',
  title: 'VDI',
  extensions: ['vdi'],
  probe: (head) => (isVdi(head) ? 100 : 0),
  open: (src, ctx) => VdiDevice.open(src, ctx),
  create: createVdiWriter,
  check: checkVdi,
  createOptions: VDI_CREATE_OPTIONS,
};
