/*
 * cairn's POSIX helper: the few metadata syscalls Node's fs lacks.
 *
 *   setTimes(path, atimeNs, mtimeNs, followSymlinks)  utimensat(2), exact ns
 *   getXattr(path, name) -> Buffer | null              lgetxattr(2)
 *   listXattrs(path) -> Buffer[]                       llistxattr(2)
 *   setXattr(path, name, value)                        lsetxattr(2)
 *   mknod(path, mode, dev)                             mknod(2)
 *   makedev(major, minor) -> bigint, major(dev), minor(dev)
 *   scanDirectory(dir, names?) -> Promise<Buffer>      see scan.c
 *   coldStart(fd, willNeed) -> boolean                 preadv2(RWF_NOWAIT) probe,
 *                                                      posix_fadvise(WILLNEED)
 *   misalignment(bytes, alignment) -> number           address % alignment
 *   adviseDontNeed(fd, offset, length)                 posix_fadvise(DONTNEED)
 *   readCachedSync(fd, buf, position) -> number        preadv2(RWF_NOWAIT)
 *   dropCleanFilePages() -> number                     madvise(MADV_DONTNEED)
 *   discardPages(bytes) -> number                      madvise(MADV_DONTNEED)
 *   fixMallocMmapThreshold(bytes, trim?) -> boolean    mallopt(M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)
 *   adviseHugePages(bytes) -> number                   madvise(MADV_HUGEPAGE)
 *   sealAesGcmInPlace(encKey, buf, length, aad)        see seal.c (not syscalls:
 *   openAesGcmInPlace(encKey, buf, aad) -> boolean      OpenSSL in caller memory)
 *   openBlobBatch(scheme, encKey, paths, plan, out, lengths) -> Promise   see blob-batch.c
 *
 * Each syscall comes twice: `fooSync` runs it on the calling thread and
 * returns or throws; `foo` runs it on libuv's thread pool and returns a
 * Promise. Paths, names and values are Buffers, copied before the work is
 * queued, so the JS side may reuse them at once. xattr calls never follow
 * symlinks.
 *
 * A failed syscall becomes an Error carrying `errno` (negative, as in Node's
 * SystemError) and `syscall`; lib/native/posix.ts turns that into Node's
 * SystemError shape (code, message, path). Bad arguments throw TypeError or
 * RangeError with Node's ERR_INVALID_ARG_* codes.
 *
 * Node-API only (node_api.h), version 8. Linux only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <time.h>

#include <node_api.h>

#include "napi-check.h"

#include "scan.h"
#include "seal.h"
#include "blob-batch.h"
#include "romix.h"

#ifndef __linux__
#error "cairn's posix helper supports Linux only"
#endif

#define NS_PER_SEC 1000000000LL
/* Rounds of "the value grew between the sizing call and the read" before ERANGE. */
#define MAX_SIZE_RETRIES 16

typedef enum { OP_SET_TIMES, OP_GET_XATTR, OP_LIST_XATTR, OP_SET_XATTR, OP_MKNOD } op_kind;

static const char *const syscall_names[] = {
    [OP_SET_TIMES] = "utimensat",
    [OP_GET_XATTR] = "lgetxattr",
    [OP_LIST_XATTR] = "llistxattr",
    [OP_SET_XATTR] = "lsetxattr",
    [OP_MKNOD] = "mknod",
};

/* One request: its inputs (owned copies), then its outcome. */
typedef struct {
  op_kind kind;
  char *path;               /* NUL-terminated copy */
  char *name;               /* xattr name, NUL-terminated copy */
  char *value;              /* xattr value to set (may hold NUL bytes) */
  size_t value_len;
  struct timespec times[2]; /* atime, mtime */
  int flags;                /* utimensat flags */
  mode_t mode;
  dev_t dev;

  int err;                  /* 0, or the errno of the failed syscall */
  int absent;               /* getXattr: ENODATA, answer null */
  char *out;                /* getXattr value / llistxattr list */
  size_t out_len;

  napi_async_work work;
  napi_deferred deferred;
} op_t;

static void op_free(op_t *op) {
  if (op == NULL) return;
  free(op->path);
  free(op->name);
  free(op->value);
  free(op->out);
  free(op);
}

/* ---- the syscalls (run on any thread; touch no JS) ---------------------- */

/*
 * Size-then-read for the two xattr getters: ask for the size, read into a
 * buffer that big, and start again if the value grew in between (ERANGE).
 */
