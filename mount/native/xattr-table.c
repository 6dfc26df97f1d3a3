/* See xattr-table.h. */
#include "xattr-table.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_BYTES 255
#define MIN_CAP 1024

static size_t slot_of(uint64_t ino, size_t cap) {
  ino ^= ino >> 33; /* murmur3's fmix64: inode numbers are hashes already, but cheap insurance */
  ino *= 0xff51afd7ed558ccdULL;
  ino ^= ino >> 33;
  return (size_t)ino & (cap - 1);
}

/* Walks one attribute at `p`; returns the offset after it, or 0 if it is malformed. */
static size_t next_attr(const char *blob, size_t len, size_t p, size_t *name_len, size_t *value_at, uint32_t *value_len) {
  const char *nul = memchr(blob + p, 0, len - p);
  if (nul == NULL) return 0;
  size_t n = (size_t)(nul - (blob + p));
  if (n == 0 || n > NAME_MAX_BYTES || len - p - n - 1 < 4) return 0;
  uint32_t v;
  memcpy(&v, nul + 1, 4);
  v = le32toh(v);
  size_t at = p + n + 1 + 4;
  if (len - at < v) return 0;
  *name_len = n;
  *value_at = at;
  *value_len = v;
  return at + v;
}

bool xattr_blob_valid(const char *blob, size_t len) {
  size_t n, at;
  uint32_t v;
  for (size_t p = 0; p < len;) {
    p = next_attr(blob, len, p, &n, &at, &v);
    if (p == 0) return false;
  }
  return true;
}

static int grow(xattr_table_t *t) {
  size_t cap = t->cap ? t->cap * 2 : MIN_CAP;
  xattr_entry_t *slots = calloc(cap, sizeof *slots);
  if (slots == NULL) return -1;
  for (size_t i = 0; i < t->cap; i++) {
    if (t->slots[i].ino == 0) continue;
    size_t j = slot_of(t->slots[i].ino, cap);
    while (slots[j].ino != 0) j = (j + 1) & (cap - 1);
    slots[j] = t->slots[i];
  }
  free(t->slots);
  t->slots = slots;
  t->cap = cap;
  return 0;
}

static xattr_entry_t *find(const xattr_table_t *t, uint64_t ino) {
  if (t->cap == 0 || ino == 0) return NULL;
  for (size_t i = slot_of(ino, t->cap);; i = (i + 1) & (t->cap - 1)) {
    if (t->slots[i].ino == ino) return &t->slots[i];
    if (t->slots[i].ino == 0) return NULL;
  }
}

const xattr_entry_t *xattr_table_find(const xattr_table_t *t, uint64_t ino) {
  return find(t, ino);
}

int xattr_table_remember(xattr_table_t *t, uint64_t ino, const char *blob, size_t len) {
  xattr_entry_t *e = find(t, ino);
  if (e != NULL) {
    e->lookups++;
    return 0;
  }
  if ((t->count + 1) * 2 > t->cap && grow(t) != 0) return -1; /* at most half full */
  char *copy = NULL;
  if (len > 0) {
    if ((copy = malloc(len)) == NULL) return -1;
    memcpy(copy, blob, len);
  }
  size_t i = slot_of(ino, t->cap);
  while (t->slots[i].ino != 0) i = (i + 1) & (t->cap - 1);
  t->slots[i] = (xattr_entry_t){ .ino = ino, .lookups = 1, .blob = copy, .len = (uint32_t)len };
  t->count++;
  return 0;
}

void xattr_table_forget(xattr_table_t *t, uint64_t ino, uint64_t n) {
  xattr_entry_t *e = find(t, ino);
  if (e == NULL) return;
  if (e->lookups > n) {
    e->lookups -= n;
    return;
  }
  free(e->blob);
  /* Backward-shift deletion: move later entries of the probe run into the hole. */
  size_t hole = (size_t)(e - t->slots);
  for (size_t i = (hole + 1) & (t->cap - 1); t->slots[i].ino != 0; i = (i + 1) & (t->cap - 1)) {
    size_t home = slot_of(t->slots[i].ino, t->cap);
    /* Move it if its home is not within (hole, i], cyclically. */
    bool between = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
    if (!between) {
      t->slots[hole] = t->slots[i];
      hole = i;
    }
  }
  t->slots[hole] = (xattr_entry_t){ 0 };
  t->count--;
}

void xattr_table_free(xattr_table_t *t) {
  for (size_t i = 0; i < t->cap; i++) free(t->slots[i].blob);
  free(t->slots);
  *t = (xattr_table_t){ 0 };
}

size_t xattr_list(const xattr_entry_t *e, char *out, size_t cap) {
  size_t total = 0, n, at;
  uint32_t v;
  for (size_t p = 0; p < e->len;) {
    size_t start = p;
    p = next_attr(e->blob, e->len, p, &n, &at, &v);
    if (p == 0) break; /* validated when stored */
    if (total + n + 1 <= cap) memcpy(out + total, e->blob + start, n + 1);
    total += n + 1;
  }
  return total;
}

bool xattr_get(const xattr_entry_t *e, const char *name, const char **value, size_t *len) {
  size_t want = strlen(name), n, at;
  uint32_t v;
  for (size_t p = 0; p < e->len;) {
    size_t start = p;
    p = next_attr(e->blob, e->len, p, &n, &at, &v);
    if (p == 0) break;
    if (n == want && memcmp(e->blob + start, name, n) == 0) {
      *value = e->blob + at;
      *len = v;
      return true;
    }
  }
  return false;
}
