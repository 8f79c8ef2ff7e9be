import { copyFileSync, openSync, truncateSync, writeSync, closeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { qemuImg, qemuIo, runStatus, tempDir } from './helpers/sys.ts';
import { batSector, makeDirty } from './helpers/vhdxLog.ts';

// qemu-img check for vhdx: same JSON and exit status as qemu-img on clean and damaged files.
const t = tempDir('diskferry-vhdxchk-');
const MiB = 1 << 20;
const base = t.file('base.vhdx');

beforeAll(() => {
  qemuImg('create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', base, '24M');
  qemuIo('-f', 'vhdx', '-c', 'write -P 1 0 3M', '-c', 'write -P 2 10M 1M', base);
});
afterAll(() => t.cleanup());

function qemuCheck(file: string): { status: number; json: Record<string, unknown> } {
  const r = runStatus('qemu-img', ['check', '--output=json', file]);
  return { status: r.status, json: JSON.parse(r.stdout) };
}

async function ourCheck(file: string): Promise<{ status: number; json: Record<string, unknown>; human: string }> {
  const r = await cli('check', '--output=json', file);
  const h = await cli('check', file);
  return { status: r.code, json: JSON.parse(r.stdout), human: h.stdout };
}

/** Overwrites the BAT entry for payload block `block` (1 MiB blocks: index = block here). */
function setBatEntry(file: string, block: number, value: bigint): void {
  const { offset } = batSector(file, block);
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(value);
  const fd = openSync(file, 'r+');
  writeSync(fd, b, 0, 8, offset + ((block * 8) % 4096));
  closeSync(fd);
}

describe('vhdx check', () => {
  it('clean images (qemu-made and ours) check clean, as qemu-img says', async () => {
    const ours = t.file('ours.vhdx');
    expect((await cli('convert', '-O', 'vhdx', base, ours)).code).toBe(0);
    for (const f of [base, ours]) {
      const q = qemuCheck(f);
      const m = await ourCheck(f);
      expect(q.status).toBe(0);
      expect(m.status).toBe(0);
      expect({ ...m.json, filename: '' }).toEqual({ ...q.json, filename: '' });
    }
  });

  it('a truncated file: the BAT entries past the end are corruptions, and open refuses it', async () => {
    const f = t.file('trunc.vhdx');
    copyFileSync(base, f);
    truncateSync(f, 10 * MiB + MiB / 2);
    const q = qemuCheck(f);
    const m = await ourCheck(f);
    expect(q.status).toBe(2);
    expect(m.status).toBe(2);
    expect(m.json.corruptions).toBe(q.json.corruptions);
    expect(m.human).toMatch(/past the end of the file/);
    const r = await cli('convert', '-O', 'raw', f, t.file('trunc.raw'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/truncated/);
  });

  it('a block pointing into the metadata region is a corruption', async () => {
    const f = t.file('overlap.vhdx');
    copyFileSync(base, f);
    setBatEntry(f, 1, BigInt(3 * MiB) | 6n); // the metadata region of this layout
    const q = qemuCheck(f);
    const m = await ourCheck(f);
    expect(q.status).toBe(2);
    expect(m.status).toBe(2);
    expect(m.json.corruptions).toBe(q.json.corruptions);
    expect(m.human).toMatch(/overlaps the VHDX metadata/);
  });

  it('two blocks sharing one host block: we count it (qemu-img 7.2 does not look)', async () => {
    const f = t.file('shared.vhdx');
    copyFileSync(base, f);
    const { bytes } = batSector(f, 0);
    setBatEntry(f, 5, bytes.readBigUInt64LE(0));
    expect(qemuCheck(f).status).toBe(0);
    const m = await ourCheck(f);
    expect(m.status).toBe(2);
    expect(m.json.corruptions).toBe(1);
    expect(m.human).toMatch(/both point at file offset/);
  });

  it('an unreplayed log is reported (qemu-img check without -r cannot even open it)', async () => {
    const f = t.file('dirty.vhdx');
    copyFileSync(base, f);
    const { offset, bytes } = batSector(f, 0);
    makeDirty(f, [{ sequence: 3n, ops: [{ data: new Uint8Array(bytes), offset }] }], 0);
    expect(runStatus('qemu-img', ['check', f]).status).not.toBe(0);
    const m = await ourCheck(f);
    expect(m.status).toBe(2);
    expect(m.human).toMatch(/unapplied entr/);
  });
});