static void run_sized(op_t *op) {
  for (int attempt = 0; attempt < MAX_SIZE_RETRIES; attempt++) {
    ssize_t size = op->kind == OP_GET_XATTR ? lgetxattr(op->path, op->name, NULL, 0)
                                            : llistxattr(op->path, NULL, 0);
    if (size < 0) {
      op->err = errno;
      return;
    }
    if (size == 0) {
      op->out_len = 0;
      return;
    }
    char *buf = malloc((size_t)size);
    if (buf == NULL) {
      op->err = ENOMEM;
      return;
    }
    ssize_t got = op->kind == OP_GET_XATTR ? lgetxattr(op->path, op->name, buf, (size_t)size)
                                           : llistxattr(op->path, buf, (size_t)size);
    if (got >= 0) {
      op->out = buf;
      op->out_len = (size_t)got;
      return;
    }
    int e = errno;
    free(buf);
    if (e != ERANGE) {
      op->err = e;
      return;
    }
  }
  op->err = ERANGE;
}

static void run(op_t *op) {
  int rc = 0;
  switch (op->kind) {
    case OP_SET_TIMES:
      rc = utimensat(AT_FDCWD, op->path, op->times, op->flags);
      break;
    case OP_GET_XATTR:
    case OP_LIST_XATTR:
      run_sized(op);
      if (op->kind == OP_GET_XATTR && op->err == ENODATA) {
        op->err = 0;
        op->absent = 1;
      }
      return;
    case OP_SET_XATTR:
      rc = lsetxattr(op->path, op->name, op->value, op->value_len, 0);
      break;
    case OP_MKNOD:
      rc = mknod(op->path, op->mode, op->dev);
      break;
  }
  if (rc != 0) op->err = errno;
}

/* ---- outcomes as JS values (main thread) --------------------------------- */

static napi_value make_errno_error(napi_env env, const op_t *op) {
  const char *syscall = syscall_names[op->kind];
  napi_value msg, err, errno_value, syscall_value;
  /* strerror runs on the JS thread only, so its static buffer is not shared. */
  char text[256];
  snprintf(text, sizeof text, "%s: %s", syscall, strerror(op->err));
  CHECK(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg), NULL);
  CHECK(env, napi_create_error(env, NULL, msg, &err), NULL);
  CHECK(env, napi_create_int32(env, -op->err, &errno_value), NULL);
  CHECK(env, napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value), NULL);
  CHECK(env, napi_set_named_property(env, err, "errno", errno_value), NULL);
  CHECK(env, napi_set_named_property(env, err, "syscall", syscall_value), NULL);
  return err;
}

static napi_status make_buffer(napi_env env, const char *data, size_t len, napi_value *out) {
  void *ignored;
  if (len == 0) return napi_create_buffer(env, 0, &ignored, out);
  return napi_create_buffer_copy(env, len, data, &ignored, out);
}

static napi_value make_result(napi_env env, const op_t *op) {
  napi_value result;
  switch (op->kind) {
    case OP_GET_XATTR:
      if (op->absent) {
        CHECK(env, napi_get_null(env, &result), NULL);
      } else {
        CHECK(env, make_buffer(env, op->out, op->out_len, &result), NULL);
      }
      return result;
    case OP_LIST_XATTR: {
      /* The kernel's list is names, each ending in NUL. */
      CHECK(env, napi_create_array(env, &result), NULL);
      uint32_t index = 0;
      size_t start = 0;
      for (size_t i = 0; i < op->out_len; i++) {
        if (op->out[i] != '\0') continue;
        napi_value name;
        CHECK(env, make_buffer(env, op->out + start, i - start, &name), NULL);
        CHECK(env, napi_set_element(env, result, index++, name), NULL);
        start = i + 1;
      }
      return result;
    }
    default:
      CHECK(env, napi_get_undefined(env, &result), NULL);
      return result;
  }
}

/* ---- argument parsing ---------------------------------------------------- */

/*
 * A Buffer argument as a fresh copy with a NUL after its bytes. As a C string
 * (`cstring`), NUL bytes inside are refused; as a value they are kept.
 */
