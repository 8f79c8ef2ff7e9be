import type { LintRule } from './types.ts';

/** A VM boots from a disk with a partition table; without one it can still be a data disk. */
const partitionTableRule: LintRule = (_target, f) => {
  switch (f.partitionTable) {
    case 'gpt':
      return { rule: 'partition-table', status: 'pass', reason: 'a GPT header at LBA 1 (the VM needs UEFI firmware to boot it)' };
    case 'mbr':
      return { rule: 'partition-table', status: 'pass', reason: 'an MBR boot signature (0x55AA at byte 510)' };
    case 'unknown':
      return {
        rule: 'partition-table',
        status: 'warn',
        reason: 'the guest data could not be read (encrypted?); the partition table was not checked',
      };
    default:
      return {
        rule: 'partition-table',
        status: 'warn',
        reason: 'no MBR signature at byte 510 and no GPT header at LBA 1: the VM will not boot from this disk (fine for a data disk)',
      };
  }
};

export const BOOT_RULES = [partitionTableRule];
