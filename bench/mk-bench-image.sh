#!/usr/bin/env bash
# Builds the benchmark disk once: a 4 GiB ext4 file system holding about 1.2 GB of this
# machine's /usr, saved as a monolithicSparse VMDK (the seed's `qemu-img convert -c -O qcow2
# vm.vmdk` case). Follows ../shared/bench/mk-bench-image.sh. Needs mkfs.ext4 (e2fsprogs, whose
# -d copies a directory into the new file system without mounting) and qemu-img.
# Usage: mk-bench-image.sh DIR  → DIR/vm.vmdk, DIR/fs.raw, DIR/vm.qcow2, DIR/sparse100g.qcow2
set -euo pipefail
dir=${1:?usage: mk-bench-image.sh DIR}
mkdir -p "$dir"; cd "$dir"
if [ ! -s vm.vmdk ] || [ ! -s fs.raw ]; then
  rm -rf root vm.vmdk fs.raw && mkdir root
  cp -a /usr/share root/share; cp -a /usr/bin root/bin
  [ -d /usr/lib/python3.11 ] && cp -a /usr/lib/python3.11 root/py
  [ -d /usr/lib/gcc ] && cp -a /usr/lib/gcc root/gcc
  truncate -s 4G fs.raw.tmp
  mkfs.ext4 -q -F -L bench -d root fs.raw.tmp
  rm -rf root
  qemu-img convert -O vmdk fs.raw.tmp vm.vmdk.tmp
  mv vm.vmdk.tmp vm.vmdk; mv fs.raw.tmp fs.raw
fi
# The same disk as qcow2 (a fallback source while no vmdk driver is registered).
[ -s vm.qcow2 ] || { qemu-img convert -O qcow2 fs.raw vm.qcow2.tmp && mv vm.qcow2.tmp vm.qcow2; }
# A sparse 100 GiB qcow2 for `info`.
[ -s sparse100g.qcow2 ] || qemu-img create -q -f qcow2 sparse100g.qcow2 100G
ls -l .
