/** The parts of Xen Orchestra's xo-vmdk-to-vhd 0.1.8 (no types of its own) the OVA tests use. */
declare module 'xo-vmdk-to-vhd' {
  import type { Readable } from 'node:stream';
  /** Reads a stream VMDK through `read(start, end)` (negative: from the end): its capacity and grain table. */
  export function readCapacityAndGrainTable(read: (start: number, end: number) => Promise<ArrayBuffer>): Promise<{
    capacityBytes: number;
    tablePromise: Promise<{ grainLogicalAddressList: number[]; grainFileOffsetList: number[] }>;
  }>;
  /** The VMDK read as a stream, converted to a dynamic VHD stream. */
  export default function convertFromVMDK(
    vmdk: Readable,
    grainLogicalAddressList: number[],
    grainFileOffsetList: number[],
  ): Promise<Readable>;
}
