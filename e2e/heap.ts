import type { BrowserContext, CDPSession, Page } from '@playwright/test';

/** One reading of a JS realm's memory (CDP Runtime.getHeapUsage), in bytes. */
interface HeapUsage {
  usedSize: number;
  totalSize: number;
  embedderHeapUsedSize?: number;
  /** ArrayBuffer backing stores and external strings: where image bytes would pile up. */
  backingStorageSize?: number;
}

/** What a realm holds: the JS heap plus ArrayBuffer backing stores (outside the V8 heap proper). */
export const heldBytes = (u: HeapUsage) => u.usedSize + (u.embedderHeapUsedSize ?? 0) + (u.backingStorageSize ?? 0);

interface CdpMessage {
  id?: number;
  method?: string;
  params?: { sessionId?: string; message?: string; targetInfo?: { type: string } };
  result?: HeapUsage;
}

/**
 * Measures the page's and all its workers' heaps, nested workers included (the compression
 * pool lives inside the conversion worker), through the DevTools protocol. Playwright's
 * CDPSession cannot address child sessions, so workers are attached in the classic
 * (non-flattened) mode: each worker is a path of session ids, and a message to it is wrapped
 * in one Target.sendMessageToTarget per level.
 */
export class HeapProbe {
  /** Workers by the session path that reaches them. */
  private readonly workers = new Map<string, string[]>();
  private readonly pending = new Map<number, (r: HeapUsage | undefined) => void>();
  private nextId = 1;

  private constructor(private readonly session: CDPSession) {}

  static async attach(context: BrowserContext, page: Page): Promise<HeapProbe> {
    const session = await context.newCDPSession(page);
    const probe = new HeapProbe(session);
    session.on('Target.attachedToTarget', (e) => probe.onAttached([], e.sessionId, e.targetInfo.type));
    session.on('Target.detachedFromTarget', (e) => e.sessionId && probe.workers.delete(e.sessionId));
    session.on('Target.receivedMessageFromTarget', (e) => probe.onMessage([e.sessionId], JSON.parse(e.message) as CdpMessage));
    await session.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
    return probe;
  }

  /** How many workers are attached now. */
  get workerCount(): number {
    return this.workers.size;
  }

  /** The page's usage and every live worker's, read now. */
  async sample(): Promise<{ page: HeapUsage; workers: HeapUsage[] }> {
    const page = (await this.session.send('Runtime.getHeapUsage')) as HeapUsage;
    const workers = await Promise.all([...this.workers.values()].map((p) => this.call(p, 'Runtime.getHeapUsage')));
    return { page, workers: workers.filter((w): w is HeapUsage => !!w) };
  }

  private onAttached(parent: string[], sessionId: string, type: string): void {
    if (type !== 'worker') return;
    const path = [...parent, sessionId];
    this.workers.set(sessionId, path);
    // Workers started by this worker (the deflate pool) attach one level further down.
    void this.call(path, 'Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  }

  private onMessage(path: string[], msg: CdpMessage): void {
    if (msg.method === 'Target.attachedToTarget' && msg.params?.sessionId)
      this.onAttached(path, msg.params.sessionId, msg.params.targetInfo?.type ?? '');
    else if (msg.method === 'Target.detachedFromTarget' && msg.params?.sessionId) this.workers.delete(msg.params.sessionId);
    else if (msg.method === 'Target.receivedMessageFromTarget' && msg.params?.sessionId && msg.params.message) {
      this.onMessage([...path, msg.params.sessionId], JSON.parse(msg.params.message) as CdpMessage);
    } else if (msg.id !== undefined) this.pending.get(msg.id)?.(msg.result);
  }

  /** Sends a command to the worker at `path` and waits (up to 2 s) for its result. */
  private call(path: string[], method: string, params: object = {}): Promise<HeapUsage | undefined> {
    const id = this.nextId++;
    let message = JSON.stringify({ id, method, params });
    // Wrap from the innermost level outwards; the outermost hop goes through Playwright's session.
    for (let i = path.length - 1; i >= 1; i--) {
      message = JSON.stringify({ id: this.nextId++, method: 'Target.sendMessageToTarget', params: { sessionId: path[i], message } });
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, 2000);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(r);
      });
      this.session.send('Target.sendMessageToTarget', { sessionId: path[0]!, message }).catch(() => resolve(undefined));
    });
  }
}
