import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemorySink, MemorySource } from '../src-core/io/bytes.ts';
import { DiskFerryError } from '../src-core/io/errors.ts';
import { openImage } from '../src-core/image/open.ts';
import type { FormatDriver } from '../src-core/image/types.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { qcow2Driver } from '../src-core/formats/qcow2/index.ts';
import { convert } from '../src-core/pipeline/convert.ts';
import { verifyOutput } from '../src-core/pipeline/verify.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { cli } from './helpers/cli.ts';
import { standardRaw, tempDir } from './helpers/sys.ts';

// Verify after write: the output is re-read and compared with the source before success is claimed.
const t = tempDir();
const raw = t.file('src.raw');
beforeAll(() => standardRaw(raw, 10 << 20, 8));
afterAll(() => t.cleanup());

/** A qcow2 writer with a fault: one bit of one data write is flipped on its way to disk. */
function brokenQcow2(flipAtWrite: number): FormatDriver {
  return {
    ...qcow2Driver,
    async create(sink, opts) {
      const w = await qcow2Driver.create!(sink, opts);
      let n = 0;
      return {
        granularity: w.granularity,
        warnings: w.warnings,
        write: (offset, data) => {
          if (n++ === flipAtWrite) {
            data = data.slice();
            data[data.length >> 1]! ^= 0x10;
          }
          return w.write(offset, data);
        },
        writeZeroes: w.writeZeroes?.bind(w),
        finish: () => w.finish(),
      };
    },
  };
}

async function convertInMemory(target: FormatDriver): Promise<{ source: Awaited<ReturnType<typeof openImage>>; out: Uint8Array }> {
  const source = await openImage(new MemorySource(new Uint8Array(readFileSync(raw)), 'src.raw'), drivers, {
    codecs: nodeCodecs,
    format: 'raw',
  });
  const sink = new MemorySink('out.qcow2');
  await convert({ source, target, sink, create: { options: {}, codecs: nodeCodecs, filename: 'out.qcow2' } });
  return { source, out: sink.bytes.slice() };
}

describe('convert --verify', () => {
  it('passes for a sound conversion, and the output is kept', async () => {
    const dst = t.file('ok.qcow2');
    const r = await cli('convert', '--verify', '-c', '-O', 'qcow2', raw, dst);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(existsSync(dst)).toBe(true);
  });

  it('catches a writer that corrupts data (fault injected), naming the offset', async () => {
    const { source, out } = await convertInMemory(brokenQcow2(1));
    const written = await openImage(new MemorySource(out, 'out.qcow2'), drivers, { codecs: nodeCodecs });
    const err = await verifyOutput(source, written).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DiskFerryError);
    expect((err as Error).message).toMatch(/^out\.qcow2: verification failed: the output differs from the source at offset \d+$/);
  });

  it('the same pipeline without the fault verifies clean (the check is not always failing)', async () => {
    const { source, out } = await convertInMemory(qcow2Driver);
    const written = await openImage(new MemorySource(out, 'out.qcow2'), drivers, { codecs: nodeCodecs });
    await expect(verifyOutput(source, written)).resolves.toBeUndefined();
  });
});
