import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** A free TCP port on 127.0.0.1 (other runs on this machine may hold the fixed ones). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * vitest sets NODE_ENV=test, and a vite build under it is a development build (React's dev
 * bundle, import.meta.env.DEV, so no service worker). Build and serve as a user gets it.
 */
const env = { ...process.env, NODE_ENV: 'production' };

/** Builds dist/ once, as Playwright's webServer does. */
export function buildApp(): void {
  const r = spawnSync('npx', ['vite', 'build', '--logLevel', 'warn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
  if (r.status !== 0) throw new Error(`vite build failed: ${r.stderr || r.stdout}`);
}

export interface Preview {
  url: string;
  stop(): Promise<void>;
}

/** Serves dist/ with `vite preview` on a free port; resolves once the page answers. */
export async function startPreview(): Promise<Preview> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // detached: its own process group, so stop() ends npx and the vite under it, and nothing else.
  const child: ChildProcess = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
    stdio: 'ignore',
    detached: true,
    env,
  });
  let exited = false;
  const gone = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`vite preview on port ${port} exited before serving`);
    try {
      if ((await fetch(url)).ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`vite preview on port ${port} did not answer in 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    async stop() {
      if (exited) return;
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))]);
      if (!exited) {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    },
  };
}
