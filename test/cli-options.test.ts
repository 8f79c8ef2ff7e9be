import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandHelp, parseCommandLine } from '../cli/parse.ts';
import { COMMANDS, type CommandName } from '../cli/spec.ts';
import { cli } from './helpers/cli.ts';
import { qemuImg, runStatus, standardRaw, tempDir } from './helpers/sys.ts';

// One parser for every subcommand: qemu-img 10.1's long and short spellings, 7.2's renamed
// letters, getopt's rules; --help per subcommand; exit codes of a bad command line as qemu-img's.
const t = tempDir();
const raw = t.file('src.raw');
const qcow = t.file('src.qcow2');
beforeAll(() => {
  standardRaw(raw, 6 << 20, 2);
  qemuImg('convert', '-O', 'qcow2', raw, qcow);
});
afterAll(() => t.cleanup());

const parse = (...argv: string[]) => parseCommandLine(argv);

describe('parser', () => {
  it('long and short spellings give the same command object', () => {
    const a = parse(
      'convert',
      '-f',
      'raw',
      '-O',
      'qcow2',
      '-c',
      '-p',
      '-q',
      '-n',
      '-S',
      '0',
      '-r',
      '1M',
      '-o',
      'cluster_size=4k',
      '-l',
      'snap',
      'a',
      'b',
    );
    const b = parse(
      'convert',
      '--source-format=raw',
      '--target-format',
      'qcow2',
      '--compress',
      '--progress',
      '--quiet',
      '--no-create',
      '--sparse-size=0',
      '--rate-limit',
      '1M',
      '--target-format-options',
      'cluster_size=4k',
      '--snapshot=snap',
      'a',
      'b',
    );
    expect(a).toEqual(b);
    if (a.name !== 'convert') throw new Error('not convert');
    expect(a.opts).toMatchObject({
      format: 'raw',
      targetFormat: 'qcow2',
      compress: true,
      progress: true,
      quiet: true,
      noCreate: true,
      sparseSize: '0',
      rateLimit: '1M',
      options: ['cluster_size=4k'],
      snapshot: 'snap',
    });
    expect(a.args).toEqual(['a', 'b']);
  });

  it("10.1's and 7.2's letters: convert -b and -B are the backing file, create -B and -F its format", () => {
    const c1 = parse('convert', '-b', 'base.qcow2', '-F', 'qcow2', 'a', 'b');
    const c2 = parse('convert', '-B', 'base.qcow2', '-F', 'qcow2', 'a', 'b');
    const c3 = parse('convert', '--backing=base.qcow2', '--backing-format=qcow2', 'a', 'b');
    expect(c1).toEqual(c2);
    expect(c1).toEqual(c3);
    const k1 = parse('create', '-f', 'qcow2', '-b', 'base', '-F', 'raw', 'x', '1G');
    const k2 = parse('create', '-f', 'qcow2', '-b', 'base', '-B', 'raw', 'x', '1G');
    const k3 = parse('create', '--format=qcow2', '--backing', 'base', '--backing-format', 'raw', 'x', '1G');
    expect(k1).toEqual(k2);
    expect(k1).toEqual(k3);
    expect(k1.name === 'create' && k1.opts.backingFormat).toBe('raw');
    const r1 = parse('rebase', '-b', 'n', '-F', 'qcow2', '-u', 'x');
    const r2 = parse('rebase', '--backing', 'n', '--backing-format', 'qcow2', '--backing-unsafe', 'x');
    expect(r1).toEqual(r2);
  });

  it("getopt's rules: clusters, attached values, options after operands, --, unique prefixes, negative sizes", () => {
    expect(parse('convert', '-pcOqcow2', 'a', 'b')).toEqual(parse('convert', '-p', '-c', '-O', 'qcow2', 'a', 'b'));
    expect(parse('convert', 'a', '-O', 'vmdk', 'b', '-p')).toEqual(parse('convert', '-p', '-O', 'vmdk', 'a', 'b'));
    expect(parse('info', '--', '-weird-name')).toMatchObject({ args: ['-weird-name'] });
    expect(parse('info', '--back', 'x')).toEqual(parse('info', '--backing-chain', 'x'));
    expect(parse('resize', 'x.qcow2', '-1G')).toMatchObject({ args: ['x.qcow2', '-1G'] });
    expect(parse('resize', '--shrink', 'x.qcow2', '+1G')).toMatchObject({ opts: { shrink: true }, args: ['x.qcow2', '+1G'] });
    const obj = parse('convert', '--object', 'secret,id=a,data=1', '--object=secret,id=b,data=2', 'x', 'y');
    expect(obj.name === 'convert' && obj.opts.object).toEqual(['secret,id=a,data=1', 'secret,id=b,data=2']);
  });

  it('rejects what getopt rejects, naming the option', () => {
    expect(() => parse('info', '-Z', 'x')).toThrow(/invalid option -- 'Z'/);
    expect(() => parse('info', '--nonsense', 'x')).toThrow(/unrecognized option '--nonsense'/);
    expect(() => parse('convert', '-O')).toThrow(/requires an argument -- 'O'/);
    expect(() => parse('convert', '--compress=yes', 'a', 'b')).toThrow(/doesn't allow an argument/);
    // --target is DiskFerry's own (destinations); the --target-… prefixes stay ambiguous as in qemu-img.
    expect(() => parse('convert', '--target-', 'raw', 'a', 'b')).toThrow(/ambiguous/);
    expect(parse('convert', '--target', 'azure', 'a', 'b')).toMatchObject({ opts: { target: 'azure' } });
    expect(() => parse('frobnicate')).toThrow(/unknown command/);
  });

  it('every subcommand has --help and -h, listing each of its options', async () => {
    for (const name of Object.keys(COMMANDS) as CommandName[]) {
      expect(parse(name, '--help')).toEqual({ name: 'help', command: name });
      const r = await cli(name, '-h');
      expect(r.code, name).toBe(0);
      expect(r.stdout).toBe(commandHelp(name));
      expect(r.stdout.startsWith(`Usage:\n  diskferry ${name} `)).toBe(true);
      for (const def of Object.values(COMMANDS[name].options)) {
        const long = typeof def.long === 'string' ? def.long : def.long?.[0];
        if (long) expect(r.stdout, `${name} --${long}`).toContain(`--${long}`);
      }
    }
  });

  it('--version', async () => {
    const r = await cli('--version');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^diskferry version \d+\.\d+\.\d+/);
  });
});

