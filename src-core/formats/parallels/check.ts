import type { ByteSource } from '../../io/bytes.ts';
import type { CheckResult, OpenContext } from '../../image/types.ts';
import { INUSE_MAGIC, prlOffMultiplier } from './header.ts';
import { readPrlMeta } from './reader.ts';

/**
 * qemu-img check for Parallels, counted as QEMU 7.2's parallels_co_check does: an unclean
 * (in-use) header is a corruption, a BAT entry past the end of the file is a corruption, and
 * file space past the last cluster is leaked (counted in clusters). 7.2 does not look for
 * clusters used twice, so neither do we (qemu-img 7.2 reports such an image clean).
 */
export async function checkParallels(src: ByteSource, ctx: OpenContext): Promise<CheckResult> {
  const { header, bat, clusterSize } = await readPrlMeta(src, ctx);
  const mult = prlOffMultiplier(header);
  const size = src.size;
  const messages: string[] = [];
  let corruptions = 0;
  let leaks = 0;
  if (header.inuse === INUSE_MAGIC) {
    messages.push('ERROR image was not closed correctly');
    corruptions++;
  }
  let allocated = 0;
  let fragmented = 0;
  let high = 0;
  let prev = 0;
  for (let i = 0; i < bat.length; i++) {
    const off = bat[i]! * mult;
    if (off === 0) {
      prev = 0;
      continue;
    }
    if (off > size) {
      messages.push(`ERROR cluster ${i} is outside image`);
      corruptions++;
    }
    allocated++;
    if (off > high) high = off;
    if (prev !== 0 && prev + clusterSize !== off) fragmented++;
    prev = off;
  }
  const end = high + clusterSize;
  if (size > end) {
    messages.push(`ERROR space leaked at the end of the image ${size - end}`);
    leaks += Math.ceil((size - end) / clusterSize);
  }
  const r: CheckResult = { filename: src.name, format: 'parallels', 'check-errors': 0, messages };
  if (corruptions) r.corruptions = corruptions;
  if (leaks) r.leaks = leaks;
  r['image-end-offset'] = end;
  r['total-clusters'] = bat.length;
  if (allocated) r['allocated-clusters'] = allocated;
  if (fragmented) r['fragmented-clusters'] = fragmented;
  return r;
}
