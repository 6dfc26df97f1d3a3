#!/usr/bin/env bash
# Installs what cairn needs on a fresh Debian 12 machine with Node 20
# (.ci/install), builds it, and runs every test: the fast suite two files at a time, then the FUSE
# suite one file at a time (each test file mounts in a child process).
# Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

bash .ci/install || { echo "0 passed, 1 failed"; exit 1; }

results=$(mktemp -d)
fast=$(ls test/*.test.ts)
fuse=$(ls test/fuse/*.test.ts 2>/dev/null || true)

npx tap --reporter=tap --jobs=2 $fast >"$results/fast.tap" 2>&1
fast_rc=$?
fuse_rc=0
if [ -n "$fuse" ]; then
  npx tap --reporter=tap --jobs=1 $fuse >"$results/fuse.tap" 2>&1
  fuse_rc=$?
fi
cat "$results"/*.tap

# Never leave a mount behind, whatever the tests did.
grep -E ' fuse(\.| )' /proc/mounts | awk '{print $2}' | while read -r m; do fusermount -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done

# Count the test cases (each file's t.test blocks, one level of TAP indentation);
# a file that failed without any failing case (a crash) counts as one failure.
passed=$(cat "$results"/*.tap | grep -cE '^    ok [0-9]+')
failed=$(cat "$results"/*.tap | grep -cE '^    not ok [0-9]+')
if [ "$failed" -eq 0 ] && { [ "$fast_rc" -ne 0 ] || [ "$fuse_rc" -ne 0 ]; }; then
  failed=$(cat "$results"/*.tap | grep -cE '^not ok [0-9]+')
  [ "$failed" -eq 0 ] && failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
