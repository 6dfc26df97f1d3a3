/* sealAesGcmInPlace, openAesGcmInPlace: see seal.c. */
#ifndef CAIRN_SEAL_H
#define CAIRN_SEAL_H
#include <node_api.h>

napi_value seal_aes_gcm_in_place(napi_env env, napi_callback_info info);
napi_value open_aes_gcm_in_place(napi_env env, napi_callback_info info);

#endif
