/*
 * The reply functions JavaScript calls with a pending request's handle (see
 * lowlevel.c for the whole design). Each checks its arguments first, so a
 * TypeError leaves the request pending for the caller to answer; then it
 * answers, frees the slot and returns libfuse's result (0, or -ENOENT when
 * the caller was interrupted), or -EBADF when the handle is not pending.
 */
#include "session.h"

static bool get_int64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

/* `v` as bytes (a Buffer or another Uint8Array). */
bool get_bytes(napi_env env, napi_value v, const char **data, size_t *len) {
  bool is;
  if (napi_is_buffer(env, v, &is) == napi_ok && is) {
    void *p;
    if (napi_get_buffer_info(env, v, &p, len) != napi_ok) return false;
    *data = p;
    return true;
  }
  napi_typedarray_type type;
  void *p;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is
      || napi_get_typedarray_info(env, v, &type, len, &p, &ab, &off) != napi_ok || type != napi_uint8_array) {
    type_error(env, "expected a Buffer or Uint8Array");
    return false;
  }
  *data = p;
  return true;
}

static napi_value int_result(napi_env env, int r) {
  napi_value v;
  CHECK(env, napi_create_int32(env, r, &v), NULL);
  return v;
}

/* The pending request of handle `v`, or NULL (the caller answers -EBADF). */
static slot_t *handle_arg(napi_env env, napi_value v) {
  double h;
  if (napi_get_value_double(env, v, &h) != napi_ok) return NULL;
  return slot_find(h);
}

napi_value reply_err(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  int32_t err;
  if (argc != 2 || napi_get_value_int32(env, argv[1], &err) != napi_ok || err == 0)
    return type_error(env, "replyErr(h, errno): errno must be a non-zero integer");
  slot_t *sl = handle_arg(env, argv[0]);
  if (sl == NULL) return int_result(env, -EBADF);
  int r = fuse_reply_err(sl->req, err < 0 ? -err : err);
  slot_free(sl);
  return int_result(env, r);
}

void make_stat(const session_t *s, uint64_t ino, uint32_t mode, uint32_t nlink, uint32_t uid, uint32_t gid, uint32_t rdev, int64_t size,
               int64_t blocks, uint32_t blksize, const int64_t times_ns[3], struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)ino;
  st->st_mode = (mode_t)mode;
  st->st_nlink = (nlink_t)nlink;
  st->st_uid = (uid_t)(s->uid >= 0 ? s->uid : uid);
  st->st_gid = (gid_t)(s->gid >= 0 ? s->gid : gid);
  if (s->umask >= 0) st->st_mode = (st->st_mode & S_IFMT) | (0777 & ~(mode_t)s->umask);
  st->st_rdev = (dev_t)rdev;
  st->st_size = (off_t)size;
  st->st_blocks = (blkcnt_t)blocks;
  st->st_blksize = (blksize_t)blksize;
  struct timespec *ts[3] = { &st->st_atim, &st->st_mtim, &st->st_ctim };
  for (int i = 0; i < 3; i++) {
    int64_t sec = times_ns[i] / NS_PER_SEC, nsec = times_ns[i] % NS_PER_SEC;
    if (nsec < 0) { sec -= 1; nsec += NS_PER_SEC; } /* floor: nsec in [0, 1e9) */
    ts[i]->tv_sec = (time_t)sec;
    ts[i]->tv_nsec = (long)nsec;
  }
}

