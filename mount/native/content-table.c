/* See content-table.h. */
#include "content-table.h"

#include <stdlib.h>
#include <string.h>

#define MIN_CAP 256

static size_t bucket_of(uint64_t key, size_t cap) {
  key ^= key >> 33; /* murmur3's fmix64: positional numbers differ in their low bits mostly */
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  return (size_t)key & (cap - 1);
}

content_t *content_find(const content_table_t *t, uint64_t key) {
  if (t->cap == 0) return NULL;
  for (content_t *e = t->buckets[bucket_of(key, t->cap)]; e != NULL; e = e->chain) {
    if (e->key == key) return e;
  }
  return NULL;
}

static void unlink_and_free(content_table_t *t, content_t *e) {
  content_t **p = &t->buckets[bucket_of(e->key, t->cap)];
  while (*p != e) p = &(*p)->chain;
  *p = e->chain;
  if (e->older) e->older->newer = e->newer;
  else t->oldest = e->newer;
  if (e->newer) e->newer->older = e->older;
  else t->newest = e->older;
  t->count--;
  t->bytes -= e->len;
  free(e);
}

static int grow(content_table_t *t) {
  size_t cap = t->cap ? t->cap * 2 : MIN_CAP;
  content_t **buckets = calloc(cap, sizeof *buckets);
  if (buckets == NULL) return -1;
  for (size_t i = 0; i < t->cap; i++) {
    for (content_t *e = t->buckets[i], *next; e != NULL; e = next) {
      next = e->chain;
      size_t b = bucket_of(e->key, cap);
      e->chain = buckets[b];
      buckets[b] = e;
    }
  }
  free(t->buckets);
  t->buckets = buckets;
  t->cap = cap;
  return 0;
}

bool content_put(content_table_t *t, uint64_t key, const char *data, size_t len, uint64_t now_ns) {
  while (t->oldest != NULL && now_ns - t->oldest->staged_ns > CONTENT_TTL_NS) unlink_and_free(t, t->oldest);
  if (len == 0 || len > CONTENT_MAX_ENTRY) return false;
  if (content_find(t, key) != NULL) return true;
  if (t->bytes + len > CONTENT_MAX_BYTES) return false;
  if (t->count + 1 > t->cap && grow(t) != 0) return false;
  content_t *e = malloc(sizeof *e + len);
  if (e == NULL) return false;
  *e = (content_t){ .key = key, .staged_ns = now_ns, .len = (uint32_t)len, .older = t->newest };
  memcpy(e->data, data, len);
  size_t b = bucket_of(key, t->cap);
  e->chain = t->buckets[b];
  t->buckets[b] = e;
  if (t->newest) t->newest->newer = e;
  else t->oldest = e;
  t->newest = e;
  t->count++;
  t->bytes += len;
  return true;
}

void content_served(content_table_t *t, content_t *e, size_t n) {
  e->served += (uint32_t)(n < e->len ? n : e->len);
  if (n == 0 || e->served >= e->len) unlink_and_free(t, e);
}

void content_forget(content_table_t *t, uint64_t key) {
  content_t *e = content_find(t, key);
  if (e != NULL) unlink_and_free(t, e);
}

void content_table_free(content_table_t *t) {
  while (t->oldest != NULL) unlink_and_free(t, t->oldest);
  free(t->buckets);
  *t = (content_table_t){ 0 };
}
