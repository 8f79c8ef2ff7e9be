import { fstatSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { ByteSource } from '../src-core/io/bytes.ts';
import { CancelledError } from '../src-core/io/errors.ts';
import { isAllZero } from '../src-core/io/struct.ts';
import { NodeFileSource } from './nodeFiles.ts';
import { nodeScratch } from './nodeScratch.ts';

export const STDIN_NAME = 'stdin';
/** Zero pieces of this size are not written to the scratch file: it stays sparse where the disk is. */
const ZERO_SKIP = 64 * 1024;

/**
 * `-` as the source: standard input as a ByteSource. A file redirected in (`< disk.qcow2`) is
 * read in place, like any file. A pipe has no size until it ends and cannot be read twice, while
 * every conversion plans from the source's size and metadata before it writes a byte (a stream
 * VMDK's grain directory, a fixed VHD's footer, a qcow2's tables may sit anywhere in it), so a
 * pipe is copied to a hidden scratch file beside the output first (sparse: all-zero 64 KiB
 * pieces are skipped), read from there and removed when the source is closed.
 */
export async function openStdin(
  scratchDir: string | undefined,
  signal?: AbortSignal,
  input: Readable = process.stdin,
): Promise<ByteSource> {
  const st = fstatSync(0);
  if (st.isFile() && input === process.stdin) return NodeFileSource.open('/dev/stdin', STDIN_NAME);
  return spool(input, scratchDir, signal);
}

async function spool(input: Readable, scratchDir: string | undefined, signal?: AbortSignal): Promise<ByteSource> {
  const scratch = await nodeScratch(scratchDir)(undefined);
  let pos = 0;
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      if (signal?.aborted) throw new CancelledError();
      const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
      for (let o = 0; o < bytes.length; o += ZERO_SKIP) {
        const part = bytes.subarray(o, o + ZERO_SKIP);
        if (!isAllZero(part)) await scratch.write(pos + o, part);
      }
      pos += bytes.length;
    }
    if (signal?.aborted) throw new CancelledError();
    return await scratch.finish(pos, STDIN_NAME);
  } catch (e) {
    await scratch.discard().catch(() => {});
    throw e;
  }
}
