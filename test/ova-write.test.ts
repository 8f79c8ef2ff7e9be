import { createReadStream, createWriteStream, existsSync, mkdirSync, promises as fsp, readdirSync, readFileSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import convertFromVmdk, { readCapacityAndGrainTable } from 'xo-vmdk-to-vhd';
import { MemorySink, MemorySource } from '../src-core/io/bytes.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { listTar } from '../src-core/formats/ova/tar.ts';
import { openImage } from '../src-core/image/open.ts';
import { convert } from '../src-core/pipeline/convert.ts';
import { forwardPackage, packageDriver, packageIdentity } from '../src-core/pipeline/ova/index.ts';
import { NullSink } from '../src-core/io/nullSink.ts';
import { MemberSink } from '../src-core/pipeline/ova/memberSink.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuCompare, qemuImg, run, runStatus, tempDir, writePatternedRaw } from './helpers/sys.ts';

/**
 * -O ova / -O ovf / --target=esxi. The judges are other programs: GNU tar lists and extracts the
 * archive, sha256sum checks the manifest, fast-xml-parser reads the descriptor (checked here
 * against the DMTF OVF 1.0 envelope structure), qemu-img checks and compares the disks, and Xen
 * Orchestra's xo-vmdk-to-vhd reads each stream VMDK on its own. DiskFerry's own OVA reader must
 * open the result too.
 */

const t = tempDir('diskferry-ova-write-');
afterAll(() => t.cleanup());
const MiB = 1024 * 1024;
const SIZE_A = 20 * MiB + 7 * 512; // not a whole MiB: the capacity is then written in bytes
const SIZE_B = 6 * MiB;

const OVF_NS = 'http://schemas.dmtf.org/ovf/envelope/1';
const STREAM = 'http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized';
/** CIM_ResourceAllocationSettingData.ResourceType values an OVF may use (DSP0243 / CIM schema). */
const RESOURCE_TYPES = new Set(Array.from({ length: 35 }, (_, i) => String(i + 1)));

beforeAll(() => {
  writePatternedRaw(
    t.file('a.raw'),
    SIZE_A,
    [
      { offset: 0, length: MiB + 300 },
      { offset: 9 * MiB, length: 2 * MiB },
      { offset: SIZE_A - 3000, length: 3000 },
    ],
    21,
  );
  writePatternedRaw(t.file('b.raw'), SIZE_B, [{ offset: 64 * 1024, length: 3 * MiB }], 22);
  qemuImg('create', '-f', 'qcow2', t.file('empty.qcow2'), '3M');
});

/** `tar tvf`: member names in archive order, and the format GNU tar sees. */
function tarList(ova: string): string[] {
  return run('tar', ['tf', ova]).trim().split('\n');
}

/** Extracts with GNU tar into a fresh folder. */
function untar(ova: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  run('tar', ['xf', ova, '-C', dir]);
  return dir;
}

/** The manifest, checked by sha256sum against the files it names in `dir`. */
function checkManifest(dir: string, mfName: string): string[] {
  const lines = readFileSync(`${dir}/${mfName}`, 'utf8').trim().split('\n');
  const names: string[] = [];
  const sums: string[] = [];
  for (const l of lines) {
    const m = /^SHA256\((.+)\)= ([0-9a-f]{64})$/.exec(l);
    expect(m, l).not.toBeNull();
    names.push(m![1]!);
    sums.push(`${m![2]}  ${m![1]}`);
  }
  // sha256sum -c reads "<hex>  <name>" lines: every file named must match.
  const r = runStatus('sh', ['-c', `cd "${dir}" && printf '%s\\n' "$@" | sha256sum -c --strict -`, 'sh', ...sums]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return names;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type X = any;

function parseOvf(file: string): { doc: X; text: string } {
  const text = readFileSync(file, 'utf8');
  expect(XMLValidator.validate(text)).toBe(true);
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    parseTagValue: false,
    parseAttributeValue: false,
    isArray: (name) => ['File', 'Disk', 'Item', 'Network'].includes(name),
  });
  return { doc: parser.parse(text), text };
}

const UNITS: Record<string, number> = { byte: 1, 'byte * 2^20': MiB, 'byte * 2^30': 1024 * MiB };

interface Expect {
  disks: { file: string; size: number }[];
  family: string;
  cpus?: number;
  memory?: number;
  controller?: { type: string; subType?: string };
  network?: string | null;
  firmware?: string;
  name?: string;
  osType?: string;
}

/**
 * The DMTF OVF 1.0 envelope for what DiskFerry writes: References → DiskSection →
 * NetworkSection → VirtualSystem (Info, Name, OperatingSystemSection, VirtualHardwareSection with
 * System first); every rasd Item with a unique InstanceID, a valid ResourceType, its elements in
 * schema (alphabetical) order, and parent links that point at the controller.
 */
function checkEnvelope(file: string, dir: string, want: Expect): void {
  const { doc, text } = parseOvf(file);
  const env = doc.Envelope;
  expect(env['@xmlns']).toBe(OVF_NS);
  expect(env['@xmlns:ovf']).toBe(OVF_NS);
  expect(env['@xmlns:rasd']).toBe('http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData');
  expect(env['@xmlns:vssd']).toBe('http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData');
  // Section order as the envelope schema requires it.
  const order = ['<References>', '<DiskSection>', want.network === null ? '' : '<NetworkSection>', '<VirtualSystem '].filter(Boolean);
  const at = order.map((tag) => text.indexOf(tag));
  expect(at.every((x) => x > 0)).toBe(true);
  expect([...at].sort((a, b) => a - b)).toEqual(at);
  if (want.network === null) expect(env.NetworkSection).toBeUndefined();

  const files = env.References.File as X[];
  expect(files.map((f) => f['@ovf:href'])).toEqual(want.disks.map((d) => d.file));
  for (const f of files) expect(Number(f['@ovf:size'])).toBe(statSync(`${dir}/${f['@ovf:href']}`).size);
  expect(env.DiskSection.Info).toBeTruthy();
  const disks = env.DiskSection.Disk as X[];
  expect(disks).toHaveLength(want.disks.length);
  disks.forEach((d, i) => {
    const file = files.find((f) => f['@ovf:id'] === d['@ovf:fileRef']);
    expect(file?.['@ovf:href']).toBe(want.disks[i]!.file);
    expect(d['@ovf:format']).toBe(STREAM);
    const unit = UNITS[d['@ovf:capacityAllocationUnits'] ?? 'byte'];
    expect(unit, d['@ovf:capacityAllocationUnits']).toBeDefined();
    expect(Number(d['@ovf:capacity']) * unit!).toBe(want.disks[i]!.size);
    const populated = Number(d['@ovf:populatedSize']);
    expect(populated).toBeGreaterThanOrEqual(0);
    expect(populated).toBeLessThanOrEqual(want.disks[i]!.size);
  });
  const networks = (env.NetworkSection?.Network ?? []) as X[];
  if (want.network !== null) expect(networks.map((n) => n['@ovf:name'])).toEqual([want.network ?? 'VM Network']);

  const vs = env.VirtualSystem;
  expect(vs.Info).toBeTruthy();
  expect(vs['@ovf:id']).toBeTruthy();
  if (want.name) expect(vs.Name).toBe(want.name);
  const os = vs.OperatingSystemSection;
  expect(os.Info).toBeTruthy();
  expect(os['@ovf:id']).toMatch(/^\d+$/);
  expect(os['@vmw:osType']).toBe(want.osType ?? 'otherLinux64Guest');
  const hw = vs.VirtualHardwareSection;
  expect(hw.Info).toBeTruthy();
  expect(hw.System['vssd:VirtualSystemType']).toBe(want.family);
  expect(hw.System['vssd:InstanceID']).toBeDefined();
  expect(text.indexOf('<System>')).toBeLessThan(text.indexOf('<Item>'));
  const items = hw.Item as X[];
  const ids = items.map((it) => it['rasd:InstanceID']);
  expect(new Set(ids).size).toBe(ids.length);
  for (const it of items) {
    expect(RESOURCE_TYPES.has(it['rasd:ResourceType']), it['rasd:ResourceType']).toBe(true);
    expect(it['rasd:ElementName']).toBeTruthy();
    const keys = Object.keys(it);
    expect(keys, 'rasd elements in schema order').toEqual([...keys].sort());
  }
  const ofType = (rt: string) => items.filter((it) => it['rasd:ResourceType'] === rt);
  const cpu = ofType('3');
  expect(cpu).toHaveLength(1);
  expect(cpu[0]['rasd:VirtualQuantity']).toBe(String(want.cpus ?? 1));
  const mem = ofType('4');
  expect(mem).toHaveLength(1);
  expect(mem[0]['rasd:AllocationUnits']).toBe('byte * 2^20');
  expect(mem[0]['rasd:VirtualQuantity']).toBe(String(want.memory ?? 1024));
  const ctlWant = want.controller ?? { type: '6', subType: 'lsilogic' };
  const ctls = ofType(ctlWant.type);
  expect(ctls).toHaveLength(1);
  expect(ctls[0]['rasd:ResourceSubType']).toBe(ctlWant.subType);
  const diskItems = ofType('17');
  expect(diskItems).toHaveLength(want.disks.length);
  diskItems.forEach((it, i) => {
    expect(it['rasd:Parent']).toBe(ctls[0]['rasd:InstanceID']);
    expect(it['rasd:HostResource']).toBe(`ovf:/disk/${disks[i]['@ovf:diskId']}`);
    expect(it['rasd:AddressOnParent']).toMatch(/^\d+$/);
  });
  expect(new Set(diskItems.map((it) => it['rasd:AddressOnParent'])).size).toBe(diskItems.length);
  const nics = ofType('10');
  if (want.network === null) expect(nics).toHaveLength(0);
  else {
    expect(nics).toHaveLength(1);
    expect(nics[0]['rasd:Connection']).toBe(want.network ?? 'VM Network');
  }
  const config = [hw['vmw:Config']].flat();
  const fw = config.find((c: X) => c['@vmw:key'] === 'firmware');
  expect(fw['@vmw:value']).toBe(want.firmware ?? 'bios');
}

/** Xen Orchestra's own stream-VMDK reader: capacity, then the disk as a VHD that qemu-img compares with `src`. */
async function xoReads(vmdk: string, src: string, size: number): Promise<void> {
  const fh = await fsp.open(vmdk);
  try {
    const total = (await fh.stat()).size;
    const accessor = async (start: number, end: number): Promise<ArrayBuffer> => {
      if (start < 0) [start, end] = [start + total, end + total];
      const b = Buffer.alloc(end - start);
      await fh.read(b, 0, end - start, start);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
    };
    const { capacityBytes, tablePromise } = await readCapacityAndGrainTable(accessor);
    expect(capacityBytes).toBe(size);
    const table = await tablePromise;
    const vhd = await convertFromVmdk(createReadStream(vmdk), table.grainLogicalAddressList, table.grainFileOffsetList);
    await pipeline(vhd, createWriteStream(`${vmdk}.xo.vhd`));
  } finally {
    await fh.close();
  }
  // The VHD's CHS geometry rounds the size up; what lies past the source must read as zeros.
  expect(qemuCompare(src, `${vmdk}.xo.vhd`, '-f', 'raw', '-F', 'vpc')).toBe(0);
}

function checkDisk(vmdk: string, src: string, srcFormat = 'raw'): void {
  expect(runStatus('qemu-img', ['check', '-f', 'vmdk', vmdk]).status).toBe(0);
  const info = JSON.parse(qemuImg('info', '--output=json', '-f', 'vmdk', vmdk));
  expect(info['format-specific'].data['create-type']).toBe('streamOptimized');
  // Version 3 (VMware's stream layout: footer at the end, GD_AT_END in the header).
  expect(readFileSync(vmdk).readUInt32LE(4)).toBe(3);
  expect(qemuCompare(src, vmdk, '-f', srcFormat, '-F', 'vmdk')).toBe(0);
}

describe('convert -O ova', () => {
  it('writes a ustar with the .ovf first, then the .mf, then the stream VMDK; digests, descriptor and disk hold', async () => {
    const ova = t.file('one.ova');
    await cliOk('convert', '-O', 'ova', t.file('a.raw'), ova);
    expect(tarList(ova)).toEqual(['one.ovf', 'one.mf', 'one-disk1.vmdk']);
    expect(run('tar', ['tvf', ova])).toMatch(/^-rw-r--r-- root\/root\s+\d+ .* one\.ovf$/m);
    // POSIX ustar members (magic "ustar\0", version "00"), as Python's tarfile sees them.
    const fmt = run('/usr/bin/python3', [
      '-c',
      'import sys,tarfile; t=tarfile.open(sys.argv[1]); print(t.next() is not None and "ok")',
      ova,
    ]);
    expect(fmt.trim()).toBe('ok');
    expect(readFileSync(ova).subarray(257, 265).toString('latin1')).toBe('ustar\u000000');
    expect(statSync(ova).size % 10240).toBe(0);
    const dir = untar(ova, t.file('one.x'));
    expect(checkManifest(dir, 'one.mf')).toEqual(['one.ovf', 'one-disk1.vmdk']);
    checkEnvelope(`${dir}/one.ovf`, dir, { disks: [{ file: 'one-disk1.vmdk', size: SIZE_A }], family: 'vmx-13', name: 'one' });
    checkDisk(`${dir}/one-disk1.vmdk`, t.file('a.raw'));
    await xoReads(`${dir}/one-disk1.vmdk`, t.file('a.raw'), SIZE_A);
    // DiskFerry's own OVA reader opens the package and reads the source's bytes.
    const info = JSON.parse(await cliOk('info', '--output=json', ova));
    expect(info.format).toBe('ova');
    expect(info['virtual-size']).toBe(SIZE_A);
    await cliOk('convert', '-O', 'raw', ova, t.file('one.back.raw'));
    expect(Buffer.compare(readFileSync(t.file('one.back.raw')), readFileSync(t.file('a.raw')))).toBe(0);
  });

  it('several sources are several disks of one VM, an all-zero disk included', async () => {
    const ova = t.file('multi.ova');
    await cliOk('convert', '-O', 'ova', t.file('a.raw'), t.file('empty.qcow2'), t.file('b.raw'), ova);
    expect(tarList(ova)).toEqual(['multi.ovf', 'multi.mf', 'multi-disk1.vmdk', 'multi-disk2.vmdk', 'multi-disk3.vmdk']);
    const dir = untar(ova, t.file('multi.x'));
    expect(checkManifest(dir, 'multi.mf')).toEqual(['multi.ovf', 'multi-disk1.vmdk', 'multi-disk2.vmdk', 'multi-disk3.vmdk']);
    checkEnvelope(`${dir}/multi.ovf`, dir, {
      disks: [
        { file: 'multi-disk1.vmdk', size: SIZE_A },
        { file: 'multi-disk2.vmdk', size: 3 * MiB },
        { file: 'multi-disk3.vmdk', size: SIZE_B },
      ],
      family: 'vmx-13',
    });
    checkDisk(`${dir}/multi-disk1.vmdk`, t.file('a.raw'));
    checkDisk(`${dir}/multi-disk2.vmdk`, t.file('empty.qcow2'), 'qcow2');
    checkDisk(`${dir}/multi-disk3.vmdk`, t.file('b.raw'));
    await xoReads(`${dir}/multi-disk3.vmdk`, t.file('b.raw'), SIZE_B);
    // Our reader: the disk list, and --disk 3 reads the third source.
    const info = JSON.parse(await cliOk('info', '--output=json', ova));
    expect(info['format-specific'].data.disks.map((d: { name: string }) => d.name)).toEqual([
      'multi-disk1.vmdk',
      'multi-disk2.vmdk',
      'multi-disk3.vmdk',
    ]);
    await cliOk('convert', '--disk', '3', '-O', 'raw', ova, t.file('multi.3.raw'));
    expect(Buffer.compare(readFileSync(t.file('multi.3.raw')), readFileSync(t.file('b.raw')))).toBe(0);
  });

  it.each([
    [
      'name=web 01,cpus=4,memory=2G,firmware=efi,controller=pvscsi,network=Prod LAN,guest_os=ubuntu64Guest',
      {
        family: 'vmx-13',
        name: 'web 01',
        cpus: 4,
        memory: 2048,
        firmware: 'efi',
        controller: { type: '6', subType: 'VirtualSCSI' },
        network: 'Prod LAN',
        osType: 'ubuntu64Guest',
      },
    ],
    ['controller=sata,hw_family=aws', { family: 'vmx-10', controller: { type: '20', subType: 'vmware.sata.ahci' } }],
    [
      'controller=ide,hw_family=virtualbox,network=none',
      { family: 'virtualbox-2.2', controller: { type: '5', subType: 'PIIX4' }, network: null },
    ],
    ['hw_family=vmx-19,controller=lsilogic', { family: 'vmx-19' }],
  ] as [string, Partial<Expect>][])('-o %s shapes the descriptor', async (o, want) => {
    const name = `opt${o.length}`;
    await cliOk('convert', '-O', 'ova', '-o', o, t.file('b.raw'), t.file(`${name}.ova`));
    const dir = untar(t.file(`${name}.ova`), t.file(`${name}.x`));
    checkManifest(dir, `${name}.mf`);
    checkEnvelope(`${dir}/${name}.ovf`, dir, { disks: [{ file: `${name}-disk1.vmdk`, size: SIZE_B }], family: 'vmx-13', ...want });
    checkDisk(`${dir}/${name}-disk1.vmdk`, t.file('b.raw'));
  });

  it('--target=esxi writes the OVA (vmx-13), and --verify re-reads it', async () => {
    await cliOk('convert', '--target=esxi', '--verify', '-o', 'cpus=2', t.file('a.raw'), t.file('esxi.ova'));
    expect(tarList(t.file('esxi.ova'))).toEqual(['esxi.ovf', 'esxi.mf', 'esxi-disk1.vmdk']);
    const dir = untar(t.file('esxi.ova'), t.file('esxi.x'));
    checkManifest(dir, 'esxi.mf');
    checkEnvelope(`${dir}/esxi.ovf`, dir, { disks: [{ file: 'esxi-disk1.vmdk', size: SIZE_A }], family: 'vmx-13', cpus: 2 });
    checkDisk(`${dir}/esxi-disk1.vmdk`, t.file('a.raw'));
  });

  it('refuses what an OVA cannot be, in one line, leaving no file', async () => {
    const cases: [string[], RegExp][] = [
      [['-c'], /compressed already; -c does not apply/],
      [['-o', 'hw_family=hyperv'], /hw_family must be esxi, aws, virtualbox, vmx-NN or virtualbox-2.2, not "hyperv"/],
      [['-o', 'controller=nvme'], /invalid value "nvme" for controller/],
      [['-o', 'cpus=0'], /cpus must be a whole number/],
      [['-o', 'subformat=monolithicSparse'], /invalid value "monolithicSparse" for subformat/],
    ];
    for (const [extra, what] of cases) {
      const r = await cli('convert', '-O', 'ova', ...extra, t.file('b.raw'), t.file('bad.ova'));
      expect(r.code, extra.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(what);
    }
    const ide = await cli(
      'convert',
      '-O',
      'ova',
      '-o',
      'controller=ide',
      t.file('b.raw'),
      t.file('b.raw'),
      t.file('b.raw'),
      t.file('bad.ova'),
    );
    expect(ide.code).toBe(1);
    expect(ide.stderr).toMatch(/bad\.ova.*the ide controller takes at most 2 disks; 3 were given/);
    const v = await cli('convert', '-O', 'ovf', '--verify', t.file('b.raw'), t.file('bad.ovf'));
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/--verify re-reads a single-disk OVA only/);
    expect(readdirSync(t.dir).filter((f) => f.startsWith('bad') || f.startsWith('.bad'))).toEqual([]);
  });
});

describe('convert -O ovf', () => {
  it('writes the descriptor, the disks and the manifest side by side', async () => {
    const dir = t.file('ovfdir');
    mkdirSync(dir);
    await cliOk('convert', '-O', 'ovf', t.file('a.raw'), t.file('b.raw'), `${dir}/vm.ovf`);
    expect(readdirSync(dir).sort()).toEqual(['vm-disk1.vmdk', 'vm-disk2.vmdk', 'vm.mf', 'vm.ovf']);
    expect(checkManifest(dir, 'vm.mf')).toEqual(['vm.ovf', 'vm-disk1.vmdk', 'vm-disk2.vmdk']);
    // No padding here: the descriptor is written once, at the end.
    expect(readFileSync(`${dir}/vm.ovf`, 'utf8').endsWith('</Envelope>\n')).toBe(true);
    checkEnvelope(`${dir}/vm.ovf`, dir, {
      disks: [
        { file: 'vm-disk1.vmdk', size: SIZE_A },
        { file: 'vm-disk2.vmdk', size: SIZE_B },
      ],
      family: 'vmx-13',
    });
    checkDisk(`${dir}/vm-disk1.vmdk`, t.file('a.raw'));
    checkDisk(`${dir}/vm-disk2.vmdk`, t.file('b.raw'));
    expect(existsSync(`${dir}/vm.ova`)).toBe(false);
  });
});

describe('the package writer in the core', () => {
  it("writes an OVA into any seekable sink (as the page's are): our reader and GNU tar agree on it", async () => {
    const disk = readFileSync(t.file('b.raw'));
    const source = await openImage(new MemorySource(disk, 'b.raw'), drivers, { format: 'raw', codecs: nodeCodecs });
    const sink = new MemorySink('mem.ova');
    await convert({
      source,
      target: packageDriver('ova', undefined, packageIdentity(1_700_000_000)),
      sink,
      create: { options: { name: 'mem' }, codecs: nodeCodecs, filename: 'mem.ova' },
    });
    const bytes = sink.bytes.slice();
    const members = await listTar(new MemorySource(bytes, 'mem.ova'));
    expect(members.map((m) => m.name)).toEqual(['mem.ovf', 'mem.mf', 'mem-disk1.vmdk']);
    // The pinned identity reaches every header: GNU tar shows that mtime.
    await fsp.writeFile(t.file('mem.ova'), bytes);
    expect(run('tar', ['tvf', t.file('mem.ova'), '--utc', '--full-time'])).toMatch(/2023-11-14 22:13:20 mem\.ovf/);
    const back = await openImage(new MemorySource(bytes, 'mem.ova'), drivers, { codecs: nodeCodecs });
    expect(back.format).toBe('ova');
    expect(Buffer.compare(Buffer.from(await back.read(0, SIZE_B)), disk)).toBe(0);
    await back.close();
  });

  it("in two passes for a stream: every write goes forward, the bytes equal the seekable writer's layout read back, and a source that changed is refused", async () => {
    const disk = readFileSync(t.file('b.raw'));
    const open = (bytes: Uint8Array) => openImage(new MemorySource(bytes, 'b.raw'), drivers, { format: 'raw', codecs: nodeCodecs });
    /** A sink that, like a pipe, takes each byte once, in order. */
    class ForwardSink extends MemorySink {
      private end = 0;
      override async write(offset: number, data: Uint8Array): Promise<void> {
        if (offset !== this.end) throw new Error(`a backward or skipping write at ${offset} (end ${this.end})`);
        this.end += data.length;
        await super.write(offset, data);
      }
    }
    const create = { options: { name: 'fw' }, codecs: nodeCodecs, filename: 'fw.ova' };
    const f = forwardPackage();
    await convert({ source: await open(disk), target: f.plan, sink: new NullSink('fw.ova'), create });
    const sink = new ForwardSink('fw.ova');
    await convert({ source: await open(disk), target: f.write, sink, create });
    const bytes = sink.bytes.slice();
    expect((await listTar(new MemorySource(bytes, 'fw.ova'))).map((m) => m.name)).toEqual(['fw.ovf', 'fw.mf', 'fw-disk1.vmdk']);
    const back = await openImage(new MemorySource(bytes, 'fw.ova'), drivers, { codecs: nodeCodecs });
    expect(Buffer.compare(Buffer.from(await back.read(0, SIZE_B)), disk)).toBe(0);
    await back.close();
    // The second pass sees other bytes than the first: an error, never a manifest that lies.
    const g = forwardPackage();
    await convert({ source: await open(disk), target: g.plan, sink: new NullSink('fw.ova'), create });
    const changed = Buffer.from(disk);
    changed[4096] = changed[4096]! ^ 0xff;
    await expect(convert({ source: await open(changed), target: g.write, sink: new ForwardSink('fw.ova'), create })).rejects.toThrow(
      /the source changed between the two passes/,
    );
  });

  it('a member is hashed in one pass: a write out of order is refused, not hashed wrong', async () => {
    const m = new MemberSink(new MemorySink('x'), 512, 'x.ova/d.vmdk');
    await m.write(0, new Uint8Array(10));
    await expect(m.write(20, new Uint8Array(1))).rejects.toThrow(/written out of order \(20 after 10\)/);
    await expect(m.truncate(5)).rejects.toThrow(/cannot be cut/);
  });
});
