import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { startServer, type TestServer } from './helpers/httpServer.ts';
import { qemuCompare, qemuImg, qemuIo, runStatus, tempDir } from './helpers/sys.ts';

/**
 * deploy/k8s-convert-job.yaml: the Kubernetes Indexed Job the README shows. Its structure is
 * checked, then the container's own shell script runs here, with `sh`, for two indexes against
 * a local range-capable server — npx replaced by a stand-in that hands out this checkout's CLI
 * — and the disks it writes are compared with the served ones by qemu-img.
 */

const ROOT = path.resolve(__dirname, '..');
const TSX = path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const MANIFEST = path.join(ROOT, 'deploy', 'k8s-convert-job.yaml');
const MiB = 1 << 20;

interface Container {
  name: string;
  image: string;
  command: string[];
  args: string[];
  env: { name: string; value?: string; valueFrom?: { resourceFieldRef?: { resource: string } } }[];
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts: { name: string; mountPath: string }[];
}
interface Volume {
  name: string;
  configMap?: { name: string };
  persistentVolumeClaim?: { claimName: string };
  emptyDir?: object;
}
interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: {
    completionMode?: string;
    completions?: number;
    parallelism?: number;
    backoffLimit?: number;
    backoffLimitPerIndex?: number;
    template: { spec: { restartPolicy: string; containers: Container[]; volumes: Volume[] } };
  };
}

function loadManifest(): Resource[] {
  const docs = parseAllDocuments(readFileSync(MANIFEST, 'utf8'));
  for (const d of docs) expect(d.errors, String(d.errors)).toEqual([]);
  return docs.map((d) => d.toJS() as Resource);
}

const resources = loadManifest();
const job = resources.find((r) => r.kind === 'Job')!;
const pod = job?.spec?.template.spec;
const container = pod?.containers[0];
const script = container?.args[0] ?? '';

/** The ConfigMap file the script reads, found through the container's mounts. */
function urlList(): { mountPath: string; key: string; lines: string[] } {
  const mount = container!.volumeMounts.find((m) => script.includes(`${m.mountPath}/`) && volume(m.name)?.configMap)!;
  expect(mount, 'the script reads a file from a mounted ConfigMap').toBeDefined();
  const cm = resources.find((r) => r.kind === 'ConfigMap' && r.metadata.name === volume(mount.name)!.configMap!.name);
  expect(cm, 'the ConfigMap the volume names is in the manifest').toBeDefined();
  const key = new RegExp(`${mount.mountPath}/([\\w.-]+)`).exec(script)![1]!;
  const text = cm!.data?.[key];
  expect(text, `the ConfigMap has the key ${key}`).toBeDefined();
  return { mountPath: mount.mountPath, key, lines: text!.split('\n').filter((l) => l !== '') };
}

const volume = (name: string) => pod!.volumes.find((v) => v.name === name);

/** Patterned runs written by qemu-io: `count` runs of `len` bytes every `stride`, each its own byte. */
function fillPattern(file: string, format: string, start: number, stride: number, len: number, count: number): void {
  const cmds: string[] = [];
  for (let i = 0; i < count; i++) cmds.push('-c', `write -P ${0x21 + i * 11} ${start + i * stride} ${len}`);
  qemuIo('-f', format, ...cmds, file);
}

/** What the downward API puts in an env var for a resourceFieldRef with divisor 1 (whole units, rounded up). */
function downwardValue(resource: string): string {
  const [kind, name] = resource.split('.') as ['limits' | 'requests', string];
  const v = container!.resources[kind]?.[name];
  expect(v, `${resource} is set`).toBeDefined();
  return String(Math.ceil(Number.parseFloat(v!) / (v!.endsWith('m') ? 1000 : 1)));
}

