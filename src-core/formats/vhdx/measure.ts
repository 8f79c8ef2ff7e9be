import type { BlockDevice, CreateOptions, MeasureResult } from '../../image/types.ts';
import { allocatedUnits } from '../../image/extents.ts';
import { parseVhdxOptions, vhdxLayout } from './writer.ts';

/**
 * The size of the VHDX our writer makes (qemu-img 7.2 cannot measure vhdx at all): the fixed
 * part up to the first payload block, plus one whole block for every block the source has
 * data in (dynamic) or for every block (fixed).
 */
export async function measureVhdx(opts: CreateOptions, source: BlockDevice | undefined): Promise<MeasureResult> {
  const cfg = parseVhdxOptions({ ...opts, virtualSize: source?.virtualSize ?? opts.virtualSize });
  const { geometry, dataStart } = vhdxLayout(cfg);
  const full = dataStart + geometry.payloadBlocks * cfg.blockSize;
  const used = source ? await allocatedUnits(source, cfg.blockSize) : 0;
  return { required: cfg.fixed ? full : dataStart + used, 'fully-allocated': full };
}
