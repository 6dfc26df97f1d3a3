/* sealAesGcmInPlace, openAesGcmInPlace, seal_open_gcm: see seal.c. */
#ifndef CAIRN_SEAL_H
#define CAIRN_SEAL_H
#include <node_api.h>

napi_value seal_aes_gcm_in_place(napi_env env, napi_callback_info info);
napi_value open_aes_gcm_in_place(napi_env env, napi_callback_info info);

/*
 * The C side of openAesGcmInPlace, for any thread: decrypts a whole sealed object (scheme byte 0x01, 32-byte
 * encKey) in place; 1 if its tag matched, else 0 and the bytes are garbage.
 */
int seal_open_gcm(const unsigned char *enc_key, unsigned char *buf, size_t length, const unsigned char *aad, size_t aad_length);

#endif
