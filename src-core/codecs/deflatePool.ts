import type { Codecs, DeflateParams } from './types.ts';

/**
 * One compression worker as the dispatcher sees it (a worker_threads Worker in the CLI, a Web
 * Worker behind Comlink in browsers). `deflate` receives a buffer it may transfer (detach) and
 * resolves to the raw deflate stream, or to a buffer of the input's length or more when the
 * data did not shrink (the qcow2 writer then stores the cluster as it is, as QEMU does).
 */
export interface DeflateBridge {
  deflate(job: Uint8Array, params: DeflateParams): Promise<DeflateReply>;
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
  resolve(out: Uint8Array): void;
  reject(e: unknown): void;
}

/**
 * A Codecs whose deflateRaw runs on a pool of workers. Each job goes to the worker with the
 * fewest jobs in flight; at most `depth` per worker are in flight (two keeps a worker busy while
 * its next job is in the post queue), the rest wait here in order. Results resolve their own
 * promises, so callers that await them in cluster order get order-preserving output.
 * Everything else (inflate, zstd) falls through to `base`.
 */
export function pooledCodecs(workers: DeflateBridge[] | (() => DeflateBridge[]), base: Codecs, depth = 2): PooledCodecs {
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
  // Job buffers come back from the workers and are reused: without this, every cluster left
  // a 64 KiB buffer for the garbage collector on both sides, and RSS grew by 100+ MB.
  const spares: Uint8Array[] = [];
  const MAX_SPARES = 32;

  const pump = () => {
    while (head < waiting.length) {
      let best = 0;
      for (let w = 1; w < busy.length; w++) if (busy[w]! < busy[best]!) best = w;
      if (busy[best]! >= depth) break;
      const job = waiting[head]!;
      waiting[head++] = undefined as unknown as Pending;
      busy[best]!++;
      bridges[best]!.deflate(job.data, job.params).then(
        (r) => {
          busy[best]!--;
          if (r.spare && spares.length < MAX_SPARES) spares.push(r.spare);
          job.resolve(r.out);
          pump();
        },
        (e) => {
          busy[best]!--;
          job.reject(e);
          pump();
        },
      );
    }
    if (head === waiting.length) {
      waiting.length = 0;
      head = 0;
    }
  };

  return {
    ...base,
    get workers() {
      return bridges.length;
    },
    deflateRaw(data: Uint8Array, params: DeflateParams): Promise<Uint8Array> {
      if (closed) return Promise.reject(new Error('compression pool is closed'));
      start();
      // A copy the worker may own: `data` is usually a view into a larger read window, which
      // must not be detached. This is the only copy a cluster makes on its way to a worker.
      let job = spares.pop();
      if (job && job.length === data.length) job.set(data);
      else job = new Uint8Array(data); // (not .slice(): on a Node Buffer that is a view)
      return new Promise((resolve, reject) => {
        waiting.push({ data: job, params, resolve, reject });
        pump();
      });
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
