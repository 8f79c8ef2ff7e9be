/**
 * npm run bench — DiskFerry against qemu-img on the seed's job, side by side in one run.
 *
 *  1. Builds (once, cached in .cache/bench) the reference disk: a 4 GiB ext4 file system of
 *     this machine's /usr as a monolithicSparse VMDK (bench/mk-bench-image.sh), plus a sparse
 *     100 GiB qcow2 for `info`.
 *  2. Bundles the CLI (esbuild, as a release would ship it; `tsx` alone costs ~0.5 s of start-up)
 *     and builds the web app (vite) when the page exists.
 *  3. For each case, runs qemu-img, the DiskFerry CLI and DiskFerry in headless Chromium,
 *     alternating, BENCH_REPEAT times (default 3), and prints the median wall time, CPU time,
 *     peak memory, output size and the ratios to qemu-img, then writes it all as JSON.
 *
 * The CLI compresses with libdeflate in wasm on a worker per core (the page's engine and bytes);
 * the `cli-native` row runs it with Node's own zlib in the workers instead (slower, larger).
 * Environment: BENCH_REPEAT=N, BENCH_NO_BROWSER=1 (CLI only), BENCH_CASES=a,b (case names),
 * BENCH_TOOLS=qemu-img,cli,cli-native,chromium,node (a subset),
 * BENCH_CASES='info start-up' BENCH_NO_BROWSER=1: only the start-up row (no 4 GiB image needed):
 * the bundled `diskferry info` run as the installed command (its #! line) on a small qcow2,
 * beside `qemu-img info` and a bare `node -e 0`,
 * DISKFERRY_DEFLATE=wasm|native|single for the `cli` row (see cli/pool/cliCodecs.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { drivers } from '../src-core/formats/registry.ts';
import { BrowserBench, buildWeb } from './browser.ts';
import { timeCommand, type Sample } from './measure.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = path.join(ROOT, '.cache', 'bench');
const CLI_DIR = path.join(ROOT, '.cache', 'bench-cli');
const WEB_DIR = path.join(ROOT, '.cache', 'bench-web');
const OUT_DIR = path.join(CACHE, 'out');
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT) || 3);

/** cli-native: the CLI with Node's zlib in its workers (DISKFERRY_DEFLATE=native), for -c only. */
/** node: a bare `node -e 0`, the floor under the CLI's start-up (start-up row only). */
type Tool = 'qemu-img' | 'cli' | 'cli-native' | 'chromium' | 'node';

interface Case {
  name: string;
  /** qemu-img arguments; OUT stands for the output file. */
  args: string[];
  /** Runs at least this many times (short cases: the clock's 10 ms steps need many samples). */
  minRepeat?: number;
  /** Needs the 4 GiB reference image. */
  needsImage?: boolean;
  source: string;
  target?: string;
  compress?: boolean;
  ext?: string;
  /** The page's preset button to press instead of choosing the format (stream VMDK, fixed VHD). */
  preset?: string;
  /**
   * The `node` row copies the source's data (it comes first: allocated bytes from offset 0) with
   * bench/nodeCopy.mjs: what Node itself costs for the bytes, without DiskFerry.
   */
  nodeCopy?: boolean;
  /**
   * Compare Chromium against its own floor for this source: 'read-write', the larger of reading
   * the source and writing the output (they overlap); 'read', reading the source, with writing
   * the output measured too and printed as a second ratio against read + write (a source whose
   * data comes first writes its whole output before it reads its holes).
   */
  floor?: 'read' | 'read-write';
}

function log(s: string): void {
  process.stderr.write(`${s}\n`);
}

function buildImage(): void {
  execFileSync('bash', [path.join(ROOT, 'bench', 'mk-bench-image.sh'), CACHE], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The CLI exactly as the npm package ships it (scripts/build-cli.mjs): dist-style bundle, worker and wasm. */
function buildCli(): string {
  mkdirSync(CLI_DIR, { recursive: true });
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-cli.mjs'), CLI_DIR], { cwd: ROOT, stdio: 'inherit' });
  return path.join(CLI_DIR, 'diskferry.js');
}

/** A small qcow2 (a few MiB of data in 1 GiB) for the start-up row. */
function smallQcow2(): string {
  const file = path.join(CACHE, 'small.qcow2');
  if (!existsSync(file)) {
    mkdirSync(CACHE, { recursive: true });
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, '1G']);
    execFileSync('qemu-io', ['-c', 'write -P 0x5a 0 4M', '-c', 'write -P 0xa5 512M 1M', file], { stdio: 'ignore' });
  }
  return file;
}

