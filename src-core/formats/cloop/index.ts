import type { FormatDriver } from '../../image/types.ts';
import { CLOOP_HEADER_SIZE, isQemuCloopPreamble, looksLikeCloopHeader } from './layout.ts';
import { CloopDevice } from './reader.ts';
import { CLOOP_CREATE_OPTIONS, CloopWriter } from './writer.ts';

export const cloopDriver: FormatDriver = {
  name: 'cloop',
  label: 'Compressed loop (cloop)',
  compression: { help: 'cloop always stores zlib-compressed blocks' },
  extensions: ['cloop', 'compressed'],
  // A modest score, as QEMU gives (2): a shell-script preamble is weaker evidence than a magic.
  async probe(head, size, _filename, src) {
    if (isQemuCloopPreamble(head) || looksLikeCloopHeader(head)) return 2;
    // V4.0 images may carry their header at the end instead.
    if (size >= CLOOP_HEADER_SIZE && looksLikeCloopHeader(await src.read(size - CLOOP_HEADER_SIZE, CLOOP_HEADER_SIZE))) return 2;
    return 0;
  },
  open: (src, ctx) => CloopDevice.open(src, ctx),
  create: async (sink, opts) => new CloopWriter(sink, opts),
  createOptions: CLOOP_CREATE_OPTIONS,
};
