import { execFileSync } from 'node:child_process';
import { openSync, closeSync, writeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canFindHoles } from '../cli/holes.ts';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuCompare, qemuImg, tempDir } from './helpers/sys.ts';

// Sources without metadata (raw, fixed VHD, flat VMDK) skip what the file system reports as
// holes, as qemu-img's file driver does (lseek SEEK_DATA through cli/native/holes.c, built by
// `npm test`): `map` prints what qemu-img prints, and a conversion reads only the data.
const t = tempDir('diskferry-holes-');
const MiB = 1 << 20;
const DATA = [
  [3 * MiB, 2 * MiB],
  [700 * MiB, 1 * MiB],
  [1023 * MiB, 1 * MiB],
] as const;
const dataBytes = DATA.reduce((n, [, len]) => n + len, 0);

beforeAll(() => {
  // 1 GiB with 4 MiB of patterned data in three places; the rest never written (holes).
  execFileSync('truncate', ['-s', '1G', t.file('disk.raw')]);
  const fd = openSync(t.file('disk.raw'), 'r+');
  for (const [at, len] of DATA) {
    const buf = Buffer.alloc(len);
    for (let i = 0; i < len; i += 512) buf.writeUInt32LE((at + i) / 512 + 1, i);
    writeSync(fd, buf, 0, len, at);
  }
  closeSync(fd);
  qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed', t.file('disk.raw'), t.file('fixed.vhd'));
  qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', t.file('disk.raw'), t.file('flat.vmdk'));
}, 120_000);
afterAll(() => t.cleanup());

const sources = [
  ['raw', 'disk.raw'],
  ['vpc', 'fixed.vhd'],
  ['vmdk', 'flat.vmdk'],
] as const;

describe('holes in sources without metadata', () => {
  it('the file system here says where holes are (the native lseek was built)', () => {
    const fd = openSync(t.file('disk.raw'), 'r');
    try {
      expect(canFindHoles(fd)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  for (const [format, file] of sources) {
    it(`${format}: map --output=json prints what qemu-img prints`, async () => {
      const ours = await cliOk('map', '--output=json', '-f', format, t.file(file));
      const theirs = qemuImg('map', '--output=json', '-f', format, t.file(file));
      expect(ours).toBe(theirs);
      // The holes are there: more than one run, and zeros reported where nothing was written.
      expect(JSON.parse(ours).some((e: { zero: boolean }) => e.zero)).toBe(true);
    });

    it(`${format}: convert reads only the data and equals the source`, async () => {
      const out = t.file(`${file}.qcow2`);
      const r = await cli('convert', '--progress=json', '-f', format, '-O', 'qcow2', t.file(file), out);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stderr
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { total: number; done: number });
      // Progress counts what must be read: the data runs, rounded out to the file system's
      // blocks (qemu-img's own first 4 KiB of a file it creates included), never the 1 GiB.
      const total = lines.at(-1)!.total;
      expect(total).toBeGreaterThanOrEqual(dataBytes);
      expect(total).toBeLessThan(dataBytes + MiB);
      expect(qemuCompare(t.file('disk.raw'), out, '-f', 'raw', '-F', 'qcow2')).toBe(0);
    });
  }
});