describe('deploy/k8s-convert-job.yaml', () => {
  it('is an Indexed Job with one completion per URL of its ConfigMap list', () => {
    expect(job).toBeDefined();
    expect(job.apiVersion).toBe('batch/v1');
    expect(job.spec!.completionMode).toBe('Indexed');
    const { lines } = urlList();
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/^https?:\/\/\S+$/);
    expect(job.spec!.completions).toBe(lines.length);
    expect(job.spec!.parallelism).toBeGreaterThanOrEqual(1);
    expect(job.spec!.parallelism).toBeLessThanOrEqual(job.spec!.completions!);
    const retries = job.spec!.backoffLimitPerIndex ?? job.spec!.backoffLimit;
    expect(retries).toBeGreaterThanOrEqual(1);
    expect(retries).toBeLessThanOrEqual(6);
    expect(pod!.restartPolicy).toBe('Never');
  });

  it('runs the published package of this version in node:20, the index picking the URL', () => {
    expect(pod!.containers).toHaveLength(1);
    expect(container!.image).toMatch(/^node:20(\b|-)/);
    expect(container!.command).toEqual(['sh', '-c']);
    expect(container!.args).toHaveLength(1);
    expect(script).toContain('JOB_COMPLETION_INDEX');
    expect(script).toMatch(/npx --yes --package="diskferry@\$DISKFERRY_VERSION"/);
    expect(script).toContain('convert --progress=json');
    const version = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
    expect(container!.env.find((e) => e.name === 'DISKFERRY_VERSION')?.value).toBe(version);
    // Sensible resources: requests to schedule by, a memory limit.
    expect(container!.resources.requests?.cpu).toBeDefined();
    expect(container!.resources.requests?.memory).toBeDefined();
    expect(container!.resources.limits?.memory).toBeDefined();
    // The output volume is a claim the manifest defines.
    const out = container!.volumeMounts.find((m) => script.includes(`${m.mountPath}/disk-`));
    const claim = volume(out!.name)?.persistentVolumeClaim?.claimName;
    expect(resources.some((r) => r.kind === 'PersistentVolumeClaim' && r.metadata.name === claim)).toBe(true);
  });
});

