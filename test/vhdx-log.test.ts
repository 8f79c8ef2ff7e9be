import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { qemuImg, qemuIo, run, runStatus, tempDir } from './helpers/sys.ts';
import { batSector, makeDirty, type DirtyEntry } from './helpers/vhdxLog.ts';

// A VHDX whose log was never replayed must read as qemu-img reads it after `check -r all`.
const t = tempDir('diskferry-vhdxlog-');
afterAll(() => t.cleanup());
const MiB = 1 << 20;

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

/** A qemu-made dynamic image (1 MiB blocks, 2 MiB log) with data in blocks 0 and 3. */
function baseImage(name: string): string {
  const img = t.file(name);
  qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M,log_size=2M', img, '24M');
  qemuIo('-f', 'vhdx', '-c', 'write -P 0x41 0 1M', '-c', 'write -P 0x42 3M 512k', img);
  return img;
}

/**
 * Entries that allocate block `block` at the end of the file (data at its start and end, so
 * the file grows to cover it), point the BAT at it, and change existing data with a zero and a
 * data descriptor.
 */
function allocatingEntries(img: string, block: number, seq: bigint, split: boolean): DirtyEntry[] {
  const size = statSync(img).size;
  const newBlock = Math.ceil(size / MiB) * MiB;
  const { offset: batAt, bytes } = batSector(img, block); // 1 MiB blocks: index = block for block < 4096
  bytes.writeBigUInt64LE(BigInt(newBlock) | 6n, (block * 8) % 4096);
  // Block 0 lives where the BAT says; find it to overwrite part of it.
  const b0 = Number(batSector(img, 0).bytes.readBigUInt64LE(0) >> 20n) * MiB;
  const dataOps = [
    { data: fill(8192, 0x5c), offset: newBlock },
    { data: fill(4096, 0x5d), offset: newBlock + MiB - 4096 },
  ];
  const batOp = { data: new Uint8Array(bytes), offset: batAt };
  const editOps = [
    { zero: 16384, offset: b0 + 4096 },
    { data: fill(4096, 0x77), offset: b0 + 65536 },
  ];
  if (!split) return [{ sequence: seq, ops: [...dataOps, batOp, ...editOps] }];
  return [
    { sequence: seq, ops: dataOps },
    { sequence: seq + 1n, ops: [batOp, ...editOps] },
  ];
}

async function expectReplayMatchesQemu(dirty: string, tag: string): Promise<void> {
  const before = sha(dirty);
  // qemu-img will not open it read-only: the log is real and valid to QEMU.
  const refused = runStatus('qemu-img', ['info', dirty]);
  expect(refused.status).not.toBe(0);
  expect(refused.stderr).toMatch(/log that needs to be replayed/);
  // Repair a copy with qemu-img and export it.
  const repaired = t.file(`${tag}.repaired.vhdx`);
  copyFileSync(dirty, repaired);
  const chk = runStatus('qemu-img', ['check', '-r', 'all', repaired]);
  expect(chk.status).toBe(0);
  const ref = t.file(`${tag}.qemu.raw`);
  qemuImg('convert', '-O', 'raw', repaired, ref);
  // Ours, from the dirty original.
  const mine = t.file(`${tag}.ours.raw`);
  const r = await cli('convert', '-O', 'raw', dirty, mine);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  run('cmp', [mine, ref]);
  // The source was not touched.
  expect(sha(dirty)).toBe(before);
  const info = JSON.parse((await cli('info', '--output=json', dirty)).stdout);
  expect(info['virtual-size']).toBe(24 * MiB);
}

describe('dirty VHDX log', () => {
  it('one entry: new block + BAT update + zero and data descriptors, replayed in memory', async () => {
    const img = baseImage('one.vhdx');
    const clean = t.file('one.clean.raw');
    qemuImg('convert', '-O', 'raw', img, clean);
    makeDirty(img, allocatingEntries(img, 5, 7n, false), 3);
    await expectReplayMatchesQemu(img, 'one');
    // The log changed what the disk holds (so the comparison above means something).
    expect(sha(t.file('one.ours.raw'))).not.toBe(sha(clean));
    const ours = readFileSync(t.file('one.ours.raw'));
    expect(ours[5 * MiB]).toBe(0x5c);
    expect(ours[6 * MiB - 1]).toBe(0x5d);
    expect(ours[4096 + 100]).toBe(0);
    expect(ours[65536]).toBe(0x77);
    const human = await cli('info', img);
    expect(human.stdout).toMatch(/replayed in memory/);
  });

  it('two consecutive entries (Tail pointing at the first) replay together', async () => {
    const img = baseImage('two.vhdx');
    makeDirty(img, allocatingEntries(img, 9, 0x1_0000_0001n, true), 40);
    await expectReplayMatchesQemu(img, 'two');
    expect(readFileSync(t.file('two.ours.raw'))[9 * MiB]).toBe(0x5c);
  });

  it('an entry that wraps around the end of the circular log', async () => {
    const img = baseImage('wrap.vhdx');
    // The 2 MiB log has 512 sectors; the 5-sector entry starts 2 sectors before its end.
    makeDirty(img, allocatingEntries(img, 7, 12n, false), 510);
    await expectReplayMatchesQemu(img, 'wrap');
    expect(readFileSync(t.file('wrap.ours.raw'))[7 * MiB]).toBe(0x5c);
  });

  it('a wrapped two-entry sequence replays from its Tail (MS-VHDX; QEMU 7.2 replays only the part after the wrap)', async () => {
    const img = baseImage('wrap2.vhdx');
    makeDirty(img, allocatingEntries(img, 9, 20n, true), 510);
    const mine = t.file('wrap2.ours.raw');
    const r = await cli('convert', '-O', 'raw', img, mine);
    expect(r.stderr).toBe('');
    const ours = readFileSync(mine);
    // Entry 1 (new block data) and entry 2 (BAT, zero and data edits) both applied.
    expect(ours[9 * MiB]).toBe(0x5c);
    expect(ours[10 * MiB - 1]).toBe(0x5d);
    expect(ours[65536]).toBe(0x77);
    expect(ours[0]).toBe(0x41);
    expect(ours[4096]).toBe(0);
  });

  it('an entry with a bad checksum is not replayed (qemu-img agrees: nothing to replay)', async () => {
    const img = baseImage('badcrc.vhdx');
    const clean = t.file('badcrc.clean.raw');
    qemuImg('convert', '-O', 'raw', img, clean);
    makeDirty(img, allocatingEntries(img, 5, 7n, false), 0);
    // Corrupt one byte inside the entry (log at 1 MiB, entry at its sector 0, data sectors after).
    const f = readFileSync(img);
    f[MiB + 4096 + 100] ^= 0xff;
    writeFileSync(img, f);
    expect(runStatus('qemu-img', ['info', img]).status).toBe(0);
    const mine = t.file('badcrc.ours.raw');
    expect((await cli('convert', '-O', 'raw', img, mine)).code).toBe(0);
    run('cmp', [mine, clean]);
  });
});