/* Reads <attr> from argv[0..11] into st, with the session's overrides. */
static bool read_attr(napi_env env, session_t *s, napi_value *argv, struct stat *st) {
  uint64_t ino;
  bool lossless;
  uint32_t mode, nlink, uid, gid, rdev, blksize;
  int64_t size, blocks, times[3];
  if (napi_get_value_bigint_uint64(env, argv[0], &ino, &lossless) != napi_ok || !lossless) {
    type_error(env, "attr.ino must be a BigInt in [0, 2^64)");
    return false;
  }
  if (napi_get_value_uint32(env, argv[1], &mode) != napi_ok || napi_get_value_uint32(env, argv[2], &nlink) != napi_ok
      || napi_get_value_uint32(env, argv[3], &uid) != napi_ok || napi_get_value_uint32(env, argv[4], &gid) != napi_ok
      || napi_get_value_uint32(env, argv[5], &rdev) != napi_ok || napi_get_value_int64(env, argv[6], &size) != napi_ok
      || napi_get_value_int64(env, argv[7], &blocks) != napi_ok || napi_get_value_uint32(env, argv[8], &blksize) != napi_ok) {
    type_error(env, "attr: mode, nlink, uid, gid, rdev, size, blocks and blksize must be numbers");
    return false;
  }
  for (int i = 0; i < 3; i++) {
    if (napi_get_value_bigint_int64(env, argv[9 + i], &times[i], &lossless) != napi_ok || !lossless) {
      type_error(env, "attr times must be BigInt nanoseconds");
      return false;
    }
  }
  make_stat(s, ino, mode, nlink, uid, gid, rdev, size, blocks, blksize, times, st);
  return true;
}

/* A validity in seconds: finite; negative stands for the session's default `fallback`. */
static bool get_valid(napi_env env, napi_value v, double fallback, double *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !isfinite(d)) return false;
  *out = d < 0 ? fallback : d;
  return true;
}

/*
 * replyEntry(h, entryValid, attrValid, <attr>[, xattrs]) and replyAttr(h, attrValid, <attr>): validities in
 * seconds, negative for the mount's. replyEntry may end with the inode's xattrs as a blob (xattr-table.h):
 * later xattr requests are answered here.
 */
static napi_value reply_attr_common(napi_env env, napi_callback_info info, bool entry) {
  size_t argc = 16;
  napi_value argv[16];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  size_t first = entry ? 3 : 2; /* where <attr> starts */
  if (argc != first + 12 && !(entry && argc == first + 13))
    return type_error(env, "replyEntry(h, entryValid, attrValid, <attr>[, xattrs]) / replyAttr(h, attrValid, <attr>)");
  const char *blob = NULL;
  size_t blob_len = 0;
  if (argc == first + 13) {
    if (!get_bytes(env, argv[first + 12], &blob, &blob_len)) return NULL;
    if (blob_len > UINT32_MAX || !xattr_blob_valid(blob, blob_len)) return type_error(env, "replyEntry: malformed xattrs");
  }
  slot_t *sl = handle_arg(env, argv[0]);
  if (sl == NULL) return int_result(env, -EBADF);
  session_t *s = sl->s;
  double entry_valid = s->entry_timeout, attr_valid = s->attr_timeout;
  if ((entry && !get_valid(env, argv[1], s->entry_timeout, &entry_valid)) || !get_valid(env, argv[first - 1], s->attr_timeout, &attr_valid))
    return type_error(env, "validities are finite numbers of seconds (negative: the mount's)");
  struct stat st;
  if (!read_attr(env, s, argv + first, &st)) return NULL;
  int r;
  if (entry) {
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = st.st_ino;
    e.attr = st;
    e.attr_timeout = attr_valid;
    e.entry_timeout = entry_valid;
    /* Under the tables' lock: the reader must not answer the kernel's next getxattr before the xattrs are remembered. */
    tables_lock(s);
    r = fuse_reply_entry(sl->req, &e);
    /* argc, not blob: an empty Buffer (no xattrs, the common case) may come with a NULL data pointer. */
    if (r == 0 && argc == first + 13) xattr_table_remember(&s->xattrs, e.ino, blob, blob_len); /* out of memory: JS answers */
    tables_unlock(s);
  } else {
    r = fuse_reply_attr(sl->req, &st, attr_valid);
  }
  slot_free(sl);
  return int_result(env, r);
}

napi_value reply_entry(napi_env env, napi_callback_info info) { return reply_attr_common(env, info, true); }
napi_value reply_attr(napi_env env, napi_callback_info info) { return reply_attr_common(env, info, false); }


typedef enum { AS_READ, AS_READLINK, AS_XATTR } bytes_reply_t;

/*
 * replyBuf (read: at most the size asked for), replyReadlink (a NUL-terminated copy), replyXattr (a getxattr
 * value or listxattr list: its size when asked with size 0, ERANGE when it does not fit).
 */
