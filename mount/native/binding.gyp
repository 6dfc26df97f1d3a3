# cairn's FUSE binding (lowlevel.c): built at install by build-fuse.mjs.
# Headers and the link-time libfuse.so (soname libfuse.so.2) come from the npm package
# fuse-shared-library-linux; at run time the system's libfuse.so.2 (Debian: libfuse2) is loaded.
{
  "targets": [
    {
      "target_name": "cairn_fuse",
      "sources": ["lowlevel.c", "replies.c", "xattr-table.c", "content-table.c"],
      "defines": ["NAPI_VERSION=8"],
      "include_dirs": ["../../lib/native", "<!(node -p \"require('path').join(require('path').dirname(require.resolve('fuse-shared-library-linux/package.json')), 'libfuse/include')\")"],
      "libraries": ["<!(node -p \"require('path').join(require('path').dirname(require.resolve('fuse-shared-library-linux/package.json')), 'libfuse/lib/libfuse.so')\")"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-Wl,-z,now"]
    }
  ]
}
