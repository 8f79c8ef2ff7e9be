import { createHash } from 'node:crypto';
import { openSync, readSync, writeSync, closeSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeFileSource } from '../cli/nodeFiles.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { VhdxDevice } from '../src-core/formats/vhdx/reader.ts';
import { qemuImg, qemuIo, run, runStatus, tempDir } from './helpers/sys.ts';

// 4 KiB logical sectors change the chunk ratio (2^23 sectors per bitmap block), so the BAT
// interleave moves. qemu-img 7.2 refuses such files; libvhdi reads them and is the oracle.
const t = tempDir('diskferry-vhdx4k-');
afterAll(() => t.cleanup());
const MiB = 1 << 20;
const GiB = 1 << 30;

/** Sets the logical and physical sector size items of a VHDX to 4096, in place. */
function makeSector4k(file: string): void {
  const fd = openSync(file, 'r+');
  const head = Buffer.alloc(8 * MiB);
  readSync(fd, head, 0, head.length, 0);
  const rt = 192 * 1024;
  let meta = 0;
  for (let i = 0; i < head.readUInt32LE(rt + 8); i++) {
    const o = rt + 16 + 32 * i;
    if (head.readUInt32LE(o) === 0x8b7ca206) meta = Number(head.readBigUInt64LE(o + 16));
  }
  for (let i = 0; i < head.readUInt16LE(meta + 10); i++) {
    const o = meta + 32 + 32 * i;
    const id = head.readUInt32LE(o);
    if (id === 0x8141bf1d || id === 0xcda348c7) {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(4096);
      writeSync(fd, b, 0, 4, meta + head.readUInt32LE(o + 16));
    }
  }
  closeSync(fd);
}

const RANGES: [number, number][] = [
  [0, 4 * MiB],
  [4 * GiB - MiB, 4 * MiB],
  [5 * GiB - 2 * MiB, 2 * MiB],
];

function pyvhdiDigests(file: string): string[] {
  const py = `
import pyvhdi, sys, hashlib
f = pyvhdi.file(); f.open(sys.argv[1])
assert f.get_bytes_per_sector() == 4096
for spec in sys.argv[2:]:
    off, n = map(int, spec.split(':'))
    print(hashlib.sha256(f.read_buffer_at_offset(n, off)).hexdigest())
`;
  return run('/usr/bin/python3', ['-c', py, file, ...RANGES.map(([o, n]) => `${o}:${n}`)])
    .trim()
    .split('\n');
}

describe('VHDX with 4 KiB logical sectors', () => {
  it('reads as libvhdi reads it (interleave after 32768 blocks, not 4096)', async () => {
    const img = t.file('s4k.vhdx');
    qemuImg('create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', img, '5G');
    // Written with 512-byte geometry: the data lands in BAT index 4097 and the last block.
    qemuIo('-f', 'vhdx', '-c', 'write -P 0x11 4G 4k', '-c', 'write -P 0x22 0 64k', '-c', 'write -P 0x33 5119M 1M', img);
    makeSector4k(img);
    expect(runStatus('qemu-img', ['info', img]).status).not.toBe(0);
    const src = await NodeFileSource.open(img);
    const dev = await VhdxDevice.open(src, { codecs: nodeCodecs });
    try {
      expect(dev.virtualSize).toBe(5 * GiB);
      const ours: string[] = [];
      for (const [o, n] of RANGES)
        ours.push(
          createHash('sha256')
            .update(await dev.read(o, n))
            .digest('hex'),
        );
      expect(ours).toEqual(pyvhdiDigests(img));
      // With 4 KiB sectors index 4097 is payload block 4097: the 0x11 bytes now read at 4 GiB + 1 MiB.
      const moved = await dev.read(4 * GiB + MiB, 4096);
      expect(moved.every((x) => x === 0x11)).toBe(true);
    } finally {
      await dev.close();
    }
  });
});
