import type { FormatDriver } from '../../image/types.ts';
import { cowEndianness } from './layout.ts';
import { CowDevice } from './reader.ts';
import { CowWriter } from './writer.ts';

export const cowDriver: FormatDriver = {
  name: 'cow',
  label: 'User-Mode-Linux copy-on-write (cow)',
  extensions: ['cow'],
  // The magic and a known version (QEMU's cow_probe checked magic and version 2 and scored 100).
  probe(head) {
    const e = cowEndianness(head);
    if (!e) return 0;
    const version = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(4, e === 'le');
    return version >= 1 && version <= 3 ? 100 : 0;
  },
  open: (src) => CowDevice.open(src),
  create: async (sink, opts) => new CowWriter(sink, opts),
  createOptions: [],
};
