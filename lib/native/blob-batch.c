/*
 * openBlobBatch(scheme, encKey, paths, plan, out, lengths) -> Promise<void>:
 * reads, authenticates, decrypts and decodes many stored blobs on libuv's
 * thread pool in one request, each into its own place in `out`.
 *
 * Why: a mount loading ahead the 2,000 small files of a directory that cp -a
 * copies spent about 80 µs of its main thread per file in JavaScript (a
 * promise, a cache entry, node:crypto or the in-place open, the payload
 * decoder), while cp waited for answers on the same two CPUs, and V8 compiled
 * that code for the first time on a third thread (bench/RESULTS.md, sessions
 * 15 and 17). Here the whole batch costs the main thread one call.
 *
 * The byte layouts are those of lib/crypto/sealer.ts (sealed objects) and
 * lib/compress/codec.ts (payloads); every check those make is made here too,
 * so a blob this accepts is one they accept, with the same plaintext:
 *   scheme 1 (repokey, keyfile): AES-256-GCM, seal.c
 *   scheme 2 (authenticated): tag = HMAC-SHA256(encKey, "cairn-auth" || u32be(len aad) || aad || plain)[0..16]
 *   scheme 3 (none): sum = SHA-256("cairn-none" || u32be(len aad) || aad || plain)[0..16]
 *   aad = 'b' | type | id[32] (lib/repo/blob.ts)
 *   payload = type u8 (0 stored, 1 zstd) | bodyLength u32le | body | zero padding (exact or to the ladder size)
 *
 * `paths`: the pack files, each NUL-terminated, one after the other.
 * `plan`: one PLAN_RECORD-byte record per blob, sorted by path, then offset:
 *   0 u32 path index, 4 u32 sealed length, 8 u32 offset low, 12 u32 offset high, 16 u32 raw length (the most
 *   plaintext allowed), 20 u32 where its plaintext goes in `out`, 24 u8 blob type, 25..32 zero, 32 id[32]
 * `lengths` (an Int32Array, one per blob) receives the plaintext's length, or BATCH_UNREADABLE (the file could
 * not be read there), BATCH_FORGED (authentication failed) or BATCH_MALFORMED (a payload the decoder refuses).
 * One failed blob fails alone: the caller reads it again its usual way, which reports why.
 *
 * Neighbouring blobs of one file (at most MAX_GAP apart, MAX_SPAN in all) come from one read, as
 * lib/cache/coalescing-loader.ts joins them.
 *
 * `out` and `lengths` belong to this call until the promise settles (references are held; JavaScript must
 * not touch them meanwhile). The key is copied and wiped when done.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "blob-batch.h"
#include "napi-check.h"
#include "seal.h"

#define PLAN_RECORD 64
#define KEY_LENGTH 32
#define ID_LENGTH 32
#define TAG_LENGTH 16
#define GCM_HEAD 25
#define AAD_LENGTH (2 + ID_LENGTH)
#define PAYLOAD_HEADER 5
#define MAX_GAP (16u * 1024)
#define MAX_SPAN (4u * 1024 * 1024)
#define ZSTD_FRAME_MAGIC 0xFD2FB528u

#define BATCH_UNREADABLE (-1)
#define BATCH_FORGED (-2)
#define BATCH_MALFORMED (-3)

enum { SCHEME_GCM = 1, SCHEME_HMAC = 2, SCHEME_NONE = 3 };

static const unsigned char AUTH_DOMAIN[] = "cairn-auth";
static const unsigned char NONE_DOMAIN[] = "cairn-none";

typedef struct {
  uint32_t path;
  uint32_t sealed_length;
  uint64_t offset;
  uint32_t raw_length;
  uint32_t out_at;
  uint8_t type;
  unsigned char id[ID_LENGTH];
} blob_t;

typedef struct {
  int scheme;
  unsigned char key[KEY_LENGTH];
  char **paths;
  size_t path_count;
  blob_t *blobs;
  size_t count;
  unsigned char *out;
  size_t out_length;
  int32_t *lengths;
  napi_ref out_ref, lengths_ref;
  napi_async_work work;
  napi_deferred deferred;
} batch_t;

static uint32_t u32le(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The payload ladder of codec.ts: at least 64, then a multiple of 2^(floor(log2(size)) - 6). */
static uint64_t padded_size(uint64_t size) {
  if (size <= 64) return 64;
  int bits = 63 - __builtin_clzll(size);
  uint64_t step = 1ull << (bits - 6);
  return (size + step - 1) / step * step;
}

