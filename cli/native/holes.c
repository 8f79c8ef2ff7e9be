/*
 * lseek(SEEK_DATA / SEEK_HOLE) for the CLI: Node's fs has no lseek, and without it a sparse
 * raw file has to be read whole (5 GiB of holes: ~1.5 s) where qemu-img asks the file system
 * where the data is (~0.02 s). Built by scripts/build-native.mjs when a C compiler and Node's
 * headers are there; cli/holes.ts falls back to reading everything when it is not.
 *
 *   seek(fd, offset, wantData) -> the next data (or hole) offset at or after `offset`,
 *                                 -1 when there is none (ENXIO: only holes up to the end),
 *                                 throws on any other error (EINVAL: the file system cannot tell).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>

static napi_value seek(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, NULL, "seek(fd, offset, wantData)");
    return NULL;
  }
  int32_t fd;
  int64_t offset;
  bool wantData;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_bool(env, argv[2], &wantData) != napi_ok) {
    napi_throw_type_error(env, NULL, "seek(fd: number, offset: number, wantData: boolean)");
    return NULL;
  }
  off_t r = lseek(fd, (off_t)offset, wantData ? SEEK_DATA : SEEK_HOLE);
  if (r < 0 && errno != ENXIO) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  napi_value out;
  napi_create_int64(env, r < 0 ? -1 : (int64_t)r, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "seek", NAPI_AUTO_LENGTH, seek, NULL, &fn);
  napi_set_named_property(env, exports, "seek", fn);
  return exports;
}
