# cairn's POSIX helper (posix.c): built at install by build-native.mjs.
# zstd's decoder (for blob-batch.c) is compiled from the sources the npm package zstd-napi ships (deps/zstd),
# the same zstd version and options lib/compress/codec.ts decodes with, its symbols kept hidden.
{
  "variables": {
    "zstd": "<!(node -p \"const p = require('path'); p.relative(process.cwd(), p.join(p.dirname(require.resolve('zstd-napi/package.json')), 'deps/zstd/lib'))\")"
  },
  "targets": [
    {
      "target_name": "cairn_posix",
      "sources": [
        "posix.c", "scan.c", "seal.c", "romix.c", "blob-batch.c",
        "<(zstd)/common/entropy_common.c",
        "<(zstd)/common/error_private.c",
        "<(zstd)/common/fse_decompress.c",
        "<(zstd)/common/xxhash.c",
        "<(zstd)/common/zstd_common.c",
        "<(zstd)/decompress/huf_decompress.c",
        "<(zstd)/decompress/huf_decompress_amd64.S",
        "<(zstd)/decompress/zstd_ddict.c",
        "<(zstd)/decompress/zstd_decompress.c",
        "<(zstd)/decompress/zstd_decompress_block.c"
      ],
      "include_dirs": ["<(zstd)"],
      "defines": ["NAPI_VERSION=8", "XXH_NAMESPACE=ZSTD_", "ZSTDLIB_VISIBLE=", "ZSTDERRORLIB_VISIBLE=", "ZSTD_NO_TRACE", "ZSTD_LEGACY_SUPPORT=0"],
      "cflags": ["-fvisibility=hidden"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-Wl,-z,now"]
    }
  ]
}
