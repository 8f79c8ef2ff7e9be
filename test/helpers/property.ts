import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { expect } from 'vitest';
import { cliOk } from './cli.ts';
import { qemuImg, writePatternedRaw } from './sys.ts';

/** Where data lies on a random disk: up to five runs at relative positions, with their lengths. */
export const sparseRegions = (maxLength: number) =>
  fc.array(fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.integer({ min: 1, max: maxLength }) }), { maxLength: 5 });

export const seedArb = fc.integer({ min: 1, max: 2 ** 31 - 1 });

/** Writes a sparse raw disk of `size` bytes with patterned data in the given runs. */
export function writeSparseDisk(file: string, size: number, regions: { at: number; length: number }[], seed: number): void {
  writePatternedRaw(file, size, regions.map((r) => ({ offset: Math.floor(r.at * size), length: r.length })), seed);
}

/** Our raw export of `img` equals qemu-img's, byte for byte. */
export async function expectReadsLikeQemu(img: string): Promise<void> {
  await cliOk('convert', '-O', 'raw', img, `${img}.ours`);
  qemuImg('convert', '-O', 'raw', img, `${img}.ref`);
  expect(readFileSync(`${img}.ours`).equals(readFileSync(`${img}.ref`))).toBe(true);
}
