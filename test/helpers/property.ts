import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { expect } from 'vitest';
import { cliOk } from './cli.ts';
import { qemuCompare, qemuImg, runStatus, writePatternedRaw } from './sys.ts';

/** Where data lies on a random disk: up to five runs at relative positions, with their lengths. */
export const sparseRegions = (maxLength: number) =>
  fc.array(fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.integer({ min: 1, max: maxLength }) }), { maxLength: 5 });

export const seedArb = fc.integer({ min: 1, max: 2 ** 31 - 1 });

/** Writes a sparse raw disk of `size` bytes with patterned data in the given runs. */
export function writeSparseDisk(file: string, size: number, regions: { at: number; length: number }[], seed: number): void {
  writePatternedRaw(
    file,
    size,
    regions.map((r) => ({ offset: Math.floor(r.at * size), length: r.length })),
    seed,
  );
}

/** A random disk of whole 512-byte sectors, written to `raw` as a sparse raw file. */
export function writeSectorDisk(
  raw: string,
  d: { sectors: number; seed: number; regions: { at: number; length: number }[] },
): { raw: string; size: number } {
  const size = d.sectors * 512;
  writeSparseDisk(raw, size, d.regions, d.seed);
  return { raw, size };
}

/**
 * Our raw export of `img` equals qemu-img's, byte for byte. `format` is for images qemu-img
 * does not probe (a fixed VHD has no header at its start).
 */
export async function expectReadsLikeQemu(img: string, format?: string): Promise<void> {
  await cliOk('convert', '-O', 'raw', img, `${img}.ours`);
  qemuImg('convert', ...(format ? ['-f', format] : []), '-O', 'raw', img, `${img}.ref`);
  expect(readFileSync(`${img}.ours`).equals(readFileSync(`${img}.ref`))).toBe(true);
}

/** An image we wrote: qemu-img reads `size` bytes equal to `raw`, and checks it clean when `check`. */
export function expectQemuReadsAsRaw(img: string, format: string, raw: string, size: number, check: boolean): void {
  if (check) expect(runStatus('qemu-img', ['check', '-f', format, img]).status).toBe(0);
  expect(JSON.parse(qemuImg('info', '--output=json', '-f', format, img))['virtual-size']).toBe(size);
  expect(qemuCompare(raw, img, '-f', 'raw', '-F', format)).toBe(0);
}
