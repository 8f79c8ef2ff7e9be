import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';

/** Marks one cluster past the end of a qcow2 file as in use (16-bit refcounts): a leak for qemu-img check. */
export function addQcow2Leak(file: string): void {
  const fd = openSync(file, 'r+');
  try {
    const h = Buffer.alloc(104);
    readSync(fd, h, 0, 104, 0);
    const cs = 2 ** h.readUInt32BE(20);
    const reftable = Number(h.readBigUInt64BE(48));
    const refOrder = h.readUInt32BE(4) >= 3 ? h.readUInt32BE(96) : 4;
    if (refOrder !== 4) throw new Error('addQcow2Leak: only 16-bit refcounts');
    const rt = Buffer.alloc(8);
    readSync(fd, rt, 0, 8, reftable);
    const block0 = Number(rt.readBigUInt64BE(0));
    const end = Math.ceil(statSync(file).size / cs) * cs;
    const index = end / cs;
    if (index >= (cs * 8) / 16) throw new Error('addQcow2Leak: the file is past the first refcount block');
    writeSync(fd, Buffer.alloc(cs), 0, cs, end);
    const entry = Buffer.alloc(2);
    entry.writeUInt16BE(1);
    writeSync(fd, entry, 0, 2, block0 + index * 2);
  } finally {
    closeSync(fd);
  }
}
