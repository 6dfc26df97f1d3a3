/*
 * scanDirectory(dir, names?) -> Promise<Buffer>: everything a backup needs
 * to know about the entries of one directory, gathered on libuv's thread
 * pool in one request: the names (sorted bytewise), lstat, the extended
 * attributes (names and values, sorted by name) and symlink targets.
 *
 * Why: a backup lstats and llistxattrs every entry. Done from JavaScript,
 * each file costs a Stats object of bigints and two calls across the
 * boundary on the main thread, and each syscall waits for the disk in turn
 * when the inodes are not cached. Here the syscalls run off the main thread,
 * several directories at once (the caller scans ahead), and the answer is
 * one packed buffer (layout below, parsed by lib/native/scan.ts).
 *
 * A scan changes no times: the directory is read with O_NOATIME where the
 * kernel allows it, and a symlink is stat'ed again after readlink (which
 * sets its atime), so two backups of an unchanged tree see the same bytes.
 *
 * With `names` (an array of Buffers), only those entries are described, in
 * the order given, and the directory is not read: used for the paths given
 * on the command line.
 *
 * Layout, little-endian, no padding:
 *   u32 count, then per entry:
 *   u16 nameLength, name
 *   i32 statErrno                       0, or lstat's errno (nothing follows)
 *   u32 mode, u32 uid, u32 gid
 *   u64 ino, u64 dev, u64 nlink, u64 size, u64 rdev
 *   i64 atimeNs, i64 mtimeNs, i64 ctimeNs
 *   i32 xattrErrno                      0, or llistxattr's errno
 *   u16 xattrCount, per attribute: u16 nameLength, name, u32 valueLength, value
 *   symlinks only: i32 linkErrno, u32 targetLength, target
 * A time that does not fit in i64 nanoseconds (after the year 2262) is
 * reported as statErrno EOVERFLOW, like stat(2) reports what it cannot hold.
 *
 * If the directory itself cannot be opened or read, the promise rejects with
 * an Error carrying errno (negative) and syscall, as posix.c's calls do.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <node_api.h>

#include "scan.h"

#define NS_PER_SEC 1000000000LL
#define MAX_SIZE_RETRIES 16

/* ---- a growable output buffer ------------------------------------------- */

typedef struct {
  char *data;
  size_t length;
  size_t capacity;
  bool failed; /* out of memory */
} out_t;

static void *reserve(out_t *out, size_t n) {
  if (out->failed) return NULL;
  if (out->length + n > out->capacity) {
    size_t capacity = out->capacity ? out->capacity : 4096;
    while (capacity < out->length + n) capacity *= 2;
    char *grown = realloc(out->data, capacity);
    if (grown == NULL) {
      out->failed = true;
      return NULL;
    }
    out->data = grown;
    out->capacity = capacity;
  }
  void *at = out->data + out->length;
  out->length += n;
  return at;
}

static void put_bytes(out_t *out, const void *bytes, size_t n) {
  void *at = reserve(out, n);
  if (at != NULL && n > 0) memcpy(at, bytes, n);
}

/* Linux on every platform Node supports is little-endian; memcpy keeps it unaligned-safe. */
#define PUT(out, type, value)        \
  do {                               \
    type v_ = (type)(value);         \
    put_bytes((out), &v_, sizeof v_); \
  } while (0)

/* ---- one request ---------------------------------------------------------- */

typedef struct {
  char *dir;       /* NUL-terminated copy */
  char **names;    /* given names, or NULL to read the directory */
  size_t name_count;
  int err;         /* errno of opening/reading the directory */
  const char *failed_call;
  out_t out;
  napi_async_work work;
  napi_deferred deferred;
} scan_t;

static void scan_free(scan_t *s) {
  if (s == NULL) return;
  free(s->dir);
  if (s->names != NULL)
    for (size_t i = 0; i < s->name_count; i++) free(s->names[i]);
  free(s->names);
  free(s->out.data);
  free(s);
}

