/* scanDirectory: see scan.c. */
#ifndef CAIRN_SCAN_H
#define CAIRN_SCAN_H
#include <node_api.h>

napi_value scan_directory(napi_env env, napi_callback_info info);

#endif
