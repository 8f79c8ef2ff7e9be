/*
 * DiskFerry's entry points into libdeflate's compressor, built to WebAssembly by build.sh.
 * One compressor is kept per level and reused: libdeflate compresses a whole buffer per call,
 * so every qcow2 cluster or VMDK grain is an independent stream, and there is no state to reset.
 */
#include <stdint.h>
#include <stdlib.h>
#include "libdeflate.h"

/* Read by the patched match finders (max_distance.patch): candidates this far back or further are out of the window. */
uint32_t df_max_dist = 32768;

static struct libdeflate_compressor *compressor = 0;
static int compressor_level = -1;

/*
 * Chooses the level and the window for the next calls: max_dist is the window size (4096 for
 * QEMU's qcow2 clusters, 32768 for zlib streams). Returns 0, or -2 when out of memory.
 */
__attribute__((export_name("df_init")))
int df_init(int level, int max_dist) {
    df_max_dist = (uint32_t)max_dist;
    if (compressor && level == compressor_level) return 0;
    if (compressor) libdeflate_free_compressor(compressor);
    compressor = libdeflate_alloc_compressor(level);
    compressor_level = compressor ? level : -1;
    return compressor ? 0 : -2;
}

/*
 * Compresses in[0..in_len) into out[0..out_cap) as one complete stream: raw deflate (RFC 1951)
 * when zlib is 0, zlib-wrapped (RFC 1950, with the Adler-32) otherwise. Returns the length, or
 * -1 when it does not fit in out_cap (the caller then stores the data as it is, as QEMU does).
 */
__attribute__((export_name("df_deflate")))
int df_deflate(const uint8_t *in, int in_len, uint8_t *out, int out_cap, int zlib) {
    if (!compressor) return -2;
    size_t n = zlib ? libdeflate_zlib_compress(compressor, in, (size_t)in_len, out, (size_t)out_cap)
                    : libdeflate_deflate_compress(compressor, in, (size_t)in_len, out, (size_t)out_cap);
    return n ? (int)n : -1;
}

__attribute__((export_name("df_malloc"))) void *df_malloc(size_t n) { return malloc(n); }
__attribute__((export_name("df_free"))) void df_free(void *p) { free(p); }
