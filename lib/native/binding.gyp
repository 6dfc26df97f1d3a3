# cairn's POSIX helper (posix.c): built at install by build-native.mjs.
{
  "targets": [
    {
      "target_name": "cairn_posix",
      "sources": ["posix.c", "scan.c", "seal.c", "romix.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-Wl,-z,now"]
    }
  ]
}
