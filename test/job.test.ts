import { describe, expect, it } from 'vitest';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { MemorySink, MemorySource, type ByteSink, type ByteSource, type FileResolver } from '../src-core/io/bytes.ts';
import { openImage } from '../src-core/image/open.ts';
import { runConversionJob, type OutputPlace } from '../src-core/pipeline/job.ts';

// One conversion-job shape for the CLI and the worker (pipeline/job.ts): create → convert →
// close → verify → commit, and discard on any failure, also one before the output exists.
class MemoryPlace implements OutputPlace<Uint8Array> {
  readonly steps: string[] = [];
  readonly companions = new Map<string, MemorySink>();
  sink: MemorySink | undefined;
  constructor(
    readonly name: string,
    private readonly failCreate = false,
  ) {}
  readonly resolver: FileResolver = {
    open: async (n) => {
      throw new Error(`no ${n}`);
    },
    create: async (n) => {
      const s = new MemorySink(n);
      this.companions.set(n, s);
      return s;
    },
  };
  async create(): Promise<ByteSink> {
    this.steps.push('create');
    if (this.failCreate) throw new Error('disk full');
    this.sink = new (class extends MemorySink {
      constructor(
        private readonly log: string[],
        name: string,
      ) {
        super(name);
      }
      override async close(): Promise<void> {
        this.log.push('close');
        await super.close();
      }
    })(this.steps, this.name);
    return this.sink;
  }
  async reopen(): Promise<{ source: ByteSource; resolver: FileResolver }> {
    this.steps.push('reopen');
    const files = new Map([...this.companions].map(([n, s]) => [n, s.bytes.slice()]));
    return {
      source: new MemorySource(this.sink!.bytes.slice(), this.name),
      resolver: {
        open: async (n: string) => new MemorySource(files.get(n)!, n),
      },
    };
  }
  async commit(): Promise<Uint8Array> {
    this.steps.push('commit');
    return this.sink!.bytes;
  }
  async discard(): Promise<void> {
    this.steps.push('discard');
  }
}

async function rawSource(size = 1 << 20) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) bytes[i] = (i >> 12) & 0xff || 1;
  return openImage(new MemorySource(bytes, 'src.raw'), drivers, { codecs: nodeCodecs, format: 'raw' });
}

describe('runConversionJob', () => {
  it('creates, converts, closes the sink, verifies through reopen, then commits', async () => {
    const source = await rawSource();
    const place = new MemoryPlace('out.qcow2');
    const target = drivers.find((d) => d.name === 'qcow2')!;
    const { result, committed } = await runConversionJob({
      source,
      target,
      place,
      create: { options: {}, codecs: nodeCodecs },
      verify: { codecs: nodeCodecs },
    });
    expect(place.steps).toEqual(['create', 'close', 'reopen', 'commit']);
    expect(result.virtualSize).toBe(1 << 20);
    expect(committed.length).toBeGreaterThan(0);
  });

  it('writes companions through the place resolver and verifies them', async () => {
    const source = await rawSource();
    const place = new MemoryPlace('out.vmdk');
    const target = drivers.find((d) => d.name === 'vmdk')!;
    await runConversionJob({
      source,
      target,
      place,
      create: { options: { subformat: 'monolithicFlat' }, codecs: nodeCodecs },
      verify: { codecs: nodeCodecs },
    });
    expect([...place.companions.keys()]).toEqual(['out-flat.vmdk']);
    expect(place.companions.get('out-flat.vmdk')!.closed).toBe(true);
  });

  it('discards when the output cannot be created', async () => {
    const place = new MemoryPlace('out.raw', true);
    const target = drivers.find((d) => d.name === 'raw')!;
    await expect(
      runConversionJob({ source: await rawSource(), target, place, create: { options: {}, codecs: nodeCodecs } }),
    ).rejects.toThrow('disk full');
    expect(place.steps).toEqual(['create', 'discard']);
  });

  it('discards, without closing or committing, when cancelled before or during the conversion', async () => {
    const target = drivers.find((d) => d.name === 'raw')!;
    const early = new MemoryPlace('a.raw');
    await expect(
      runConversionJob({
        source: await rawSource(),
        target,
        place: early,
        signal: AbortSignal.abort(),
        create: { options: {}, codecs: nodeCodecs },
      }),
    ).rejects.toThrow();
    expect(early.steps).toEqual(['discard']);
    const ac = new AbortController();
    const late = new MemoryPlace('b.raw');
    const job = runConversionJob({
      source: await rawSource(8 << 20),
      target,
      place: late,
      signal: ac.signal,
      batchSize: 1 << 20,
      onProgress: () => ac.abort(),
      create: { options: {}, codecs: nodeCodecs },
    });
    await expect(job).rejects.toThrow();
    expect(late.steps).toEqual(['create', 'discard']);
  });

  it('discards when verification fails', async () => {
    const source = await rawSource();
    const place = new MemoryPlace('out.raw');
    place.reopen = async () => ({ source: new MemorySource(new Uint8Array(1 << 20), 'out.raw'), resolver: place.resolver });
    const target = drivers.find((d) => d.name === 'raw')!;
    await expect(
      runConversionJob({ source, target, place, create: { options: {}, codecs: nodeCodecs }, verify: { codecs: nodeCodecs } }),
    ).rejects.toThrow(/verification failed/);
    expect(place.steps).toEqual(['create', 'close', 'discard']);
  });
});