static napi_value reply_bytes(napi_env env, napi_callback_info info, bytes_reply_t as) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  const char *data;
  size_t len;
  if (argc != 2) return type_error(env, "reply(h, bytes)");
  if (!get_bytes(env, argv[1], &data, &len)) return NULL;
  if (as == AS_READLINK && (len == 0 || len >= PATH_MAX || memchr(data, 0, len) != NULL))
    return type_error(env, "a link target is 1 to 4095 bytes without NUL");
  slot_t *sl = handle_arg(env, argv[0]);
  if (sl == NULL) return int_result(env, -EBADF);
  int r;
  char target[PATH_MAX];
  switch (as) {
    case AS_READ:
      r = fuse_reply_buf(sl->req, data, len < sl->size ? len : sl->size);
      break;
    case AS_READLINK:
      memcpy(target, data, len);
      target[len] = 0;
      r = fuse_reply_readlink(sl->req, target);
      break;
    default:
      r = reply_sized(sl->req, sl->size, data, len);
  }
  slot_free(sl);
  return int_result(env, r);
}

napi_value reply_buf(napi_env env, napi_callback_info info) { return reply_bytes(env, info, AS_READ); }
napi_value reply_readlink(napi_env env, napi_callback_info info) { return reply_bytes(env, info, AS_READLINK); }
napi_value reply_xattr(napi_env env, napi_callback_info info) { return reply_bytes(env, info, AS_XATTR); }


/*
 * replyDir(h, packed, count, records, xattrs): keeps a copy of the packed listing and answers the READDIR
 * with a page of it (later pages are served from the copy). `records` (possibly empty) give some entries
 * their attributes (ENTRY_RECORD bytes each, ascending indexes past `.` and `..`) and their xattrs in the
 * blob `xattrs`: in a READDIRPLUS page those entries reach the kernel as looked up (session.h: those with
 * nodeid 0 only at offset 0, those named by position on any page). Returns how many records with nodeid 0
 * (from the first) did so, each one lookup the kernel will forget. Negative: the request was not answered
 * as asked (libfuse's result, or -EBADF).
 */
