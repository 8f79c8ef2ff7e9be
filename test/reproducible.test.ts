import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drivers } from '../src-core/formats/registry.ts';
import { cliOk, expectOneLineFailure } from './helpers/cli.ts';
import { qemuCompare, qemuImg, run, standardRaw, tempDir } from './helpers/sys.ts';

/**
 * -o uuid= and convert --reproducible (src-core/image/identity.ts): the same input and options
 * give byte-identical files, every id a format stores shows where the reference tools print it,
 * and without the flag the formats with ids differ between runs.
 */
const t = tempDir('diskferry-repro-');
const src = t.file('src.raw');
const other = t.file('other.raw');
const MiB = 1024 * 1024;
const UUID = '5f3c2a10-7b4e-4d21-9a8f-0c1d2e3f4a5b';

/** Every format DiskFerry writes, except luks (it needs a secret and refuses reproducible mode: tested below). */
const WRITABLE = drivers.filter((d) => d.create && d.name !== 'luks').map((d) => d.name);
/** Formats that store random ids or a creation time. */
const WITH_IDS = ['vdi', 'vpc', 'vhdx', 'vmdk'];
/** What qemu-img 7.2 can read back (cow left QEMU in 2014). */
const QEMU_READS = new Set(['raw', 'qcow2', 'qcow', 'cloop', 'vmdk', 'vdi', 'vpc', 'vhdx', 'parallels', 'qed']);

let n = 0;
/** Converts into a fresh folder under the same file name and returns that folder's files, by name. */
async function convertTo(format: string, extra: string[], from = src): Promise<{ dir: string; files: Map<string, Buffer> }> {
  const dir = t.file(`run${n++}`);
  mkdirSync(dir);
  await cliOk('convert', '-q', '-O', format, ...extra, from, path.join(dir, `disk.${format}`));
  const files = new Map(readdirSync(dir).map((f) => [f, readFileSync(path.join(dir, f))] as const));
  return { dir, files };
}

function sameFiles(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, bytes] of a) if (!b.get(name)?.equals(bytes)) return false;
  return true;
}

beforeAll(() => {
  standardRaw(src, 9 * MiB + 4096, 7);
  standardRaw(other, 9 * MiB + 4096, 8);
});
afterAll(() => t.cleanup());

