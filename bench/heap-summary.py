#!/usr/bin/env python3
"""What a V8 heap snapshot holds: the live objects by type and constructor, the largest ArrayBuffer backing
stores (SharedArrayBuffers, Buffers' memory) with the chain of objects that keeps each alive, and the small
backing stores grouped by that chain (a kept 50-byte Buffer cut from Node's 8 KiB pool keeps the whole slab).

Take the snapshot from a running cairn (node writes Heap.*.heapsnapshot into its working directory; the
snapshot is taken after a full collection, so it shows live objects only):

  node --heapsnapshot-signal=SIGUSR2 dist/cli/main.js mount -f REPO MNT &   # or create, extract, ...
  kill -USR2 $!
  python3 bench/heap-summary.py Heap.*.heapsnapshot [--retainers TYPE_OR_NAME]

--retainers groups the nodes of that type ('bigint', 'string', ...) or constructor ('Object', 'Buffer',
'ArchiveDirNode', ...) by their first three retainers.
"""
import collections, json, sys

if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != '--retainers'):
    sys.exit(__doc__)
snapshot = json.load(open(sys.argv[1]))
meta = snapshot['snapshot']['meta']
node_fields, edge_fields = meta['node_fields'], meta['edge_fields']
node_types, edge_types = meta['node_types'][0], meta['edge_types'][0]
NF, EF = len(node_fields), len(edge_fields)
nodes, edges, strings = snapshot['nodes'], snapshot['edges'], snapshot['strings']
TYPE, NAME, SIZE, EDGES = (node_fields.index(f) for f in ('type', 'name', 'self_size', 'edge_count'))
E_TYPE, E_NAME, E_TO = (edge_fields.index(f) for f in ('type', 'name_or_index', 'to_node'))
count = len(nodes) // NF
# Types whose name is a constructor or a kind worth telling apart; for the others the type is the name.
NAMED = {'object', 'native', 'closure', 'code', 'hidden', 'object shape', 'array'}


def type_of(k):
    return node_types[nodes[k * NF + TYPE]]


def name_of(k):
    return strings[nodes[k * NF + NAME]]


def size_of(k):
    return nodes[k * NF + SIZE]


def label(k):
    return f'{type_of(k)}:{name_of(k)[:40]}'


# Who refers to whom (weak references do not keep anything alive).
retainers = collections.defaultdict(list)
first_edge = 0
for k in range(count):
    for j in range(first_edge, first_edge + nodes[k * NF + EDGES]):
        kind = edge_types[edges[j * EF + E_TYPE]]
        if kind != 'weak':
            name = edges[j * EF + E_NAME]
            retainers[edges[j * EF + E_TO] // NF].append((k, strings[name] if kind in ('property', 'internal', 'context', 'shortcut') else '[]'))
    first_edge += nodes[k * NF + EDGES]


def chain(k, depth):
    out = []
    for _ in range(depth):
        if not retainers.get(k):
            break
        k, edge = retainers[k][0]
        out.append(f'{label(k)}.{edge}')
    return ' <- '.join(out)


def mib(n):
    return f'{n / 1048576:8.1f} MiB'


if len(sys.argv) == 4:
    wanted = sys.argv[3]
    groups, sizes = collections.Counter(), collections.Counter()
    for k in range(count):
        if wanted in (type_of(k), name_of(k)):
            c = chain(k, 3)
            groups[c] += 1
            sizes[c] += size_of(k)
    for c, size in sizes.most_common(20):
        print(f'{mib(size)} {groups[c]:8}  {c}')
    sys.exit()

by_kind, how_many, total = collections.Counter(), collections.Counter(), 0
stores = []
for k in range(count):
    kind = (type_of(k), name_of(k)[:60] if type_of(k) in NAMED else '')
    by_kind[kind] += size_of(k)
    how_many[kind] += 1
    total += size_of(k)
    if name_of(k) == 'system / JSArrayBufferData':
        stores.append((size_of(k), k))
print(f'{mib(total)} in all; the largest kinds:')
for kind, size in by_kind.most_common(20):
    print(f'{mib(size)} {how_many[kind]:8}  {kind[0]} {kind[1]}')
stores.sort(reverse=True)
print('\nlargest backing stores:')
for size, k in stores[:12]:
    print(f'{mib(size)}  {chain(k, 5)}')
small, small_count = collections.Counter(), collections.Counter()
for size, k in stores:
    if size <= 8192:
        c = chain(k, 4)
        small[c] += size
        small_count[c] += 1
print('\nbacking stores of 8 KiB and less, by what keeps them:')
for c, size in small.most_common(8):
    print(f'{mib(size)} {small_count[c]:8}  {c}')
