import { readPadded } from '../../io/bytes.ts';
import type { FormatDriver } from '../../image/types.ts';
import { FOOTER_SIZE, hasCookie, vhdChecksum } from './footer.ts';
import { VpcDevice } from './reader.ts';
import { createVpcWriter, VPC_CREATE_OPTIONS } from './writer.ts';

/** A footer with a valid checksum is certain; a bare cookie still means "VHD, damaged" so the user gets the checksum error rather than raw. */
function footerScore(b: Uint8Array): number {
  if (b.length < FOOTER_SIZE || !hasCookie(b)) return 0;
  const stored = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(64);
  return vhdChecksum(b.subarray(0, FOOTER_SIZE), 64) === stored ? 100 : 50;
}

export const vpcDriver: FormatDriver = {
  name: 'vpc',
  label: 'Virtual PC / Hyper-V / Azure VHD (vpc)',
  title: 'VHD',
  extensions: ['vhd', 'vpc'],
  async probe(head, size, _filename, src) {
    const atStart = footerScore(head);
    if (atStart || size < FOOTER_SIZE) return atStart;
    // A fixed VHD has only its trailing footer; unlike qemu-img (which says raw), recognise it.
    return footerScore(await readPadded(src, size - FOOTER_SIZE, FOOTER_SIZE));
  },
  open: (src, ctx) => VpcDevice.open(src, ctx),
  create: createVpcWriter,
  createOptions: VPC_CREATE_OPTIONS,
};
