/*
 * sealAesGcmInPlace(encKey, buf, payloadLength, aad): seals one object in
 * the 'repokey'/'keyfile' layout of lib/crypto/sealer.ts, inside `buf`:
 *
 *   before: buf[0] = 0x01, buf[1..25) = salt, buf[25 .. 25+n) = payload
 *   after:  buf[25 .. 25+n) = ciphertext, buf[25+n .. 25+n+16) = tag
 *
 *   key = HMAC-SHA256(encKey, "cairn-obj" || salt)
 *   ciphertext, tag = AES-256-GCM(key, iv = 12 zero bytes, payload, aad = buf[0] || aad)
 *
 * openAesGcmInPlace(encKey, buf, aad) -> boolean: the reverse, on a whole
 * sealed object: decrypts the ciphertext in place and returns whether the
 * tag matched. On false the bytes in `buf` are garbage and must not be used.
 *
 * The same bytes node:crypto gives in GcmSealer.seal and accepts in
 * GcmSealer.open. Why native: the
 * backup workers seal into shared memory that the pack writer reads from
 * (lib/pipeline/sealed-ring.ts), and node:crypto's cipher.update always
 * returns a new buffer: a chunk-sized allocation per blob, freed only when
 * the main thread's GC gets to it, which cost a first backup of 2.9 GB about
 * 125 MiB of malloc arenas in the two workers and as much again of external
 * memory awaiting collection on the main thread.
 *
 * OpenSSL is Node's own (statically linked and exported by the node binary;
 * headers in Node's include/node/openssl): no other library, the same
 * implementation node:crypto uses. Runs on the calling thread (a worker).
 */
#include <stdint.h>
#include <string.h>

#include <node_api.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "napi-check.h"
#include "seal.h"

#define KEY_LENGTH 32
#define SALT_LENGTH 24
#define HEAD_LENGTH (1 + SALT_LENGTH)
#define TAG_LENGTH 16
#define IV_LENGTH 12

static const unsigned char OBJ_DOMAIN[] = "cairn-obj";
#define OBJ_DOMAIN_LENGTH (sizeof OBJ_DOMAIN - 1)

/* The bytes of a Buffer or Uint8Array (SharedArrayBuffer-backed ones included). */
static int bytes_of(napi_env env, napi_value value, unsigned char **data, size_t *length) {
  return typed_array_of(env, value, napi_uint8_array, (void **)data, length);
}

/* key = HMAC-SHA256(encKey, "cairn-obj" || salt), salt at buf[1..25). */
static int object_key(const unsigned char *enc_key, const unsigned char *buf, unsigned char key[KEY_LENGTH]) {
  unsigned char material[OBJ_DOMAIN_LENGTH + SALT_LENGTH];
  unsigned int key_length = 0;
  memcpy(material, OBJ_DOMAIN, OBJ_DOMAIN_LENGTH);
  memcpy(material + OBJ_DOMAIN_LENGTH, buf + 1, SALT_LENGTH);
  return HMAC(EVP_sha256(), enc_key, KEY_LENGTH, material, sizeof material, key, &key_length) != NULL && key_length == KEY_LENGTH;
}

static int aes_gcm(const unsigned char key[KEY_LENGTH], unsigned char *buf, size_t payload_length, const unsigned char *aad,
                   size_t aad_length) {
  static const unsigned char iv[IV_LENGTH] = {0};
  unsigned char *body = buf + HEAD_LENGTH;
  int ok = 0, n = 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx == NULL) return 0;
  if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv) != 1) goto done;
  if (EVP_EncryptUpdate(ctx, NULL, &n, buf, 1) != 1) goto done;  // the scheme byte
  if (aad_length > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_length) != 1) goto done;
  // In place: OpenSSL's GCM allows out == in. Chunks are far below INT_MAX (the caller checks).
  if (payload_length > 0 && EVP_EncryptUpdate(ctx, body, &n, body, (int)payload_length) != 1) goto done;
  if (EVP_EncryptFinal_ex(ctx, body + payload_length, &n) != 1) goto done;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LENGTH, body + payload_length) != 1) goto done;
  ok = 1;
