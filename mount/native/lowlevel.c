/*
 * cairn's FUSE binding: libfuse 2's low-level (inode-based) API, driven
 * from Node's own event loop, with one helper thread of ours for when that
 * loop is busy; none of libfuse's.
 *
 *   mount(mountpoint, options, attrTimeout, entryTimeout, keepCache,
 *         uid, gid, umask, dispatch) -> session
 *   close(session)                      answer what is pending, close /dev/fuse
 *   invalidate(session, ino)            the kernel drops its caches of the inode
 *   replyErr(h, errno)                  replyEntry(h, entryValid, attrValid, <attr>[, xattrs])
 *   replyAttr(h, attrValid, <attr>)     (validities: seconds the kernel may keep them; negative: the mount's)
 *   replyBuf(h, bytes)                  replyReadlink(h, target)
 *   replyXattr(h, value)                replyDir(h, packed, count, records, xattrs)
 *   replyStatfs(h, bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax)
 *   <attr> = ino, mode, nlink, uid, gid, rdev, size, blocks, blksize, atimeNs, mtimeNs, ctimeNs
 *
 * How a request travels: fuse_mount() gives the /dev/fuse channel, made
 * non-blocking and watched with a uv_poll in the main loop. When it is
 * readable, every request waiting in it is read (fuse_chan_recv into one
 * reused buffer) and handed to fuse_session_process(), which calls the
 * operations below on this same thread. Those C can answer (from the
 * tables below) it answers; the others are queued, and once the burst is
 * read each is handed to `dispatch(op, h, ino, ...)`, inside one callback
 * scope (so promises settle after the burst); JavaScript answers later
 * with a reply function and the handle `h`. Right after a burst the loop
 * polls /dev/fuse for a moment before it sleeps (on_prepare). While the
 * main thread runs JavaScript for long, a helper thread reads requests
 * too, answers what C can, and queues the rest for the main thread (see
 * helper_main); the tables are shared under one lock. Files and directories are not
 * opened at all (see op_opendir). A listing is handed over whole when
 * READDIR asks for offset 0 (replyDir) and the rest of its pages are
 * served from C by offset. The kernel is asked to list with READDIRPLUS
 * (see init_send), so that the subdirectories of a listing's first page,
 * and the files of any page, reach it with their attributes, as if looked
 * up. getxattr and listxattr are answered in C when the lookup reply
 * carried the inode's xattrs (xattr-table.h), as cairn's always do.
 *
 * Handles: a pending request sits in a slot; h = generation * 2^24 + slot,
 * so a reply to an answered (or abandoned) request is refused (returns
 * -EBADF) instead of touching freed memory. Replies return what libfuse
 * returned: 0, or -ENOENT when the kernel no longer wants the answer (the
 * caller was interrupted; a lookup must then not count).
 *
 * Values: names, targets and xattrs are bytes (Buffers). ino is a BigInt
 * (all 64 bits); times are BigInt nanoseconds since the epoch, negative
 * before 1970, split here into a floored second and [0, 1e9) nanoseconds.
 * The -o uid=, gid=, umask= overrides are applied here to every attr.
 *
 * Packed listing (replyDir): per entry, ino (u64 LE), mode (u32 LE), the
 * name (1-255 bytes, no NUL or '/'), a NUL. Entry i is given offset i + 1.
 * Records (ENTRY_RECORD bytes, see session.h) give entries their attributes.
 *
 * Lifetime: close() may be called any number of times, also after the
 * kernel dropped the connection (dispatch is told OP_GONE, once) and from
 * inside dispatch (it then waits for the end of the burst). It ends the
 * helper first (cancelled where it waits; joined). The session's memory is
 * freed once its poll, async and prepare handles are closed and the JS
 * external has been collected, so a late close() never touches freed memory.
 *
 * Errors: bad arguments throw TypeError before the request is touched, so
 * the caller can still answer it. An exception thrown by dispatch is a bug
 * of mount/fuse-binding.ts: the request is answered EIO and the exception
 * raised as uncaught.
 *
 * Node-API (node_api.h, version 8) plus libuv's uv_poll and uv_async, and
 * pthreads. Linux only. The reply functions are in replies.c, the xattr
 * table in xattr-table.c, the content table in content-table.c.
 */
#include "session.h"

static slot_t *slots;
/* The request the calling thread is processing came as READDIRPLUS (see process). */
static __thread bool plus_request;
/* The calling thread is the session's helper (see helper_main). */
static __thread bool on_helper;
static uint32_t nslots, slots_cap;
static int32_t free_head = -1;

napi_value type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* ---- request slots -------------------------------------------------------------------------------- */

static double slot_take(session_t *s, fuse_req_t req, size_t size) {
  int32_t i = free_head;
  if (i >= 0) {
    free_head = slots[i].next_free;
  } else {
    if (nslots == SLOT_LIMIT) return -1;
    if (nslots == slots_cap) {
      uint32_t cap = slots_cap ? slots_cap * 2 : 256;
      slot_t *grown = realloc(slots, cap * sizeof *slots);
      if (grown == NULL) return -1;
      slots = grown;
      slots_cap = cap;
    }
    i = (int32_t)nslots++;
    slots[i].gen = 0;
  }
  slot_t *sl = &slots[i];
  sl->req = req;
  sl->s = s;
  s->pending++;
  sl->size = size;
  sl->gen = (sl->gen + 1) % GEN_LIMIT;
  return (double)sl->gen * SLOT_LIMIT + i;
}

void slot_free(slot_t *sl) {
  if (sl->s) sl->s->pending--;
  sl->req = NULL;
  sl->s = NULL;
  sl->next_free = free_head;
  free_head = (int32_t)(sl - slots);
}

slot_t *slot_find(double h) {
  if (!(h >= 0) || h > 9007199254740991.0) return NULL;
  uint64_t v = (uint64_t)h;
  uint32_t i = (uint32_t)(v % SLOT_LIMIT);
  uint32_t gen = (uint32_t)(v / SLOT_LIMIT);
  if (i >= nslots || slots[i].req == NULL || slots[i].gen != gen) return NULL;
  return &slots[i];
}

