import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliOk } from './helpers/cli.ts';
import { qemuImg, qemuIo, standardRaw, tempDir } from './helpers/sys.ts';

// map and measure print what qemu-img prints for the same qcow2 images.
const t = tempDir();
const raw = t.file('src.raw');

beforeAll(() => {
  standardRaw(raw, 20 << 20, 9);
  qemuImg('convert', '-O', 'qcow2', raw, t.file('plain.qcow2'));
  qemuImg('convert', '-c', '-O', 'qcow2', raw, t.file('compressed.qcow2'));
  qemuImg('convert', '-O', 'qcow2', raw, t.file('base.qcow2'));
  qemuImg('create', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', t.file('top.qcow2'));
  qemuIo(
    '-c',
    'write -P 0x10 0 256k',
    '-c',
    'write -z 1M 64k',
    '-c',
    'write -z -u 2M 64k',
    '-c',
    'write -P 3 6M 64k',
    '-c',
    'write -z 6M 64k',
    t.file('top.qcow2'),
  );
});
afterAll(() => t.cleanup());

describe('map --output=json', () => {
  it.each(['plain', 'compressed', 'top'])('%s', async (name) => {
    const f = t.file(`${name}.qcow2`);
    const ours = JSON.parse(await cliOk('map', '--output=json', f));
    const theirs = JSON.parse(qemuImg('map', '--output=json', f));
    expect(ours).toEqual(theirs);
  });
});

describe('measure --output=json', () => {
  const cases: [string, string[]][] = [
    ['plain', ['-O', 'qcow2']],
    ['plain', ['-O', 'qcow2', '-o', 'cluster_size=4k']],
    ['compressed', ['-O', 'qcow2', '-o', 'cluster_size=2M,refcount_bits=1']],
    ['top', ['-O', 'qcow2']],
    ['top', ['-O', 'qcow2', '-o', 'compat=0.10']],
    ['top', ['-O', 'raw']],
  ];
  it.each(cases)('%s %j', async (name, args) => {
    const f = t.file(`${name}.qcow2`);
    const ours = JSON.parse(await cliOk('measure', '--output=json', ...args, f));
    const theirs = JSON.parse(qemuImg('measure', '--output=json', ...args, f));
    expect(ours).toEqual(theirs);
  });
});