describe('bad command lines exit as qemu-img does', () => {
  const cases: [string, string[]][] = [
    ['info without a file', ['info']],
    ['info with two files', ['info', 'SRC', 'SRC']],
    ['an unknown option', ['info', '--frobnicate', 'SRC']],
    ['--output=xml', ['info', '--output=xml', 'SRC']],
    ['check -r with a bad mode', ['check', '-r', 'some', 'SRC']],
    ['compare with one file', ['compare', 'SRC']],
    ['convert -n with -o', ['convert', '-n', '-o', 'cluster_size=4k', 'SRC', 'X']],
    ['convert --target-is-zero without -n', ['convert', '--target-is-zero', 'SRC', 'X']],
    ['convert -S not a multiple of 512', ['convert', '-S', '1000', 'SRC', 'X']],
    ['rebase without -b or -u', ['rebase', 'SRC']],
    ['amend without -o', ['amend', 'SRC']],
    ['resize without a size', ['resize', 'SRC']],
    ['resize shrinking without --shrink', ['resize', 'SRC', '-1M']],
    ['dd without of=', ['dd', 'if=SRC']],
    ['dd with an unknown operand', ['dd', 'if=SRC', 'of=X', 'conv=notrunc']],
    ['create without a size or backing file', ['create', '-f', 'qcow2', 'NEW']],
    ['compare of a missing file', ['compare', 'SRC', 'MISSING']],
  ];
  for (const [what, args] of cases) {
    it(what, async () => {
      const sub = (a: string) =>
        a === 'SRC'
          ? qcow
          : a === 'MISSING'
            ? t.file('missing.qcow2')
            : a === 'X'
              ? t.file('x.out')
              : a === 'NEW'
                ? t.file('new.qcow2')
                : a.replace('SRC', qcow).replace('=X', `=${t.file('x.out')}`);
      const argv = args.map(sub);
      const q = runStatus('qemu-img', argv);
      const r = await cli(...argv);
      expect(r.code, `${what}: qemu-img said ${q.stderr}`).toBe(q.status);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stdout).toBe('');
    });
  }
});

describe('-q', () => {
  it('silences compare, resize, create, check and convert -p, errors still print', async () => {
    const img = t.file('q.qcow2');
    for (const argv of [
      ['create', '-q', '-f', 'qcow2', img, '16M'],
      ['resize', '-q', img, '+1M'],
      ['check', '-q', img],
      ['compare', '-q', qcow, qcow],
      ['convert', '-q', '-p', '-O', 'raw', qcow, t.file('q.raw')],
    ]) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.stdout + r.stderr, argv.join(' ')).toBe('');
      expect(
        runStatus(
          'qemu-img',
          argv.map((a) => (a === t.file('q.raw') ? t.file('qq.raw') : a === img ? img : a)),
        ).stdout,
      ).toBe('');
    }
    const bad = await cli('check', '-q', path.join(t.dir, 'nope.qcow2'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('nope.qcow2');
  });
});