/* ---- calling JavaScript --------------------------------------------------------------------------- */

static void answer_err(slot_t *sl, int err) {
  fuse_reply_err(sl->req, err);
  slot_free(sl);
}

/*
 * dispatch(op, h, ino, extra...) for `req` (NULL: nothing to answer, as for forget), inside the callback
 * scope run_queued runs in. A request that cannot be handed over is answered here (EIO, EAGAIN).
 */
static void call_js(session_t *s, int op, fuse_req_t req, size_t size, off_t off, bool plus, fuse_ino_t ino, size_t extra_argc,
                    napi_value *extra) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    if (req) fuse_reply_err(req, EIO);
    return;
  }
  double h = 0;
  if (req != NULL && (h = slot_take(s, req, size)) < 0) {
    fuse_reply_err(req, EAGAIN);
    napi_close_handle_scope(env, scope);
    return;
  }
  if (req != NULL) {
    slot_t *sl = slot_find(h);
    sl->off = off;
    sl->ino = ino;
    sl->plus = plus;
  }
  napi_value argv[8], fn, recv, result;
  size_t argc = 3 + extra_argc;
  bool ok = napi_create_int32(env, op, &argv[0]) == napi_ok
         && napi_create_double(env, h, &argv[1]) == napi_ok
         && napi_create_bigint_uint64(env, ino, &argv[2]) == napi_ok
         && napi_get_reference_value(env, s->dispatch, &fn) == napi_ok
         && napi_get_undefined(env, &recv) == napi_ok;
  for (size_t i = 0; i < extra_argc; i++) argv[3 + i] = extra[i];
  napi_status st = ok ? napi_call_function(env, recv, fn, argc, argv, &result) : napi_generic_failure;
  if (st != napi_ok) {
    slot_t *sl = req ? slot_find(h) : NULL;
    if (sl) answer_err(sl, EIO);
    napi_value err;
    if (napi_get_and_clear_last_exception(env, &err) == napi_ok) {
      napi_valuetype t;
      if (napi_typeof(env, err, &t) == napi_ok && t != napi_undefined) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static napi_value bytes(napi_env env, const void *data, size_t len) {
  napi_value v = NULL;
  void *copy;
  if (napi_create_buffer_copy(env, len, data, &copy, &v) != napi_ok) napi_get_undefined(env, &v);
  return v;
}

static napi_value num(napi_env env, double d) {
  napi_value v = NULL;
  napi_create_double(env, d, &v);
  return v;
}

/* ---- handing requests to JavaScript --------------------------------------------------------------- */

/*
 * Queues `op` for JavaScript: the main thread hands what it queued over at the end of its burst of
 * requests (run_queued), and is woken for what the helper queued. `name` (NUL-terminated) is copied; `req`
 * (NULL for forget and gone) is answered EIO if there is no memory to queue it.
 */
static void queue_for_js(session_t *s, int op, fuse_req_t req, size_t size, off_t off, fuse_ino_t ino, uint64_t nlookup, const char *name) {
  size_t namelen = name ? strlen(name) : 0;
  queued_t *q = malloc(sizeof *q + namelen);
  if (q == NULL) {
    if (req) fuse_reply_err(req, EIO);
    return;
  }
  *q = (queued_t){ .op = op, .req = req, .size = size, .off = off, .ino = ino, .nlookup = nlookup, .plus = plus_request,
                   .pid = req ? fuse_req_ctx(req)->pid : 0, .namelen = namelen };
  if (namelen) memcpy(q->name, name, namelen);
  pthread_mutex_lock(&s->queue_lock);
  if (s->queue_tail) s->queue_tail->next = q;
  else s->queue_head = q;
  s->queue_tail = q;
  pthread_mutex_unlock(&s->queue_lock);
  if (on_helper) uv_async_send(&s->async);
}

static queued_t *queue_take_all(session_t *s) {
  pthread_mutex_lock(&s->queue_lock);
  queued_t *q = s->queue_head;
  s->queue_head = s->queue_tail = NULL;
  pthread_mutex_unlock(&s->queue_lock);
  return q;
}

/* Main thread: dispatch() for a queued request. */
static void call_js_for(session_t *s, const queued_t *q) {
  napi_env env = s->env;
  napi_value extra[2];
  size_t n = 0;
  switch (q->op) {
    case OP_LOOKUP:
      extra[n++] = bytes(env, q->name, q->namelen);
      extra[n++] = num(env, (double)q->pid);
      break;
    case OP_LIST:
      extra[n++] = num(env, (double)q->pid);
      break;
    case OP_GETXATTR:
      extra[n++] = bytes(env, q->name, q->namelen);
      break;
    case OP_FORGET:
      extra[n++] = num(env, (double)q->nlookup);
      break;
    case OP_READ:
      extra[n++] = num(env, (double)q->size);
      extra[n++] = num(env, (double)q->off);
      break;
  }
  call_js(s, q->op, q->req, q->size, q->off, q->plus, q->ino, n, extra);
}

/* ---- low-level operations (called by fuse_session_process, on the main thread or the helper) ------ */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  queue_for_js(fuse_req_userdata(req), OP_LOOKUP, req, 0, 0, parent, 0, name);
}

static void forget_one(session_t *s, fuse_ino_t ino, uint64_t nlookup) {
  tables_lock(s);
  xattr_table_forget(&s->xattrs, ino, nlookup);
  if (positional(ino)) content_forget(&s->contents, content_key(ino));
  tables_unlock(s);
  if (!positional(ino)) queue_for_js(s, OP_FORGET, NULL, 0, 0, ino, nlookup, NULL); /* JavaScript keeps nothing for positional ones */
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, unsigned long nlookup) {
  forget_one(fuse_req_userdata(req), ino, nlookup);
  fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  session_t *s = fuse_req_userdata(req);
  for (size_t i = 0; i < count; i++) forget_one(s, forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  queue_for_js(fuse_req_userdata(req), OP_GETATTR, req, 0, 0, ino, 0, NULL);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  queue_for_js(fuse_req_userdata(req), OP_READLINK, req, 0, 0, ino, 0, NULL);
}

/*
 * Directories are never opened: the first OPENDIR is answered ENOSYS, after which the kernel (5.1 and
 * later) sends neither OPENDIR nor RELEASEDIR again and keeps what READDIR returns in its own readdir
 * cache (FOPEN_CACHE_DIR is its default then). A walk thus costs one request fewer per directory each
 * way. READDIR at offset 0 asks JavaScript for the whole listing (as OP_LIST); the pages after it come
 * from the listing kept here by inode, which goes at the end of the directory or when DIRS_KEPT newer
 * listings push it out (a later page then asks JavaScript again: listings are stable).
 */
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  fuse_reply_err(req, ENOSYS);
}

/* The session's reply scratch buffer (under the tables' lock), at least `size` bytes; NULL (and answered ENOMEM) if it cannot grow. */
static char *scratch(session_t *s, fuse_req_t req, size_t size) {
  if (size > s->dirbufsize) {
    char *grown = realloc(s->dirbuf, size);
    if (grown == NULL) { fuse_reply_err(req, ENOMEM); return NULL; }
    s->dirbuf = grown;
    s->dirbufsize = size;
  }
  return s->dirbuf;
}

static dir_t *dir_find(session_t *s, fuse_ino_t ino) {
  for (dir_t *d = s->dirs.next; d != &s->dirs; d = d->next) {
    if (d->ino == ino) return d;
  }
  return NULL;
}

static void dir_link_first(session_t *s, dir_t *d) {
  d->next = s->dirs.next;
  d->prev = &s->dirs;
  s->dirs.next->prev = d;
  s->dirs.next = d;
}

static void dir_unlink(dir_t *d) {
  d->prev->next = d->next;
  d->next->prev = d->prev;
}

void dir_free(session_t *s, dir_t *d) {
  dir_unlink(d);
  s->ndirs--;
  free(d->data);
  free(d->pos);
  free(d->records);
  free(d->xattrs);
  free(d);
}

/* The kernel's layout of a READDIRPLUS entry (protocol 7.21): an entry as LOOKUP answers it, then the dirent. */
struct direntplus {
  struct fuse_entry_out entry_out;
  struct fuse_dirent dirent;
};

static uint64_t whole_seconds(double t) { return t > 0 ? (uint64_t)t : 0; }
static uint32_t nanoseconds(double t) { return t > 0 ? (uint32_t)((t - (double)(uint64_t)t) * 1e9) : 0; }

static void fuse_attr_of(const struct stat *st, struct fuse_attr *a) {
  a->ino = st->st_ino;
  a->mode = st->st_mode;
  a->nlink = (uint32_t)st->st_nlink;
  a->uid = st->st_uid;
  a->gid = st->st_gid;
  a->rdev = (uint32_t)st->st_rdev;
  a->size = (uint64_t)st->st_size;
  a->blocks = (uint64_t)st->st_blocks;
  a->blksize = (uint32_t)st->st_blksize;
  a->atime = (uint64_t)st->st_atim.tv_sec;
  a->mtime = (uint64_t)st->st_mtim.tv_sec;
  a->ctime = (uint64_t)st->st_ctim.tv_sec;
  a->atimensec = (uint32_t)st->st_atim.tv_nsec;
  a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
  a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
}

/* Entry `i` of `d` as a READDIRPLUS entry at `out` (`room` bytes): its size, or 0 if it does not fit. `rec`: its record, or NULL (no attributes: nodeid 0, which the kernel takes as "not looked up"). */
static size_t direntplus_put(const session_t *s, const dir_t *d, uint64_t i, const char *rec, char *out, size_t room) {
  const char *e = d->data + d->pos[i];
  const char *name = e + ENTRY_HEADER;
  size_t namelen = strlen(name);
  size_t size = FUSE_DIRENT_ALIGN(offsetof(struct direntplus, dirent.name) + namelen);
  if (size > room) return 0;
  memset(out, 0, size);
  struct direntplus *dp = (struct direntplus *)out;
  uint64_t ino = u64_at(e);
  uint32_t mode = u32_at(e + 8);
  if (rec != NULL) {
    int64_t times[3] = { (int64_t)u64_at(rec + 40), (int64_t)u64_at(rec + 48), (int64_t)u64_at(rec + 56) };
    struct stat st;
    make_stat(s, ino, mode, u32_at(rec + 4), u32_at(rec + 8), u32_at(rec + 12), u32_at(rec + 16), (int64_t)u64_at(rec + 24),
              (int64_t)u64_at(rec + 32), u32_at(rec + 20), times, &st);
    double entry_valid = f64_at(rec + 72), attr_valid = f64_at(rec + 80);
    if (entry_valid < 0) entry_valid = s->entry_timeout;
    if (attr_valid < 0) attr_valid = s->attr_timeout;
    uint64_t nodeid = u64_at(rec + 88);
    dp->entry_out.nodeid = nodeid != 0 ? nodeid : ino;
    dp->entry_out.entry_valid = whole_seconds(entry_valid);
    dp->entry_out.entry_valid_nsec = nanoseconds(entry_valid);
    dp->entry_out.attr_valid = whole_seconds(attr_valid);
    dp->entry_out.attr_valid_nsec = nanoseconds(attr_valid);
    fuse_attr_of(&st, &dp->entry_out.attr);
  }
  dp->dirent.ino = ino;
  dp->dirent.off = i + 1;
  dp->dirent.namelen = (uint32_t)namelen;
  dp->dirent.type = (mode & S_IFMT) >> 12;
  memcpy(dp->dirent.name, name, namelen);
  return size;
}

/* The first of `n` records (ascending indexes) whose index is at least `index`. */
static size_t record_from(const char *records, size_t n, uint64_t index) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (u32_at(records + mid * ENTRY_RECORD) < index) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/*
 * Answers a READDIR (or READDIRPLUS) from `d`; the listing is dropped once a page past its end was asked
 * for. `records` give entries their attributes (see dir_keep_and_serve); *given counts those with nodeid 0
 * that went.
 */
static int dir_serve(session_t *s, fuse_req_t req, dir_t *d, size_t size, off_t off, bool plus, const char *records, size_t nrecords,
                     const char *xattrs, uint32_t *given) {
  if (scratch(s, req, size) == NULL) return -ENOMEM;
  size_t used = 0;
  struct stat st;
  memset(&st, 0, sizeof st);
  uint64_t first = off < 0 ? 0 : (uint64_t)off;
  size_t r0 = plus ? record_from(records, nrecords, first) : nrecords, r = r0;
  for (uint64_t i = first; i < d->count; i++) {
    size_t n;
    if (plus) {
      const char *rec = r < nrecords && u32_at(records + r * ENTRY_RECORD) == i ? records + r * ENTRY_RECORD : NULL;
      n = direntplus_put(s, d, i, rec, s->dirbuf + used, size - used);
      if (n == 0) break;
      if (rec != NULL) r++;
    } else {
      const char *e = d->data + d->pos[i];
      st.st_ino = (ino_t)u64_at(e);
      st.st_mode = (mode_t)u32_at(e + 8);
      n = fuse_add_direntry(req, s->dirbuf + used, size - used, e + ENTRY_HEADER, &st, (off_t)(i + 1));
      if (n > size - used) break;
    }
    used += n;
  }
  int res = fuse_reply_buf(req, s->dirbuf, used);
  if (res != 0) r = r0; /* the kernel did not take the page */
  uint32_t counted = 0;
  for (size_t k = r0; k < r; k++) { /* out of memory: JavaScript answers their xattrs */
    const char *rec = records + k * ENTRY_RECORD;
    uint64_t nodeid = u64_at(rec + 88);
    uint32_t n = u32_at(rec + 68);
    if (nodeid == 0) counted++;
    if (nodeid == 0 || n > 0) xattr_table_remember(&s->xattrs, nodeid ? nodeid : u64_at(d->data + d->pos[u32_at(rec)]), n ? xattrs + u32_at(rec + 64) : NULL, n);
  }
  if (given != NULL) *given = counted;
  if (first >= d->count) dir_free(s, d);
  return res;
}

int dir_keep_and_serve(session_t *s, fuse_req_t req, dir_t *d, size_t size, off_t off, bool plus, const char *records, size_t nrecords,
                       const char *xattrs, uint32_t *given) {
  tables_lock(s);
  dir_t *old = dir_find(s, d->ino);
  if (old != NULL) dir_free(s, old);
  while (s->ndirs >= DIRS_KEPT) dir_free(s, s->dirs.prev);
  dir_link_first(s, d);
  s->ndirs++;
  /* All records only at offset 0, so that those JavaScript counts are always the first ones. */
  int r = off != 0 ? dir_serve(s, req, d, size, off, plus, d->records, d->nrecords, d->xattrs, given)
                   : dir_serve(s, req, d, size, off, plus, records, nrecords, xattrs, given);
  tables_unlock(s);
  return r;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  session_t *s = fuse_req_userdata(req);
  tables_lock(s);
  dir_t *d = off > 0 ? dir_find(s, ino) : NULL;
  if (d != NULL) {
    dir_unlink(d); /* most recently used first */
    dir_link_first(s, d);
    dir_serve(s, req, d, size, off, plus_request, d->records, d->nrecords, d->xattrs, NULL); /* the entries named by position */
  }
  tables_unlock(s);
  if (d == NULL) queue_for_js(s, OP_LIST, req, size, off, ino, 0, NULL);
}

/*
 * Files are not opened either when their pages may stay cached between opens (keepCache): ENOSYS once,
 * as for directories, and the kernel's default is then FOPEN_KEEP_CACHE. Opening for writing fails in
 * the kernel already, the mount being read-only.
 */
static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  session_t *s = fuse_req_userdata(req);
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) { fuse_reply_err(req, EROFS); return; }
  if (s->keep_cache) { fuse_reply_err(req, ENOSYS); return; }
  fi->fh = 0;
  fuse_reply_open(req, fi);
}

