import type { FormatDriver } from '../../image/types.ts';
import { isVhdx } from './header.ts';
import { VhdxDevice } from './reader.ts';

export const vhdxDriver: FormatDriver = {
  name: 'vhdx',
  label: 'Hyper-V virtual hard disk v2 (VHDX)',
  extensions: ['vhdx'],
  probe: (head) => (isVhdx(head) ? 100 : 0),
  open: (src, ctx) => VhdxDevice.open(src, ctx),
};
