#!/usr/bin/env python3
"""Not the benchmark: a profile written by bench/alloc-profile.mjs, as bytes allocated by each function itself
(the function, its file and line), largest first.

  python3 bench/alloc-summary.py alloc-0.json [TOP]
"""
import collections, json, sys

if len(sys.argv) not in (2, 3):
    sys.exit(__doc__)
profile = json.load(open(sys.argv[1]))
own = collections.Counter()
stack = [profile['head']]
while stack:
    node = stack.pop()
    frame = node['callFrame']
    own[(frame['functionName'] or '(anonymous)', frame['url'].split('/')[-1], frame['lineNumber'] + 1)] += node['selfSize']
    stack.extend(node.get('children', []))
total = sum(own.values())
print(f'{total / 1e6:.1f} MB allocated')
for (name, file, line), size in own.most_common(int(sys.argv[2]) if len(sys.argv) == 3 else 30):
    print(f'{size / 1e6:8.1f} MB {100 * size / total:5.1f}%  {name} {file}:{line}')