/* A file whose content was staged (js_stage) is answered here; the rest asks JavaScript. */
static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  session_t *s = fuse_req_userdata(req);
  tables_lock(s);
  content_t *c = positional(ino) ? content_find(&s->contents, content_key(ino)) : NULL;
  if (c != NULL) {
    size_t n = off < 0 || (uint64_t)off >= c->len ? 0 : c->len - (size_t)off;
    if (n > size) n = size;
    fuse_reply_buf(req, n ? c->data + off : NULL, n);
    content_served(&s->contents, c, n);
  }
  tables_unlock(s);
  if (c == NULL) queue_for_js(s, OP_READ, req, size, off, ino, 0, NULL);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  queue_for_js(fuse_req_userdata(req), OP_STATFS, req, 0, 0, ino, 0, NULL);
}

int reply_sized(fuse_req_t req, size_t size, const char *data, size_t len) {
  if (size == 0) return fuse_reply_xattr(req, len);
  if (len > size) return fuse_reply_err(req, ERANGE);
  return fuse_reply_buf(req, data, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  session_t *s = fuse_req_userdata(req);
  if (positional_without_xattrs(ino)) {
    fuse_reply_err(req, ENODATA);
    return;
  }
  tables_lock(s);
  const xattr_entry_t *e = xattr_table_find(&s->xattrs, ino);
  if (e != NULL) {
    const char *value;
    size_t len;
    if (xattr_get(e, name, &value, &len)) reply_sized(req, size, value, len);
    else fuse_reply_err(req, ENODATA);
  }
  tables_unlock(s);
  if (e == NULL) queue_for_js(s, OP_GETXATTR, req, size, 0, ino, 0, name);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  session_t *s = fuse_req_userdata(req);
  if (positional_without_xattrs(ino)) {
    reply_sized(req, size, NULL, 0);
    return;
  }
  tables_lock(s);
  const xattr_entry_t *e = xattr_table_find(&s->xattrs, ino);
  if (e != NULL && e->len == 0) {
    reply_sized(req, size, NULL, 0);
  } else if (e != NULL) {
    char *out = scratch(s, req, e->len);
    if (out != NULL) reply_sized(req, size, out, xattr_list(e, out, e->len)); /* the names fit in the blob's size */
  }
  tables_unlock(s);
  if (e == NULL) queue_for_js(s, OP_LISTXATTR, req, size, 0, ino, 0, NULL);
}

/* Every modifying request: read-only file system. */
static void erofs(fuse_req_t req) { fuse_reply_err(req, EROFS); }
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) { erofs(req); }
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) { erofs(req); }
static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) { erofs(req); }
static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) { erofs(req); }
static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) { erofs(req); }
static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname) { erofs(req); }
static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) { erofs(req); }
static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) { erofs(req); }
static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) { erofs(req); }
static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) { erofs(req); }
static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) { erofs(req); }
static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi) { erofs(req); }

