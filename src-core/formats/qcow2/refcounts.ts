// Refcount blocks: entries of 2^refcount_order bits. Widths of 8 bits and more are big-endian;
// 1, 2 and 4-bit entries are packed LSB-first within each byte (docs/formats/qcow2.md, Refcount blocks; verified).

export function refcountMax(bits: number): number {
  return bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits - 1;
}

export function entriesPerRefblock(clusterSize: number, bits: number): number {
  return (clusterSize * 8) / bits;
}

/** Where a 1-, 2- or 4-bit entry sits: its byte, its shift (LSB-first) and its mask before shifting. */
function packedSlot(index: number, bits: number): { byteIndex: number; shift: number; mask: number } | undefined {
  if (bits !== 1 && bits !== 2 && bits !== 4) return undefined;
  const perByte = 8 / bits;
  return { byteIndex: Math.floor(index / perByte), shift: (index % perByte) * bits, mask: (1 << bits) - 1 };
}

export function getRefcount(block: Uint8Array, index: number, bits: number): number {
  const packed = packedSlot(index, bits);
  if (packed) return (block[packed.byteIndex]! >> packed.shift) & packed.mask;
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  switch (bits) {
    case 8:
      return block[index]!;
    case 16:
      return view.getUint16(index * 2);
    case 32:
      return view.getUint32(index * 4);
    case 64: {
      const v = view.getBigUint64(index * 8);
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
    }
    default:
      throw new RangeError(`refcount width ${bits}`);
  }
}

export function setRefcount(block: Uint8Array, index: number, bits: number, value: number): void {
  const packed = packedSlot(index, bits);
  if (packed) {
    const mask = packed.mask << packed.shift;
    block[packed.byteIndex] = (block[packed.byteIndex]! & ~mask) | ((value << packed.shift) & mask);
    return;
  }
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  switch (bits) {
    case 8:
      block[index] = value;
      return;
    case 16:
      view.setUint16(index * 2, value);
      return;
    case 32:
      view.setUint32(index * 4, value);
      return;
    case 64:
      view.setBigUint64(index * 8, BigInt(value));
      return;
    default:
      throw new RangeError(`refcount width ${bits}`);
  }
}

/**
 * Sizes the refcount table and blocks for `clusters` data/metadata clusters, counting the
 * refcount structures themselves until the numbers stop changing.
 */
export function refcountLayout(clusters: number, clusterSize: number, bits: number): { blocks: number; tableClusters: number } {
  const perBlock = entriesPerRefblock(clusterSize, bits);
  let blocks = 0;
  let tableClusters = 0;
  for (;;) {
    const total = clusters + blocks + tableClusters;
    const nb = Math.ceil(total / perBlock);
    const nt = Math.max(1, Math.ceil((nb * 8) / clusterSize));
    if (nb === blocks && nt === tableClusters) return { blocks, tableClusters };
    blocks = nb;
    tableClusters = nt;
  }
}