describe('convert --reproducible', () => {
  it('covers every writable format', () => {
    expect(WRITABLE).toEqual(
      expect.arrayContaining(['raw', 'qcow2', 'qcow', 'cow', 'cloop', 'vmdk', 'vdi', 'vpc', 'vhdx', 'parallels', 'qed']),
    );
  });

  for (const format of WRITABLE) {
    it(`${format}: two runs give the same bytes, and the same disk`, async () => {
      const a = await convertTo(format, ['--reproducible']);
      const b = await convertTo(format, ['--reproducible']);
      expect(sameFiles(a.files, b.files)).toBe(true);
      if (QEMU_READS.has(format)) expect(qemuCompare(src, path.join(a.dir, `disk.${format}`))).toBe(0);
    });
  }

  it('formats without ids give the same bytes even without the flag', async () => {
    for (const format of WRITABLE.filter((x) => !WITH_IDS.includes(x) && x !== 'cloop')) {
      const a = await convertTo(format, []);
      const b = await convertTo(format, []);
      expect(sameFiles(a.files, b.files), format).toBe(true);
    }
  });

  for (const format of WITH_IDS) {
    it(`${format}: without the flag two runs differ (random ids); a different source gets different ids`, async () => {
      const a = await convertTo(format, []);
      const b = await convertTo(format, []);
      expect(sameFiles(a.files, b.files)).toBe(false);
      const c = await convertTo(format, ['--reproducible']);
      const d = await convertTo(format, ['--reproducible'], other);
      const [ca, da] = [c.files.get(`disk.${format}`)!, d.files.get(`disk.${format}`)!];
      // The metadata (headers, footers, descriptors) differs beyond the data: compare the ids' places.
      expect(idOf(format, ca)).not.toEqual(idOf(format, da));
    });
  }

  it('vpc: the footer time stamp is 0 (2000-01-01, the VHD epoch)', async () => {
    const { files } = await convertTo('vpc', ['--reproducible']);
    const f = files.get('disk.vpc')!;
    expect(f.readUInt32BE(f.length - 512 + 24)).toBe(0);
  });

  it('--target=gcp: two runs give the same tarball', async () => {
    // -O raw contradicts nothing (gcp writes raw); the tarball's name wants .tar.gz, which only warns.
    const a = await convertTo('raw', ['--target=gcp', '--reproducible']);
    const b = await convertTo('raw', ['--target=gcp', '--reproducible']);
    expect(sameFiles(a.files, b.files)).toBe(true);
    // The tar member's mtime (octal at 136 of the header, after gunzip) is 2000-01-01.
    const tar = run('sh', ['-c', `gzip -dc '${path.join(b.dir, 'disk.raw')}' | head -c 512 | tail -c 376 | head -c 12`]);
    expect(parseInt(tar.replace(/\0/g, '').trim(), 8)).toBe(Date.UTC(2000, 0, 1) / 1000);
  });

  it('-O ova: two runs give the same package; the disk inside is the source (tar member times 2000-01-01)', async () => {
    const a = await convertTo('ova', ['--reproducible']);
    const b = await convertTo('ova', ['--reproducible']);
    expect(sameFiles(a.files, b.files)).toBe(true);
    const ova = path.join(a.dir, 'disk.ova');
    // GNU tar lists each member's time; every one is the fixed time.
    const listing = run('tar', ['--utc', '-tvf', ova]);
    expect(listing.trim().split('\n')).toHaveLength(3);
    for (const line of listing.trim().split('\n')) expect(line).toContain('2000-01-01 00:00');
    const x = t.file('ova-x');
    mkdirSync(x);
    run('tar', ['-xf', ova, '-C', x]);
    expect(qemuCompare(src, path.join(x, 'disk-disk1.vmdk'))).toBe(0);
    // Without the flag, the disk's CID is random: two runs differ.
    const c = await convertTo('ova', []);
    const d = await convertTo('ova', []);
    expect(sameFiles(c.files, d.files)).toBe(false);
  });

  it('-O ova with two disks: reproducible, and the disks do not share a CID', async () => {
    const twice = async () => {
      const dir = t.file(`run${n++}`);
      mkdirSync(dir);
      await cliOk('convert', '-q', '--reproducible', '-O', 'ova', src, src, path.join(dir, 'vm.ova'));
      return { dir, bytes: readFileSync(path.join(dir, 'vm.ova')) };
    };
    const a = await twice();
    const b = await twice();
    expect(a.bytes.equals(b.bytes)).toBe(true);
    const cids = [...a.bytes.toString('latin1').matchAll(/\nCID=([0-9a-f]{8})/g)].map((m) => m[1]);
    expect(cids).toHaveLength(2);
    expect(cids[0]).not.toBe(cids[1]);
  });

  it('refuses LUKS (its salts and keys must be secret), in one line', async () => {
    await expectOneLineFailure(
      ['convert', '--reproducible', '--object', 'secret,id=s,data=pw', '-O', 'luks', '-o', 'key-secret=s', src, t.file('x.luks')],
      /--reproducible cannot make a LUKS image/,
    );
    await expectOneLineFailure(
      [
        'convert',
        '--reproducible',
        '--object',
        'secret,id=s,data=pw',
        '-O',
        'qcow2',
        '-o',
        'encrypt.format=luks,encrypt.key-secret=s',
        src,
        t.file('x.qcow2'),
      ],
      /--reproducible cannot make a LUKS-encrypted qcow2/,
    );
  });
});

/** The bytes each format keeps its image id in, read here without DiskFerry. */
function idOf(format: string, f: Buffer): string {
  switch (format) {
    case 'vdi':
      return f.subarray(0x188, 0x198).toString('hex');
    case 'vpc':
      return f.subarray(f.length - 512 + 68, f.length - 512 + 84).toString('hex');
    case 'vhdx':
      return f.subarray(0x10000 + 32, 0x10000 + 48).toString('hex');
    default:
      return /CID=([0-9a-f]+)/.exec(f.toString('latin1'))![1]!;
  }
}

/** RFC 4122 text → the Microsoft GUID layout (first three fields little-endian), as VDI and VHDX store it. */
function msLayout(uuid: string): string {
  const h = uuid.replace(/-/g, '');
  const le = (s: string) => s.match(/../g)!.reverse().join('');
  return le(h.slice(0, 8)) + le(h.slice(8, 12)) + le(h.slice(12, 16)) + h.slice(16);
}