static const struct fuse_lowlevel_ops ll_ops = {
  .lookup = op_lookup,
  .forget = op_forget,
  .forget_multi = op_forget_multi,
  .getattr = op_getattr,
  .readlink = op_readlink,
  .opendir = op_opendir,
  .readdir = op_readdir,
  .open = op_open,
  .read = op_read,
  .statfs = op_statfs,
  .getxattr = op_getxattr,
  .listxattr = op_listxattr,
  .setattr = op_setattr,
  .mknod = op_mknod,
  .mkdir = op_mkdir,
  .unlink = op_unlink,
  .rmdir = op_unlink,
  .symlink = op_symlink,
  .rename = op_rename,
  .link = op_link,
  .write = op_write,
  .setxattr = op_setxattr,
  .removexattr = op_removexattr,
  .create = op_create,
  .fallocate = op_fallocate,
};

/* ---- the loop: /dev/fuse readable -> every waiting request ---------------------------------------- */

static void session_close(session_t *s);

/*
 * READDIRPLUS (protocol 7.21) through libfuse 2, which speaks 7.19: INIT is handed to libfuse with the
 * channel init_ch, whose send adds the flag that asks the kernel for READDIRPLUS, for every page (not
 * the adaptive mode, which asks for it at a directory's first page only until a program looks names up
 * in it: cp -a reads a whole directory before it stats any) when the kernel offered it. A READDIRPLUS
 * request carries the same fuse_read_in as READDIR, so it is handed to libfuse as READDIR, and op_readdir,
 * seeing plus_request, answers in READDIRPLUS's layout. Why: an entry given with its attributes in its
 * parent's listing is not looked up when a program enters or stats it (one request fewer per directory
 * of a walk, and per file of a cp -a).
 */
