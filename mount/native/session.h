/*
 * What lowlevel.c (the session, its loop and libfuse's operations) and
 * replies.c (the reply functions JavaScript calls) share: the session, the
 * open listings, the table of pending requests. See lowlevel.c.
 */
#ifndef CAIRN_SESSION_H
#define CAIRN_SESSION_H

#define _GNU_SOURCE
#define FUSE_USE_VERSION 26
#define _FILE_OFFSET_BITS 64

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <fuse_kernel.h> /* libfuse 2's copy (protocol 7.19): the layouts READDIRPLUS and INIT use */
#include <node_api.h>

#include <uv.h>

#include "napi-check.h"
#include "content-table.h"
#include "xattr-table.h"

#ifndef __linux__
#error "cairn's FUSE binding supports Linux only"
#endif

#define NS_PER_SEC 1000000000LL
#define SLOT_BITS 24
#define SLOT_LIMIT (1u << SLOT_BITS)
#define GEN_LIMIT (1u << 28) /* gen * 2^24 + slot stays below 2^53 */
#define NAME_MAX_BYTES 255
#define ENTRY_HEADER 12 /* ino u64 + mode u32 */
/*
 * An entry record of replyDir, little-endian: index u32, nlink, uid, gid, rdev, blksize u32; size, blocks,
 * atime, mtime, ctime 64-bit (times in nanoseconds); where its xattrs are in replyDir's xattr blob: offset
 * u32, length u32; how long the kernel may keep the name and the attributes: seconds, f64 each (negative:
 * the mount's); nodeid u64.
 *
 * nodeid 0: the entry's node is one JavaScript keeps and counts lookups of; the kernel knows it by its
 * inode number, and it is given only on the page at offset 0, whose records JavaScript is told about.
 * Otherwise the entry is named by its position (POSITIONAL_BIT, see mount/fuse-dispatch.ts): JavaScript
 * keeps nothing for it, so its record stays with the listing and goes on whichever page the entry falls,
 * and its lookups are not counted. POSITIONAL_XATTRS_BIT says it has xattrs: without it, getxattr and
 * listxattr of the number are answered here, empty, whatever the kernel has forgotten.
 */
#define ENTRY_RECORD 96
#define POSITIONAL_BIT (1ull << 63)
#define POSITIONAL_XATTRS_BIT (1ull << 62)

static inline bool positional(uint64_t nodeid) { return (nodeid & POSITIONAL_BIT) != 0; }
static inline bool positional_without_xattrs(uint64_t nodeid) { return positional(nodeid) && !(nodeid & POSITIONAL_XATTRS_BIT); }
/* The content table's key of a number named by position: JavaScript stages content without knowing the xattrs bit. */
static inline uint64_t content_key(uint64_t nodeid) { return nodeid & ~POSITIONAL_XATTRS_BIT; }

