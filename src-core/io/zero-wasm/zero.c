/*
 * zero.wasm: how many leading bytes of a buffer are zero, 64 at a time with SIMD (v128 loads,
 * any_true). Built by build.sh; the bytes live in ../zeroTest.ts. Memory is the caller's
 * (imported as env.memory): the caller copies a piece of its data in and asks about it.
 */
#include <stdint.h>
#include <wasm_simd128.h>

__attribute__((export_name("zero_prefix")))
uint32_t zero_prefix(const uint8_t *p, uint32_t n) {
  uint32_t i = 0;
  for (; i + 64 <= n; i += 64) {
    v128_t a = wasm_v128_load(p + i);
    v128_t b = wasm_v128_load(p + i + 16);
    v128_t c = wasm_v128_load(p + i + 32);
    v128_t d = wasm_v128_load(p + i + 48);
    if (wasm_v128_any_true(wasm_v128_or(wasm_v128_or(a, b), wasm_v128_or(c, d)))) return i;
  }
  return i;
}
