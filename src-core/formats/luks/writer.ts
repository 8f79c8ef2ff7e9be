import type { ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { checkOptions } from '../../image/options.ts';
import { luksKeySecret, luksOptionSpecs, parseLuksCreateOptions } from '../../image/luksOptions.ts';
import type { BlockDevice, CreateOptions, CreateOptionSpec, ImageWriter, MeasureResult } from '../../image/types.ts';
import { WriteOrder } from '../../image/writeOrder.ts';
import {
  createLuks,
  luksAreaBytes,
  luksSectorCipher,
  pbkdf2Of,
  SECTOR,
  type LuksCreateOptions,
  type SectorCipher,
} from '../../codecs/crypto/index.ts';
import { refuseReproducibleSecrets } from '../../image/identity.ts';

/** qemu-img create -f luks options (QCryptoBlockCreateOptionsLUKS without the encrypt. prefix). */
export const LUKS_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  ...luksOptionSpecs('', false),
  {
    name: 'preallocation',
    type: 'enum',
    values: ['off', 'falloc', 'full'],
    default: 'off',
    help: 'accepted; every payload sector is written anyway',
  },
];

/** Zeros encrypted per step when filling ranges the source left out. */
const FILL = 1024 * 1024;

/**
 * Writes a LUKS1 volume whose payload is the disk. Ciphertext of zeros is not zeros, so ranges
 * the converter skips (holes, all-zero clusters) are written as encrypted zeros too, as
 * qemu-img convert does (the luks driver has no zero-initialised state).
 */
export class LuksWriter implements ImageWriter {
  readonly granularity = 64 * 1024;
  private readonly out: SinkBuffer;
  private readonly order: WriteOrder;
  /** Guest bytes written so far (everything before is in the file). */
  private pos = 0;

  constructor(
    private readonly sink: ByteSink,
    private readonly size: number,
    private readonly payload: number,
    private readonly cipher: SectorCipher,
  ) {
    this.out = new SinkBuffer(sink);
    this.order = new WriteOrder('luks', this.granularity, size);
  }

  private async put(offset: number, plain: Uint8Array): Promise<void> {
    // A short last sector is encrypted as a whole sector; the file is cut at the disk's end.
    const buf = new Uint8Array(alignUp(plain.length, SECTOR));
    buf.set(plain);
    this.cipher.encrypt(buf, offset / SECTOR);
    await this.out.write(this.payload + offset, buf);
  }

  private async fillTo(end: number): Promise<void> {
    while (this.pos < end) {
      const n = Math.min(FILL, end - this.pos);
      await this.put(this.pos, new Uint8Array(n));
      this.pos += n;
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    await this.fillTo(offset);
    await this.put(offset, data);
    this.pos = offset + data.length;
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.order.check(offset, length);
    await this.fillTo(offset + length);
  }

  async finish(): Promise<void> {
    await this.fillTo(this.size);
    await this.out.flush();
    if (this.sink.truncate) await this.sink.truncate(this.payload + this.size);
  }
}

/** The LUKS parameters from -o, checked as qemu-img 7.2 checks them. */
export function parseLuksOptions(opts: CreateOptions): { keySecret: string; luks: LuksCreateOptions } {
  const keySecret = luksKeySecret(opts.options, '', opts.filename);
  return { keySecret, luks: parseLuksCreateOptions(opts.options, '', opts.filename) };
}

export async function createLuksWriter(sink: ByteSink, opts: CreateOptions): Promise<ImageWriter> {
  checkOptions('luks', opts.options, LUKS_CREATE_OPTIONS);
  if (opts.backing) throw new UnsupportedError(opts.filename, 'the luks format has no backing file');
  if (opts.compress) throw new UnsupportedError(opts.filename, 'the luks format has no compression (-c)');
  refuseReproducibleSecrets(opts, 'a LUKS image');
  const { keySecret, luks } = parseLuksOptions(opts);
  const secret = opts.secrets?.get(keySecret);
  if (!secret) throw new InvalidArgumentError(`No secret with id '${keySecret}'`, opts.filename);
  const created = await createLuks(secret, luks, pbkdf2Of(opts.codecs), opts.codecs.aesEcb);
  await sink.write(0, created.bytes);
  const cipher = luksSectorCipher(created.header, created.masterKey, opts.codecs.aesEcb);
  // qemu-img rounds the disk up to whole sectors.
  return new LuksWriter(sink, alignUp(opts.virtualSize, SECTOR), created.length, cipher);
}

/**
 * qemu-img measure -O luks: the LUKS area (header and 8 key slots for the chosen cipher) plus
 * the whole disk, since every payload sector is written. Needs key-secret as qemu-img does,
 * though not the secret itself.
 */
export async function measureLuks(opts: CreateOptions, source: BlockDevice | undefined): Promise<MeasureResult> {
  checkOptions('luks', opts.options, LUKS_CREATE_OPTIONS);
  const { luks } = parseLuksOptions(opts);
  // The size as given, not rounded to sectors: qemu-img measure does not round it either.
  const total = luksAreaBytes(luks.cipherAlg, luks.mode) + (source?.virtualSize ?? opts.virtualSize);
  return { required: total, 'fully-allocated': total };
}
