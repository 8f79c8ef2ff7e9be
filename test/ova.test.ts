import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuImg, run, standardRaw, tempDir } from './helpers/sys.ts';
import { buildStreamVmdk } from './helpers/vmdkStream.ts';

// An OVA is a tar of an .ovf and its disks. We read the disks as byte ranges of the tar, without
// unpacking: converting the OVA must give exactly the bytes of the disk inside it.
const t = tempDir('diskferry-ova-');
const raw1 = t.file('one.raw');
const raw2 = t.file('two.raw');

function ovf(disks: { href: string; id: string; capacity: number }[]): string {
  const files = disks.map((d) => `    <File ovf:href="${d.href}" ovf:id="${d.id}" ovf:size="1"/>`).join('\n');
  const section = disks
    .map(
      (d, i) =>
        `    <Disk ovf:capacity="${d.capacity}" ovf:diskId="vmdisk${i + 1}" ovf:fileRef="${d.id}" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>`,
    )
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
${files}
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
${section}
  </DiskSection>
</Envelope>
`;
}

beforeAll(() => {
  standardRaw(raw1, 9 * 1024 * 1024, 41);
  standardRaw(raw2, 5 * 1024 * 1024 + 512, 42);
  // Disk 1: a VMware-layout stream file; disk 2: one qemu-img made. The OVF lists disk 2 first
  // in <References> but second in <DiskSection>, which decides the order.
  writeFileSync(t.file('app-disk1.vmdk'), buildStreamVmdk(readFileSync(raw1)));
  qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw2, t.file('app-disk2.vmdk'));
  const desc = ovf([
    { href: 'app-disk2.vmdk', id: 'file2', capacity: 5 * 1024 * 1024 + 512 },
    { href: 'app-disk1.vmdk', id: 'file1', capacity: 9 * 1024 * 1024 },
  ])
    .replace(/(<Disk [^>]*vmdisk1[^>]*fileRef=")file2/, '$1file1')
    .replace(/(<Disk [^>]*vmdisk2[^>]*fileRef=")file1/, '$1file2');
  writeFileSync(t.file('app.ovf'), desc);
  writeFileSync(t.file('app.mf'), 'SHA256(app.ovf)= 00\n');
  run('tar', ['--format=ustar', '-cf', t.file('app.ova'), '-C', t.dir, 'app.ovf', 'app-disk2.vmdk', 'app-disk1.vmdk', 'app.mf']);
});
afterAll(() => t.cleanup());

describe('OVA input', () => {
  it('converts the first disk (OVF order) to the same bytes as the disk', async () => {
    const out = t.file('first.raw');
    await cliOk('convert', '-O', 'raw', t.file('app.ova'), out);
    expect(Buffer.compare(readFileSync(out), readFileSync(raw1))).toBe(0);
    // And qemu-img agrees about the disk itself.
    qemuImg('convert', '-O', 'raw', t.file('app-disk1.vmdk'), t.file('first.qemu.raw'));
    expect(Buffer.compare(readFileSync(out), readFileSync(t.file('first.qemu.raw')))).toBe(0);
  });

  it('--disk picks a disk by number or by member name', async () => {
    await cliOk('convert', '--disk', '2', '-O', 'raw', t.file('app.ova'), t.file('second.raw'));
    expect(Buffer.compare(readFileSync(t.file('second.raw')), readFileSync(raw2))).toBe(0);
    await cliOk('convert', '--disk', 'app-disk2.vmdk', '-O', 'qcow2', t.file('app.ova'), t.file('second.qcow2'));
    expect(run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw2, t.file('second.qcow2')])).toContain('identical');
    const r = await cli('convert', '--disk', '3', '-O', 'raw', t.file('app.ova'), t.file('third.raw'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('2 disk');
    expect(existsSync(t.file('third.raw'))).toBe(false);
  });

  it('info lists the disks', async () => {
    const info = JSON.parse(await cliOk('info', '--output=json', t.file('app.ova')));
    expect(info.format).toBe('ova');
    expect(info['virtual-size']).toBe(9 * 1024 * 1024);
    const data = info['format-specific'].data;
    expect(data.disks.map((d: { name: string }) => d.name)).toEqual(['app-disk1.vmdk', 'app-disk2.vmdk']);
    expect(data['disk-format']).toBe('vmdk');
    expect(data['disk-info']['format-specific'].data['create-type']).toBe('streamOptimized');
    const human = await cliOk('info', t.file('app.ova'));
    expect(human).toContain('app-disk2.vmdk');
  });

  it('a multi-file VMDK inside the OVA resolves its extent among the members', async () => {
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', raw2, t.file('flat.vmdk'));
    writeFileSync(t.file('flat.ovf'), ovf([{ href: 'flat.vmdk', id: 'f1', capacity: 5 * 1024 * 1024 + 512 }]));
    run('tar', ['--format=ustar', '-cf', t.file('flat.ova'), '-C', t.dir, 'flat.ovf', 'flat.vmdk', 'flat-flat.vmdk']);
    await cliOk('convert', '-O', 'raw', t.file('flat.ova'), t.file('flat.raw'));
    expect(Buffer.compare(readFileSync(t.file('flat.raw')), readFileSync(raw2))).toBe(0);
    // Without its extent the disk cannot open, and the message names the missing member.
    run('tar', ['--format=ustar', '-cf', t.file('noflat.ova'), '-C', t.dir, 'flat.ovf', 'flat.vmdk']);
    const r = await cli('convert', '-O', 'raw', t.file('noflat.ova'), t.file('noflat.raw'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('flat-flat.vmdk');
  });

  it('a gzip-compressed disk (ovf:compression) is refused, not read as raw', async () => {
    run('sh', ['-c', `gzip -c '${t.file('app-disk2.vmdk')}' > '${t.file('gz.vmdk')}'`]);
    writeFileSync(
      t.file('gz.ovf'),
      ovf([{ href: 'gz.vmdk', id: 'f1', capacity: 1 }]).replace('ovf:size="1"', 'ovf:size="1" ovf:compression="gzip"'),
    );
    run('tar', ['--format=ustar', '-cf', t.file('gz.ova'), '-C', t.dir, 'gz.ovf', 'gz.vmdk']);
    const r = await cli('convert', '-O', 'raw', t.file('gz.ova'), t.file('gz.raw'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/gz\.vmdk.*gzip/);
    expect(existsSync(t.file('gz.raw'))).toBe(false);
  });

  it('a tar with long member names (GNU and pax) and no OVF still opens its disk', async () => {
    const long = 'a-very-long-directory-name-for-testing-the-tar-reader/'.repeat(2) + 'disk.vmdk';
    run('mkdir', ['-p', t.file(long.slice(0, long.lastIndexOf('/')))]);
    writeFileSync(t.file(long), readFileSync(t.file('app-disk2.vmdk')));
    for (const fmt of ['gnu', 'pax']) {
      const ova = t.file(`long-${fmt}.ova`);
      run('tar', [`--format=${fmt}`, '-cf', ova, '-C', t.dir, long]);
      const out = t.file(`long-${fmt}.raw`);
      await cliOk('convert', '-f', 'ova', '-O', 'raw', ova, out);
      expect(Buffer.compare(readFileSync(out), readFileSync(raw2))).toBe(0);
    }
  });
});