/* Reads exactly `length` bytes at `offset`; false on an error or a short file. */
static bool read_exactly(int fd, unsigned char *into, size_t length, uint64_t offset) {
  while (length > 0) {
    ssize_t got = pread(fd, into, length, (off_t)offset);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    into += got;
    length -= (size_t)got;
    offset += (uint64_t)got;
  }
  return true;
}

/* The tag of the clear schemes over domain || u32be(len aad) || aad || plain; 1 on success. */
static int clear_tag(int scheme, const batch_t *b, EVP_MAC *hmac, const unsigned char *aad, const unsigned char *plain,
                     size_t plain_length, unsigned char digest[EVP_MAX_MD_SIZE]) {
  const unsigned char aad_length[4] = {0, 0, 0, AAD_LENGTH};
  size_t digest_length = 0;
  int ok = 0;
  if (scheme == SCHEME_HMAC) {
    char sha256[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha256, 0), OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *ctx = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
    ok = ctx != NULL && EVP_MAC_init(ctx, b->key, KEY_LENGTH, params) == 1 &&
         EVP_MAC_update(ctx, AUTH_DOMAIN, sizeof AUTH_DOMAIN - 1) == 1 && EVP_MAC_update(ctx, aad_length, 4) == 1 &&
         EVP_MAC_update(ctx, aad, AAD_LENGTH) == 1 && EVP_MAC_update(ctx, plain, plain_length) == 1 &&
         EVP_MAC_final(ctx, digest, &digest_length, EVP_MAX_MD_SIZE) == 1;
    EVP_MAC_CTX_free(ctx);
  } else {
    unsigned int length = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, NONE_DOMAIN, sizeof NONE_DOMAIN - 1) == 1 && EVP_DigestUpdate(ctx, aad_length, 4) == 1 &&
         EVP_DigestUpdate(ctx, aad, AAD_LENGTH) == 1 && EVP_DigestUpdate(ctx, plain, plain_length) == 1 &&
         EVP_DigestFinal_ex(ctx, digest, &length) == 1;
    digest_length = length;
    EVP_MD_CTX_free(ctx);
  }
  return ok && digest_length >= TAG_LENGTH;
}

/*
 * Authenticates (and decrypts, in place) the sealed blob in `sealed`; on success points `payload` at its
 * plaintext payload. BATCH_FORGED otherwise.
 */