static int init_send(struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  session_t *s = fuse_chan_data(ch);
  struct iovec out[2];
  struct fuse_init_out init;
  const struct fuse_out_header *head = count == 2 && iov[0].iov_len == sizeof *head ? iov[0].iov_base : NULL;
  if (head != NULL && head->error == 0 && s->plus_offered && iov[1].iov_len <= sizeof init
      && iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + sizeof init.flags) {
    memcpy(&init, iov[1].iov_base, iov[1].iov_len);
    init.flags |= INIT_DO_READDIRPLUS;
    out[0] = iov[0];
    out[1] = (struct iovec){ .iov_base = &init, .iov_len = iov[1].iov_len };
    iov = out;
  }
  return writev(fuse_chan_fd(ch), iov, (int)count) == -1 ? -errno : 0;
}

/* init_ch only sends (requests are read through s->ch, which owns the fd). */
static int init_receive(struct fuse_chan **chp, char *buf, size_t size) { return -EIO; }
static void init_destroy(struct fuse_chan *ch) {}
static struct fuse_chan_ops init_ops = { .receive = init_receive, .send = init_send, .destroy = init_destroy };

/*
 * Hands one request read into `buf` to libfuse (see init_send for INIT and READDIRPLUS). Either thread may
 * read INIT; the kernel sends nothing else before it is answered, so nothing else is processed meanwhile.
 */
static void process(session_t *s, char *buf, size_t len, struct fuse_chan *ch) {
  struct fuse_in_header *in = (struct fuse_in_header *)buf;
  if (in->opcode == FUSE_INIT && s->init_ch != NULL && len >= sizeof *in + sizeof(struct fuse_init_in)) {
    const struct fuse_init_in *arg = (const struct fuse_init_in *)(buf + sizeof *in);
    s->plus_offered = arg->major == FUSE_KERNEL_VERSION && (arg->flags & INIT_DO_READDIRPLUS) != 0;
    fuse_session_process(s->se, buf, len, s->init_ch);
    fuse_chan_destroy(s->init_ch);
    s->init_ch = NULL;
    return;
  }
  plus_request = in->opcode == OPCODE_READDIRPLUS && s->plus_offered;
  if (plus_request) in->opcode = FUSE_READDIR;
  fuse_session_process(s->se, buf, len, ch);
  plus_request = false;
}

/* Hands what was queued to JavaScript, in the order it came; inside a callback scope. */
static void run_queued(session_t *s) {
  s->in_loop = 1;
  for (queued_t *q = queue_take_all(s), *next; q != NULL; q = next) {
    next = q->next;
    if (q->op == OP_GONE) {
      if (s->state == LIVE) {
        s->state = GONE;
        uv_poll_stop(&s->poll);
        call_js(s, OP_GONE, NULL, 0, 0, false, 0, 0, NULL);
      }
    } else if (s->state == LIVE && !s->close_wanted) {
      call_js_for(s, q);
    } else if (q->req != NULL) {
      fuse_reply_err(q->req, EIO);
    }
    free(q);
  }
  s->in_loop = 0;
  if (s->close_wanted) session_close(s);
}

/* Runs `fn(s)` inside a handle scope and the session's callback scope (promises and nextTicks run as it closes). */
static void in_callback_scope(session_t *s, void (*fn)(session_t *)) {
  napi_env env = s->env;
  napi_handle_scope hs;
  napi_callback_scope cs;
  napi_value resource;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  if (napi_get_reference_value(env, s->resource, &resource) != napi_ok
      || napi_open_callback_scope(env, resource, s->actx, &cs) != napi_ok) {
    napi_close_handle_scope(env, hs);
    return;
  }
  fn(s);
  napi_close_callback_scope(env, cs);
  napi_close_handle_scope(env, hs);
}

