/*
 * The extended attributes of the inodes the kernel knows, so that lowlevel.c
 * answers getxattr and listxattr without calling into JavaScript (cp -a asks
 * three times per file). Filled from lookup replies, emptied by forgets: an
 * entry lives exactly as long as the kernel's lookup count of its inode.
 *
 * Blob layout, per attribute: name (1-255 bytes), NUL, value length (u32
 * LE), value. An inode without attributes has an entry with an empty blob.
 *
 * An open-addressing hash table (linear probing, backward-shift deletion)
 * keyed by inode number; 0 marks an empty slot (FUSE never uses inode 0).
 */
#ifndef CAIRN_XATTR_TABLE_H
#define CAIRN_XATTR_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t ino;      /* 0: empty */
  uint64_t lookups;
  char *blob;        /* NULL when len is 0 */
  uint32_t len;
} xattr_entry_t;

typedef struct {
  xattr_entry_t *slots;
  size_t cap;        /* a power of two, or 0 */
  size_t count;
} xattr_table_t;

/* True if `blob` is a well-formed blob of `len` bytes. */
bool xattr_blob_valid(const char *blob, size_t len);

/* One more lookup of `ino`; the blob is copied the first time. -1 when out of memory. */
int xattr_table_remember(xattr_table_t *t, uint64_t ino, const char *blob, size_t len);

/* The kernel forgot `n` lookups of `ino`; the entry goes at zero. */
void xattr_table_forget(xattr_table_t *t, uint64_t ino, uint64_t n);

const xattr_entry_t *xattr_table_find(const xattr_table_t *t, uint64_t ino);

void xattr_table_free(xattr_table_t *t);

/* The names, each followed by NUL, written to `out` if they fit in `cap`; returns their total length. */
size_t xattr_list(const xattr_entry_t *e, char *out, size_t cap);

/* The value of attribute `name`: true and *value, *len if there is one. */
bool xattr_get(const xattr_entry_t *e, const char *name, const char **value, size_t *len);

#endif
