import type { FormatDriver } from '../../image/types.ts';
import { checkParallels } from './check.ts';
import { prlMagic } from './header.ts';
import { ParallelsDevice } from './reader.ts';
import { createParallelsWriter, PRL_CREATE_OPTIONS } from './writer.ts';

export const parallelsDriver: FormatDriver = {
  name: 'parallels',
  label: 'Parallels expandable disk (HDD/HDS)',
  extensions: ['hdd', 'hds'],
  // QEMU's parallels_probe: either magic with version 2 scores 100.
  probe: (head) => (prlMagic(head) ? 100 : 0),
  open: (src, ctx) => ParallelsDevice.open(src, ctx),
  create: createParallelsWriter,
  check: checkParallels,
  createOptions: PRL_CREATE_OPTIONS,
};