static int compare_names(const void *a, const void *b) {
  /* strcmp compares as unsigned char: the same order as Buffer.compare. */
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The directory, opened without updating its atime when the kernel allows
 * (O_NOATIME needs ownership or CAP_FOWNER), so that backing it up does not
 * change what the next backup sees.
 */
static int open_directory(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return fd;
}

/* Every name in the directory but . and .., sorted; false with s->err set on failure. */
static bool read_names(scan_t *s, int dirfd) {
  int own = dup(dirfd); /* fdopendir takes the descriptor over */
  DIR *d = own < 0 ? NULL : fdopendir(own);
  if (d == NULL) {
    s->err = errno;
    s->failed_call = "opendir";
    if (own >= 0) close(own);
    return false;
  }
  size_t capacity = 64;
  s->names = malloc(capacity * sizeof *s->names);
  if (s->names == NULL) goto nomem;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (e == NULL) {
      if (errno != 0) {
        s->err = errno;
        s->failed_call = "readdir";
        closedir(d);
        return false;
      }
      break;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (s->name_count == capacity) {
      capacity *= 2;
      char **grown = realloc(s->names, capacity * sizeof *s->names);
      if (grown == NULL) goto nomem;
      s->names = grown;
    }
    s->names[s->name_count] = strdup(e->d_name);
    if (s->names[s->name_count] == NULL) goto nomem;
    s->name_count++;
  }
  closedir(d);
  qsort(s->names, s->name_count, sizeof *s->names, compare_names);
  return true;
nomem:
  closedir(d);
  s->err = ENOMEM;
  s->failed_call = "readdir";
  return false;
}

static bool time_ns(const struct timespec *t, int64_t *ns) {
  int64_t scaled;
  return !__builtin_mul_overflow((int64_t)t->tv_sec, NS_PER_SEC, &scaled) && !__builtin_add_overflow(scaled, (int64_t)t->tv_nsec, ns);
}

/* Size-then-read, retried when the value grows in between (as posix.c does). */
static ssize_t read_sized(const char *path, const char *name, char **buf) {
  for (int attempt = 0; attempt < MAX_SIZE_RETRIES; attempt++) {
    ssize_t size = name ? lgetxattr(path, name, NULL, 0) : llistxattr(path, NULL, 0);
    if (size <= 0) return size;
    char *b = malloc((size_t)size);
    if (b == NULL) {
      errno = ENOMEM;
      return -1;
    }
    ssize_t got = name ? lgetxattr(path, name, b, (size_t)size) : llistxattr(path, b, (size_t)size);
    if (got >= 0) {
      *buf = b;
      return got;
    }
    int e = errno;
    free(b);
    if (e != ERANGE) {
      errno = e;
      return -1;
    }
  }
  errno = ERANGE;
  return -1;
}

/* The xattrs of `path`, sorted by name; an attribute removed meanwhile is left out. */
static void put_xattrs(out_t *out, const char *path) {
  char *list = NULL;
  ssize_t length = read_sized(path, NULL, &list);
  if (length < 0) {
    PUT(out, int32_t, errno);
    PUT(out, uint16_t, 0);
    return;
  }
  size_t count = 0;
  for (ssize_t i = 0; i < length; i += (ssize_t)strlen(list + i) + 1) count++;
  const char **names = malloc((count ? count : 1) * sizeof *names);
  if (names == NULL) {
    free(list);
    PUT(out, int32_t, ENOMEM);
    PUT(out, uint16_t, 0);
    return;
  }
  count = 0;
  for (ssize_t i = 0; i < length; i += (ssize_t)strlen(list + i) + 1) names[count++] = list + i;
  qsort(names, count, sizeof names[0], compare_names);
  PUT(out, int32_t, 0);
  size_t count_at = out->length;
  PUT(out, uint16_t, 0);
  uint16_t kept = 0;
  for (size_t i = 0; i < count; i++) {
    char *value = NULL;
    ssize_t value_length = read_sized(path, names[i], &value);
    if (value_length < 0) continue; /* ENODATA: removed since the list was read */
    size_t name_length = strlen(names[i]);
    PUT(out, uint16_t, name_length);
    put_bytes(out, names[i], name_length);
    PUT(out, uint32_t, value_length);
    put_bytes(out, value, (size_t)value_length);
    free(value);
    kept++;
  }
  if (!out->failed) memcpy(out->data + count_at, &kept, sizeof kept);
  free(names);
  free(list);
}

/* The target of a symlink: *target malloc'ed (or NULL), its length; returns 0 or an errno. */
static int read_link(int dirfd, const char *name, size_t size_hint, char **target, size_t *length) {
  size_t capacity = size_hint > 0 ? size_hint + 1 : 256;
  for (;;) {
    char *buf = malloc(capacity);
    if (buf == NULL) return ENOMEM;
    ssize_t n = readlinkat(dirfd, name, buf, capacity);
    if (n < 0) {
      int e = errno;
      free(buf);
      return e;
    }
    if ((size_t)n < capacity) {
      *target = buf;
      *length = (size_t)n;
      return 0;
    }
    free(buf); /* the target grew: try again bigger */
    capacity *= 2;
  }
}

static void put_entry(out_t *out, int dirfd, const char *dir, const char *name) {
  size_t name_length = strlen(name);
  PUT(out, uint16_t, name_length);
  put_bytes(out, name, name_length);
  struct stat st;
  int64_t atime, mtime, ctime;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    PUT(out, int32_t, errno);
    return;
  }
  char *target = NULL;
  size_t target_length = 0;
  int link_err = 0;
  if (S_ISLNK(st.st_mode)) {
    /* readlink sets a symlink's atime: stat again afterwards, so that the
       times recorded are the ones the link keeps (and the next backup sees). */
    link_err = read_link(dirfd, name, (size_t)st.st_size, &target, &target_length);
    struct stat after;
    if (link_err == 0 && fstatat(dirfd, name, &after, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(after.st_mode)) st = after;
  }
  if (!time_ns(&st.st_atim, &atime) || !time_ns(&st.st_mtim, &mtime) || !time_ns(&st.st_ctim, &ctime)) {
    PUT(out, int32_t, EOVERFLOW);
    free(target);
    return;
  }
  PUT(out, int32_t, 0);
  PUT(out, uint32_t, st.st_mode);
  PUT(out, uint32_t, st.st_uid);
  PUT(out, uint32_t, st.st_gid);
  PUT(out, uint64_t, st.st_ino);
  PUT(out, uint64_t, st.st_dev);
  PUT(out, uint64_t, st.st_nlink);
  PUT(out, uint64_t, st.st_size);
  PUT(out, uint64_t, st.st_rdev);
  PUT(out, int64_t, atime);
  PUT(out, int64_t, mtime);
  PUT(out, int64_t, ctime);
  /* No l*xattrat in Linux: the xattr calls take the whole path (so, like
     Node's fs, they fail with ENAMETOOLONG beyond PATH_MAX). */
  char path[PATH_MAX];
  int n = snprintf(path, sizeof path, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= sizeof path) {
    PUT(out, int32_t, ENAMETOOLONG);
    PUT(out, uint16_t, 0);
  } else {
    put_xattrs(out, path);
  }
  if (S_ISLNK(st.st_mode)) {
    PUT(out, int32_t, link_err);
    PUT(out, uint32_t, target_length);
    put_bytes(out, target, target_length);
  }
  free(target);
}

static void execute(napi_env env, void *data) {
  (void)env; /* a pool thread: no JS here */
  scan_t *s = data;
  int dirfd = open_directory(s->dir);
  if (dirfd < 0) {
    s->err = errno;
    s->failed_call = "opendir";
    return;
  }
  if (s->names == NULL && !read_names(s, dirfd)) {
    close(dirfd);
    return;
  }
  PUT(&s->out, uint32_t, s->name_count);
  for (size_t i = 0; i < s->name_count; i++) put_entry(&s->out, dirfd, s->dir, s->names[i]);
  close(dirfd);
  if (s->out.failed) {
    s->err = ENOMEM;
    s->failed_call = "scandir";
  }
}

static napi_value errno_error(napi_env env, int err, const char *call) {
  napi_value msg, error, errno_value, call_value;
  char text[256];
  snprintf(text, sizeof text, "%s: %s", call, strerror(err));
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg) != napi_ok ||
      napi_create_error(env, NULL, msg, &error) != napi_ok || napi_create_int32(env, -err, &errno_value) != napi_ok ||
      napi_create_string_utf8(env, call, NAPI_AUTO_LENGTH, &call_value) != napi_ok ||
      napi_set_named_property(env, error, "errno", errno_value) != napi_ok ||
      napi_set_named_property(env, error, "syscall", call_value) != napi_ok)
    return NULL;
  return error;
}

