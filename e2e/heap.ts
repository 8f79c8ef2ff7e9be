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

/**
 * Measures the page's and its workers' heaps through the DevTools protocol. Playwright's
 * CDPSession cannot address child sessions, so workers are attached in the classic
 * (non-flattened) mode and spoken to through Target.sendMessageToTarget.
 */
export class HeapProbe {
  private readonly workers = new Set<string>();
  private readonly pending = new Map<number, (r: HeapUsage | undefined) => void>();
  private nextId = 1;

  private constructor(private readonly session: CDPSession) {}

  static async attach(context: BrowserContext, page: Page): Promise<HeapProbe> {
    const session = await context.newCDPSession(page);
    const probe = new HeapProbe(session);
    session.on('Target.attachedToTarget', (e) => {
      if (e.targetInfo.type === 'worker') probe.workers.add(e.sessionId);
    });
    session.on('Target.detachedFromTarget', (e) => {
      if (e.sessionId) probe.workers.delete(e.sessionId);
    });
    session.on('Target.receivedMessageFromTarget', (e) => {
      const msg = JSON.parse(e.message) as { id?: number; result?: HeapUsage };
      if (msg.id !== undefined) probe.pending.get(msg.id)?.(msg.result);
    });
    await session.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
    return probe;
  }

  /** The page's usage and every live worker's, read now. */
  async sample(): Promise<{ page: HeapUsage; workers: HeapUsage[] }> {
    const page = (await this.session.send('Runtime.getHeapUsage')) as HeapUsage;
    const workers = await Promise.all([...this.workers].map((s) => this.workerUsage(s)));
    return { page, workers: workers.filter((w): w is HeapUsage => !!w) };
  }

  private workerUsage(sessionId: string): Promise<HeapUsage | undefined> {
    const id = this.nextId++;
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
      this.session
        .send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method: 'Runtime.getHeapUsage' }) })
        .catch(() => resolve(undefined));
    });
  }
}
