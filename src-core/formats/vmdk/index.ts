import type { FormatDriver } from '../../image/types.ts';
import { checkVmdk } from './check.ts';
import { looksLikeDescriptor } from './descriptor.ts';
import { magicOf, VmdkDevice } from './reader.ts';
import { COWD, KDMV } from './sparseHeader.ts';
import { createVmdkWriter, VMDK_CREATE_OPTIONS } from './writer.ts';

export const vmdkDriver: FormatDriver = {
  name: 'vmdk',
  label: 'VMware virtual disk (VMDK)',
  title: 'VMDK',
  compression: { help: 'a streamOptimized VMDK with deflated grains (what OVAs, ESXi and AWS take)', subformat: 'streamOptimized' },
  extensions: ['vmdk'],
  // vmdk_probe: the magic of a sparse/COWD file, or a descriptor whose first line is version=N.
  probe: (head) => {
    const m = magicOf(head);
    if (m === KDMV || m === COWD) return 100;
    return looksLikeDescriptor(head) ? 100 : 0;
  },
  open: (src, ctx) => VmdkDevice.open(src, ctx),
  create: createVmdkWriter,
  check: checkVmdk,
  createOptions: VMDK_CREATE_OPTIONS,
};