static char *arg_buffer(napi_env env, napi_value value, bool cstring, size_t *out_len, const char *what) {
  bool is_buffer = false;
  void *data = NULL;
  size_t len = 0;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return NULL;
  }
  CHECK(env, napi_get_buffer_info(env, value, &data, &len), NULL);
  if (cstring && len > 0 && memchr(data, '\0', len) != NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", what);
    return NULL;
  }
  char *copy = malloc(len + 1);
  if (copy == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (len > 0) memcpy(copy, data, len);
  copy[len] = '\0';
  if (out_len != NULL) *out_len = len;
  return copy;
}

/* Nanoseconds since the epoch (a bigint, maybe negative) as a timespec. */
static bool arg_time(napi_env env, napi_value value, struct timespec *out, const char *what) {
  int64_t ns = 0;
  bool lossless = false;
  if (napi_get_value_bigint_int64(env, value, &ns, &lossless) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return false;
  }
  if (!lossless) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
    return false;
  }
  /* Floor division: tv_nsec must be in [0, 1e9) even before 1970. */
  int64_t sec = ns / NS_PER_SEC;
  int64_t rem = ns % NS_PER_SEC;
  if (rem < 0) {
    rem += NS_PER_SEC;
    sec -= 1;
  }
  if ((int64_t)(time_t)sec != sec) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
    return false;
  }
  out->tv_sec = (time_t)sec;
  out->tv_nsec = (long)rem;
  return true;
}

/* A non-negative integer given as a bigint or a safe-integer number. */
static bool arg_uint64(napi_env env, napi_value value, uint64_t max, uint64_t *out, const char *what) {
  napi_valuetype type;
  CHECK(env, napi_typeof(env, value, &type), false);
  if (type == napi_bigint) {
    bool lossless = false;
    CHECK(env, napi_get_value_bigint_uint64(env, value, out, &lossless), false);
    if (!lossless || *out > max) goto range;
    return true;
  }
  if (type == napi_number) {
    double d = 0;
    CHECK(env, napi_get_value_double(env, value, &d), false);
    if (!(d >= 0 && d <= 9007199254740991.0) || d != (double)(uint64_t)d) goto range;
    *out = (uint64_t)d;
    if (*out > max) goto range;
    return true;
  }
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return false;
range:
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
  return false;
}

/* The JS arguments of one call as a request; NULL with an exception pending. */
static op_t *parse(napi_env env, napi_callback_info info, op_kind kind) {
  napi_value argv[4];
  size_t argc = 4;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  for (size_t i = argc; i < 4; i++) CHECK(env, napi_get_undefined(env, &argv[i]), NULL);

  op_t *op = calloc(1, sizeof *op);
  if (op == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  op->kind = kind;
  op->path = arg_buffer(env, argv[0], true, NULL, "path must be a Buffer without NUL bytes");
  if (op->path == NULL) goto fail;

  switch (kind) {
    case OP_SET_TIMES: {
      bool follow = false;
      if (!arg_time(env, argv[1], &op->times[0], "atimeNs must be a bigint within time_t range")) goto fail;
      if (!arg_time(env, argv[2], &op->times[1], "mtimeNs must be a bigint within time_t range")) goto fail;
      if (napi_get_value_bool(env, argv[3], &follow) != napi_ok) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "followSymlinks must be a boolean");
        goto fail;
      }
      op->flags = follow ? 0 : AT_SYMLINK_NOFOLLOW;
      break;
    }
    case OP_GET_XATTR:
    case OP_SET_XATTR:
      op->name = arg_buffer(env, argv[1], true, NULL, "name must be a Buffer without NUL bytes");
      if (op->name == NULL) goto fail;
      if (kind == OP_SET_XATTR) {
        op->value = arg_buffer(env, argv[2], false, &op->value_len, "value must be a Buffer");
        if (op->value == NULL) goto fail;
      }
      break;
    case OP_LIST_XATTR:
      break;
    case OP_MKNOD: {
      uint64_t mode = 0, dev = 0;
      if (!arg_uint64(env, argv[1], UINT32_MAX, &mode, "mode must be an integer in [0, 2^32)")) goto fail;
      if (!arg_uint64(env, argv[2], (uint64_t)(dev_t)-1, &dev, "dev must be a non-negative integer (bigint or number)"))
        goto fail;
      op->mode = (mode_t)mode;
      op->dev = (dev_t)dev;
      break;
    }
  }
  return op;
fail:
  op_free(op);
  return NULL;
}

/* ---- sync and async drivers ---------------------------------------------- */

