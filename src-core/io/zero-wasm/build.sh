#!/usr/bin/env bash
# Rebuilds zero.wasm from zero.c and prints it as the byte list ../zeroTest.ts embeds.
# Toolchain (Debian): apt-get install clang-14 lld-14. Not run by npm: the bytes are committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"${CC:-clang-14}" --target=wasm32 -O3 -msimd128 -nostdlib -fuse-ld=lld \
  -Wl,--no-entry -Wl,--strip-all -Wl,--import-memory -o "$out/zero.wasm" "$here/zero.c"
node -e "console.log(JSON.stringify([...require('fs').readFileSync(process.argv[1])]))" "$out/zero.wasm"
