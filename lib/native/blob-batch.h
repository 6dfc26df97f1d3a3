/* openBlobBatch: see blob-batch.c. */
#ifndef CAIRN_BLOB_BATCH_H
#define CAIRN_BLOB_BATCH_H
#include <node_api.h>

napi_value open_blob_batch(napi_env env, napi_callback_info info);

#endif