/* Main thread: reads every request waiting in /dev/fuse, then hands what JavaScript must answer over. */
static void read_burst(session_t *s) {
  uint64_t now = uv_hrtime();
  atomic_store(&s->beat_ns, now);
  atomic_store(&s->last_request_ns, now);
  while (s->state == LIVE && !s->close_wanted) {
    struct fuse_chan *ch = s->ch;
    int res = fuse_chan_recv(&ch, s->buf, s->bufsize);
    if (res == -EINTR) continue;
    if (res == -EAGAIN) break;
    if (res <= 0 || (process(s, s->buf, (size_t)res, ch), fuse_session_exited(s->se))) { /* 0: unmounted (ENODEV) */
      queue_for_js(s, OP_GONE, NULL, 0, 0, 0, 0, NULL);
      break;
    }
  }
  run_queued(s);
  atomic_store(&s->beat_ns, uv_hrtime());
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  session_t *s = handle->data;
  if (s->state == LIVE) in_callback_scope(s, read_burst);
}

/* Main thread: the helper queued requests. */
static void on_queued(uv_async_t *handle) {
  session_t *s = handle->data;
  if (s->state != CLOSED) in_callback_scope(s, run_queued);
}

/*
 * The helper: while the main thread is away from /dev/fuse for over AWAY_NS (running JavaScript: loading
 * a directory's files ahead, collecting garbage, compiling), it reads requests too, answers those the
 * tables can, and queues the rest for the main thread (waking it). In a cold cp -a of the medium corpus's
 * 1,999 small files, 20 LISTXATTR and GETXATTR requests waited behind the main thread before, 1-70 ms
 * each, 175 ms in all; 6 ms so (bench/fuse-trace.py). Why not a thread reading every request: on this machine (a VM with
 * 2 vCPUs) waking a thread costs 20-30 µs, and a walk, whose every other request JavaScript answers, took
 * 12-15% longer so; the main thread, spinning between requests (on_prepare), is woken by none.
 * The main thread notes when it last was at /dev/fuse (beat_ns: each turn of its loop, each burst). While
 * it is, the helper looks again every AWAY_NS; while it is not, the helper waits for requests, looking
 * again every AWAY_NS, or, the mount having been idle for IDLE_NS, for as long as none comes (a request
 * then wakes both threads, and either reads it). It is cancelled (close) only where it waits.
 */
#define AWAY_NS 1000000ull
#define IDLE_NS 100000000ull

static void *helper_main(void *arg) {
  session_t *s = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main thread's (libuv's) */
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
  on_helper = true;
  char *buf = malloc(s->bufsize);
  struct pollfd p = { .fd = fuse_chan_fd(s->ch), .events = POLLIN };
  while (buf != NULL) {
    uint64_t now = uv_hrtime(), beat = atomic_load(&s->beat_ns);
    if (now - beat < AWAY_NS) {
      struct timespec nap = { 0, (long)(beat + AWAY_NS - now) };
      pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
      nanosleep(&nap, NULL);
      pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
      continue;
    }
    struct fuse_chan *ch = s->ch;
    int res = fuse_chan_recv(&ch, buf, s->bufsize);
    if (res == -EAGAIN) {
      bool idle = now - atomic_load(&s->last_request_ns) > IDLE_NS;
      pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
      poll(&p, 1, idle ? -1 : (int)(AWAY_NS / 1000000));
      pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    } else if (res > 0) {
      atomic_store(&s->last_request_ns, uv_hrtime());
      process(s, buf, (size_t)res, ch);
    } else if (res != -EINTR) {
      break; /* the kernel dropped the connection: the main thread sees it too */
    }
  }
  free(buf);
  return NULL;
}

/*
 * Waiting for the next request without sleeping. A request answered in C costs its client 45-79 µs
 * here when the daemon sleeps between requests and 36-55 µs when it does not (a VM with 2 vCPUs: waking
 * a halted CPU is the expensive part): a program walking the mount sends its next request a few dozen µs
 * after getting an answer. So before libuv blocks, if a request came in the last RECENT_NS and there is
 * another CPU for the client to run on, /dev/fuse and libuv's own epoll descriptor are polled for up to
 * SPIN_NS: a request is read at once, and anything else libuv waits for on a descriptor (a tree read by
 * its thread pool, a worker's message, the helper's queue) ends the spin for libuv to handle. After a
 * burst it waits on for the next request, unless libuv has work waiting or a timer falls due within
 * SPIN_NS: a walk's requests for JavaScript and for C alternate, and returning to libuv after each put
 * every other one behind a wakeup. Measured on the medium corpus (4 runs each, cold): a walk took 1.93 s
 * instead of 2.15 s (median) and cp -a of 1,999 small files 1.34 s instead of 1.46 s; spinning also while
 * reads were in libuv's pool (it used to stop then) took the walk from 1.13 to 1.08 s with cold reads as
 * fast; waiting on after a burst, 1.29-1.56 s against 1.36-2.23 s (8 alternated runs each, medians 1.52
 * and 1.57 s). An idle mount never spins.
 */
#define SPIN_NS 100000ull
#define RECENT_NS 2000000ull

static void on_prepare(uv_prepare_t *handle) {
  session_t *s = handle->data;
  if (s->state != LIVE) return;
  uint64_t now = uv_hrtime();
  atomic_store(&s->beat_ns, now);
  if (!s->spin || now - atomic_load(&s->last_request_ns) > RECENT_NS) return;
  struct pollfd p[2] = { { .fd = fuse_chan_fd(s->ch), .events = POLLIN }, { .fd = uv_backend_fd(handle->loop), .events = POLLIN } };
  for (uint64_t until = now + SPIN_NS; uv_hrtime() < until;) {
    if (poll(p, 2, 0) <= 0) continue;
    if (!(p[0].revents & POLLIN)) return; /* libuv's own event */
    on_readable(&s->poll, 0, UV_READABLE);
    int timeout = uv_backend_timeout(handle->loop);
    if (s->state != LIVE || timeout == 0) return; /* libuv has work waiting (immediates, closing handles) */
    now = uv_hrtime();
    atomic_store(&s->beat_ns, now);
    until = now + SPIN_NS;
    if (timeout > 0 && until > now + (uint64_t)timeout * 1000000) return; /* a timer falls due first */
  }
}

