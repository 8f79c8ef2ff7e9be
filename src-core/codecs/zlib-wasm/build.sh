#!/usr/bin/env bash
# Rebuilds zlib.wasm: stock zlib 1.2.13 (Debian bookworm's source package, the zlib qemu-img
# links against, so compressed clusters come out byte-identical to qemu-img's) compiled to
# wasm32 with a SIMD slide_hash. The module has no imports: WebAssembly.instantiate(bytes, {}).
#
# Toolchain (Debian): apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32
# Sources (Debian):  a deb-src line for bookworm main, then `apt-get source zlib`.
# Usage: build.sh [ZLIB_SOURCE_DIR]   (default: fetch with apt-get source into a temp dir)
# Not run by npm: the built zlib.wasm is committed, so `npm ci` needs no compiler.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$src" ]; then
  (cd "$work" && apt-get source zlib >/dev/null)
  src=$(ls -d "$work"/zlib-1.*/ | head -1)
fi
grep -q 'define ZLIB_VERSION "1.2.13"' "$src/zlib.h" || echo "warning: expected zlib 1.2.13 (see VERSION)" >&2

b="$work/build"; mkdir -p "$b"
# deflate.c with longest_match comparing 8 bytes at a time (longest_match_u64.patch, on zlib's
# own UNALIGNED_OK path), its scalar slide_hash renamed out of the way and the SIMD one appended.
# Neither changes a single output byte; test/deflate-window.test.ts checks against stock zlib.
cp "$src/deflate.c" "$b/deflate.c"
patch -s -d "$b" -p1 < "$here/longest_match_u64.patch"
sed -i 's/^local void slide_hash(s)$/local void slide_hash_scalar(s)/' "$b/deflate.c"
grep -q 'slide_hash_scalar(s)' "$b/deflate.c" || { echo "deflate.c: slide_hash not found" >&2; exit 1; }
cat "$here/slide_hash_simd.c" >> "$b/deflate.c"

CC=${CC:-clang-14}
CFLAGS=(--target=wasm32-wasi -O3 -msimd128 -mbulk-memory -DNDEBUG -DNO_GZIP -DHAVE_HIDDEN -DUNALIGNED_OK
        -Wno-unused-function -I"$src")
objs=()
for f in "$b/deflate.c" "$src/trees.c" "$src/zutil.c" "$src/adler32.c" "$src/crc32.c" "$here/deflate_glue.c"; do
  o="$b/$(basename "$f" .c).o"
  "$CC" "${CFLAGS[@]}" -c "$f" -o "$o"
  objs+=("$o")
done
"$CC" --target=wasm32-wasi -O3 -nostartfiles -Wl,--no-entry -Wl,--strip-all -Wl,--gc-sections \
  -Wl,-z,stack-size=65536 -Wl,--initial-memory=1179648 -fuse-ld=lld \
  -o "$here/zlib.wasm" "${objs[@]}"
ls -l "$here/zlib.wasm"
