import { closeSync, openSync, readSync, writeSync, fstatSync } from 'node:fs';
import { run } from './sys.ts';

// Test-side VHD patching, written from the VHD spec independently of src-core/formats/vpc, so a
// mistake in the driver's checksum or layout code is not mirrored here.

export function vhdSum(buf: Buffer, checksumAt: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) if (i < checksumAt || i >= checksumAt + 4) sum += buf[i]!;
  return ~sum >>> 0;
}

function readAt(fd: number, off: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  readSync(fd, b, 0, len, off);
  return b;
}

/** Edits every footer copy (offset 0 when present, and the last 512 bytes), then re-checksums. */
export function patchFooter(file: string, edit: (footer: Buffer) => void): void {
  const fd = openSync(file, 'r+');
  try {
    const size = fstatSync(fd).size;
    for (const off of [0, size - 512]) {
      const f = readAt(fd, off, 512);
      if (f.subarray(0, 8).toString('latin1') !== 'conectix') continue;
      edit(f);
      f.writeUInt32BE(vhdSum(f, 64), 64);
      writeSync(fd, f, 0, 512, off);
    }
  } finally {
    closeSync(fd);
  }
}

/** Edits the dynamic disk header (at the footer's data offset) and re-checksums it. */
export function patchDynamicHeader(file: string, edit: (header: Buffer) => void): void {
  const fd = openSync(file, 'r+');
  try {
    const off = Number(readAt(fd, 0, 512).readBigUInt64BE(16));
    const h = readAt(fd, off, 1024);
    edit(h);
    h.writeUInt32BE(vhdSum(h, 36), 36);
    writeSync(fd, h, 0, 1024, off);
  } finally {
    closeSync(fd);
  }
}

/** File offset of block `index`'s sector bitmap, or -1 when the block is not allocated. */
export function blockBitmapOffset(file: string, index: number): number {
  const fd = openSync(file, 'r');
  try {
    const hdrOff = Number(readAt(fd, 0, 512).readBigUInt64BE(16));
    const batOff = Number(readAt(fd, hdrOff, 1024).readBigUInt64BE(16));
    const e = readAt(fd, batOff + index * 4, 4).readUInt32BE(0);
    return e === 0xffffffff ? -1 : e * 512;
  } finally {
    closeSync(fd);
  }
}

export function writeBytesAt(file: string, off: number, bytes: Uint8Array): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, off);
  } finally {
    closeSync(fd);
  }
}

export function readBytesAt(file: string, off: number, len: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    return readAt(fd, off, len);
  } finally {
    closeSync(fd);
  }
}

/** libvhdi's view of a VHD (optionally with its parent), written as a raw file: an independent reader. */
export function pyvhdiExport(file: string, out: string, parent?: string): void {
  const script = `
import sys, pyvhdi
f = pyvhdi.file(); f.open(sys.argv[1])
if len(sys.argv) > 3:
    p = pyvhdi.file(); p.open(sys.argv[3]); f.set_parent(p)
size = f.get_media_size()
with open(sys.argv[2], 'wb') as o:
    pos = 0
    while pos < size:
        n = min(4 << 20, size - pos)
        o.write(f.read_buffer_at_offset(n, pos)); pos += n
`;
  run('/usr/bin/python3', ['-c', script, file, out, ...(parent ? [parent] : [])]);
}