static void session_unref(session_t *s) {
  if (--s->refs == 0) free(s);
}

static void free_session(uv_handle_t *handle) { free(handle->data); }

static void on_handle_closed(uv_handle_t *handle) {
  session_unref(handle->data);
}

static void on_external_collected(napi_env env, void *data, void *hint) {
  session_unref(data);
}

/* Ends the helper: at once, since it is cancelled only where it sleeps or waits. */
static void stop_helper(session_t *s) {
  if (!s->helper_started) return;
  pthread_cancel(s->helper);
  pthread_join(s->helper, NULL);
  s->helper_started = false;
}

/* Answers what is still pending, frees the listings, destroys the session (closing /dev/fuse). */
static void session_close(session_t *s) {
  if (s->state == CLOSED) return;
  if (s->in_loop) { s->close_wanted = 1; return; }
  s->state = CLOSED;
  stop_helper(s);
  uv_poll_stop(&s->poll);
  uv_prepare_stop(&s->prepare);
  for (queued_t *q = queue_take_all(s), *next; q != NULL; q = next) {
    next = q->next;
    if (q->req != NULL) fuse_reply_err(q->req, EIO);
    free(q);
  }
  for (uint32_t i = 0; i < nslots; i++) {
    if (slots[i].req != NULL && slots[i].s == s) answer_err(&slots[i], EIO);
  }
  while (s->dirs.next != &s->dirs) dir_free(s, s->dirs.next);
  xattr_table_free(&s->xattrs);
  content_table_free(&s->contents);
  if (s->init_ch != NULL) fuse_chan_destroy(s->init_ch);
  s->init_ch = NULL;
  fuse_session_destroy(s->se); /* also destroys the channel: closes the fd */
  s->se = NULL;
  s->ch = NULL;
  free(s->buf);
  free(s->dirbuf);
  pthread_mutex_destroy(&s->lock);
  pthread_mutex_destroy(&s->queue_lock);
  napi_async_destroy(s->env, s->actx);
  napi_delete_reference(s->env, s->dispatch);
  napi_delete_reference(s->env, s->resource);
  uv_close((uv_handle_t *)&s->poll, on_handle_closed);
  uv_close((uv_handle_t *)&s->async, on_handle_closed);
  uv_close((uv_handle_t *)&s->prepare, on_handle_closed);
}

/* ---- exported functions --------------------------------------------------------------------------- */

static bool get_double(napi_env env, napi_value v, double *out) {
  return napi_get_value_double(env, v, out) == napi_ok;
}

static bool get_int64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

static napi_value mount(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  if (argc != 9) return type_error(env, "mount(mountpoint, options, attrTimeout, entryTimeout, keepCache, uid, gid, umask, dispatch)");
  char mountpoint[4096], options[4096];
  size_t len;
  if (napi_get_value_string_utf8(env, argv[0], mountpoint, sizeof mountpoint, &len) != napi_ok || len + 1 >= sizeof mountpoint)
    return type_error(env, "the mount point must be a string shorter than 4095 bytes");
  if (napi_get_value_string_utf8(env, argv[1], options, sizeof options, &len) != napi_ok || len + 1 >= sizeof options)
    return type_error(env, "the options must be a string shorter than 4095 bytes");
  double attr_timeout, entry_timeout;
  int64_t keep_cache, uid, gid, umask;
  if (!get_double(env, argv[2], &attr_timeout) || !get_double(env, argv[3], &entry_timeout) || !get_int64(env, argv[4], &keep_cache)
      || !get_int64(env, argv[5], &uid) || !get_int64(env, argv[6], &gid) || !get_int64(env, argv[7], &umask))
    return type_error(env, "timeouts, keepCache, uid, gid and umask must be numbers");
  napi_valuetype t;
  CHECK(env, napi_typeof(env, argv[8], &t), NULL);
  if (t != napi_function) return type_error(env, "dispatch must be a function");

  session_t *s = calloc(1, sizeof *s);
  if (s == NULL) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  s->env = env;
  s->attr_timeout = attr_timeout;
  s->entry_timeout = entry_timeout;
  s->keep_cache = keep_cache != 0;
  s->uid = uid;
  s->gid = gid;
  s->umask = umask;
  s->dirs.next = s->dirs.prev = &s->dirs;

  /* Mount options go to fuse_mount (the kernel's and fusermount's); the session gets none. */
  char *mount_argv[] = { "cairn", "-o", options, NULL };
  struct fuse_args margs = FUSE_ARGS_INIT(options[0] ? 3 : 1, mount_argv);
  s->ch = fuse_mount(mountpoint, &margs);
  fuse_opt_free_args(&margs);
  if (s->ch == NULL) {
    free(s);
    napi_throw_error(env, "EMOUNT", "fuse_mount failed (libfuse printed the reason on stderr)");
    return NULL;
  }
  char *ll_argv[] = { "cairn", NULL };
  struct fuse_args largs = FUSE_ARGS_INIT(1, ll_argv);
  s->se = fuse_lowlevel_new(&largs, &ll_ops, sizeof ll_ops, s);
  fuse_opt_free_args(&largs);
  int fd = fuse_chan_fd(s->ch);
  s->bufsize = fuse_chan_bufsize(s->ch);
  s->buf = malloc(s->bufsize);
  s->init_ch = fuse_chan_new(&init_ops, fd, s->bufsize, s); /* NULL (out of memory): no READDIRPLUS */
  uv_loop_t *loop = NULL;
  bool ok = s->se != NULL && s->buf != NULL
         && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0
         && napi_get_uv_event_loop(env, &loop) == napi_ok
         && uv_poll_init(loop, &s->poll, fd) == 0;
  bool loop_frees = false; /* handles of s are closing: the last one's callback frees it */
  if (ok) {
    s->poll.data = s;
    ok = uv_async_init(loop, &s->async, on_queued) == 0;
    if (!ok) uv_close((uv_handle_t *)&s->poll, free_session);
    loop_frees = !ok;
  }
  if (ok) {
    uv_unref((uv_handle_t *)&s->async); /* the poll keeps the process alive while the session is */
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->queue_lock, NULL);
    fuse_session_add_chan(s->se, s->ch);
    s->async.data = s;
    ok = s->helper_started = pthread_create(&s->helper, NULL, helper_main, s) == 0;
    if (!ok) {
      uv_close((uv_handle_t *)&s->poll, NULL);
      uv_close((uv_handle_t *)&s->async, free_session);
    }
    loop_frees = !ok;
  }
  if (!ok) {
    if (s->init_ch) fuse_chan_destroy(s->init_ch);
    if (s->se) fuse_session_destroy(s->se);
    else fuse_chan_destroy(s->ch);
    fuse_unmount(mountpoint, NULL);
    free(s->buf);
    if (!loop_frees) free(s);
    napi_throw_error(env, "EMOUNT", "could not start the FUSE session");
    return NULL;
  }

  napi_value resource, name, external;
  CHECK(env, napi_create_object(env, &resource), NULL);
  CHECK(env, napi_create_string_utf8(env, "cairn:fuse", NAPI_AUTO_LENGTH, &name), NULL);
  CHECK(env, napi_async_init(env, resource, name, &s->actx), NULL);
  CHECK(env, napi_create_reference(env, resource, 1, &s->resource), NULL);
  CHECK(env, napi_create_reference(env, argv[8], 1, &s->dispatch), NULL);
  s->state = LIVE;
  s->refs = 4; /* the JS external, the poll, the async and the prepare handle */
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  cpu_set_t cpus;
  s->spin = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) > 1 : sysconf(_SC_NPROCESSORS_ONLN) > 1;
  uv_prepare_init(loop, &s->prepare);
  s->prepare.data = s;
  uv_prepare_start(&s->prepare, on_prepare);
  uv_unref((uv_handle_t *)&s->prepare); /* it must not keep the process alive */
  CHECK(env, napi_create_external(env, s, on_external_collected, NULL, &external), NULL);
  return external;
}

