/*
 * What cairn's Node-API addons share (the POSIX addon in lib/native, mount/native/lowlevel.c):
 * CHECK a napi call, and on failure throw its message as an Error unless an
 * exception is already pending; and the bytes of a TypedArray argument.
 */
#ifndef CAIRN_NAPI_CHECK_H
#define CAIRN_NAPI_CHECK_H

#include <stdbool.h>
#include <node_api.h>

/* On failure, throw (unless an exception is already pending) and return `ret`. */
#define CHECK(env, call, ret)                                        \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      throw_last(env);                                               \
      return ret;                                                    \
    }                                                                \
  } while (0)

static inline void throw_last(napi_env env) {
  /* Read the failed call's info first: any other napi call resets it. */
  const napi_extended_error_info *info = NULL;
  const char *msg = "Node-API call failed";
  if (napi_get_last_error_info(env, &info) == napi_ok && info != NULL && info->error_message != NULL)
    msg = info->error_message;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return;
  napi_throw_error(env, NULL, msg);
}

/*
 * The memory and element count of `value` if it is a TypedArray of element type `want` (a Buffer is a
 * Uint8Array; SharedArrayBuffer-backed ones included); false otherwise, with nothing thrown.
 */
static inline bool typed_array_of(napi_env env, napi_value value, napi_typedarray_type want, void **data, size_t *count) {
  bool is_typedarray = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, value, &is_typedarray) != napi_ok || !is_typedarray) return false;
  return napi_get_typedarray_info(env, value, &type, count, data, NULL, NULL) == napi_ok && type == want;
}

#endif
