#!/usr/bin/env bash
# Rebuilds deflate.wasm: libdeflate 1.14's compressor (Debian bookworm's source package) with
# a run-time match-distance limit (max_distance.patch), compiled to wasm32. The module has no
# imports: WebAssembly.instantiate(bytes, {}).
#
# Toolchain (Debian): apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32
# Sources (Debian):  a deb-src line for bookworm main, then `apt-get source libdeflate`.
# Usage: build.sh [LIBDEFLATE_SOURCE_DIR]   (default: fetch with apt-get source into a temp dir)
# Not run by npm: the built deflate.wasm is committed, so `npm ci` needs no compiler.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$src" ]; then
  (cd "$work" && apt-get source libdeflate >/dev/null)
  src=$(ls -d "$work"/libdeflate-1.*/ | head -1)
fi
grep -q 'LIBDEFLATE_VERSION_STRING.*"1.14"' "$src/libdeflate.h" || echo "warning: expected libdeflate 1.14 (see VERSION)" >&2

b="$work/build"
cp -r "$src" "$b"
patch -s -d "$b" -p1 < "$here/max_distance.patch"

CC=${CC:-clang-14}
CFLAGS=(--target=wasm32-wasi -O3 -msimd128 -mbulk-memory -DNDEBUG -I"$b")
objs=()
for f in "$b/lib/deflate_compress.c" "$b/lib/zlib_compress.c" "$b/lib/adler32.c" "$b/lib/utils.c" "$here/glue.c"; do
  o="$b/$(basename "$f" .c).o"
  "$CC" "${CFLAGS[@]}" -c "$f" -o "$o"
  objs+=("$o")
done
"$CC" --target=wasm32-wasi -O3 -nostartfiles -Wl,--no-entry -Wl,--strip-all -Wl,--gc-sections \
  -Wl,-z,stack-size=65536 -Wl,--initial-memory=4194304 -fuse-ld=lld \
  -o "$here/deflate.wasm" "${objs[@]}"
ls -l "$here/deflate.wasm"