static napi_value call_sync(napi_env env, napi_callback_info info, op_kind kind) {
  op_t *op = parse(env, info, kind);
  if (op == NULL) return NULL;
  run(op);
  napi_value result = NULL;
  if (op->err != 0) {
    napi_value err = make_errno_error(env, op);
    if (err != NULL) napi_throw(env, err);
  } else {
    result = make_result(env, op);
  }
  op_free(op);
  return result;
}

static void execute(napi_env env, void *data) {
  (void)env; /* a pool thread: no JS here */
  run((op_t *)data);
}

static void complete(napi_env env, napi_status status, void *data) {
  op_t *op = data;
  napi_value value = NULL;
  bool ok = false;
  if (status != napi_ok) {
    napi_value msg;
    const char *text = status == napi_cancelled ? "cancelled" : "async work failed";
    if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg) == napi_ok)
      napi_create_error(env, NULL, msg, &value);
  } else if (op->err != 0) {
    value = make_errno_error(env, op);
  } else {
    value = make_result(env, op);
    ok = value != NULL;
  }
  if (value == NULL) {
    /* Building the answer threw: reject with that exception instead. */
    ok = false;
    napi_get_and_clear_last_exception(env, &value);
  }
  if (value != NULL) {
    if (ok)
      napi_resolve_deferred(env, op->deferred, value);
    else
      napi_reject_deferred(env, op->deferred, value);
  }
  napi_delete_async_work(env, op->work);
  op_free(op);
}

static napi_value call_async(napi_env env, napi_callback_info info, op_kind kind) {
  napi_value resource_name, promise;
  op_t *op = parse(env, info, kind);
  if (op == NULL) return NULL;
  if (napi_create_string_utf8(env, syscall_names[kind], NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, execute, complete, op, &op->work) != napi_ok) {
    throw_last(env);
    op_free(op);
    return NULL;
  }
  if (napi_create_promise(env, &op->deferred, &promise) != napi_ok) {
    throw_last(env);
    napi_delete_async_work(env, op->work);
    op_free(op);
    return NULL;
  }
  if (napi_queue_async_work(env, op->work) != napi_ok) {
    /* The promise exists: settle it, or its deferred is never freed. */
    napi_value msg, err;
    napi_deferred deferred = op->deferred;
    napi_delete_async_work(env, op->work);
    op_free(op);
    if (napi_create_string_utf8(env, "could not queue async work", NAPI_AUTO_LENGTH, &msg) == napi_ok &&
        napi_create_error(env, NULL, msg, &err) == napi_ok)
      napi_reject_deferred(env, deferred, err);
  }
  return promise;
}

#define SYSCALL_PAIR(js, kind)                                                     \
  static napi_value js##_sync(napi_env env, napi_callback_info info) {            \
    return call_sync(env, info, kind);                                             \
  }                                                                                \
  static napi_value js##_async(napi_env env, napi_callback_info info) {           \
    return call_async(env, info, kind);                                            \
  }

SYSCALL_PAIR(set_times, OP_SET_TIMES)
SYSCALL_PAIR(get_xattr, OP_GET_XATTR)
SYSCALL_PAIR(list_xattrs, OP_LIST_XATTR)
SYSCALL_PAIR(set_xattr, OP_SET_XATTR)
SYSCALL_PAIR(mknod_, OP_MKNOD)

/* ---- page cache hints ---------------------------------------------------- */

static int fd_arg(napi_env env, napi_value value, int32_t *fd) {
  if (napi_get_value_int32(env, value, fd) == napi_ok && *fd >= 0) return 1;
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fd must be a file descriptor");
  return 0;
}

/* The bytes of a Uint8Array or Buffer argument (SharedArrayBuffer-backed ones included); throws TypeError and returns 0 otherwise. */
static int uint8_arg(napi_env env, size_t argc, napi_value value, void **data, size_t *length) {
  if (argc >= 1 && typed_array_of(env, value, napi_uint8_array, data, length)) return 1;
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "bytes must be a Uint8Array or Buffer");
  return 0;
}