describe("the Job's command, run locally with sh", () => {
  const t = tempDir('diskferry-deploy-');
  let server: TestServer;
  const sources = [t.file('srv/web-01.qcow2'), t.file('srv/db-01.vmdk')];
  /** Local folders for the container's mounts, by mount path. */
  const mounts = new Map<string, string>();

  beforeAll(async () => {
    mkdirSync(t.file('srv'));
    qemuImg('create', '-q', '-f', 'qcow2', sources[0]!, String(48 * MiB));
    fillPattern(sources[0]!, 'qcow2', 0, 7 * MiB, MiB, 6);
    qemuImg('create', '-q', '-f', 'vmdk', sources[1]!, String(40 * MiB));
    fillPattern(sources[1]!, 'vmdk', 512 * 1024, 9 * MiB, 768 * 1024, 4);
    server = await startServer(t.file('srv'));

    for (const m of container!.volumeMounts) {
      const dir = t.file(`mnt-${m.name}`);
      mkdirSync(dir);
      mounts.set(m.mountPath, dir);
    }
    // The list: this server's images instead of the manifest's examples.
    const { mountPath, key } = urlList();
    writeFileSync(path.join(mounts.get(mountPath)!, key), sources.map((s) => `${server.base}/${path.basename(s)}\n`).join(''));

    // `npx --yes --package=diskferry@V -c CMD` runs CMD with the package's `diskferry` on PATH:
    // here, this checkout's CLI. The stand-in logs how it was called.
    mkdirSync(t.file('npx-bin'));
    mkdirSync(t.file('pkg-bin'));
    const npx = t.file('npx-bin/npx');
    writeFileSync(
      npx,
      `#!/bin/sh
echo "$*" >> "${t.file('npx.log')}"
[ "$1" = --yes ] && [ "$3" = -c ] || { echo "npx stand-in: unexpected arguments: $*" >&2; exit 98; }
case "$2" in --package=diskferry@*) ;; *) echo "npx stand-in: unexpected package: $2" >&2; exit 98 ;; esac
PATH="${t.file('pkg-bin')}:$PATH" exec sh -c "$4"
`,
    );
    const bin = t.file('pkg-bin/diskferry');
    writeFileSync(bin, `#!/bin/sh\nexec "${process.execPath}" "${TSX}" "${path.join(ROOT, 'cli/bin.ts')}" "$@"\n`);
    chmodSync(npx, 0o755);
    chmodSync(bin, 0o755);
  });
  afterAll(async () => {
    await server?.close();
    t.cleanup();
  });

  /** The container's script with its mount paths pointing at the local folders. */
  function localScript(): string {
    // One pass, so a local folder (itself under /tmp) is never rewritten again.
    const paths = [...mounts.keys()].sort((a, b) => b.length - a.length).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    return script.replace(new RegExp(`(^|[\\s"'=])(${paths.join('|')})/`, 'gm'), (_, pre: string, p: string) => `${pre}${mounts.get(p)}/`);
  }

  /** The container's environment as Kubernetes sets it (literal values; the CPU limit from the downward API). */
  function podEnv(index: number): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { PATH: `${t.file('npx-bin')}:${process.env.PATH}`, JOB_COMPLETION_INDEX: String(index) };
    for (const e of container!.env) {
      const ref = e.valueFrom?.resourceFieldRef;
      let v = e.value ?? (ref ? downwardValue(ref.resource) : '');
      for (const [mountPath, dir] of mounts) if (v === mountPath || v.startsWith(`${mountPath}/`)) v = dir + v.slice(mountPath.length);
      env[e.name] = v;
    }
    return env;
  }

  function runIndex(index: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', localScript()], { env: podEnv(index), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** Where the script writes index `index`'s disk: `OUT=<mount>/disk-<index>.qcow2`, on the local folder. */
  const output = (index: number) => {
    const m = /OUT=(\/[\w/]+)\/disk-\$JOB_COMPLETION_INDEX\.qcow2/.exec(script);
    expect(m, 'the script sets OUT=<mount>/disk-$JOB_COMPLETION_INDEX.qcow2').not.toBeNull();
    return path.join(mounts.get(m![1]!)!, `disk-${index}.qcow2`);
  };

  it('converts the disk of index 0 and of index 1, each from its line of the list', async () => {
    for (const index of [0, 1]) {
      const r = await runIndex(index);
      expect(r.code, r.stderr).toBe(0);
      // stderr: only --progress=json lines, the last one at 100 %.
      const lines = r.stderr.trim().split('\n');
      const progress = lines.map((l) => JSON.parse(l) as { done: number; total: number; phase: string });
      expect(progress.at(-1)!.phase).toBe('done');
      expect(progress.at(-1)!.done).toBe(progress.at(-1)!.total);
      expect(progress.at(-1)!.total).toBeGreaterThan(0);

      const out = output(index);
      expect(runStatus('qemu-img', ['check', '-f', 'qcow2', out]).status).toBe(0);
      expect(qemuCompare(sources[index]!, out)).toBe(0);
      // -c: compressed clusters.
      const check = JSON.parse(runStatus('qemu-img', ['check', '--output=json', out]).stdout);
      expect(check['compressed-clusters']).toBeGreaterThan(0);
      // Read with ranges from the server, never downloaded in one piece.
      const reqs = server.log.filter((l) => l.path === `/${path.basename(sources[index]!)}`);
      expect(reqs.length).toBeGreaterThan(0);
      expect(reqs.every((l) => l.status === 206)).toBe(true);
    }
    const version = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
    const calls = readFileSync(t.file('npx.log'), 'utf8').trim().split('\n');
    expect(calls).toEqual([0, 1].map(() => `--yes --package=diskferry@${version} -c command -v diskferry`));
  });

  it('a retried index whose disk is complete does nothing; an index past the list fails with one line', async () => {
    const before = statSync(output(0)).mtimeMs;
    const again = await runIndex(0);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/exists already/);
    expect(statSync(output(0)).mtimeMs).toBe(before);

    const past = await runIndex(2);
    expect(past.code).toBe(1);
    expect(past.stderr.trim().split('\n')).toEqual(['index 2: line 3 of urls.txt is empty or missing']);
    expect(existsSync(output(2))).toBe(false);
  });
});
