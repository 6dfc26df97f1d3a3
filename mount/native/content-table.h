/*
 * Whole contents of small files, handed over by JavaScript before they are
 * read (the files of a directory a program is copying, loaded ahead: see
 * SiblingContent in mount/fuse-dispatch.ts), so that lowlevel.c answers
 * their READs without calling into JavaScript. Keyed by the number the
 * kernel knows the file by.
 *
 * An entry goes once all its bytes have been served (the kernel then keeps
 * them in its page cache), when the kernel forgets the number, or when
 * content is staged after it has waited CONTENT_TTL_NS for a read (a
 * program that stopped halfway).
 * The table holds at most CONTENT_MAX_BYTES and refuses what does not fit:
 * those files are read through JavaScript as before.
 *
 * Chained hash table of entries, which also form a list oldest-first.
 */
#ifndef CAIRN_CONTENT_TABLE_H
#define CAIRN_CONTENT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTENT_MAX_BYTES (16u << 20)
#define CONTENT_MAX_ENTRY (1u << 20)
#define CONTENT_TTL_NS (30ull * 1000000000ull)

typedef struct content_s {
  uint64_t key;
  uint64_t staged_ns;
  uint32_t len;
  uint32_t served;            /* bytes answered so far */
  struct content_s *chain;    /* next in the bucket */
  struct content_s *older, *newer;
  char data[];
} content_t;

typedef struct {
  content_t **buckets;
  size_t cap;                 /* a power of two, or 0 */
  size_t count;
  size_t bytes;
  content_t *oldest, *newest;
} content_table_t;

/*
 * Keeps a copy of `len` bytes (1 to CONTENT_MAX_ENTRY) as the content of `key`, first dropping entries
 * older than CONTENT_TTL_NS. True if taken or already there; false if it does not fit or memory is short.
 */
bool content_put(content_table_t *t, uint64_t key, const char *data, size_t len, uint64_t now_ns);

content_t *content_find(const content_table_t *t, uint64_t key);

/* Marks `n` more bytes of `e` served; the entry goes once all are. */
void content_served(content_table_t *t, content_t *e, size_t n);

/* The kernel forgot `key`: its entry, if any, goes. */
void content_forget(content_table_t *t, uint64_t key);

void content_table_free(content_table_t *t);

#endif
