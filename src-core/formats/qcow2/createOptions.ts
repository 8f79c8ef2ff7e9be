// qcow2's create options (-o) and the writer configuration parsed from them, with qemu-img's
// refusals; shared by the ordinary writer, the front-to-back writer and measure.
import { InvalidArgumentError } from '../../io/errors.ts';
import { isPowerOfTwo } from '../../io/int64.ts';
import { checkOptions, parseBool, parseSize } from '../../image/options.ts';
import type { CreateOptions, CreateOptionSpec } from '../../image/types.ts';
import { parseEncryptionOptions, QCOW2_ENCRYPT_OPTIONS, type Qcow2EncryptionConfig } from './writeEncryption.ts';

export const QCOW2_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  {
    name: 'compat',
    type: 'enum',
    values: ['0.10', '1.1', 'v2', 'v3'],
    default: '1.1',
    help: 'qcow2 version: 1.1 (v3) or 0.10 (v2, for very old readers)',
  },
  { name: 'cluster_size', type: 'size', default: '64k', help: 'cluster size, 512 to 2M, a power of two' },
  {
    name: 'refcount_bits',
    type: 'enum',
    values: ['1', '2', '4', '8', '16', '32', '64'],
    default: '16',
    help: 'width of a reference count',
  },
  { name: 'compression_type', type: 'enum', values: ['zlib', 'zstd'], default: 'zlib', help: 'how -c compresses clusters' },
  { name: 'extended_l2', type: 'bool', default: 'off', help: 'subcluster allocation (32 per cluster)' },
  { name: 'lazy_refcounts', type: 'bool', default: 'off', help: 'mark the image as using lazy refcounts (v3)' },
  {
    name: 'preallocation',
    type: 'enum',
    values: ['off', 'metadata', 'falloc', 'full'],
    default: 'off',
    help: 'metadata: every cluster allocated, the file sparse; falloc, full: zeros written too',
  },
  ...QCOW2_ENCRYPT_OPTIONS,
];

export interface Qcow2WriterConfig {
  version: 2 | 3;
  clusterBits: number;
  refcountBits: number;
  compressionType: 0 | 1;
  extendedL2: boolean;
  lazyRefcounts: boolean;
  encryption?: Qcow2EncryptionConfig;
  preallocation: 'off' | 'metadata' | 'falloc' | 'full';
}

export function parseQcow2Options(opts: CreateOptions): Qcow2WriterConfig {
  const o = opts.options;
  checkOptions('qcow2', o, QCOW2_CREATE_OPTIONS);
  const compat = o.compat ?? '1.1';
  const version = compat === '0.10' || compat === 'v2' ? 2 : 3;
  const clusterSize = o.cluster_size ? parseSize(o.cluster_size, 'cluster_size') : 65536;
  if (!isPowerOfTwo(clusterSize) || clusterSize < 512 || clusterSize > 2 * 1024 * 1024) {
    throw new InvalidArgumentError(`cluster_size must be a power of two between 512 and 2M (got ${clusterSize})`);
  }
  const refcountBits = Number(o.refcount_bits ?? 16);
  const compressionType = o.compression_type === 'zstd' ? 1 : 0;
  const extendedL2 = parseBool(o.extended_l2, 'extended_l2');
  const lazyRefcounts = parseBool(o.lazy_refcounts, 'lazy_refcounts');
  if (version === 2) {
    if (refcountBits !== 16) throw new InvalidArgumentError('compat=0.10 requires refcount_bits=16');
    if (compressionType) throw new InvalidArgumentError('compression_type=zstd requires compat=1.1');
    if (extendedL2) throw new InvalidArgumentError('extended_l2 requires compat=1.1');
    if (lazyRefcounts) throw new InvalidArgumentError('lazy_refcounts requires compat=1.1');
  }
  if (extendedL2 && clusterSize < 16384) throw new InvalidArgumentError('extended_l2 requires cluster_size of at least 16k');
  const encryption = parseEncryptionOptions(opts);
  const preallocation = (o.preallocation ?? 'off') as Qcow2WriterConfig['preallocation'];
  if (preallocation !== 'off') {
    // qemu-img's refusals, in its words.
    if (opts.compress) throw new InvalidArgumentError('Compression and preallocation not supported at the same time');
    if (opts.backing && !extendedL2)
      throw new InvalidArgumentError('Backing file and preallocation can only be used at the same time if extended_l2 is on');
    if (encryption) throw new InvalidArgumentError('DiskFerry does not preallocate encrypted qcow2 images (only preallocation=off)');
  }
  return {
    version,
    clusterBits: Math.log2(clusterSize),
    refcountBits,
    compressionType,
    extendedL2,
    lazyRefcounts,
    encryption,
    preallocation,
  };
}