napi_value reply_dir(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  const char *data, *records = NULL, *xattrs = NULL;
  size_t len, records_len = 0, xattrs_len = 0;
  uint32_t count;
  if (argc != 5 || !get_bytes(env, argv[1], &data, &len) || napi_get_value_uint32(env, argv[2], &count) != napi_ok
      || !get_bytes(env, argv[3], &records, &records_len) || !get_bytes(env, argv[4], &xattrs, &xattrs_len))
    return type_error(env, "replyDir(h, packed, count, records, xattrs)");
  size_t nrecords = records_len / ENTRY_RECORD;
  if (records_len % ENTRY_RECORD != 0) return type_error(env, "replyDir: records are 96 bytes each");
  size_t npositional = 0;
  for (size_t i = 0; i < nrecords; i++) {
    const char *rec = records + i * ENTRY_RECORD;
    uint32_t index = u32_at(rec), previous = i > 0 ? u32_at(rec - ENTRY_RECORD) : 1; /* `.` and `..` get no record */
    if (index <= previous || index >= count) return type_error(env, "replyDir: record indexes ascend, past `.` and `..`, below count");
    uint32_t at = u32_at(rec + 64), n = u32_at(rec + 68);
    if (at > xattrs_len || n > xattrs_len - at || (n > 0 && !xattr_blob_valid(xattrs + at, n))) return type_error(env, "replyDir: malformed xattrs");
    if (!isfinite(f64_at(rec + 72)) || !isfinite(f64_at(rec + 80))) return type_error(env, "replyDir: validities are finite numbers");
    uint64_t nodeid = u64_at(rec + 88);
    if (nodeid != 0 && (!positional(nodeid) || ((nodeid & POSITIONAL_XATTRS_BIT) != 0) != (n > 0)))
      return type_error(env, "replyDir: a record's nodeid is 0 or positional, with the xattrs bit set exactly when it has xattrs");
    if (nodeid != 0) npositional++;
  }
  uint32_t *pos = malloc(((size_t)count + 1) * sizeof *pos);
  char *copy = malloc(len ? len : 1);
  dir_t *d = calloc(1, sizeof *d);
  char *kept = npositional ? malloc(npositional * ENTRY_RECORD) : NULL;
  char *kept_xattrs = npositional && xattrs_len ? malloc(xattrs_len) : NULL;
  if (pos == NULL || copy == NULL || d == NULL || (npositional && kept == NULL) || (npositional && xattrs_len && kept_xattrs == NULL)) {
    free(pos); free(copy); free(d); free(kept); free(kept_xattrs);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  /* The records of entries named by position stay with the listing, for the pages after the first. */
  for (size_t i = 0, k = 0; i < nrecords; i++) {
    if (u64_at(records + i * ENTRY_RECORD + 88) != 0) memcpy(kept + k++ * ENTRY_RECORD, records + i * ENTRY_RECORD, ENTRY_RECORD);
  }
  if (kept_xattrs != NULL) memcpy(kept_xattrs, xattrs, xattrs_len);
  d->records = kept;
  d->nrecords = npositional;
  d->xattrs = kept_xattrs;
  size_t p = 0;
  for (uint32_t i = 0; i < count; i++) { /* validate before the request is answered */
    const char *nul = len - p > ENTRY_HEADER ? memchr(data + p + ENTRY_HEADER, 0, len - p - ENTRY_HEADER) : NULL;
    size_t n = nul ? (size_t)(nul - (data + p + ENTRY_HEADER)) : 0;
    if (nul == NULL || n == 0 || n > NAME_MAX_BYTES || memchr(data + p + ENTRY_HEADER, '/', n) != NULL || len > UINT32_MAX) {
      free(pos); free(copy); free(d); free(kept); free(kept_xattrs);
      return type_error(env, "replyDir: malformed listing (names are 1 to 255 bytes without NUL or '/')");
    }
    pos[i] = (uint32_t)p;
    p += ENTRY_HEADER + n + 1;
  }
  if (p != len) {
    free(pos); free(copy); free(d); free(kept); free(kept_xattrs);
    return type_error(env, "replyDir: the listing holds more than `count` entries");
  }
  memcpy(copy, data, len);
  d->data = copy;
  d->pos = pos;
  d->count = count;
  slot_t *sl = handle_arg(env, argv[0]);
  if (sl == NULL) {
    free(pos); free(copy); free(d); free(kept); free(kept_xattrs);
    return int_result(env, -EBADF);
  }
  d->ino = sl->ino;
  uint32_t given = 0;
  int r = dir_keep_and_serve(sl->s, sl->req, d, sl->size, sl->off, sl->plus, records, nrecords, xattrs, &given);
  slot_free(sl);
  return int_result(env, r < 0 ? r : (int)given);
}

napi_value reply_statfs(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  if (argc != 12) return type_error(env, "replyStatfs(h, bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax)");
  int64_t v[11];
  for (int i = 0; i < 11; i++) {
    if (!get_int64(env, argv[1 + i], &v[i]) || v[i] < 0) return type_error(env, "statfs fields must be integers >= 0");
  }
  slot_t *sl = handle_arg(env, argv[0]);
  if (sl == NULL) return int_result(env, -EBADF);
  struct statvfs st;
  memset(&st, 0, sizeof st);
  st.f_bsize = (unsigned long)v[0];
  st.f_frsize = (unsigned long)v[1];
  st.f_blocks = (fsblkcnt_t)v[2];
  st.f_bfree = (fsblkcnt_t)v[3];
  st.f_bavail = (fsblkcnt_t)v[4];
  st.f_files = (fsfilcnt_t)v[5];
  st.f_ffree = (fsfilcnt_t)v[6];
  st.f_favail = (fsfilcnt_t)v[7];
  st.f_fsid = (unsigned long)v[8];
  st.f_flag = (unsigned long)v[9];
  st.f_namemax = (unsigned long)v[10];
  int r = fuse_reply_statfs(sl->req, &st);
  slot_free(sl);
  return int_result(env, r);
}

