/*
 * scryptRoMix(lane, N, r) -> Promise<void>: scrypt's memory-hard step (RFC 7914, section 5, scryptROMix
 * with scryptBlockMix over Salsa20/8) on one lane of 128*r bytes, in place, on libuv's thread pool.
 *
 * Why by hand: scrypt's p lanes are independent, but OpenSSL (node:crypto's scrypt) mixes them one after
 * the other, so cairn's default cost (N = 2^15, r = 8, p = 3) took 0.3 s of one core before every command
 * could open its key. lib/crypto/kdf.ts does the two PBKDF2 steps with node:crypto and runs the lanes
 * here, as many at once as there are cores. test/kdf.test.ts checks the result against node:crypto's
 * scrypt and RFC 7914's test vectors.
 *
 * Words are little-endian: lanes are loaded and stored with explicit byte order, so this is right on any
 * host. V (128*r*N bytes) is allocated per call, wiped and freed before the promise settles; a failed
 * allocation rejects with ENOMEM. It lives in 2 MiB pages where the kernel gives them (MADV_HUGEPAGE on
 * an aligned block, for transparent huge pages in their "madvise" mode, Debian's default): V is written
 * whole at once, and on a VM whose page faults are slow, filling 32 MiB of fresh 4 KiB pages took 205-314
 * ms against 3 ms in 2 MiB pages (a C test on the project VM, bench/RESULTS.md, session 15).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <node_api.h>
#include "napi-check.h"
#include "romix.h"

#define R(a, b) (((a) << (b)) | ((a) >> (32 - (b))))

static void salsa20_8(uint32_t b[16]) {
  uint32_t x[16];
  memcpy(x, b, sizeof x);
  for (int i = 0; i < 8; i += 2) {
    x[4] ^= R(x[0] + x[12], 7);   x[8] ^= R(x[4] + x[0], 9);
    x[12] ^= R(x[8] + x[4], 13);  x[0] ^= R(x[12] + x[8], 18);
    x[9] ^= R(x[5] + x[1], 7);    x[13] ^= R(x[9] + x[5], 9);
    x[1] ^= R(x[13] + x[9], 13);  x[5] ^= R(x[1] + x[13], 18);
    x[14] ^= R(x[10] + x[6], 7);  x[2] ^= R(x[14] + x[10], 9);
    x[6] ^= R(x[2] + x[14], 13);  x[10] ^= R(x[6] + x[2], 18);
    x[3] ^= R(x[15] + x[11], 7);  x[7] ^= R(x[3] + x[15], 9);
    x[11] ^= R(x[7] + x[3], 13);  x[15] ^= R(x[11] + x[7], 18);
    x[1] ^= R(x[0] + x[3], 7);    x[2] ^= R(x[1] + x[0], 9);
    x[3] ^= R(x[2] + x[1], 13);   x[0] ^= R(x[3] + x[2], 18);
    x[6] ^= R(x[5] + x[4], 7);    x[7] ^= R(x[6] + x[5], 9);
    x[4] ^= R(x[7] + x[6], 13);   x[5] ^= R(x[4] + x[7], 18);
    x[11] ^= R(x[10] + x[9], 7);  x[8] ^= R(x[11] + x[10], 9);
    x[9] ^= R(x[8] + x[11], 13);  x[10] ^= R(x[9] + x[8], 18);
    x[12] ^= R(x[15] + x[14], 7); x[13] ^= R(x[12] + x[15], 9);
    x[14] ^= R(x[13] + x[12], 13); x[15] ^= R(x[14] + x[13], 18);
  }
  for (int i = 0; i < 16; i++) b[i] += x[i];
}

/* scryptBlockMix: `in` is 2r blocks of 16 words; `out` gets the even outputs first, then the odd ones. */
static void block_mix(const uint32_t *in, uint32_t *out, size_t r) {
  uint32_t x[16];
  memcpy(x, &in[(2 * r - 1) * 16], sizeof x);
  for (size_t i = 0; i < 2 * r; i++) {
    for (int k = 0; k < 16; k++) x[k] ^= in[i * 16 + k];
    salsa20_8(x);
    memcpy(&out[((i & 1) ? r + i / 2 : i / 2) * 16], x, sizeof x);
  }
}

