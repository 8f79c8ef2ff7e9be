/*
 * Appended to zlib's deflate.c by build.sh, replacing its scalar slide_hash (renamed
 * slide_hash_scalar there). Why: with a 4 KiB window and memLevel 9, deflate slides its
 * 64 Ki-entry head table and 4 Ki-entry prev table after every 4 KiB of input, and that loop
 * dominates the run time (see docs/performance.md). The operation, "m >= wsize ? m - wsize : NIL" with
 * NIL = 0, is exactly an unsigned saturating 16-bit subtract, eight lanes at a time.
 * Both table lengths are powers of two >= 256, so they are multiples of 8 entries.
 */
#include <wasm_simd128.h>

local void slide_table(Posf *p, unsigned n, uInt wsize) {
    v128_t w = wasm_i16x8_splat((short)wsize);
    for (unsigned i = 0; i < n; i += 8) {
        v128_t v = wasm_v128_load(p + i);
        wasm_v128_store(p + i, wasm_u16x8_sub_sat(v, w));
    }
}

local void slide_hash(deflate_state *s) {
    slide_table(s->head, s->hash_size, s->w_size);
#ifndef FASTEST
    slide_table(s->prev, s->w_size, s->w_size);
#endif
}
