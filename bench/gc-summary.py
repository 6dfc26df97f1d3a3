#!/usr/bin/env python3
"""Not the benchmark: V8's collections in a log of `node --trace-gc --trace-gc-nvp …`, per isolate (a backup's
main thread and each worker are one each), as quoted in session 13: how many scavenges (s) and
mark-compacts (mc), their pauses summed, and the bytes they promoted to the old generation.

  node --trace-gc --trace-gc-nvp dist/cli/main.js create … > gc.log 2>&1; python3 bench/gc-summary.py gc.log
"""
import collections, re, sys

if len(sys.argv) != 2:
    sys.exit(__doc__)
totals = collections.defaultdict(lambda: collections.defaultdict(float))
for line in open(sys.argv[1]):
    m = re.match(r'\[\d+:(0x[0-9a-f]+)\]\s+\d+ ms: pause=([\d.]+) .*? gc=(\w+) ', line)
    if not m:
        continue
    isolate, pause, kind = m.group(1), float(m.group(2)), m.group(3)
    promoted = re.search(r' promoted=(\d+)', line)
    t = totals[isolate]
    t[f'{kind} count'] += 1
    t[f'{kind} ms'] += pause
    t[f'{kind} promoted MB'] += int(promoted.group(1)) / 1e6 if promoted else 0
for isolate, t in sorted(totals.items(), key=lambda kv: -kv[1]['s count']):
    print(isolate, '  '.join(f'{k} {v:.0f}' for k, v in sorted(t.items())))