#define HUGE_PAGE (2u << 20)

/* `bytes` aligned to a huge page and advised to use them; NULL if out of memory. Freed with free(). */
static void *alloc_huge(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, HUGE_PAGE, bytes) != 0) return NULL;
  madvise(p, bytes, MADV_HUGEPAGE); /* a hint: without THP the pages are simply small */
  return p;
}

static int romix(uint8_t *lane, size_t r, uint32_t n) {
  size_t words = 32 * r;
  uint32_t *v = alloc_huge(words * 4 * (size_t)n);
  uint32_t *x = malloc(words * 4);
  uint32_t *y = malloc(words * 4);
  if (v == NULL || x == NULL || y == NULL) {
    free(v); free(x); free(y);
    return ENOMEM;
  }
  for (size_t k = 0; k < words; k++) {
    const uint8_t *p = lane + 4 * k;
    x[k] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  }
  for (uint32_t i = 0; i < n; i++) {
    memcpy(&v[(size_t)i * words], x, words * 4);
    block_mix(x, y, r);
    memcpy(x, y, words * 4);
  }
  for (uint32_t i = 0; i < n; i++) {
    uint32_t j = x[(2 * r - 1) * 16] & (n - 1); /* Integerify mod N, N a power of two below 2^32 */
    const uint32_t *vj = &v[(size_t)j * words];
    for (size_t k = 0; k < words; k++) x[k] ^= vj[k];
    block_mix(x, y, r);
    memcpy(x, y, words * 4);
  }
  for (size_t k = 0; k < words; k++) {
    uint8_t *p = lane + 4 * k;
    p[0] = (uint8_t)x[k]; p[1] = (uint8_t)(x[k] >> 8); p[2] = (uint8_t)(x[k] >> 16); p[3] = (uint8_t)(x[k] >> 24);
  }
  /* The state is derived from the passphrase: wiped before the memory goes back, as OpenSSL's scrypt does. */
  explicit_bzero(v, words * 4 * (size_t)n);
  explicit_bzero(x, words * 4);
  explicit_bzero(y, words * 4);
  free(v); free(x); free(y);
  return 0;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref lane_ref; /* keeps the lane's buffer alive while the pool works on it */
  uint8_t *lane;
  size_t r;
  uint32_t n;
  int err;
} job_t;

static void execute(napi_env env, void *data) {
  job_t *job = data;
  job->err = romix(job->lane, job->r, job->n);
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *job = data;
  napi_value result = NULL;
  if (status == napi_ok && job->err == 0) {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_value msg;
    const char *text = status != napi_ok ? "scrypt lane cancelled" : "out of memory for scrypt";
    if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg) == napi_ok && napi_create_error(env, NULL, msg, &result) == napi_ok)
      napi_reject_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->lane_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

napi_value scrypt_romix(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], name, promise;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
  void *data;
  size_t length;
  uint32_t n, r;
  bool is_buffer = false;
  if (argc != 3 || napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &n) != napi_ok || napi_get_value_uint32(env, argv[2], &r) != napi_ok ||
      n < 2 || (n & (n - 1)) != 0 || r < 1 || r > 1024 || length != 128 * (size_t)r) {
    napi_throw_type_error(env, NULL, "scryptRoMix(lane: Buffer of 128*r bytes, N: power of two, r)");
    return NULL;
  }
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  job->lane = data;
  job->r = r;
  job->n = n;
  if (napi_create_reference(env, argv[0], 1, &job->lane_ref) != napi_ok) {
    free(job);
    throw_last(env);
    return NULL;
  }
  if (napi_create_string_utf8(env, "cairn:scrypt", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, job, &job->work) != napi_ok) {
    napi_delete_reference(env, job->lane_ref);
    free(job);
    throw_last(env);
    return NULL;
  }
  /* Once the promise exists, only `complete` frees the job (queueing does not fail on a live loop). */
  CHECK(env, napi_create_promise(env, &job->deferred, &promise), NULL);
  CHECK(env, napi_queue_async_work(env, job->work), NULL);
  return promise;
}
