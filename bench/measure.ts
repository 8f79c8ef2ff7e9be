import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** One timed run of one tool. */
export interface Sample {
  wallS: number;
  /** User + system CPU seconds of the process tree (all cores). */
  cpuS: number;
  /** Peak resident memory in MB (largest process for commands; sum over processes for Chromium). */
  peakMB: number;
  outBytes?: number;
}

/**
 * Runs a command under GNU time (`/usr/bin/time -f`), which reports the wall time, the CPU
 * time of the command and everything it waited for, and the peak RSS of the largest process.
 * Worker threads share their process, so the CLI's peak includes every worker's heap.
 */
export async function timeCommand(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Sample & { stdout: string }> {
  const tf = path.join(os.tmpdir(), `diskferry-bench-time-${process.pid}-${Date.now()}.txt`);
  const child = spawn('/usr/bin/time', ['-o', tf, '-f', '%e %U %S %M', cmd, ...args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code: number = await new Promise((r) => child.on('close', (c) => r(c ?? -1)));
  const text = readFileSync(tf, 'utf8').trim().split('\n').pop()!;
  rmSync(tf, { force: true });
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim()}`);
  const [e, u, s, m] = text.split(/\s+/).map(Number);
  return { wallS: e!, cpuS: u! + s!, peakMB: m! / 1024, stdout };
}

const TICK = 100; // USER_HZ on Linux

function children(): Map<number, number[]> {
  const kids = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = kids.get(ppid) ?? [];
      list.push(Number(d));
      kids.set(ppid, list);
    } catch {
      // the process ended meanwhile
    }
  }
  return kids;
}

/** The pids of a process and all its descendants. */
export function processTree(root: number): number[] {
  const kids = children();
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(kids.get(p) ?? []));
  }
  return out;
}

/** CPU seconds (user + system) and RSS in MB of a set of processes, from /proc. */
export function treeUsage(pids: number[]): { cpuS: number; rssMB: number } {
  let ticks = 0;
  let pages = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // utime, stime
      pages += Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]); // resident
    } catch {
      // gone
    }
  }
  return { cpuS: ticks / TICK, rssMB: (pages * 4096) / 1048576 };
}

/**
 * Polls a process tree (Chromium: browser, renderer with its workers, GPU and utility
 * processes) every 100 ms while `work` runs: CPU time used and the peak of the summed RSS.
 */
export async function measureTree<T>(
  root: number,
  work: () => Promise<T>,
): Promise<{ result: T; wallS: number; cpuS: number; peakMB: number }> {
  let pids = processTree(root);
  const before = treeUsage(pids);
  let peak = before.rssMB;
  let lastCpu = before.cpuS;
  const timer = setInterval(() => {
    pids = processTree(root);
    const u = treeUsage(pids);
    peak = Math.max(peak, u.rssMB);
    lastCpu = Math.max(lastCpu, u.cpuS);
  }, 100);
  const t0 = performance.now();
  try {
    const result = await work();
    const wallS = (performance.now() - t0) / 1000;
    const after = treeUsage(processTree(root));
    return { result, wallS, cpuS: Math.max(after.cpuS, lastCpu) - before.cpuS, peakMB: Math.max(peak, after.rssMB) };
  } finally {
    clearInterval(timer);
  }
}
