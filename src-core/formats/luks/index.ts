import type { FormatDriver } from '../../image/types.ts';
import { LUKS_MAGIC } from '../../codecs/crypto/luksHeader.ts';
import { LuksDevice } from './reader.ts';
import { createLuksWriter, LUKS_CREATE_OPTIONS, measureLuks } from './writer.ts';

export const luksDriver: FormatDriver = {
  name: 'luks',
  label: 'LUKS1 encrypted disk (qemu luks)',
  extensions: ['luks'],
  // QEMU's block_crypto_probe_luks: the LUKS magic (qcrypto_block_has_format) scores 100.
  probe: (head) => (head.length >= 6 && LUKS_MAGIC.every((b, i) => head[i] === b) ? 100 : 0),
  open: (src, ctx) => LuksDevice.open(src, ctx),
  create: createLuksWriter,
  measure: measureLuks,
  createOptions: LUKS_CREATE_OPTIONS,
};
