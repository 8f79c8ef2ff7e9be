import type { FormatDriver } from '../../image/types.ts';
import { Struct } from '../../io/struct.ts';
import { KOLY_SIZE } from './layout.ts';
import { DmgDevice, locateKoly } from './reader.ts';

/**
 * Apple disk images (UDIF .dmg), read-only. QEMU probes by the ".dmg" name alone (score 2);
 * the koly trailer is better evidence: at the very end with its 512-byte header size it is
 * certain, anywhere QEMU would search for it (the last 515 bytes) likely.
 */
export const dmgDriver: FormatDriver = {
  name: 'dmg',
  label: 'Apple disk image (DMG)',
  extensions: ['dmg'],
  async probe(_head, size, _filename, src) {
    const at = await locateKoly(src);
    if (at < 0) return 0;
    if (at === size - KOLY_SIZE) {
      const k = new Struct(await src.read(at, 12));
      if (k.length === 12 && k.u32(8) === KOLY_SIZE) return 100;
    }
    return 50;
  },
  open: (src, ctx) => DmgDevice.open(src, ctx),
};