/**
 * A 5 GiB raw file that is mostly holes: the first 256 MiB of the ext4 image (its metadata and
 * the first files, holes kept) and nothing after: a fresh VM disk as a cloud image ships it.
 */
function sparseRaw(): string {
  const file = path.join(CACHE, 'sparse5g.raw');
  if (!existsSync(file)) {
    const tmp = `${file}.tmp`;
    execFileSync('dd', [`if=${path.join(CACHE, 'fs.raw')}`, `of=${tmp}`, 'bs=1M', 'count=256', 'conv=sparse', 'status=none']);
    execFileSync('truncate', ['-s', '5G', tmp]);
    execFileSync('mv', [tmp, file]);
  }
  return file;
}

/** Bytes a file occupies on disk (a sparse file's holes take none). */
function allocated(file: string): number {
  return statSync(file).blocks * 512;
}

/**
 * This machine's own storage speed, printed beside the results so runs on different machines
 * can be compared: reading the (cached) source, and writing 1 GiB to the output folder with an
 * fsync at the end, as the converters' outputs are.
 */
function machineSpeeds(source: string): { readMBs: number; writeMBs: number } {
  const MiB = 1024 * 1024;
  const buf = Buffer.alloc(16 * MiB, 0x5a);
  let t = performance.now();
  const fd = openSync(source, 'r');
  let n = 0;
  for (let got; (got = readSync(fd, buf, 0, buf.length, n)) > 0;) n += got;
  closeSync(fd);
  const readMBs = n / MiB / ((performance.now() - t) / 1000);
  const scratch = path.join(OUT_DIR, 'speed.tmp');
  t = performance.now();
  const w = openSync(scratch, 'w');
  for (let done = 0; done < 1024 * MiB; done += buf.length) writeSync(w, buf);
  fsyncSync(w);
  closeSync(w);
  const writeMBs = 1024 / ((performance.now() - t) / 1000);
  rmSync(scratch, { force: true });
  return { readMBs, writeMBs };
}

/**
 * Puts the machine in the same state before every timed conversion. Whoever writes right after
 * a run that wrote ~1 GB pays about a second more: measured here, a 1.2 GB dd right after
 * qemu-img took 2.25 s, and the CLI's convert -O qcow2 2.5 s instead of 1.2 s. (The memory the
 * VM gets back, not the data: the source stays cached.) Without this the tool that follows
 * qemu-img in the alternating order pays qemu-img's bill. So every tool starts after the same
 * scratch write and a sync, and no dirty pages of anyone else's.
 */
