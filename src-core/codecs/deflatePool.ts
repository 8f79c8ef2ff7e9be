import { zlibStreamParams, type Codecs, type DeflateParams } from './types.ts';

/**
 * One compression worker as the dispatcher sees it (a worker_threads Worker in the CLI, a Web
 * Worker behind Comlink in browsers). `deflate` receives a buffer it may transfer (detach) and
 * resolves to the deflate stream (raw, or zlib-wrapped when `zlib`), or to a buffer of the
 * input's length or more when the data did not shrink (the writer then stores it as it is, as
 * QEMU does).
 * Jobs travel in batches: one message per cluster cost a worker ~10 % of its time in
 * postMessage (measured, Node 20, 64 KiB clusters).
 */
export interface DeflateBridge {
  deflate(jobs: Uint8Array[], params: DeflateParams, zlib: boolean): Promise<DeflateReply[]>;
  terminate(): void | Promise<void>;
}

export interface DeflateReply {
  out: Uint8Array;
  /** The job's buffer handed back for the next job (not when `out` is that buffer). */
  spare?: Uint8Array;
}

export interface PooledCodecs extends Codecs {
  /** Workers running (0 until the first deflate when started from a factory). */
  readonly workers: number;
  /** Stops the workers; pending jobs reject. */
  close(): Promise<void>;
}

interface Pending {
  data: Uint8Array;
  params: DeflateParams;
  zlib: boolean;
  resolve(out: Uint8Array): void;
  reject(e: unknown): void;
}

/**
 * A Codecs whose deflateRaw runs on a pool of workers. Waiting jobs go out in batches of up to
 * `batch` to the worker with the fewest batches in flight; at most `depth` per worker are in
 * flight (two keep a worker busy while the next batch is in its post queue), the rest wait
 * here in order. Results resolve their own promises, so callers that await them in cluster
 * order get order-preserving output. zlib streams (VMDK stream grains, cloop blocks) are made
 * whole on the same workers, Adler-32 included. Everything else (inflate, zstd) falls through
 * to `base`.
 */
export function pooledCodecs(workers: DeflateBridge[] | (() => DeflateBridge[]), base: Codecs, depth = 2, batch = 8): PooledCodecs {
  // A factory starts the workers on the first deflate: opening or inspecting images with these
  // codecs costs no threads.
  let bridges: DeflateBridge[] = typeof workers === 'function' ? [] : workers;
  let busy: number[] = bridges.map(() => 0);
  const start = () => {
    if (bridges.length) return;
    bridges = (workers as () => DeflateBridge[])();
    if (!bridges.length) throw new RangeError('pooledCodecs: no workers');
    busy = bridges.map(() => 0);
  };
  const waiting: Pending[] = [];
  let head = 0;
  let closed = false;
  let scheduled = false;
  // Job buffers come back from the workers and are reused: without this, every cluster left
  // a 64 KiB buffer for the garbage collector on both sides, and RSS grew by 100+ MB.
  const spares: Uint8Array[] = [];
  const MAX_SPARES = 64;

  const pump = () => {
    scheduled = false;
    while (head < waiting.length) {
      let best = 0;
      for (let w = 1; w < busy.length; w++) if (busy[w]! < busy[best]!) best = w;
      if (busy[best]! >= depth) break;
      const { params, zlib } = waiting[head]!;
      const jobs: Pending[] = [];
      while (head < waiting.length && jobs.length < batch && waiting[head]!.zlib === zlib && sameParams(waiting[head]!.params, params)) {
        jobs.push(waiting[head]!);
        waiting[head++] = undefined as unknown as Pending;
      }
      busy[best]!++;
      bridges[best]!.deflate(
        jobs.map((j) => j.data),
        params,
        zlib,
      ).then(
        (replies) => {
          busy[best]!--;
          replies.forEach((r, k) => {
            if (r.spare && spares.length < MAX_SPARES) spares.push(r.spare);
            jobs[k]!.resolve(r.out);
          });
          pump();
        },
        (e) => {
          busy[best]!--;
          for (const j of jobs) j.reject(e);
          pump();
        },
      );
    }
    if (head === waiting.length) {
      waiting.length = 0;
      head = 0;
    }
  };
  // Jobs handed over in one synchronous run (a writer's whole window) leave as full batches.
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(pump);
  };

  function submit(data: Uint8Array, params: DeflateParams, zlib: boolean): Promise<Uint8Array> {
    if (closed) return Promise.reject(new Error('compression pool is closed'));
    start();
    // A copy the worker may own: `data` is usually a view into a larger read window, which
    // must not be detached. This is the only copy a cluster makes on its way to a worker.
    let job = spares.pop();
    if (job && job.length === data.length) job.set(data);
    else job = new Uint8Array(data); // (not .slice(): on a Node Buffer that is a view)
    return new Promise((resolve, reject) => {
      waiting.push({ data: job, params, zlib, resolve, reject });
      schedule();
    });
  }

  return {
    ...base,
    get workers() {
      return bridges.length;
    },
    deflateRaw: (data: Uint8Array, params: DeflateParams) => submit(data, params, false),
    async zlibDeflate(data: Uint8Array, level: number): Promise<Uint8Array> {
      const stream = await submit(data, zlibStreamParams(level), true);
      // A block that did not shrink comes back as it went: the base codec writes its stored form.
      return stream.length >= data.length ? base.zlibDeflate(data, level) : stream;
    },
    async close() {
      closed = true;
      for (let i = head; i < waiting.length; i++) waiting[i]!.reject(new Error('compression pool closed'));
      waiting.length = 0;
      head = 0;
      await Promise.all(bridges.map((b) => b.terminate()));
    },
  };
}

function sameParams(a: DeflateParams, b: DeflateParams): boolean {
  return (
    a === b ||
    (a.level === b.level && a.windowBits === b.windowBits && a.memLevel === b.memLevel && a.libdeflateLevel === b.libdeflateLevel)
  );
}