describe('-o uuid=', () => {
  it('vpc: libvhdi prints it as the Identifier (the footer unique id)', async () => {
    const { dir } = await convertTo('vpc', ['-o', `uuid=${UUID}`]);
    expect(run('vhdiinfo', [path.join(dir, 'disk.vpc')])).toMatch(new RegExp(`Identifier\\s*: ${UUID}`));
  });

  it('vhdx: libvhdi prints it as the Identifier (DataWriteGuid), and the page 83 id is the same', async () => {
    const { dir, files } = await convertTo('vhdx', ['-o', `uuid=${UUID}`]);
    expect(run('vhdiinfo', [path.join(dir, 'disk.vhdx')])).toMatch(new RegExp(`Identifier\\s*: ${UUID}`));
    expect(qemuImg('check', '-f', 'vhdx', path.join(dir, 'disk.vhdx'))).toMatch(/No errors/);
    // The metadata region holds the page 83 item's 16 bytes; the DataWriteGuid is in both headers: three copies.
    const f = files.get('disk.vhdx')!;
    const needle = Buffer.from(msLayout(UUID), 'hex');
    let count = 0;
    for (let at = f.indexOf(needle); at >= 0; at = f.indexOf(needle, at + 1)) count++;
    expect(count).toBe(3);
  });

  it('vdi: the header keeps it as the creation UUID (offset 0x188, Microsoft layout)', async () => {
    const { dir, files } = await convertTo('vdi', ['-o', `uuid=${UUID}`]);
    expect(files.get('disk.vdi')!.subarray(0x188, 0x198).toString('hex')).toBe(msLayout(UUID));
    expect(qemuImg('check', path.join(dir, 'disk.vdi'))).toMatch(/No errors/);
  });

  it('vmdk: ddb.uuid.image and ddb.uuid in the descriptor; CID its first 8 hex digits (qemu-img info, vmdkinfo)', async () => {
    const { dir, files } = await convertTo('vmdk', ['-o', `uuid=${UUID}`]);
    const file = path.join(dir, 'disk.vmdk');
    const text = files.get('disk.vmdk')!.toString('latin1');
    expect(text).toContain(`ddb.uuid.image = "${UUID}"`);
    expect(text).toContain('ddb.uuid = "5f 3c 2a 10 7b 4e 4d 21-9a 8f 0c 1d 2e 3f 4a 5b"');
    const info = JSON.parse(qemuImg('info', '--output=json', file)) as { 'format-specific': { data: { cid: number } } };
    expect(info['format-specific'].data.cid).toBe(0x5f3c2a10);
    expect(run('vmdkinfo', [file])).toMatch(/Content identifier:\s*0x5f3c2a10/);
    expect(qemuCompare(src, file)).toBe(0);
  });

  it('vmdk streamOptimized carries it too', async () => {
    const { dir } = await convertTo('vmdk', ['-o', `subformat=streamOptimized,uuid=${UUID}`]);
    expect(run('vmdkinfo', [path.join(dir, 'disk.vmdk')])).toMatch(/Content identifier:\s*0x5f3c2a10/);
  });

  it('-o uuid= with --reproducible keeps the given id', async () => {
    const { dir } = await convertTo('vpc', ['--reproducible', '-o', `uuid=${UUID}`]);
    expect(run('vhdiinfo', [path.join(dir, 'disk.vpc')])).toMatch(new RegExp(`Identifier\\s*: ${UUID}`));
  });

  for (const format of WITH_IDS) {
    it(`${format}: anything but a UUID is a one-line error`, async () => {
      await expectOneLineFailure(
        ['convert', '-O', format, '-o', 'uuid=not-a-uuid', src, t.file(`bad.${format}`)],
        /invalid uuid "not-a-uuid"/,
      );
      await expectOneLineFailure(
        ['convert', '-O', format, '-o', 'uuid=00000000-0000-0000-0000-000000000000', src, t.file(`nil.${format}`)],
        /nil UUID/,
      );
    });
  }

  it('formats without an id refuse the option by name', async () => {
    await expectOneLineFailure(['convert', '-O', 'qcow2', '-o', `uuid=${UUID}`, src, t.file('x.qcow2')], /invalid option "uuid"/);
  });

  it('-o help lists it for the formats that take it', async () => {
    for (const format of WITH_IDS) expect(await cliOk('convert', '-O', format, '-o', 'help', src, t.file('h'))).toMatch(/uuid=<string>/);
  });
});
