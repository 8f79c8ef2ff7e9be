#!/usr/bin/env node
// Makes sure the system tools the tests use as oracles are installed. As root (CI, a fresh
// Debian machine) it installs what is missing through apt; otherwise it stops with the exact
// command to run. Python modules are checked with Debian's /usr/bin/python3, which is where
// the python3-* packages install. Each entry: a command to look for, and the Debian package that provides it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const NEEDS = [
  ['qemu-img', 'qemu-utils'],
  ['qemu-io', 'qemu-utils'],
  ['chromium', 'chromium'],
  ['firefox-esr', 'firefox-esr'],
  ['create_compressed_fs', 'cloop-utils'],
  ['vmdkinfo', 'libvmdk-utils'],
  // vhdiinfo reads VHD and VHDX alike (Debian has no libvhdx-utils).
  ['vhdiinfo', 'libvhdi-utils'],
  ['qcowinfo', 'libqcow-utils'],
  ['mkfs.ext4', 'e2fsprogs'],
  ['xz', 'xz-utils'],
  ['zstd', 'zstd'],
  ['bzip2', 'bzip2'],
  ['zip', 'zip'],
  ['dmg2img', 'dmg2img'],
  ['/usr/bin/time', 'time'],
];
const PY_MODULES = [
  ['pyvmdk', 'python3-libvmdk'],
  ['pyvhdi', 'python3-libvhdi'],
  ['VMDKstream', 'python3-vmdkstream'],
];

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const hasPy = (mod) => spawnSync('/usr/bin/python3', ['-c', `import ${mod}`], { stdio: 'ignore' }).status === 0;

const missing = new Set();
for (const [cmd, pkg] of NEEDS) if (!has(cmd)) missing.add(pkg);
for (const [mod, pkg] of PY_MODULES) if (!existsSync('/usr/bin/python3') || !hasPy(mod)) missing.add(pkg);

if (missing.size === 0) process.exit(0);
const pkgs = [...missing].sort();
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot) {
  console.error(
    `The tests need these Debian packages: ${pkgs.join(' ')}\nInstall them with:\n  sudo apt-get update && sudo apt-get install -y ${pkgs.join(' ')}`,
  );
  process.exit(1);
}
console.log(`Installing test dependencies: ${pkgs.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
