import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, readSync, closeSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemorySink, MemorySource } from '../src-core/io/bytes.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import { convert } from '../src-core/pipeline/convert.ts';
import { gcpTarDriver, oldGnuHeader } from '../src-core/pipeline/gcpTar.ts';
import { resolveTarget, TARGETS, targetVirtualSize, findTarget } from '../src-core/pipeline/targets.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { nodeGzip } from '../cli/target.ts';
import { PRESETS } from '../web/state/presets.ts';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuCompare, qemuImg, run, runStatus, tempDir, writePatternedRaw } from './helpers/sys.ts';

const t = tempDir('diskferry-targets-');
afterAll(() => t.cleanup());
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const PY = '/usr/bin/python3';

describe('the destinations table', () => {
  it('names every destination once, each with a format the registry writes', () => {
    const names = TARGETS.map((x) => x.name);
    expect(names.sort()).toEqual([
      'aws',
      'azure',
      'esxi',
      'esxi-datastore',
      'gcp',
      'hyperv',
      'openstack',
      'proxmox',
      'virtualbox',
      'xcp-ng',
    ]);
    for (const x of TARGETS) {
      const d = drivers.find((f) => f.name === x.format);
      expect(d?.create, x.name).toBeTypeOf('function');
      const known = new Set((d?.createOptions ?? []).map((o) => o.name));
      for (const k of Object.keys({ ...x.options, ...x.defaults })) expect(known.has(k), `${x.name}: -o ${k}`).toBe(true);
      if (x.compress) expect(d?.compression, `${x.name}: -c`).toBeDefined();
      expect(x.description.length).toBeGreaterThan(10);
    }
  });

  it('the page presets take format, options and -c from it', () => {
    for (const id of ['proxmox', 'aws', 'azure', 'hyperv', 'virtualbox', 'openstack', 'xcp-ng'] as const) {
      const p = PRESETS.find((x) => x.id === id)!;
      const d = findTarget(id);
      expect({ target: p.target, options: p.options, compress: p.compress }).toEqual({
        target: d.format,
        options: d.options,
        compress: d.compress,
      });
    }
    // ESXi is packaged: the page writes the OVA as its own format, the disks inside are the table's stream VMDKs.
    expect(findTarget('esxi').packaging).toBe('ova');
    expect(PRESETS.find((p) => p.id === 'esxi')).toMatchObject({ target: 'ova', options: {}, compress: false });
    // The datastore pair: the table's required options and its defaults.
    expect(PRESETS.find((p) => p.id === 'esxi-datastore')).toMatchObject({
      target: 'vmdk',
      options: { subformat: 'vmfs', adapter_type: 'lsilogic' },
      compress: false,
    });
    // Google Cloud: the tarball, written on the page as a format of its own (through CompressionStream).
    expect(PRESETS.find((p) => p.id === 'gcp')).toMatchObject({ target: 'gcp-tar', options: {}, compress: false, destination: 'gcp' });
    // One preset for every destination, named by it (the pre-flight panel and the size rule find the table's entry).
    for (const x of TARGETS) expect(PRESETS.find((p) => p.destination === x.name)?.id, x.name).toBe(x.name);
    // The size rules travel with the destination (web/state/preflight.ts applies them, test/preflight.test.ts).
    expect(PRESETS.filter((p) => p.destination && findTarget(p.destination).size).map((p) => p.id)).toEqual(['azure', 'gcp']);
  });

  it('explicit settings that contradict it are errors naming both; agreeing ones and extra -o pass', () => {
    expect(() => resolveTarget('azure', { format: 'qcow2' })).toThrow(/--target=azure writes vpc, but -O qcow2/);
    expect(() => resolveTarget('azure', { options: { subformat: 'dynamic' } })).toThrow(/-o subformat=fixed, but -o subformat=dynamic/);
    expect(() => resolveTarget('hyperv', { compress: true })).toThrow(/--target=hyperv writes vhdx without -c, but -c was given/);
    expect(resolveTarget('esxi')).toMatchObject({
      format: 'vmdk',
      options: { subformat: 'streamOptimized' },
      target: { packaging: 'ova' },
    });
    // The datastore pair: vmfs is required, the adapter only a default the user may change.
    expect(resolveTarget('esxi-datastore').options).toEqual({ subformat: 'vmfs', adapter_type: 'lsilogic' });
    expect(resolveTarget('esxi-datastore', { options: { adapter_type: 'ide' } }).options).toEqual({
      subformat: 'vmfs',
      adapter_type: 'ide',
    });
    expect(() => resolveTarget('esxi-datastore', { options: { subformat: 'monolithicFlat' } })).toThrow(/sets -o subformat=vmfs/);
    expect(TARGETS.filter((x) => x.notYet)).toEqual([]);
    expect(() => resolveTarget('nowhere')).toThrow(/unknown --target "nowhere"/);
    const r = resolveTarget('proxmox', { format: 'qcow2', options: { compression_type: 'zlib', cluster_size: '128k' }, compress: true });
    expect(r).toMatchObject({ format: 'qcow2', compress: true, options: { compression_type: 'zlib', cluster_size: '128k' } });
  });

  it('size rules: Azure whole MiB from 20 MiB to 32 TiB, Google whole GiB, others untouched', () => {
    const azure = findTarget('azure');
    expect(targetVirtualSize(azure, 40 * MiB + 1536)).toBe(41 * MiB);
    expect(targetVirtualSize(azure, 41 * MiB)).toBe(41 * MiB);
    expect(targetVirtualSize(azure, 20 * MiB - 512)).toBe(20 * MiB);
    expect(() => targetVirtualSize(azure, 19 * MiB)).toThrow(/at least 20 MiB \(20971520 bytes\)/);
    expect(() => targetVirtualSize(azure, 32 * 1024 * GiB + 1)).toThrow(/at most 32 TiB \(35184372088832 bytes\)/);
    expect(targetVirtualSize(findTarget('gcp'), 1)).toBe(GiB);
    expect(targetVirtualSize(findTarget('gcp'), 3 * GiB)).toBe(3 * GiB);
    expect(targetVirtualSize(findTarget('hyperv'), 12345)).toBe(12345);
  });
});

