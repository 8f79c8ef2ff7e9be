import { copyFileSync, openSync, readFileSync, writeFileSync, writeSync, closeSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lintImage, type LintFacts } from '../src-core/pipeline/lint/index.ts';
import { findTarget } from '../src-core/pipeline/targets.ts';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuImg, qemuIo, run, tempDir } from './helpers/sys.ts';

/**
 * diskferry lint: every rule has a fixture it fails (or, for the partition table, warns) and one
 * it passes, made here with qemu-img, GNU tar and our own CLI; exit codes 0/1/2 and JSON output.
 */
const t = tempDir('diskferry-lint-');
const f = t.file;
const MiB = 1024 * 1024;

interface Result {
  rule: string;
  status: 'pass' | 'warn' | 'fail';
  reason: string;
}
interface Report {
  status: string;
  files: { file: string; targets: { target: string; status: string; results: Result[] }[] }[];
}

/** lint --output=json for one target; the results of the first file (or of `file`). */
async function lint(target: string, ...files: string[]): Promise<{ code: number; report: Report; results: Result[] }> {
  const r = await cli('lint', `--target=${target}`, '--output=json', ...files);
  expect(r.stderr).toBe('');
  const report = JSON.parse(r.stdout) as Report;
  return { code: r.code, report, results: report.files[0]!.targets[0]!.results };
}

async function ruleOf(target: string, file: string, rule: string): Promise<Result | undefined> {
  return (await lint(target, file)).results.find((x) => x.rule === rule);
}

async function expectRule(target: string, file: string, rule: string, status: Result['status'], reason?: RegExp): Promise<void> {
  const r = await ruleOf(target, file, rule);
  expect(r, `${rule} for ${target} on ${path.basename(file)}`).toBeDefined();
  expect(r!.status).toBe(status);
  if (reason) expect(r!.reason).toMatch(reason);
}

/** A raw disk with a patterned payload; `mbr` puts 0x55AA at 510, `gpt` "EFI PART" at 512 (and the protective MBR). */
function rawDisk(name: string, size: number, boot: 'mbr' | 'gpt' | 'none'): string {
  const file = f(name);
  const b = Buffer.alloc(size);
  for (let i = 4096; i < Math.min(size, 256 * 1024); i++) b[i] = (i * 7) & 0xff;
  if (boot !== 'none') b.writeUInt16LE(0xaa55, 510);
  if (boot === 'gpt') b.write('EFI PART', 512, 'latin1');
  writeFileSync(file, b);
  return file;
}

/** An OVA: a tar of the members in the given order, built by GNU tar from a folder. */
function ova(name: string, ovfText: string | undefined, manifest: string | undefined, order: 'ovf-first' | 'disk-first'): string {
  const dir = f(`${name}.d`);
  mkdirSync(dir);
  copyFileSync(f('stream.vmdk'), path.join(dir, 'disk1.vmdk'));
  const members = ['disk1.vmdk'];
  if (ovfText !== undefined) {
    writeFileSync(path.join(dir, 'vm.ovf'), ovfText);
    if (order === 'ovf-first') members.unshift('vm.ovf');
    else members.push('vm.ovf');
  }
  if (manifest !== undefined) {
    const disk = run('sha256sum', [path.join(dir, 'disk1.vmdk')]).split(' ')[0];
    const sha1 = run('sha1sum', [path.join(dir, 'disk1.vmdk')]).split(' ')[0];
    writeFileSync(path.join(dir, 'vm.mf'), manifest === 'sha1' ? `SHA1(disk1.vmdk)= ${sha1}\n` : `SHA256(disk1.vmdk)= ${disk}\n`);
    members.push('vm.mf');
  }
  const out = f(name);
  run('tar', ['--format=ustar', '-cf', out, '-C', dir, ...members]);
  return out;
}

function ovf(family: string | undefined, hardware = true): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References><File ovf:id="file1" ovf:href="disk1.vmdk"/></References>
  <DiskSection><Info>disks</Info><Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="${8 * MiB}" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/></DiskSection>
  <VirtualSystem ovf:id="vm">
    <Info>A virtual machine</Info>
    ${
      hardware
        ? `<VirtualHardwareSection><Info>hardware</Info><System>${family ? `<vssd:VirtualSystemType>${family}</vssd:VirtualSystemType>` : ''}</System></VirtualHardwareSection>`
        : ''
    }
  </VirtualSystem>