static void complete(napi_env env, napi_status status, void *data) {
  scan_t *s = data;
  napi_value value = NULL;
  bool ok = false;
  if (status != napi_ok) {
    value = errno_error(env, ECANCELED, "scandir");
  } else if (s->err != 0) {
    value = errno_error(env, s->err, s->failed_call);
  } else {
    void *copy;
    ok = napi_create_buffer_copy(env, s->out.length, s->out.data, &copy, &value) == napi_ok;
    if (!ok) value = errno_error(env, ENOMEM, "scandir");
  }
  if (value == NULL) napi_get_and_clear_last_exception(env, &value);
  if (value != NULL) {
    if (ok)
      napi_resolve_deferred(env, s->deferred, value);
    else
      napi_reject_deferred(env, s->deferred, value);
  }
  napi_delete_async_work(env, s->work);
  scan_free(s);
}

/* A Buffer argument as a NUL-terminated copy; NULL with a TypeError thrown when it is not one. */
static char *cstring_arg(napi_env env, napi_value value, const char *what) {
  bool is_buffer = false;
  void *data = NULL;
  size_t length = 0;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, value, &data, &length) != napi_ok || memchr(data, '\0', length) != NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return NULL;
  }
  char *copy = malloc(length + 1);
  if (copy == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  memcpy(copy, data, length);
  copy[length] = '\0';
  return copy;
}