describe('convert --target=azure', () => {
  const SRC_SIZE = 40 * MiB + 3 * 512;
  beforeAll(() => {
    // Data at the start, in the middle and in the very last sector the source has.
    writePatternedRaw(
      t.file('az.raw'),
      SRC_SIZE,
      [
        { offset: 0, length: 2 * MiB + 100 },
        { offset: 17 * MiB, length: 300000 },
        { offset: SRC_SIZE - 5000, length: 5000 },
      ],
      7,
    );
  });

  it('writes a fixed VHD of a whole MiB, the guest bytes unchanged and the added space zeros', async () => {
    const out = t.file('az.vhd');
    await cliOk('convert', '--target=azure', t.file('az.raw'), out);
    const info = JSON.parse(qemuImg('info', '--output=json', '-f', 'vpc', out));
    expect(info.format).toBe('vpc');
    expect(info['virtual-size']).toBe(41 * MiB);
    expect(statSync(out).size).toBe(41 * MiB + 512);
    // A fixed VHD: the data, then the one footer (cookie "conectix", disk type 2 = fixed).
    const footer = Buffer.alloc(512);
    const fd = openSync(out, 'r');
    readSync(fd, footer, 0, 512, 41 * MiB);
    closeSync(fd);
    expect(footer.subarray(0, 8).toString('latin1')).toBe('conectix');
    expect(footer.readUInt32BE(60)).toBe(2);
    expect(run('vhdiinfo', [out])).toMatch(/Disk type\s*:\s*Fixed/);
    // qemu-img compare (not strict): equal over the source's length, and the rest reads as zeros.
    expect(qemuCompare(t.file('az.raw'), out, '-f', 'raw', '-F', 'vpc')).toBe(0);
    expect(qemuCompare(t.file('az.raw'), out, '-s', '-f', 'raw', '-F', 'vpc')).toBe(1);
    // Byte for byte: the first N bytes are the source's, the rest zeros.
    qemuImg('convert', '-f', 'vpc', '-O', 'raw', out, t.file('az.back.raw'));
    const back = readFileSync(t.file('az.back.raw'));
    const src = readFileSync(t.file('az.raw'));
    expect(back.length).toBe(41 * MiB);
    expect(Buffer.compare(back.subarray(0, SRC_SIZE), src)).toBe(0);
    expect(back.subarray(SRC_SIZE).every((b) => b === 0)).toBe(true);
    // qemu-img has no check for vpc; ours agrees that there is nothing to check.
    expect(runStatus('qemu-img', ['check', '-f', 'vpc', out]).status).toBe(63);
  });

  it('refuses a disk under 20 MiB and over 32 TiB with the numbers, leaving no file', async () => {
    writePatternedRaw(t.file('small.raw'), 19 * MiB, [{ offset: 0, length: 4096 }], 3);
    const r = await cli('convert', '--target=azure', t.file('small.raw'), t.file('small.vhd'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/19922944 bytes \(19 MiB rounded\).*at least 20 MiB \(20971520 bytes\)/);
    qemuImg('create', '-f', 'qcow2', t.file('huge.qcow2'), `${33 * 1024}G`);
    const h = await cli('convert', '--target=azure', t.file('huge.qcow2'), t.file('huge.vhd'));
    expect(h.code).toBe(1);
    expect(h.stderr).toMatch(/36283883716608 bytes.*at most 32 TiB \(35184372088832 bytes\)/);
    expect(readdirSync(t.dir).filter((f) => f.startsWith('small.vhd') || f.startsWith('huge.vhd') || f.includes('.part'))).toEqual([]);
  });

  it('an explicit -O or -o that contradicts it is an error naming both', async () => {
    const a = await cli('convert', '--target=azure', '-O', 'qcow2', t.file('az.raw'), t.file('x.out'));
    expect(a.code).toBe(1);
    expect(a.stderr).toContain('--target=azure writes vpc, but -O qcow2 was given');
    const b = await cli('convert', '--target', 'azure', '-o', 'subformat=dynamic', t.file('az.raw'), t.file('x.out'));
    expect(b.code).toBe(1);
    expect(b.stderr).toContain('--target=azure sets -o subformat=fixed, but -o subformat=dynamic was given');
    expect(existsSync(t.file('x.out'))).toBe(false);
    // Agreeing settings are fine.
    await cliOk('convert', '--target=azure', '-O', 'vpc', '-o', 'subformat=fixed', t.file('az.raw'), t.file('agree.vhd'));
    expect(statSync(t.file('agree.vhd')).size).toBe(41 * MiB + 512);
  });

  it.each([
    ['aws', 'vmdk', 'streamOptimized'],
    ['hyperv', 'vhdx', undefined],
    ['virtualbox', 'vdi', undefined],
    ['openstack', 'qcow2', undefined],
    ['xcp-ng', 'vpc', undefined],
  ])('--target=%s writes %s that qemu-img reads back identically', async (name, format, createType) => {
    const out = t.file(`row-${name}.img`);
    await cliOk('convert', `--target=${name}`, t.file('az.raw'), out);
    const info = JSON.parse(qemuImg('info', '--output=json', '-f', format, out));
    expect(info.format).toBe(format);
    expect(info['virtual-size']).toBe(SRC_SIZE);
    if (createType) expect(info['format-specific'].data['create-type']).toBe(createType);
    expect(qemuCompare(t.file('az.raw'), out, '-f', 'raw', '-F', format)).toBe(0);
  });

  it('other destinations apply their row: proxmox is compressed qcow2', async () => {
    const out = t.file('pve.qcow2');
    await cliOk('convert', '--target=proxmox', t.file('az.raw'), out);
    const info = JSON.parse(qemuImg('info', '--output=json', out));
    expect(info.format).toBe('qcow2');
    expect(info['virtual-size']).toBe(SRC_SIZE);
    expect(info['format-specific'].data['compression-type']).toBe('zlib');
    expect(qemuCompare(t.file('az.raw'), out)).toBe(0);
    // Clean, and -c took effect: the text-heavy data sits in compressed clusters.
    const check = JSON.parse(runStatus('qemu-img', ['check', '--output=json', out]).stdout);
    expect(check['check-errors']).toBe(0);
    expect(check.corruptions ?? 0).toBe(0);
    expect(check.leaks ?? 0).toBe(0);
    expect(check['compressed-clusters']).toBeGreaterThan(0);
  });
});

/** Streams `tar -xzOf tarball disk.raw`: its length and where it first differs from `src` followed by zeros (-1: nowhere). */
async function extractedMatches(tarball: string, src: string): Promise<{ length: number; firstDiff: number }> {
  const srcFd = openSync(src, 'r');
  const srcSize = statSync(src).size;
  let pos = 0;
  let firstDiff = -1;
  const p = spawn('tar', ['-xzOf', tarball, 'disk.raw']);
  for await (const chunk of p.stdout as AsyncIterable<Buffer>) {
    if (firstDiff < 0) {
      const want = Buffer.alloc(chunk.length);
      if (pos < srcSize) readSync(srcFd, want, 0, Math.min(chunk.length, srcSize - pos), pos);
      if (!chunk.equals(want)) firstDiff = pos + chunk.findIndex((b, i) => b !== want[i]);
    }
    pos += chunk.length;
  }
  closeSync(srcFd);
  await new Promise((r) => p.on('close', r));
  return { length: pos, firstDiff };
}

const pyCheck = (tarball: string) =>
  run(PY, [
    '-c',
    [
      'import sys, tarfile, gzip',
      'head = gzip.open(sys.argv[1]).read(512)',
      // Python reads formats without recording them: the header must carry GNU's magic and be
      // exactly what tarfile writes for the same member in GNU_FORMAT.
      "info = tarfile.TarInfo.frombuf(head, 'utf-8', 'surrogateescape')",
      "print('gnu' if head[257:265] == tarfile.GNU_MAGIC and info.tobuf(tarfile.GNU_FORMAT) == head else 'other')",
      // The first member only: listing them all would inflate the whole disk once more.
      "m = tarfile.open(sys.argv[1], 'r:gz').next()",
      'print(f"{m.name}:{m.size}:{int(m.isreg())}")',
    ].join('\n'),
    tarball,
  ]).trim();

describe('convert --target=gcp', () => {
  // 1 GiB less 1 MiB + 512 bytes: rounds up to 1 GiB; a few MiB of data, the rest a hole.
  const SRC_SIZE = GiB - MiB + 512;
  beforeAll(() => {
    writePatternedRaw(
      t.file('g.raw'),
      SRC_SIZE,
      [
        { offset: 0, length: MiB + 300 },
        { offset: 300 * MiB + 4096, length: 2 * MiB },
        { offset: SRC_SIZE - 3000, length: 3000 },
      ],
      11,
    );
  });

  it('writes a gzip-compressed oldgnu tar holding only disk.raw, a whole GiB: the source then zeros', async () => {
    const out = t.file('image.tar.gz');
    await cliOk('convert', '--target=gcp', t.file('g.raw'), out);
    const head = readFileSync(out).subarray(0, 3);
    expect([...head]).toEqual([0x1f, 0x8b, 8]);
    const listing = run('tar', ['-tvf', out]).trim().split('\n');
    expect(listing).toHaveLength(1);
    expect(listing[0]).toMatch(/^-rw-r--r-- root\/root\s+1073741824 .* disk\.raw$/);
    const [format, member] = pyCheck(out).split('\n');
    expect(format).toBe('gnu');
    expect(member).toBe(`disk.raw:${GiB}:1`);
    const x = await extractedMatches(out, t.file('g.raw'));
    expect(x.length).toBe(GiB);
    expect(x.length % GiB).toBe(0);
    expect(x.firstDiff).toBe(-1);
    // The hole costs next to nothing: the tarball stays far under the disk.
    expect(statSync(out).size).toBeLessThan(8 * MiB);
  }, 120_000);

  it('refuses -O other than raw, -c and --verify, naming them', async () => {
    const a = await cli('convert', '--target=gcp', '-O', 'qcow2', t.file('g.raw'), t.file('y.tar.gz'));
    expect(a.stderr).toContain('--target=gcp writes raw, but -O qcow2 was given');
    const b = await cli('convert', '--target=gcp', '-c', t.file('g.raw'), t.file('y.tar.gz'));
    expect(b.stderr).toContain('--target=gcp writes raw without -c, but -c was given');
    const o = await cli('convert', '--target=gcp', '-o', 'preallocation=full', t.file('g.raw'), t.file('y.tar.gz'));
    expect(o.stderr).toContain('a Google Cloud tarball takes no -o options (preallocation)');
    const c = await cli('convert', '--target=gcp', '--verify', t.file('g.raw'), t.file('y.tar.gz'));
    expect(c.stderr).toContain('--verify cannot re-read a tarball');
    expect(existsSync(t.file('y.tar.gz'))).toBe(false);
  });
});

describe('the core tarball writer (CompressionStream gzip)', () => {
  it('makes the same kind of tarball in memory, readable by tar and tarfile', async () => {
    const disk = new Uint8Array(3 * MiB + 512);
    for (let i = 0; i < disk.length; i += 4096) disk[i] = (i / 4096) & 0xff || 1;
    disk[disk.length - 1] = 0x5a;
    const source = await openImage(new MemorySource(disk, 'mem.raw'), drivers, { format: 'raw', codecs: nodeCodecs });
    const sink = new MemorySink('mem.tar.gz');
    const r = await convert({
      source,
      target: gcpTarDriver(),
      sink,
      create: { virtualSize: 4 * MiB, options: {}, codecs: nodeCodecs, filename: 'mem.tar.gz' },
    });
    expect(r.warnings).toEqual([]);
    const gz = sink.bytes;
    const tarball = t.file('mem.tar.gz');
    writeFileSync(tarball, gz);
    expect(run('tar', ['-tf', tarball]).trim()).toBe('disk.raw');
    expect(pyCheck(tarball)).toBe(`gnu\ndisk.raw:${4 * MiB}:1`);
    const tar = gunzipSync(gz);
    expect(tar.length % 10240).toBe(0);
    const member = tar.subarray(512, 512 + 4 * MiB);
    expect(Buffer.compare(member.subarray(0, disk.length), Buffer.from(disk))).toBe(0);
    expect(member.subarray(disk.length).every((b) => b === 0)).toBe(true);
    expect(tar.subarray(512 + 4 * MiB).every((b) => b === 0)).toBe(true);
  });

  it('warns when the name would not be imported (not .tar.gz)', async () => {
    const source = await openImage(new MemorySource(new Uint8Array(4096), 'tiny.raw'), drivers, { format: 'raw', codecs: nodeCodecs });
    const r = await convert({
      source,
      target: gcpTarDriver(),
      sink: new MemorySink('x'),
      create: { options: {}, codecs: nodeCodecs, filename: 'image.tgz' },
    });
    expect(r.warnings).toEqual(['Google Cloud imports a tarball only by a name ending in .tar.gz; image.tgz does not']);
  });

  it.each([
    ['CompressionStream', undefined],
    ['zlib', nodeGzip],
  ])('a sink that fails stops the conversion with its error (%s), without hanging', async (_name, gzip) => {
    const disk = new Uint8Array(2 * MiB).map((_, i) => (i * 7919) & 0xff);
    const source = await openImage(new MemorySource(disk, 'fail.raw'), drivers, { format: 'raw', codecs: nodeCodecs });
    let writes = 0;
    const sink = {
      name: 'full.tar.gz',
      write: async () => {
        if (++writes > 1) throw new Error('disk full');
      },
      close: async () => {},
    };
    const run = convert({
      source,
      target: gcpTarDriver(gzip),
      sink,
      create: { virtualSize: 64 * MiB, options: {}, codecs: nodeCodecs, filename: 'full.tar.gz' },
    });
    await expect(run).rejects.toThrow('disk full');
  });

  it('writes sizes past 8 GiB in base-256, as GNU tar and tarfile read them', () => {
    const h = oldGnuHeader('disk.raw', 10 * GiB, 1_700_000_000);
    expect(h[124]).toBe(0x80);
    const tarball = t.file('big-header.tar');
    writeFileSync(tarball, Buffer.concat([h, Buffer.alloc(1024)]));
    const out = run(PY, [
      '-c',
      'import sys, tarfile\nh = open(sys.argv[1], "rb").read(512)\ni = tarfile.TarInfo.frombuf(h, "utf-8", "surrogateescape")\nprint(i.name, i.size, i.mtime, i.tobuf(tarfile.GNU_FORMAT) == h)',
      tarball,
    ]).trim();
    expect(out).toBe(`disk.raw ${10 * GiB} 1700000000 True`);
  });
});