</Envelope>
`;
}

beforeAll(async () => {
  rawDisk('boot.raw', 8 * MiB, 'mbr');
  rawDisk('gpt.raw', 8 * MiB, 'gpt');
  rawDisk('blank.raw', 8 * MiB, 'none');
  rawDisk('odd.raw', 21 * MiB + 4096, 'mbr');
  rawDisk('small.raw', 8 * MiB, 'mbr');
  rawDisk('disk.raw', 2 * MiB, 'mbr');
  await cliOk('convert', '-q', '--target=azure', f('odd.raw'), f('azure.vhd'));
  await cliOk('convert', '-q', '-O', 'vmdk', '-o', 'subformat=streamOptimized', f('boot.raw'), f('stream.vmdk'));
});
afterAll(() => t.cleanup());

describe('lint rules: a failing and a passing fixture each', () => {
  it('format: Azure takes a VHD, not a qcow2', async () => {
    qemuImg('convert', '-O', 'qcow2', f('boot.raw'), f('boot.qcow2'));
    await expectRule('azure', f('azure.vhd'), 'format', 'pass');
    await expectRule('azure', f('boot.qcow2'), 'format', 'fail', /azure takes VHD; this is a qcow2/);
  });

  it('subformat: Azure wants a fixed VHD', async () => {
    qemuImg('convert', '-O', 'vpc', f('odd.raw'), f('dynamic.vhd'));
    await expectRule('azure', f('azure.vhd'), 'subformat', 'pass');
    await expectRule('azure', f('dynamic.vhd'), 'subformat', 'fail', /only fixed VHDs; this one is dynamic/);
  });

  it('subformat: OpenStack takes streamOptimized and monolithicSparse VMDKs only', async () => {
    qemuImg('convert', '-O', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', f('boot.raw'), f('split.vmdk'));
    await expectRule('openstack', f('stream.vmdk'), 'subformat', 'pass');
    await expectRule('openstack', f('split.vmdk'), 'subformat', 'fail', /this one is twoGbMaxExtentSparse/);
  });

  it('subformat: an ESXi datastore runs createType "vmfs", not a hosted sparse VMDK', async () => {
    qemuImg('convert', '-O', 'vmdk', f('boot.raw'), f('hosted.vmdk'));
    copyFileSync(f('boot.raw'), f('ds-flat.vmdk'));
    writeFileSync(
      f('ds.vmdk'),
      `# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="vmfs"\n\nRW ${(8 * MiB) / 512} VMFS "ds-flat.vmdk"\n\nddb.adapterType = "lsilogic"\n`,
    );
    await expectRule('esxi-datastore', f('ds.vmdk'), 'subformat', 'pass');
    await expectRule('esxi-datastore', f('hosted.vmdk'), 'subformat', 'fail', /disk type 7/);
  });

  it('vmdk-version: ESXi and AWS want stream-optimized version 3', async () => {
    copyFileSync(f('stream.vmdk'), f('stream-v1.vmdk'));
    const fd = openSync(f('stream-v1.vmdk'), 'r+');
    writeSync(fd, Buffer.from([1, 0, 0, 0]), 0, 4, 4);
    closeSync(fd);
    await expectRule('aws', f('stream.vmdk'), 'vmdk-version', 'pass');
    await expectRule('aws', f('stream-v1.vmdk'), 'vmdk-version', 'fail', /version 1/);
  });

  it('size: Azure wants a whole number of MiB, at least 20 MiB', async () => {
    qemuImg('convert', '-O', 'vpc', '-o', 'subformat=fixed,force_size=on', f('odd.raw'), f('odd.vhd'));
    qemuImg('convert', '-O', 'vpc', '-o', 'subformat=fixed,force_size=on', f('small.raw'), f('small.vhd'));
    await expectRule('azure', f('azure.vhd'), 'size', 'pass', /this disk is 22 MiB/);
    await expectRule('azure', f('odd.vhd'), 'size', 'fail', /not a whole 1 MiB/);
    await expectRule('azure', f('small.vhd'), 'size', 'fail', /8 MiB, below 20 MiB/);
  });

  it('vhd-file-size: a fixed VHD for Azure is its data plus a 512-byte footer', async () => {
    const good = readFileSync(f('azure.vhd'));
    const footer = good.subarray(good.length - 512);
    writeFileSync(f('padded.vhd'), Buffer.concat([good.subarray(0, good.length - 512), Buffer.alloc(512), footer]));
    await expectRule('azure', f('azure.vhd'), 'vhd-file-size', 'pass');
    await expectRule('azure', f('padded.vhd'), 'vhd-file-size', 'fail', /disk plus a 512-byte footer/);
  });

  it('tarball and size: Google Cloud wants one disk.raw, oldgnu, a whole GiB', async () => {
    await cliOk('convert', '-q', '--target=gcp', f('disk.raw'), f('gcp.tar.gz'));
    run('tar', ['--format=ustar', '-czf', f('ustar.tar.gz'), '-C', t.dir, 'disk.raw']);
    run('tar', ['--format=oldgnu', '-czf', f('named.tar.gz'), '-C', t.dir, 'small.raw']);
    // One scan of the 1 GiB tarball for its three rules.
    const gcp = (await lint('gcp', f('gcp.tar.gz'))).results;
    expect(gcp.find((x) => x.rule === 'tarball')!.status).toBe('pass');
    expect(gcp.find((x) => x.rule === 'size')!).toMatchObject({ status: 'pass', reason: expect.stringMatching(/1 GiB/) });
    expect(gcp.find((x) => x.rule === 'partition-table')!).toMatchObject({ status: 'pass', reason: expect.stringMatching(/MBR/) });
    await expectRule('gcp', f('ustar.tar.gz'), 'tarball', 'fail', /oldgnu.*this one is ustar/);
    await expectRule('gcp', f('ustar.tar.gz'), 'size', 'fail', /not a whole 1 GiB/);
    await expectRule('gcp', f('named.tar.gz'), 'tarball', 'fail', /named disk.raw; this tarball holds small.raw/);
  });

  it('standalone: OpenStack refuses backing files and data files', async () => {
    qemuImg('create', '-f', 'qcow2', '-b', 'boot.qcow2', '-F', 'qcow2', f('overlay.qcow2'));
    qemuImg('create', '-f', 'qcow2', '-o', `data_file=${f('data.bin')}`, f('external.qcow2'), '8M');
    await expectRule('openstack', f('boot.qcow2'), 'standalone', 'pass');
    await expectRule(
      'openstack',
      f('overlay.qcow2'),
      'standalone',
      'fail',
      /Glance refuses images with a backing file; this one has "boot.qcow2"/,
    );
    await expectRule('openstack', f('external.qcow2'), 'standalone', 'fail', /external data file/);
  });

  it('cluster-order: XCP-ng wants qcow2 clusters in guest order', async () => {
    qemuImg('create', '-f', 'qcow2', f('reversed.qcow2'), '8M');
    qemuIo('-c', 'write -P 0x11 4M 64k', '-c', 'write -P 0x22 0 64k', f('reversed.qcow2'));
    await expectRule('xcp-ng', f('boot.qcow2'), 'cluster-order', 'pass');
    await expectRule('xcp-ng', f('reversed.qcow2'), 'cluster-order', 'fail', /out of order/);
  });

  it('partition-table: an MBR or GPT passes, a blank disk warns (it can still be a data disk)', async () => {
    await expectRule('proxmox', f('boot.raw'), 'partition-table', 'pass', /MBR/);
    await expectRule('proxmox', f('gpt.raw'), 'partition-table', 'pass', /GPT/);
    await expectRule('proxmox', f('blank.raw'), 'partition-table', 'warn', /will not boot/);
  });

  it('ovf-family: ESXi wants vmx-NN, not virtualbox-2.2; a VirtualHardwareSection must be there', async () => {
    const good = ova('good.ova', ovf('vmx-13'), 'sha256', 'ovf-first');
    await expectRule('esxi', good, 'ovf-family', 'pass', /vmx-13/);
    await expectRule('esxi', good, 'format', 'pass');
    await expectRule('esxi', ova('vbox.ova', ovf('virtualbox-2.2'), 'sha256', 'ovf-first'), 'ovf-family', 'fail', /virtualbox-2.2/);
    await expectRule('virtualbox', f('vbox.ova'), 'ovf-family', 'pass');
    await expectRule(
      'esxi',
      ova('bare.ova', ovf('vmx-13', false), 'sha256', 'ovf-first'),
      'ovf-family',
      'fail',
      /no VirtualHardwareSection/,
    );
    await expectRule('esxi', ova('future.ova', ovf('vmx-99'), 'sha256', 'ovf-first'), 'ovf-family', 'fail', /vmx-99/);
  });

  it('ovf-first: the descriptor must be the first member', async () => {
    await expectRule('esxi', f('good.ova'), 'ovf-first', 'pass');
    await expectRule('esxi', ova('late.ova', ovf('vmx-13'), 'sha256', 'disk-first'), 'ovf-first', 'fail', /first member/);
  });

  it('ovf-manifest: SHA256 passes; SHA1 and none warn for ESXi', async () => {
    await expectRule('esxi', f('good.ova'), 'ovf-manifest', 'pass');
    await expectRule('esxi', ova('sha1.ova', ovf('vmx-13'), 'sha1', 'ovf-first'), 'ovf-manifest', 'warn', /SHA1/);
    await expectRule('esxi', ova('nomf.ova', ovf('vmx-13'), undefined, 'ovf-first'), 'ovf-manifest', 'warn', /no manifest/);
  });

  it('uuid-clash: VirtualBox refuses a second disk with the same UUID', async () => {
    const id = '0b9d2c8e-43a1-4c55-9d1e-7f00aa11bb22';
    await cliOk('convert', '-q', '-O', 'vdi', '-o', `uuid=${id}`, f('boot.raw'), f('a.vdi'));
    await cliOk('convert', '-q', '-O', 'vdi', '-o', `uuid=${id}`, f('blank.raw'), f('b.vdi'));
    await cliOk('convert', '-q', '-O', 'vdi', f('blank.raw'), f('c.vdi'));
    const clash = await lint('virtualbox', f('a.vdi'), f('b.vdi'));
    expect(clash.code).toBe(1);
    const r = clash.results.find((x) => x.rule === 'uuid-clash')!;
    expect(r.status).toBe('fail');
    expect(r.reason).toContain(id);
    expect(r.reason).toContain('b.vdi');
    const apart = await lint('virtualbox', f('a.vdi'), f('c.vdi'));
    expect(apart.results.find((x) => x.rule === 'uuid-clash')!.status).toBe('pass');
    expect(apart.code).toBe(0);
  });
});