static session_t *get_session(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    type_error(env, "not a session");
    return NULL;
  }
  return p;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  session_t *s = argc == 1 ? get_session(env, argv[0]) : NULL;
  if (s == NULL) return NULL;
  session_close(s);
  return NULL;
}

/*
 * invalidate(session, ino): the kernel forgets what it keeps of the inode (attributes, pages, and for a
 * directory the listing in its readdir cache), so that the next access asks again. For a directory whose
 * content changed (the root's list of archives). Returns 0, or -errno (-ENOENT: the kernel keeps nothing).
 */
/*
 * The arguments of a call (session, number, ...) with exactly `argc` of them (at most 3) into `argv`: the
 * session, and the number as all 64 bits of a BigInt. NULL, having thrown (`usage` says what was wanted), if
 * they are not that.
 */
static session_t *session_and_number(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, uint64_t *number,
                                     const char *usage) {
  size_t got = argc;
  CHECK(env, napi_get_cb_info(env, info, &got, argv, NULL, NULL), NULL);
  session_t *s = got == argc ? get_session(env, argv[0]) : NULL;
  if (s == NULL) return NULL;
  bool lossless;
  if (napi_get_value_bigint_uint64(env, argv[1], number, &lossless) != napi_ok || !lossless) {
    type_error(env, usage);
    return NULL;
  }
  return s;
}

static napi_value js_invalidate(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint64_t ino;
  session_t *s = session_and_number(env, info, 2, argv, &ino, "invalidate(session, ino): ino must be a BigInt");
  if (s == NULL) return NULL;
  int r = s->state == LIVE ? fuse_lowlevel_notify_inval_inode(s->ch, (fuse_ino_t)ino, 0, 0) : -ENOTCONN;
  napi_value result;
  CHECK(env, napi_create_int32(env, r, &result), NULL);
  return result;
}

/*
 * stage(session, nodeid, bytes): `bytes` is the whole content of the file the kernel knows as `nodeid` (a
 * number named by position; its xattrs bit is ignored), to be served from here when the kernel reads it
 * (content-table.h). Returns whether it was taken: false when the table is full (or the session closed),
 * and that file is then read through JavaScript.
 */
static napi_value js_stage(napi_env env, napi_callback_info info) {
  static const char usage[] = "stage(session, nodeid, bytes): nodeid must be a BigInt naming an entry by position";
  napi_value argv[3];
  uint64_t nodeid;
  session_t *s = session_and_number(env, info, 3, argv, &nodeid, usage);
  if (s == NULL) return NULL;
  if (!positional(nodeid)) return type_error(env, usage);
  const char *data;
  size_t len;
  if (!get_bytes(env, argv[2], &data, &len)) return NULL; /* it threw */
  tables_lock(s);
  bool taken = s->state == LIVE && content_put(&s->contents, content_key(nodeid), data, len, uv_hrtime());
  tables_unlock(s);
  napi_value result;
  CHECK(env, napi_get_boolean(env, taken, &result), NULL);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
    { "mount", NULL, mount, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
    { "invalidate", NULL, js_invalidate, NULL, NULL, NULL, napi_default, NULL },
    { "stage", NULL, js_stage, NULL, NULL, NULL, napi_default, NULL },
    { "replyErr", NULL, reply_err, NULL, NULL, NULL, napi_default, NULL },
    { "replyEntry", NULL, reply_entry, NULL, NULL, NULL, napi_default, NULL },
    { "replyAttr", NULL, reply_attr, NULL, NULL, NULL, napi_default, NULL },
    { "replyBuf", NULL, reply_buf, NULL, NULL, NULL, napi_default, NULL },
    { "replyReadlink", NULL, reply_readlink, NULL, NULL, NULL, napi_default, NULL },
    { "replyXattr", NULL, reply_xattr, NULL, NULL, NULL, napi_default, NULL },
    { "replyDir", NULL, reply_dir, NULL, NULL, NULL, napi_default, NULL },
    { "replyStatfs", NULL, reply_statfs, NULL, NULL, NULL, napi_default, NULL },
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props), NULL);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
