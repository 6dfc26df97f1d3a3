#!/usr/bin/env python3
"""Where a process's peak resident memory is: polls /proc/PID/smaps of the newest process whose command
line contains PATTERN (waiting for it to start) every 0.1 s until it exits, keeps the sample with the most
resident memory, and prints it by mapping (file, [heap], [anon]) and the anonymous part by mapping size
(V8 heap pages are 256 KiB mappings; SharedArrayBuffers and large buffers are mappings of their own size).

  python3 bench/rss-peak.py 'main.js create' & cairn create ... ; wait
"""
import collections, os, re, sys, time

if len(sys.argv) != 2:
    sys.exit(__doc__)
pattern = sys.argv[1]


def newest_match():
    found = None
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            cmd = open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\0', b' ').decode('latin1')
        except OSError:
            continue
        if pattern in cmd and 'rss-peak.py' not in cmd:
            found = pid
    return found


pid = None
while pid is None:
    pid = newest_match()
    time.sleep(0.01)

best_total, best_by_name, best_anon = 0, None, None
while True:
    try:
        text = open(f'/proc/{pid}/smaps').read()
    except OSError:
        break
    by_name, anon, name, size = collections.Counter(), collections.Counter(), None, 0
    for line in text.splitlines():
        if re.match(r'^[0-9a-f]+-[0-9a-f]+ ', line):
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split('-'))
            name, size = (fields[5] if len(fields) > 5 else '[anon]'), (end - start) // 1024
        elif line.startswith('Rss:'):
            kib = int(line.split()[1])
            by_name[name] += kib
            if name == '[anon]':
                anon[size] += kib
    total = sum(by_name.values())
    if total > best_total:
        best_total, best_by_name, best_anon = total, by_name, anon
    time.sleep(0.1)

print(f'peak resident {best_total / 1024:.1f} MiB (pid {pid})')
for name, kib in best_by_name.most_common(6):
    print(f'  {kib / 1024:7.1f} MiB  {name}')
print('  anonymous, by mapping size:')
for size, kib in sorted(best_anon.items(), key=lambda kv: -kv[1])[:8]:
    print(f'  {kib / 1024:7.1f} MiB in mappings of {size} KiB')