napi_value scan_directory(napi_env env, napi_callback_info info) {
  napi_value argv[2], promise, resource_name;
  size_t argc = 2;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  scan_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (argc < 1 || (s->dir = cstring_arg(env, argv[0], "dir must be a Buffer without NUL bytes")) == NULL) goto fail;
  napi_valuetype names_type = napi_undefined;
  if (argc >= 2 && napi_typeof(env, argv[1], &names_type) != napi_ok) goto fail;
  if (names_type != napi_undefined) {
    uint32_t count = 0;
    bool is_array = false;
    if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[1], &count) != napi_ok) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "names must be an array of Buffers");
      goto fail;
    }
    s->names = calloc(count ? count : 1, sizeof *s->names);
    if (s->names == NULL) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      goto fail;
    }
    for (uint32_t i = 0; i < count; i++) {
      napi_value name;
      if (napi_get_element(env, argv[1], i, &name) != napi_ok) goto fail;
      if ((s->names[i] = cstring_arg(env, name, "names must be Buffers without NUL bytes")) == NULL) goto fail;
      s->name_count = i + 1;
    }
  }
  if (napi_create_string_utf8(env, "scandir", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, execute, complete, s, &s->work) != napi_ok)
    goto fail;
  if (napi_create_promise(env, &s->deferred, &promise) != napi_ok) {
    napi_delete_async_work(env, s->work);
    goto fail;
  }
  if (napi_queue_async_work(env, s->work) != napi_ok) {
    napi_value error = errno_error(env, EAGAIN, "scandir");
    napi_deferred deferred = s->deferred;
    napi_delete_async_work(env, s->work);
    scan_free(s);
    if (error != NULL) napi_reject_deferred(env, deferred, error);
    return promise;
  }
  return promise;
fail:
  scan_free(s);
  return NULL;
}
