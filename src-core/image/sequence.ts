import type { BlockDevice, Extent } from './types.ts';

/**
 * Several disks laid one after another in one address space, as one device: `convert SRC1 SRC2 …
 * TGT` concatenates them (each starts where the last ends), and an OVA with several disks puts
 * each at an aligned start so the package writer can cut them apart again. What lies between a
 * disk's end and the next start reads as zeros.
 */
export function sequenceDevice(parts: BlockDevice[], starts: number[], size: number): BlockDevice {
  const spans = parts.map((p, i) => ({ p, s: starts[i]!, e: starts[i]! + p.virtualSize }));
  async function* extents(from = 0, to = size): AsyncIterable<Extent> {
    let pos = from;
    for (const { p, s, e } of spans) {
      if (e <= from || s >= to) continue;
      if (s > pos) yield { offset: pos, length: s - pos, kind: 'zero' };
      for await (const x of p.extents(Math.max(from, s) - s, Math.min(to, e) - s))
        yield { ...x, offset: x.offset + s, hostOffset: undefined, hostFile: undefined };
      pos = Math.min(to, e);
    }
    if (pos < to) yield { offset: pos, length: to - pos, kind: 'zero' };
  }
  async function read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    for (const { p, s, e } of spans) {
      const a = Math.max(offset, s);
      const b = Math.min(offset + length, e);
      if (a >= b) continue;
      out.set((await p.read(a - s, b - a)).subarray(0, b - a), a - offset);
    }
    return out;
  }
  return {
    format: parts[0]!.format,
    filename: parts[0]!.filename,
    virtualSize: size,
    extents,
    read,
    info: () => ({ ...parts[0]!.info(), 'virtual-size': size }),
    close: async () => {
      for (const p of parts) await p.close();
    },
  };
}

/** convert SRC1 SRC2 … TGT: the disks back to back, as qemu-img concatenates them. */
export function concatenatedDevice(parts: BlockDevice[]): BlockDevice {
  const starts: number[] = [];
  let size = 0;
  for (const p of parts) {
    starts.push(size);
    size += p.virtualSize;
  }
  return sequenceDevice(parts, starts, size);
}
