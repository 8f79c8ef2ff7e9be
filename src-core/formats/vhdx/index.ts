import type { FormatDriver } from '../../image/types.ts';
import { isVhdx } from './header.ts';
import { VhdxDevice } from './reader.ts';
import { createVhdxWriter, VHDX_CREATE_OPTIONS } from './writer.ts';
import { checkVhdx } from './check.ts';
import { measureVhdx } from './measure.ts';

export const vhdxDriver: FormatDriver = {
  name: 'vhdx',
  label: 'Hyper-V virtual hard disk v2 (VHDX)',
  title: 'VHDX',
  extensions: ['vhdx'],
  probe: (head) => (isVhdx(head) ? 100 : 0),
  open: (src, ctx) => VhdxDevice.open(src, ctx),
  create: createVhdxWriter,
  check: checkVhdx,
  measure: measureVhdx,
  createOptions: VHDX_CREATE_OPTIONS,
};