/*
 * coldStart(fd, willNeed) -> boolean: whether the file's first page is
 * missing from the page cache; when it is and `willNeed` is set, the kernel
 * is also asked to start reading the whole file (POSIX_FADV_WILLNEED), and
 * the call returns at once. A caller about to read many small files one by
 * one so has all their disk reads in flight together; and it learns that
 * the pages it is about to read are its own doing, which it should drop
 * once read (adviseDontNeed), as borg's chunker does, instead of pushing
 * other programs' cached files out. A file already cached (or empty) is
 * left as it is: it is someone's working set. The probe is a one-byte
 * preadv2 with RWF_NOWAIT, which fails with EAGAIN rather than wait for a
 * disk; where that flag is not supported (old kernels, some filesystems)
 * the file counts as cold.
 */
static napi_value js_cold_start(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  size_t argc = 2;
  int32_t fd = -1;
  bool will_need = false;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  if (argc < 2 || !fd_arg(env, argv[0], &fd)) return NULL;
  CHECK(env, napi_get_value_bool(env, argv[1], &will_need), NULL);
  char probe;
  struct iovec iov = {.iov_base = &probe, .iov_len = 1};
  bool cold = preadv2(fd, &iov, 1, 0, RWF_NOWAIT) < 0 && (errno == EAGAIN || errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL);
  if (cold && will_need) posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
  CHECK(env, napi_get_boolean(env, cold, &result), NULL);
  return result;
}

/*
 * misalignment(bytes, alignment) -> number: the address of the first byte
 * of a Uint8Array modulo `alignment`, for reads with O_DIRECT, which need
 * the memory they read into aligned to the device's block size.
 */
static napi_value js_misalignment(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  size_t argc = 2;
  uint32_t alignment = 0;
  void *data = NULL;
  size_t length = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  if (!uint8_arg(env, argc, argv[0], &data, &length)) return NULL;
  if (argc < 2 || napi_get_value_uint32(env, argv[1], &alignment) != napi_ok || alignment == 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "alignment must be a positive integer");
    return NULL;
  }
  CHECK(env, napi_create_uint32(env, (uint32_t)((uintptr_t)data % alignment), &result), NULL);
  return result;
}

/*
 * adviseDontNeed(fd, offset, length): posix_fadvise(POSIX_FADV_DONTNEED), the
 * kernel drops the clean cached pages wholly inside the range (length 0: to
 * the end of the file). A hint: failures are ignored.
 */
static napi_value js_advise_dont_need(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  int32_t fd = -1;
  int64_t offset = 0, length = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  if (argc < 3 || !fd_arg(env, argv[0], &fd)) return NULL;
  if (napi_get_value_int64(env, argv[1], &offset) != napi_ok || napi_get_value_int64(env, argv[2], &length) != napi_ok ||
      offset < 0 || length < 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "offset and length must be non-negative integers");
    return NULL;
  }
  posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_DONTNEED);
  return NULL;
}

/*
 * readCachedSync(fd, buf, position): fills `buf` from `position` if the bytes
 * are in the page cache, on the calling thread, without ever waiting for a
 * disk: preadv2 with RWF_NOWAIT (Linux 4.14). Returns the bytes read, or -1
 * when reading would have to wait, or failed (a caller then reads the usual
 * way, on libuv's thread pool, which reports any error). From the cache it
 * takes about a microsecond, where a trip through the thread pool takes
 * 30-40 here: the mount looks blobs up in the chunk index file this way.
 */
static napi_value js_read_cached_sync(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  size_t argc = 3;
  int32_t fd = -1;
  void *data = NULL;
  size_t length = 0;
  int64_t position = -1;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok ||
      napi_get_value_int64(env, argv[2], &position) != napi_ok || position < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "readCachedSync(fd, buffer, position)");
    return NULL;
  }
  struct iovec iov = {.iov_base = data, .iov_len = length};
  ssize_t n = length == 0 ? 0 : preadv2(fd, &iov, 1, (off_t)position, RWF_NOWAIT);
  CHECK(env, napi_create_int64(env, n < 0 ? -1 : (int64_t)n, &result), NULL);
  return result;
}

/*
 * dropCleanFilePages(): takes out of this process's resident set the pages of
 * its read-only file mappings that it never wrote: the node binary's code and
 * read-only data, shared libraries, addons. They stay in the page cache, and
 * the next use of one maps it back (a minor fault). Most of them served only
 * startup: after it, node keeps about 40 MiB of its binary resident and uses
 * little of it again. Returns the bytes that were resident in those mappings.
 *
 * Safe because only mappings without write permission whose resident pages
 * are all file pages ("Anonymous: 0 kB" in /proc/self/smaps) are dropped: a
 * private page that was ever written (relocations, RELRO) is anonymous, and
 * such a mapping is left alone, since MADV_DONTNEED would lose its changes.
 */