describe('lint command line', () => {
  it('exit 0 when nothing fails (warnings allowed), 1 when a rule fails', async () => {
    const ok = await cli('lint', '--target=proxmox', f('blank.raw'));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/warn {2}partition-table/);
    expect(ok.stdout).toMatch(/^warn: 0 failed, 1 warnings/m);
    const bad = await cli('lint', '--target=azure', f('boot.qcow2'));
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/fail {2}format/);
  });

  it('exit 2 for a bad command line or a file it cannot read, with one line', async () => {
    for (const args of [
      ['lint', '--target=nowhere', f('boot.raw')],
      ['lint'],
      ['lint', '--output=xml', f('boot.raw')],
      ['lint', '--bogus', f('boot.raw')],
    ]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const missing = await cli('lint', f('no-such.vmdk'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no-such.vmdk/);
    // A tarball cut short: gzip ends early while the scan unpacks it.
    run('tar', ['--format=oldgnu', '-czf', f('whole.tar.gz'), '-C', t.dir, 'boot.raw']);
    writeFileSync(f('cut.tar.gz'), readFileSync(f('whole.tar.gz')).subarray(0, 3000));
    const cut = await cli('lint', '--target=gcp', f('cut.tar.gz'));
    expect(cut.code).toBe(2);
    expect(cut.stderr.trim().split('\n')).toHaveLength(1);
    expect(cut.stderr).toMatch(/cut\.tar\.gz: the tarball cannot be read/);
  });

  it('without --target checks every destination', async () => {
    const r = await cli('lint', '--output=json', f('azure.vhd'));
    const report = JSON.parse(r.stdout) as Report;
    expect(report.files[0]!.targets.map((x) => x.target)).toEqual([
      'aws',
      'azure',
      'gcp',
      'esxi',
      'esxi-datastore',
      'hyperv',
      'virtualbox',
      'proxmox',
      'openstack',
      'xcp-ng',
    ]);
    expect(report.files[0]!.targets.find((x) => x.target === 'azure')!.status).toBe('pass');
  });

  it('convert --target=NAME checks its own output: what does not pass is a warning, the file stays', async () => {
    rawDisk('blank21.raw', 21 * MiB, 'none');
    const blank = await cli('convert', '--target=azure', f('blank21.raw'), f('blank21.vhd'));
    expect(blank.code).toBe(0);
    expect(blank.stderr).toMatch(/^warning: lint --target=azure: warn partition-table: no MBR signature/m);
    expect(readFileSync(f('blank21.vhd')).length).toBe(21 * MiB + 512);
    const boot = await cli('convert', '--target=azure', f('odd.raw'), f('odd-again.vhd'));
    expect(boot.code).toBe(0);
    expect(boot.stderr).not.toMatch(/lint/);
  });

  it('--help describes it', async () => {
    const r = await cli('lint', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--target NAME/);
    expect(r.stdout).toMatch(/exit 0 pass, 1 a rule failed, 2/);
  });
});

describe('lintImage(target, facts): the pure API the page calls', () => {
  const facts: LintFacts = {
    file: 'disk.vhd',
    format: 'vpc',
    subformat: 'fixed',
    virtualSize: 30 * MiB,
    fileSize: 30 * MiB + 512,
    partitionTable: 'gpt',
  };

  it('judges plain facts without any file', () => {
    const r = lintImage(findTarget('azure'), facts);
    expect(r.map((x) => [x.rule, x.status])).toEqual([
      ['format', 'pass'],
      ['subformat', 'pass'],
      ['size', 'pass'],
      ['vhd-file-size', 'pass'],
      ['standalone', 'pass'],
      ['partition-table', 'pass'],
    ]);
    const dynamic = lintImage(findTarget('azure'), { ...facts, subformat: 'dynamic', virtualSize: 30 * MiB + 512 });
    expect(dynamic.filter((x) => x.status === 'fail').map((x) => x.rule)).toEqual(['subformat', 'size']);
  });
});
