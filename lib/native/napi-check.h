/*
 * The error handling cairn's Node-API addons share (lib/native/posix.c,
 * mount/native/lowlevel.c): CHECK a napi call, and on failure throw its
 * message as an Error unless an exception is already pending.
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

#endif