static napi_value js_drop_clean_file_pages(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  double dropped = 0;
  FILE *smaps = fopen("/proc/self/smaps", "re");
  if (smaps != NULL) {
    char line[4096];
    unsigned long start = 0, end = 0, rss_kb = 0, anon_kb = 0;
    bool candidate = false;
    while (fgets(line, sizeof line, smaps) != NULL) {
      unsigned long a, b;
      char perms[8];
      int path_at = 0;
      if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &a, &b, perms, &path_at) == 3) {
        /* A mapping's first line: "start-end perms offset dev inode [path]". */
        start = a;
        end = b;
        rss_kb = anon_kb = 0;
        candidate = path_at > 0 && line[path_at] == '/' && perms[1] != 'w';
      } else if (sscanf(line, "Rss: %lu kB", &a) == 1) {
        rss_kb = a;
      } else if (sscanf(line, "Anonymous: %lu kB", &a) == 1) {
        anon_kb = a;
      } else if (strncmp(line, "VmFlags:", 8) == 0) {
        /* The mapping's last line. Locked mappings (lo) are kept resident on purpose. */
        if (candidate && rss_kb > 0 && anon_kb == 0 && strstr(line, " lo") == NULL &&
            madvise((void *)start, end - start, MADV_DONTNEED) == 0) {
          dropped += (double)rss_kb * 1024;
        }
        candidate = false;
      }
    }
    fclose(smaps);
  }
  CHECK(env, napi_create_double(env, dropped, &result), NULL);
  return result;
}

/* madvise(advice) over the whole `unit`-sized, `unit`-aligned blocks inside a Uint8Array; the bytes it covered. */
static napi_value advise_blocks(napi_env env, napi_callback_info info, uintptr_t unit, int advice) {
  napi_value argv[1], result;
  size_t argc = 1;
  size_t length = 0;
  void *data = NULL;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  if (!uint8_arg(env, argc, argv[0], &data, &length)) return NULL;
  uintptr_t first = ((uintptr_t)data + unit - 1) & ~(unit - 1);
  uintptr_t end = ((uintptr_t)data + length) & ~(unit - 1);
  double given = 0;
  if (data != NULL && end > first && madvise((void *)first, end - first, advice) == 0) given = (double)(end - first);
  CHECK(env, napi_create_double(env, given, &result), NULL);
  return result;
}

/*
 * discardPages(bytes): gives the whole pages inside a Uint8Array's memory
 * back to the system (MADV_DONTNEED); they read as zeros if touched again.
 * For big buffers a long command is done with but cannot free at once (a
 * SharedArrayBuffer is freed only once every thread's garbage collector lets
 * go of it). Returns the bytes given back (the part of the view that covers
 * whole pages).
 */
static napi_value js_discard_pages(napi_env env, napi_callback_info info) {
  return advise_blocks(env, info, (uintptr_t)sysconf(_SC_PAGESIZE), MADV_DONTNEED);
}

/*
 * adviseHugePages(bytes): the whole 2 MiB blocks inside the view are to live in transparent huge pages
 * (MADV_HUGEPAGE; THP's "madvise" mode, Debian's default), so that filling them takes one page fault per
 * 2 MiB instead of one per 4 KiB. Before anything is written to them. Returns the bytes it covered.
 */
static napi_value js_advise_huge_pages(napi_env env, napi_callback_info info) {
  return advise_blocks(env, info, (uintptr_t)2 << 20, MADV_HUGEPAGE);
}

/*
 * adviseNoHugePages(bytes): the whole pages inside the view stay 4 KiB pages (MADV_NOHUGEPAGE), also where
 * the allocator advised its whole block for huge pages (glibc.malloc.hugetlb=1, which the mount daemon runs
 * with): for the partly used end of a buffer, where a huge page would be zeroed and held whole for a little
 * of it. Returns the bytes it covered.
 */
static napi_value js_advise_no_huge_pages(napi_env env, napi_callback_info info) {
  return advise_blocks(env, info, (uintptr_t)sysconf(_SC_PAGESIZE), MADV_NOHUGEPAGE);
}