function settle(bytes: number): void {
  const scratch = path.join(OUT_DIR, 'settle.tmp');
  const chunk = Buffer.alloc(4 * 1024 * 1024);
  const fd = openSync(scratch, 'w');
  try {
    for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
  } finally {
    closeSync(fd);
    rmSync(scratch, { force: true });
  }
  spawnSync('sync');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Row {
  case: string;
  tool: Tool;
  status: 'ok' | 'not run' | 'failed';
  note?: string;
  samples: Sample[];
  wallS?: number;
  wallMin?: number;
  wallMax?: number;
  cpuS?: number;
  peakMB?: number;
  outBytes?: number;
  wallRatio?: number;
  sizeRatio?: number;
}

async function main(): Promise<void> {
  const vmdkDriver = drivers.find((d) => d.name === 'vmdk');
  const source = vmdkDriver ? path.join(CACHE, 'vm.vmdk') : path.join(CACHE, 'vm.qcow2');
  if (!vmdkDriver) log('bench: no vmdk driver registered: the source is the same disk as qcow2');
  const canVhdx = drivers.some((d) => d.name === 'vhdx' && d.create);
  const cases: Case[] = [
    {
      name: 'convert -c -O qcow2',
      args: ['convert', '-c', '-O', 'qcow2', source, 'OUT'],
      source,
      target: 'qcow2',
      compress: true,
      ext: 'qcow2',
      floor: 'read-write',
    },
    {
      name: 'convert -O qcow2',
      args: ['convert', '-O', 'qcow2', source, 'OUT'],
      source,
      target: 'qcow2',
      compress: false,
      ext: 'qcow2',
      floor: 'read-write',
    },
    ...(canVhdx
      ? [
          {
            name: 'convert -O vhdx',
            args: ['convert', '-O', 'vhdx', source, 'OUT'],
            source,
            target: 'vhdx',
            compress: false,
            ext: 'vhdx',
            floor: 'read-write' as const,
          },
        ]
      : []),
    {
      name: 'convert stream VMDK (aws)',
      args: ['convert', '-O', 'vmdk', '-o', 'subformat=streamOptimized', source, 'OUT'],
      source,
      target: 'vmdk',
      preset: 'AWS import',
      ext: 'vmdk',
      floor: 'read-write',
    },
    {
      name: 'convert fixed VHD (azure)',
      args: ['convert', '-O', 'vpc', '-o', 'subformat=fixed,force_size=on', source, 'OUT'],
      source,
      target: 'vpc',
      preset: 'Azure',
      ext: 'vhd',
    },
    { name: 'convert -O vdi', args: ['convert', '-O', 'vdi', source, 'OUT'], source, target: 'vdi', ext: 'vdi' },
    {
      name: 'convert sparse 5 GiB raw -O qcow2',
      args: ['convert', '-f', 'raw', '-O', 'qcow2', path.join(CACHE, 'sparse5g.raw'), 'OUT'],
      source: path.join(CACHE, 'sparse5g.raw'),
      target: 'qcow2',
      ext: 'qcow2',
      floor: 'read',
      nodeCopy: true,
    },
    {
      name: 'info (sparse 100 GiB qcow2)',
      args: ['info', path.join(CACHE, 'sparse100g.qcow2')],
      source: path.join(CACHE, 'sparse100g.qcow2'),
    },
    // Start-up: the installed command's `info` on a small qcow2, beside qemu-img and a bare node.
    {
      name: 'info start-up (small qcow2)',
      args: ['info', path.join(CACHE, 'small.qcow2')],
      source: path.join(CACHE, 'small.qcow2'),
      minRepeat: 15,
      needsImage: false,
    },
  ];
  const only = process.env.BENCH_CASES?.split(',').map((s) => s.trim());
  const selected = only ? cases.filter((c) => only.some((o) => c.name.startsWith(o))) : cases;
  const tools = process.env.BENCH_TOOLS?.split(',').map((s) => s.trim());
  if (selected.some((c) => c.needsImage !== false)) {
    log('bench: building the reference image (cached in .cache/bench)…');
    buildImage();
  }
  if (selected.some((c) => c.name.startsWith('info start-up'))) smallQcow2();
  if (selected.some((c) => c.source.endsWith('sparse5g.raw'))) sparseRaw();

  log('bench: bundling the CLI…');
  const cli = buildCli();
  let browser: BrowserBench | undefined;
  let browserNote = '';
  if (process.env.BENCH_NO_BROWSER) browserNote = 'BENCH_NO_BROWSER set';
  else if (!existsSync('/usr/bin/chromium')) browserNote = 'no /usr/bin/chromium';
  else {
    log('bench: building the web app…');
    if (!buildWeb(ROOT, WEB_DIR)) browserNote = 'the web app is missing or did not build';
    else {
      try {
        browser = await BrowserBench.start(WEB_DIR, path.join(CACHE, 'chromium-profile'));
      } catch (e) {
        browserNote = `Chromium did not start: ${(e as Error).message.split('\n')[0]}`;
      }
    }
  }

  mkdirSync(OUT_DIR, { recursive: true });
  const speeds = machineSpeeds(existsSync(source) ? source : path.join(CACHE, 'small.qcow2'));
  log(`bench: this machine reads at ${speeds.readMBs.toFixed(0)} MB/s and writes at ${speeds.writeMBs.toFixed(0)} MB/s`);
  const rows: Row[] = [];
  for (const c of selected) {
    const by: Record<Tool, Row> = {
      'qemu-img': { case: c.name, tool: 'qemu-img', status: 'ok', samples: [] },
      cli: { case: c.name, tool: 'cli', status: 'ok', samples: [] },
      'cli-native': {
        case: c.name,
        tool: 'cli-native',
        status: c.compress ? 'ok' : 'not run',
        note: c.compress ? undefined : 'only differs from cli with -c',
        samples: [],
      },
      chromium: {
        case: c.name,
        tool: 'chromium',
        status: browser && !c.minRepeat ? 'ok' : 'not run',
        note: browser ? undefined : browserNote,
        samples: [],
      },
      node: {
        case: c.name,
        tool: 'node',
        status: c.minRepeat || c.nodeCopy ? 'ok' : 'not run',
        note: c.minRepeat ? 'node -e 0' : c.nodeCopy ? 'bare Node copy of the data (bench/nodeCopy.mjs)' : undefined,
        samples: [],
      },
    };
    for (let rep = 0; rep < Math.max(REPEAT, c.minRepeat ?? 0); rep++) {
      // Alternate the order so a neighbour's load or a warm cache favours no one.
      const order: Tool[] =
        rep % 2 ? ['node', 'chromium', 'cli-native', 'cli', 'qemu-img'] : ['qemu-img', 'cli', 'cli-native', 'chromium', 'node'];
      for (const tool of order) {
        const row = by[tool];
        if (row.status !== 'ok' || (tools && !tools.includes(tool))) continue;
        const out = path.join(OUT_DIR, `${tool}.${c.ext ?? 'out'}`);
        const args = c.args.map((a) => (a === 'OUT' ? out : a));
        if (c.ext) settle(allocated(c.source));
        try {
          let s: Sample;
          if (tool === 'qemu-img') s = await timeCommand('qemu-img', args);
          else if (tool === 'node')
            s = c.nodeCopy
              ? await timeCommand(process.execPath, [path.join(ROOT, 'bench', 'nodeCopy.mjs'), c.source, out, String(allocated(c.source))])
              : await timeCommand(process.execPath, ['-e', '0']);
          else if (tool === 'cli') s = c.minRepeat ? await timeCommand(cli, args) : await timeCommand(process.execPath, [cli, ...args]);
          else if (tool === 'cli-native')
            s = await timeCommand(process.execPath, [cli, ...args], { env: { ...process.env, DISKFERRY_DEFLATE: 'native' } });
          else s = c.target ? await browser!.convert(c.source, c.target, !!c.compress, c.preset) : await browser!.info(c.source);
          if (c.ext && tool !== 'chromium') s.outBytes = statSync(out).size;
          row.samples.push(s);
          log(
            `  ${c.name} · ${tool} · run ${rep + 1}: ${s.wallS.toFixed(2)} s wall, ${s.cpuS.toFixed(1)} s CPU, ${s.peakMB.toFixed(0)} MB${s.outBytes ? `, ${s.outBytes} bytes` : ''}`,
          );
        } catch (e) {
          row.status = 'failed';
          row.note = (e as Error).message.split('\n')[0];
          log(`  ${c.name} · ${tool}: FAILED ${row.note}`);
        }
        rmSync(out, { force: true });
      }
    }
    const q = by['qemu-img'];
    for (const tool of ['qemu-img', 'cli', 'cli-native', 'chromium', 'node'] as Tool[]) {
      const r = by[tool];
      if (r.samples.length) {
        const walls = r.samples.map((s) => s.wallS);
        r.wallS = median(walls);
        r.wallMin = Math.min(...walls);
        r.wallMax = Math.max(...walls);
        r.cpuS = median(r.samples.map((s) => s.cpuS));
        r.peakMB = Math.max(...r.samples.map((s) => s.peakMB));
        const sizes = r.samples.map((s) => s.outBytes).filter((x): x is number => !!x);
        if (sizes.length) r.outBytes = median(sizes);
        if (q.wallS) r.wallRatio = r.wallS / q.wallS;
        if (q.outBytes && r.outBytes) r.sizeRatio = r.outBytes / q.outBytes;
      }
      rows.push(r);
    }
  }
  // The browser's own floor for the cases that convert nothing much: the same bytes moved
  // (read the source as the app does, write the output's size through the save-file stream).
  const floors: {
    case: string;
    kind: 'read' | 'read-write';
    readS: number;
    writeS: number;
    syncWriteS: number;
    /** Reading and writing at once, as a conversion must. */
    copyS: number;
    /** CPU of Chromium's whole tree while reading the source and writing through the stream, one after the other and at once. */
    cpuS: number;
    copyCpuS: number;
    outBytes: number;
    chromiumS?: number;
    chromiumCpuS?: number;
  }[] = [];
  for (const c of selected) {
    if (!browser || !c.floor || (tools && !tools.includes('chromium'))) continue;
    const q = rows.find((r) => r.case === c.name && r.tool === 'qemu-img');
    const outBytes = q?.outBytes ?? (c.floor === 'read' ? 0 : allocated(c.source));
    const runs: { readS: number; writeS: number; copyS: number; syncWriteS: number; cpuS: number; copyCpuS: number }[] = [];
    for (let rep = 0; rep < REPEAT; rep++) {
      try {
        runs.push(await browser.floor(c.source, outBytes));
      } catch (e) {
        log(`  browser floor (${c.name}): FAILED ${(e as Error).message.split('\n')[0]}`);
        break;
      }
    }
    if (!runs.length) continue;
    floors.push({
      case: c.name,
      kind: c.floor,
      readS: median(runs.map((r) => r.readS)),
      writeS: median(runs.map((r) => r.writeS)),
      syncWriteS: median(runs.map((r) => r.syncWriteS)),
      copyS: median(runs.map((r) => r.copyS)),
      cpuS: median(runs.map((r) => r.cpuS)),
      copyCpuS: median(runs.map((r) => r.copyCpuS)),
      outBytes,
      chromiumS: rows.find((r) => r.case === c.name && r.tool === 'chromium')?.wallS,
      chromiumCpuS: rows.find((r) => r.case === c.name && r.tool === 'chromium')?.cpuS,
    });
  }
  await browser?.close();

  printTable(rows, source);
  if (floors.length) console.log(`\nChromium floors (the same bytes moved, nothing converted; medians of ${REPEAT}):`);
  for (const f of floors) {
    const floorS = f.kind === 'read' ? f.readS : Math.max(f.readS, f.writeS);
    const x = (s: number) => `${((f.chromiumS ?? NaN) / s).toFixed(2)}×`;
    console.log(
      `  ${f.case}:\n` +
        `    one after the other: read the source in 16 MiB slices ${f.readS.toFixed(2)} s` +
        (f.outBytes
          ? `, write ${f.outBytes} bytes through the save-file stream (createWritable, 4 MiB, 3 queued) ${f.writeS.toFixed(2)} s`
          : '') +
        `; CPU ${f.cpuS.toFixed(1)} s` +
        (f.outBytes ? ` (an OPFS sync access handle writes them in ${f.syncWriteS.toFixed(2)} s)` : '') +
        `\n    at once, as a conversion must (the copy floor): ${f.copyS.toFixed(2)} s, CPU ${f.copyCpuS.toFixed(1)} s` +
        (f.chromiumS
          ? `\n    → Chromium ${f.chromiumS.toFixed(2)} s, CPU ${(f.chromiumCpuS ?? NaN).toFixed(1)} s: ${x(floorS)} its ${f.kind} floor` +
            (f.kind === 'read' && f.outBytes ? `, ${x(f.readS + f.writeS)} read + write` : '') +
            `, ${x(f.copyS)} the copy floor`
          : ''),
    );
  }
  console.log(
    `\nThis machine: reads the cached source at ${speeds.readMBs.toFixed(0)} MB/s, writes 1 GiB + fsync at ${speeds.writeMBs.toFixed(0)} MB/s`,
  );
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGB: Math.round(os.totalmem() / 2 ** 30), loadavg: os.loadavg() },
    qemuImg: spawnSync('qemu-img', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0],
    node: process.version,
    chromium: browser?.version,
    cliDeflate: process.env.DISKFERRY_DEFLATE ?? 'wasm',
    note: 'the CLI is the esbuild bundle of cli/main.ts run by node (a release build); the Chromium clock runs from pressing convert to the result',
    source: path.relative(ROOT, source),
    sourceBytes: existsSync(source) ? statSync(source).size : undefined,
    repeat: REPEAT,
    rows,
    chromiumFloors: floors,
    machineSpeeds: speeds,
  };
  const jsonFile = path.join(CACHE, 'results.json');
  writeFileSync(jsonFile, JSON.stringify(result, null, 2));
  log(`bench: results written to ${path.relative(ROOT, jsonFile)}`);
}

function printTable(rows: Row[], source: string): void {
  const head = ['case', 'tool', 'wall s (min–max)', 'CPU s', 'peak MB', 'output bytes', 'wall ×qemu', 'size ×qemu'];
  const lines = rows.map((r) =>
    r.status !== 'ok' || !r.samples.length
      ? [r.case, r.tool, `${r.status.toUpperCase()}${r.note ? `: ${r.note}` : ''}`, '', '', '', '', '']
      : [
          r.case,
          r.tool,
          `${r.wallS!.toFixed(2)} (${r.wallMin!.toFixed(2)}–${r.wallMax!.toFixed(2)})`,
          r.cpuS!.toFixed(1),
          r.peakMB!.toFixed(0),
          r.outBytes ? String(r.outBytes) : '',
          r.wallRatio !== undefined ? r.wallRatio.toFixed(2) : '',
          r.sizeRatio !== undefined ? r.sizeRatio.toFixed(4) : '',
        ],
  );
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => `| ${l.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(
    `\nsource: ${path.relative(ROOT, source)} (${existsSync(source) ? statSync(source).size : 'not built'} bytes), ${REPEAT} runs each, medians; load average now ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  console.log(fmt(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(fmt(l));
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
