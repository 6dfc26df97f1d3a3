/* scryptRoMix: see romix.c. */
#ifndef CAIRN_ROMIX_H
#define CAIRN_ROMIX_H
#include <node_api.h>

napi_value scrypt_romix(napi_env env, napi_callback_info info);

#endif
