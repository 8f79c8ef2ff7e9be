/*
 * DiskFerry's entry points into stock zlib, built to WebAssembly by build.sh.
 * One z_stream is set up once with QEMU's qcow2 settings (block/qcow2-threads.c
 * qcow2_zlib_compress: deflateInit2(level 6, Z_DEFLATED, -12, memLevel 9, Z_DEFAULT_STRATEGY))
 * and reset between clusters, so every cluster is an independent raw deflate stream whose
 * back-references never reach further than 4 KiB.
 */
#include <stdint.h>
#include <stdlib.h>
#include "zlib.h"

static z_stream strm;
static int ready = 0;
static int cur_level, cur_bits, cur_mem;
/* zlib's match-search limits (deflateTune); chain 0 keeps the level's own. */
static int t_good, t_lazy, t_nice, t_chain;

/*
 * Returns 0 on success, a zlib error code otherwise. good/lazy/nice/chain are deflateTune's
 * arguments, or all 0 for the level's own table (then the output is stock zlib's, byte for byte).
 */
__attribute__((export_name("df_deflate_init")))
int df_deflate_init(int level, int window_bits, int mem_level, int good, int lazy, int nice, int chain) {
    t_good = good; t_lazy = lazy; t_nice = nice; t_chain = chain;
    if (ready && level == cur_level && window_bits == cur_bits && mem_level == cur_mem) return 0;
    if (ready) { deflateEnd(&strm); ready = 0; }
    strm.zalloc = Z_NULL; strm.zfree = Z_NULL; strm.opaque = Z_NULL;
    int rc = deflateInit2(&strm, level, Z_DEFLATED, window_bits, mem_level, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK) return rc;
    cur_level = level; cur_bits = window_bits; cur_mem = mem_level; ready = 1;
    return 0;
}

/*
 * Compresses in[0..in_len) into out[0..out_cap) as one complete stream.
 * Returns the compressed length, -1 when it does not fit in out_cap (QEMU then stores the
 * cluster uncompressed), or -2 on any other failure.
 */
__attribute__((export_name("df_deflate")))
int df_deflate(const uint8_t *in, int in_len, uint8_t *out, int out_cap) {
    if (!ready) return -2;
    if (deflateReset(&strm) != Z_OK) return -2;
    /* deflateReset reloads the level's table, so the tuning is applied after every reset. */
    if (t_chain && deflateTune(&strm, t_good, t_lazy, t_nice, t_chain) != Z_OK) return -2;
    strm.next_in = (Bytef *)in; strm.avail_in = (uInt)in_len;
    strm.next_out = out; strm.avail_out = (uInt)out_cap;
    int rc = deflate(&strm, Z_FINISH);
    if (rc == Z_STREAM_END) return (int)(out_cap - strm.avail_out);
    return rc == Z_OK || rc == Z_BUF_ERROR ? -1 : -2;
}

__attribute__((export_name("df_malloc"))) void *df_malloc(size_t n) { return malloc(n); }
__attribute__((export_name("df_free"))) void df_free(void *p) { free(p); }