static int open_sealed(const batch_t *b, EVP_MAC *hmac, const blob_t *blob, unsigned char *sealed, unsigned char **payload, size_t *payload_length) {
  unsigned char aad[AAD_LENGTH];
  size_t length = blob->sealed_length;
  aad[0] = 0x62; /* 'b' */
  aad[1] = blob->type;
  memcpy(aad + 2, blob->id, ID_LENGTH);
  if (b->scheme == SCHEME_GCM) {
    if (!seal_open_gcm(b->key, sealed, length, aad, AAD_LENGTH)) return BATCH_FORGED;
    *payload = sealed + GCM_HEAD;
    *payload_length = length - GCM_HEAD - TAG_LENGTH;
    return 0;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  if (length < 1 + TAG_LENGTH || sealed[0] != b->scheme) return BATCH_FORGED;
  size_t plain_length = length - 1 - TAG_LENGTH;
  if (!clear_tag(b->scheme, b, hmac, aad, sealed + 1, plain_length, digest)) return BATCH_FORGED;
  if (CRYPTO_memcmp(digest, sealed + 1 + plain_length, TAG_LENGTH) != 0) return BATCH_FORGED;
  *payload = sealed + 1;
  *payload_length = plain_length;
  return 0;
}

/* Decodes a payload into `into` (room for `raw_length` bytes): the plaintext's length, or BATCH_MALFORMED. */
static int32_t decode_payload(ZSTD_DCtx *dctx, const unsigned char *payload, size_t length, unsigned char *into, uint32_t raw_length) {
  if (length < PAYLOAD_HEADER) return BATCH_MALFORMED;
  uint32_t body_length = u32le(payload + 1);
  uint64_t size = PAYLOAD_HEADER + (uint64_t)body_length;
  if (size > length || (length != size && length != padded_size(size))) return BATCH_MALFORMED;
  for (size_t i = size; i < length; i++)
    if (payload[i] != 0) return BATCH_MALFORMED;
  const unsigned char *body = payload + PAYLOAD_HEADER;
  if (payload[0] == 0) {
    if (body_length > raw_length) return BATCH_MALFORMED;
    memcpy(into, body, body_length);
    return (int32_t)body_length;
  }
  if (payload[0] != 1 || body_length < 4 || u32le(body) != ZSTD_FRAME_MAGIC) return BATCH_MALFORMED;
  unsigned long long claimed = ZSTD_getFrameContentSize(body, body_length);
  if (claimed == ZSTD_CONTENTSIZE_UNKNOWN || claimed == ZSTD_CONTENTSIZE_ERROR || claimed > raw_length) return BATCH_MALFORMED;
  size_t frame_length = ZSTD_findFrameCompressedSize(body, body_length);
  if (ZSTD_isError(frame_length) || frame_length != body_length) return BATCH_MALFORMED;
  size_t produced = ZSTD_decompressDCtx(dctx, into, (size_t)claimed, body, body_length);
  if (ZSTD_isError(produced) || produced != claimed) return BATCH_MALFORMED;
  return (int32_t)produced;
}

/* Blobs from `first` that one read covers: same file, in order, at most MAX_GAP apart, MAX_SPAN in all. */
static size_t run_end(const batch_t *b, size_t first) {
  const blob_t *start = &b->blobs[first];
  uint64_t end = start->offset + start->sealed_length;
  size_t i = first + 1;
  for (; i < b->count; i++) {
    const blob_t *next = &b->blobs[i];
    uint64_t next_end = next->offset + next->sealed_length;
    if (next->path != start->path || next->offset < end || next->offset - end > MAX_GAP || next_end - start->offset > MAX_SPAN) break;
    end = next_end;
  }
  return i;
}

/* The file of the blob `start` names, opened once for a run of blobs of one file (`fd` and `fd_path` carry it over). */
static void open_path(const batch_t *b, const blob_t *start, int *fd, uint32_t *fd_path) {
  if (*fd_path == start->path) return;
  if (*fd >= 0) close(*fd);
  *fd_path = start->path;
  *fd = open(b->paths[start->path], O_RDONLY | O_CLOEXEC);
}

/* Opens and decodes blob `i`, whose sealed bytes are at `sealed`, into its place in `out`. */
static void open_one(batch_t *b, EVP_MAC *hmac, ZSTD_DCtx *dctx, size_t i, unsigned char *sealed) {
  const blob_t *blob = &b->blobs[i];
  unsigned char *payload = NULL;
  size_t payload_length = 0;
  int32_t result = open_sealed(b, hmac, blob, sealed, &payload, &payload_length);
  if (result == 0) result = decode_payload(dctx, payload, payload_length, b->out + blob->out_at, blob->raw_length);
  b->lengths[i] = result;
}

/* Room for `length` bytes in the scratch buffer; false when memory is short. */
static bool make_room(unsigned char **scratch, size_t *capacity, size_t length) {
  if (*capacity >= length) return true;
  unsigned char *grown = realloc(*scratch, length);
  if (grown == NULL) return false;
  *scratch = grown;
  *capacity = length;
  return true;
}

static void execute(napi_env env, void *data) {
  (void)env; /* a pool thread: no JS here */
  batch_t *b = data;
  ZSTD_DCtx *dctx = ZSTD_createDCtx();
  EVP_MAC *hmac = b->scheme == SCHEME_HMAC ? EVP_MAC_fetch(NULL, "HMAC", NULL) : NULL;
  unsigned char *scratch = NULL;
  size_t capacity = 0;
  int fd = -1;
  uint32_t fd_path = UINT32_MAX;
  for (size_t first = 0, last; first < b->count; first = last) {
    last = run_end(b, first);
    const blob_t *start = &b->blobs[first];
    open_path(b, start, &fd, &fd_path);
    uint64_t span = b->blobs[last - 1].offset + b->blobs[last - 1].sealed_length - start->offset;
    if (dctx != NULL && fd >= 0 && make_room(&scratch, &capacity, span) && read_exactly(fd, scratch, span, start->offset)) {
      for (size_t i = first; i < last; i++) open_one(b, hmac, dctx, i, scratch + (b->blobs[i].offset - start->offset));
      continue;
    }
    /* The span could not be read (a pack cut short, a bad sector): each blob alone, so that only those that
       cannot be read fail. */
    for (size_t i = first; i < last; i++) {
      const blob_t *blob = &b->blobs[i];
      if (dctx != NULL && fd >= 0 && make_room(&scratch, &capacity, blob->sealed_length) &&
          read_exactly(fd, scratch, blob->sealed_length, blob->offset))
        open_one(b, hmac, dctx, i, scratch);
      else
        b->lengths[i] = BATCH_UNREADABLE;
    }
  }
  if (fd >= 0) close(fd);
  free(scratch);
  ZSTD_freeDCtx(dctx);
  EVP_MAC_free(hmac);
}

static void batch_free(napi_env env, batch_t *b) {
  if (b == NULL) return;
  OPENSSL_cleanse(b->key, sizeof b->key);
  if (b->paths != NULL)
    for (size_t i = 0; i < b->path_count; i++) free(b->paths[i]);
  free(b->paths);
  free(b->blobs);
  if (b->out_ref != NULL) napi_delete_reference(env, b->out_ref);
  if (b->lengths_ref != NULL) napi_delete_reference(env, b->lengths_ref);
  free(b);
}

static void complete(napi_env env, napi_status status, void *data) {
  batch_t *b = data;
  napi_value value = NULL;
  if (status == napi_ok) {
    napi_get_undefined(env, &value);
    napi_resolve_deferred(env, b->deferred, value);
  } else {
    napi_value message;
    if (napi_create_string_utf8(env, "openBlobBatch was cancelled", NAPI_AUTO_LENGTH, &message) == napi_ok &&
        napi_create_error(env, NULL, message, &value) == napi_ok)
      napi_reject_deferred(env, b->deferred, value);
  }
  napi_delete_async_work(env, b->work);
  batch_free(env, b);
}

/* Splits the NUL-terminated paths; false if there are none or one is empty. */
static bool split_paths(batch_t *b, const char *bytes, size_t length) {
  if (length == 0 || bytes[length - 1] != '\0') return false;
  for (size_t i = 0; i < length; i++)
    if (bytes[i] == '\0') b->path_count++;
  if ((b->paths = calloc(b->path_count, sizeof *b->paths)) == NULL) return false;
  const char *at = bytes;
  for (size_t i = 0; i < b->path_count; i++) {
    size_t n = strlen(at);
    if (n == 0 || (b->paths[i] = strdup(at)) == NULL) return false;
    at += n + 1;
  }
  return true;
}

/* Copies the plan, checking that every blob fits in `out` and names a path; false otherwise. */
static bool read_plan(batch_t *b, const unsigned char *plan, size_t length) {
  if (length % PLAN_RECORD != 0) return false;
  b->count = length / PLAN_RECORD;
  if ((b->blobs = calloc(b->count ? b->count : 1, sizeof *b->blobs)) == NULL) return false;
  for (size_t i = 0; i < b->count; i++) {
    const unsigned char *r = plan + i * PLAN_RECORD;
    blob_t *blob = &b->blobs[i];
    blob->path = u32le(r);
    blob->sealed_length = u32le(r + 4);
    blob->offset = (uint64_t)u32le(r + 8) | (uint64_t)u32le(r + 12) << 32;
    blob->raw_length = u32le(r + 16);
    blob->out_at = u32le(r + 20);
    blob->type = r[24];
    memcpy(blob->id, r + 32, ID_LENGTH);
    if (blob->path >= b->path_count || blob->sealed_length == 0 || blob->sealed_length > INT32_MAX ||
        blob->raw_length > INT32_MAX || blob->out_at > b->out_length || blob->raw_length > b->out_length - blob->out_at)
      return false;
  }
  return true;
}

/* Queues `b` on the thread pool; the promise, or NULL with an exception pending (and `b` freed). */
static napi_value queue(napi_env env, batch_t *b) {
  napi_value promise = NULL, resource_name;
  if (napi_create_string_utf8(env, "openBlobBatch", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, execute, complete, b, &b->work) != napi_ok) {
    batch_free(env, b);
    napi_throw_error(env, "ENOMEM", "could not make work for the thread pool");
    return NULL;
  }
  if (napi_create_promise(env, &b->deferred, &promise) != napi_ok || napi_queue_async_work(env, b->work) != napi_ok) {
    napi_delete_async_work(env, b->work);
    batch_free(env, b);
    napi_throw_error(env, "EAGAIN", "could not queue work on the thread pool");
    return NULL;
  }
  return promise;
}

napi_value open_blob_batch(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  size_t argc = 6;
  int32_t scheme = 0;
  void *key = NULL, *paths = NULL, *plan = NULL, *out = NULL, *lengths = NULL;
  size_t key_length = 0, paths_length = 0, plan_length = 0, out_length = 0, lengths_count = 0;
  batch_t *b = calloc(1, sizeof *b);
  if (b == NULL) {
    napi_throw_error(env, "ENOMEM", "openBlobBatch: out of memory");
    return NULL;
  }
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 || napi_get_value_int32(env, argv[0], &scheme) != napi_ok ||
      !typed_array_of(env, argv[1], napi_uint8_array, &key, &key_length) || !typed_array_of(env, argv[2], napi_uint8_array, &paths, &paths_length) ||
      !typed_array_of(env, argv[3], napi_uint8_array, &plan, &plan_length) || !typed_array_of(env, argv[4], napi_uint8_array, &out, &out_length) ||
      !typed_array_of(env, argv[5], napi_int32_array, &lengths, &lengths_count)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "openBlobBatch(scheme, encKey, paths, plan, out, lengths): a number, Uint8Arrays, an Int32Array");
    goto fail;
  }
  b->scheme = scheme;
  b->out = out;
  b->out_length = out_length;
  b->lengths = lengths;
  if ((scheme != SCHEME_GCM && scheme != SCHEME_HMAC && scheme != SCHEME_NONE) || (scheme != SCHEME_NONE && key_length != KEY_LENGTH) ||
      !split_paths(b, paths, paths_length) || !read_plan(b, plan, plan_length) || lengths_count != b->count) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "openBlobBatch: a scheme of 1-3, a 32-byte key, NUL-terminated paths, a plan whose blobs fit in out, one length each");
    goto fail;
  }
  if (scheme != SCHEME_NONE) memcpy(b->key, key, KEY_LENGTH);
  if (napi_create_reference(env, argv[4], 1, &b->out_ref) != napi_ok || napi_create_reference(env, argv[5], 1, &b->lengths_ref) != napi_ok)
    goto fail;
  return queue(env, b);
fail:
  batch_free(env, b);
  return NULL;
}