done:
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

napi_value seal_aes_gcm_in_place(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  unsigned char *enc_key, *buf, *aad;
  size_t enc_key_length, buf_length, aad_length;
  int64_t payload_length = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || !bytes_of(env, argv[0], &enc_key, &enc_key_length) ||
      !bytes_of(env, argv[1], &buf, &buf_length) || napi_get_value_int64(env, argv[2], &payload_length) != napi_ok ||
      !bytes_of(env, argv[3], &aad, &aad_length)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sealAesGcmInPlace(encKey, buf, payloadLength, aad): Uint8Arrays and a length");
    return NULL;
  }
  if (enc_key_length != KEY_LENGTH || payload_length < 0 || payload_length > INT32_MAX - 64 ||
      buf_length < HEAD_LENGTH + (size_t)payload_length + TAG_LENGTH || aad_length > INT32_MAX) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "sealAesGcmInPlace: a 32-byte key and a buffer holding head, payload and tag");
    return NULL;
  }
  unsigned char key[KEY_LENGTH];
  int ok = object_key(enc_key, buf, key) && aes_gcm(key, buf, (size_t)payload_length, aad, aad_length);
  OPENSSL_cleanse(key, sizeof key);
  if (!ok) {
    napi_throw_error(env, "ERR_CRYPTO_OPERATION_FAILED", "sealAesGcmInPlace: OpenSSL failed");
    return NULL;
  }
  return NULL;
}

/* Decrypts buf[25 .. len-16) in place; 1 if the tag at the end matched. */
static int aes_gcm_open(const unsigned char key[KEY_LENGTH], unsigned char *buf, size_t length, const unsigned char *aad,
                        size_t aad_length) {
  static const unsigned char iv[IV_LENGTH] = {0};
  unsigned char *body = buf + HEAD_LENGTH;
  size_t body_length = length - HEAD_LENGTH - TAG_LENGTH;
  int ok = 0, n = 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx == NULL) return 0;
  if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv) != 1) goto done;
  if (EVP_DecryptUpdate(ctx, NULL, &n, buf, 1) != 1) goto done;
  if (aad_length > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_length) != 1) goto done;
  if (body_length > 0 && EVP_DecryptUpdate(ctx, body, &n, body, (int)body_length) != 1) goto done;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LENGTH, body + body_length) != 1) goto done;
  ok = EVP_DecryptFinal_ex(ctx, body + body_length, &n) == 1;
done:
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

int seal_open_gcm(const unsigned char *enc_key, unsigned char *buf, size_t length, const unsigned char *aad, size_t aad_length) {
  if (length < HEAD_LENGTH + TAG_LENGTH || buf[0] != 0x01) return 0;
  unsigned char key[KEY_LENGTH];
  int ok = object_key(enc_key, buf, key) && aes_gcm_open(key, buf, length, aad, aad_length);
  OPENSSL_cleanse(key, sizeof key);
  return ok;
}

napi_value open_aes_gcm_in_place(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  size_t argc = 3;
  unsigned char *enc_key, *buf, *aad;
  size_t enc_key_length, buf_length, aad_length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || !bytes_of(env, argv[0], &enc_key, &enc_key_length) ||
      !bytes_of(env, argv[1], &buf, &buf_length) || !bytes_of(env, argv[2], &aad, &aad_length)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "openAesGcmInPlace(encKey, buf, aad): Uint8Arrays");
    return NULL;
  }
  if (enc_key_length != KEY_LENGTH || buf_length > INT32_MAX || aad_length > INT32_MAX) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "openAesGcmInPlace: a 32-byte key and a sealed object");
    return NULL;
  }
  if (napi_get_boolean(env, seal_open_gcm(enc_key, buf, buf_length, aad, aad_length), &result) != napi_ok) return NULL;
  return result;
}
