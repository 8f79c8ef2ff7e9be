import type { ByteSource } from '../../src-core/io/bytes.ts';
import type { PatchedBytes } from './mutate.ts';
import { DiskFerryError } from '../../src-core/io/errors.ts';
import { coalesce } from '../../src-core/image/extents.ts';
import { openImage } from '../../src-core/image/open.ts';
import { drivers } from '../../src-core/formats/registry.ts';
import { infoJson } from '../../src-core/pipeline/info.ts';
import { portableCodecs } from '../../src-core/codecs/portable.ts';
import { FUZZ_PASSWORD } from './fixtures.ts';

export type Outcome = { ok: true } | { ok: false; typed: true; message: string } | { ok: false; typed: false; error: unknown };

const MAX_EXTENTS = 20_000;
const READ = 256 * 1024;

/**
 * Everything a user's first minute does with an image: open (probed and forced), info, the
 * allocation map, and reads at the start, the end and in the middle. It must end in success or
 * a typed error; anything else is a bug. `unlock`: open with FUZZ_PASSWORD (encrypted seeds).
 */
export async function exercise(bytes: PatchedBytes, name: string, format: string | undefined, unlock = true): Promise<Outcome> {
  try {
    const src: ByteSource = { name, size: bytes.length, read: async (o, l) => bytes.slice(o, l) };
    const dev = await openImage(src, drivers, {
      format,
      codecs: portableCodecs,
      noBacking: true,
      password: unlock ? new TextEncoder().encode(FUZZ_PASSWORD) : undefined,
    });
    try {
      infoJson(dev.info());
      let n = 0;
      for await (const e of coalesce(dev.extents())) {
        if (e.length <= 0 || e.offset < 0 || e.offset + e.length > dev.virtualSize) throw new Error(`bad extent ${JSON.stringify(e)}`);
        if (++n > MAX_EXTENTS) break;
      }
      const size = dev.virtualSize;
      for (const at of [0, Math.max(0, size - READ), Math.floor(size / 2 / 512) * 512]) {
        const len = Math.min(READ, size - at);
        if (len <= 0) continue;
        const b = await dev.read(at, len);
        if (b.length !== len) throw new Error(`read returned ${b.length} of ${len} bytes`);
      }
    } finally {
      await dev.close();
    }
    return { ok: true };
  } catch (e) {
    if (e instanceof DiskFerryError) {
      if (e.message.includes('\n')) return { ok: false, typed: false, error: new Error(`multi-line message: ${e.message}`) };
      return { ok: false, typed: true, message: e.message };
    }
    return { ok: false, typed: false, error: e };
  }
}
