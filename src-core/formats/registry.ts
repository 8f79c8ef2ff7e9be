import type { FormatDriver } from '../image/types.ts';
import { qcow2Driver } from './qcow2/index.ts';
import { qcowDriver } from './qcow/index.ts';
import { cowDriver } from './cow/index.ts';
import { cloopDriver } from './cloop/index.ts';
import { rawDriver } from './raw/index.ts';
import { ovaDriver } from './ova/index.ts';
import { vmdkDriver } from './vmdk/index.ts';
import { vdiDriver } from './vdi/index.ts';
import { vpcDriver } from './vpc/index.ts';
import { vhdxDriver } from './vhdx/index.ts';
import { bochsDriver } from './bochs/index.ts';
import { dmgDriver } from './dmg/index.ts';
import { parallelsDriver } from './parallels/index.ts';
import { qedDriver } from './qed/index.ts';
import { luksDriver } from './luks/index.ts';

/**
 * Every format DiskFerry knows, one line each. Probing asks them all and takes the highest
 * score; raw answers 1 to anything. Order matters only for ties: the earlier driver wins
 * (probeAll's sort is stable), so qcow2 stays ahead of containers and raw stays last.
 */
export const drivers: readonly FormatDriver[] = [
  qcow2Driver,
  ovaDriver,
  vmdkDriver,
  qcowDriver,
  cowDriver,
  cloopDriver,
  vhdxDriver,
  vdiDriver,
  vpcDriver,
  bochsDriver,
  dmgDriver,
  parallelsDriver,
  qedDriver,
  luksDriver,
  rawDriver,
];

export const formatNames = (): string[] => drivers.map((d) => d.name);