/*
 * fixMallocMmapThreshold(bytes, trim?): glibc serves allocations of at least
 * `bytes` with mmap from now on, and keeps both that threshold and the one
 * above which it trims the top of its heaps (`trim`, default 128 KiB), instead
 * of adapting them: by default the mmap threshold rises to the size of any
 * mmap-served block that is freed (up to 32 MiB) and the trim threshold to
 * twice that, after which big blocks come from the heap and the heap's free
 * top is kept resident. Returns whether mallopt accepted it.
 */
static napi_value js_fix_malloc_mmap_threshold(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  size_t argc = 2;
  int64_t bytes = 0, trim = -1;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  if (argc < 1 || napi_get_value_int64(env, argv[0], &bytes) != napi_ok || bytes <= 0 || bytes > INT_MAX
      || (argc >= 2 && (napi_get_value_int64(env, argv[1], &trim) != napi_ok || trim <= 0 || trim > INT_MAX))) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "bytes and trimBytes must be positive 32-bit integers");
    return NULL;
  }
  bool ok = mallopt(M_MMAP_THRESHOLD, (int)bytes) == 1 && (trim < 0 || mallopt(M_TRIM_THRESHOLD, (int)trim) == 1);
  CHECK(env, napi_get_boolean(env, ok, &result), NULL);
  return result;
}

/* ---- dev_t helpers (libc's own encoding) --------------------------------- */

static napi_value js_makedev(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  size_t argc = 2;
  uint64_t ma = 0, mi = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  for (size_t i = argc; i < 2; i++) CHECK(env, napi_get_undefined(env, &argv[i]), NULL);
  if (!arg_uint64(env, argv[0], UINT32_MAX, &ma, "major must be an integer in [0, 2^32)")) return NULL;
  if (!arg_uint64(env, argv[1], UINT32_MAX, &mi, "minor must be an integer in [0, 2^32)")) return NULL;
  CHECK(env, napi_create_bigint_uint64(env, (uint64_t)makedev((unsigned)ma, (unsigned)mi), &result), NULL);
  return result;
}

static napi_value dev_part(napi_env env, napi_callback_info info, bool want_major) {
  napi_value argv[1], result;
  size_t argc = 1;
  uint64_t dev = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  if (argc < 1) CHECK(env, napi_get_undefined(env, &argv[0]), NULL);
  if (!arg_uint64(env, argv[0], (uint64_t)(dev_t)-1, &dev, "dev must be a non-negative integer (bigint or number)"))
    return NULL;
  unsigned part = want_major ? major((dev_t)dev) : minor((dev_t)dev);
  CHECK(env, napi_create_uint32(env, (uint32_t)part, &result), NULL);
  return result;
}

static napi_value js_major(napi_env env, napi_callback_info info) { return dev_part(env, info, true); }
static napi_value js_minor(napi_env env, napi_callback_info info) { return dev_part(env, info, false); }

/* ---- module -------------------------------------------------------------- */

static napi_value init(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    napi_callback fn;
  } table[] = {
      {"setTimes", set_times_async},     {"setTimesSync", set_times_sync},
      {"getXattr", get_xattr_async},     {"getXattrSync", get_xattr_sync},
      {"listXattrs", list_xattrs_async}, {"listXattrsSync", list_xattrs_sync},
      {"setXattr", set_xattr_async},     {"setXattrSync", set_xattr_sync},
      {"mknod", mknod__async},           {"mknodSync", mknod__sync},
      {"makedev", js_makedev},           {"major", js_major},
      {"minor", js_minor},               {"scanDirectory", scan_directory},
      {"coldStart", js_cold_start}, {"misalignment", js_misalignment}, {"adviseDontNeed", js_advise_dont_need}, {"readCachedSync", js_read_cached_sync},
      {"dropCleanFilePages", js_drop_clean_file_pages}, {"fixMallocMmapThreshold", js_fix_malloc_mmap_threshold},
      {"discardPages", js_discard_pages}, {"adviseHugePages", js_advise_huge_pages},
      {"adviseNoHugePages", js_advise_no_huge_pages},
      {"sealAesGcmInPlace", seal_aes_gcm_in_place},
      {"openAesGcmInPlace", open_aes_gcm_in_place}, {"openBlobBatch", open_blob_batch}, {"scryptRoMix", scrypt_romix},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    napi_value fn;
    CHECK(env, napi_create_function(env, table[i].name, NAPI_AUTO_LENGTH, table[i].fn, NULL, &fn), NULL);
    CHECK(env, napi_set_named_property(env, exports, table[i].name, fn), NULL);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