static inline uint32_t u32_at(const char *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline uint64_t u64_at(const char *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static inline double f64_at(const char *p) { uint64_t v = u64_at(p); double d; memcpy(&d, &v, 8); return d; }

/* Protocol 7.21, which libfuse 2 (7.19) does not know: READDIRPLUS and the INIT flags that ask for it. */
#define OPCODE_READDIRPLUS 44
#define INIT_DO_READDIRPLUS (1u << 13)

/* What dispatch is told. Must match Op in mount/fuse-binding.ts. */
enum {
  OP_LOOKUP = 1,
  OP_FORGET = 2,
  OP_GETATTR = 3,
  OP_READLINK = 4,
  OP_LIST = 5,
  OP_READ = 6,
  OP_STATFS = 7,
  OP_GETXATTR = 8,
  OP_LISTXATTR = 9,
  OP_GONE = 10,
};

/* A directory's listing, kept by inode between the READDIR requests that page through it. */
typedef struct dir_s {
  fuse_ino_t ino;
  char *data;          /* the packed listing */
  uint32_t count;
  uint32_t *pos;       /* byte position of each entry */
  char *records;       /* the records of entries named by position (ENTRY_RECORD bytes each, ascending) */
  size_t nrecords;
  char *xattrs;        /* the xattr blob those records point into */
  struct dir_s *prev, *next;
} dir_t;

/* Listings kept at once: one per directory being read right now; the least recently used goes first. */
#define DIRS_KEPT 64

typedef enum { LIVE, GONE, CLOSED } state_t;

/* A request JavaScript must answer, waiting for the main thread (see queue_for_js). */
typedef struct queued_s {
  struct queued_s *next;
  int op;
  fuse_req_t req;      /* NULL: nothing to answer (forget, gone) */
  size_t size;         /* read, readdir, xattrs: the caller's buffer size */
  off_t off;           /* read, readdir: where to start */
  fuse_ino_t ino;
  uint64_t nlookup;    /* forget */
  bool plus;           /* readdir: asked as READDIRPLUS */
  pid_t pid;           /* lookup, list: the thread that asked, as the kernel gave it (0: unknown) */
  size_t namelen;      /* lookup, getxattr: the name's bytes follow */
  char name[];
} queued_t;

typedef struct {
  napi_env env;
  napi_ref dispatch;
  napi_ref resource;
  napi_async_context actx;
  struct fuse_session *se;
  struct fuse_chan *ch;
  struct fuse_chan *init_ch; /* answers INIT only, asking for READDIRPLUS (see on_readable); NULL after */
  bool plus_offered;   /* the kernel offered READDIRPLUS */
  uv_poll_t poll;
  uv_prepare_t prepare; /* polls /dev/fuse briefly before the loop sleeps (see on_prepare) */
  bool spin;           /* another CPU exists for the client to run on */
  _Atomic uint64_t last_request_ns; /* when either thread last read a request */
  _Atomic uint64_t beat_ns; /* when the main thread last was where it reads /dev/fuse (see helper_main) */
  uint32_t pending;    /* requests waiting for JavaScript's answer */
  char *buf;           /* the main thread's */
  size_t bufsize;
  pthread_t helper;    /* answers what C can while the main thread is away (see helper_main) */
  bool helper_started;
  /*
   * The listings, the xattr and content tables and dirbuf, which both threads answer from and the main
   * thread's replies and stage() fill. Held for a table's lookup and the reply made from it, never
   * while JavaScript runs.
   */
  pthread_mutex_t lock;
  pthread_mutex_t queue_lock; /* queue_head, queue_tail */
  queued_t *queue_head, *queue_tail;
  uv_async_t async;    /* the helper queued requests for JavaScript */
  char *dirbuf;        /* readdir and listxattr replies (under lock) */
  size_t dirbufsize;
  xattr_table_t xattrs; /* of the inodes looked up with their xattrs */
  content_table_t contents; /* of files named by position, staged ahead of their reads (see js_stage) */
  double attr_timeout, entry_timeout;
  int keep_cache;
  int64_t uid, gid, umask; /* -1: not overridden */
  state_t state;
  int in_loop;         /* handing requests to JavaScript (run_queued): close() must wait */
  int close_wanted;
  int refs;            /* the JS external, the poll, the async and the prepare handle: freed when all are gone */
  dir_t dirs;          /* listings being read (list head, most recently used first) */
  uint32_t ndirs;
} session_t;

typedef struct {
  fuse_req_t req;      /* NULL: free */
  session_t *s;
  size_t size;         /* read / readdir / xattr: the caller's buffer size */
  off_t off;           /* readdir: where to start */
  fuse_ino_t ino;      /* readdir: the directory */
  bool plus;           /* readdir: asked as READDIRPLUS */
  uint32_t gen;
  int32_t next_free;
} slot_t;

/* ---- shared between lowlevel.c and replies.c ---- */

static inline void tables_lock(session_t *s) { pthread_mutex_lock(&s->lock); }
static inline void tables_unlock(session_t *s) { pthread_mutex_unlock(&s->lock); }

/* The pending request of handle `h`, or NULL if it was answered or never existed. */
slot_t *slot_find(double h);
void slot_free(slot_t *sl);
void dir_free(session_t *s, dir_t *d);
/*
 * Main thread. Keeps `d` as the listing of d->ino (replacing an older one), then answers `req` with the page at `off`, as
 * READDIRPLUS when `plus`. `records` (ENTRY_RECORD bytes each, ascending indexes) give entries their
 * attributes in a READDIRPLUS page: the kernel then knows those inodes as if looked up (their xattrs, from
 * the blob `xattrs`, are remembered as a lookup's are). Those with nodeid 0 go only at offset 0, and
 * `*given` tells how many of them (from the first) went into the page; d->records go on any page. Returns
 * fuse_reply_buf's result.
 */
int dir_keep_and_serve(session_t *s, fuse_req_t req, dir_t *d, size_t size, off_t off, bool plus, const char *records, size_t nrecords,
                       const char *xattrs, uint32_t *given);
/* The attributes of an inode as the kernel gets them: the session's uid, gid and umask overrides applied, times floored. */
void make_stat(const session_t *s, uint64_t ino, uint32_t mode, uint32_t nlink, uint32_t uid, uint32_t gid, uint32_t rdev, int64_t size,
               int64_t blocks, uint32_t blksize, const int64_t times_ns[3], struct stat *st);
napi_value type_error(napi_env env, const char *msg);
/* The bytes of a Buffer or Uint8Array (a view: valid while the value is); throws a TypeError and returns false otherwise. */
bool get_bytes(napi_env env, napi_value v, const char **data, size_t *len);
/* An xattr answer of `len` bytes: its size when asked with size 0, ERANGE when it does not fit. */
int reply_sized(fuse_req_t req, size_t size, const char *data, size_t len);

napi_value reply_err(napi_env env, napi_callback_info info);
napi_value reply_entry(napi_env env, napi_callback_info info);
napi_value reply_attr(napi_env env, napi_callback_info info);
napi_value reply_buf(napi_env env, napi_callback_info info);
napi_value reply_readlink(napi_env env, napi_callback_info info);
napi_value reply_xattr(napi_env env, napi_callback_info info);
napi_value reply_dir(napi_env env, napi_callback_info info);
napi_value reply_statfs(napi_env env, napi_callback_info info);

#endif
