#!/usr/bin/env python3
"""Not the benchmark: where a command's CPU goes by thread, and how busy it is over time, as quoted in session 13.

  python3 bench/thread-cpu.py [--every SECONDS] -- COMMAND...

Runs COMMAND and samples /proc/PID/task/*/stat every 20 ms. At the end: each thread's user and system CPU
(the main thread marked *; a thread that ended is counted up to its last sample). With --every, also one
line per interval: the main thread's CPU, the two busiest other threads' (a backup's sealing workers), the
rest, and the process's disk reads (/proc/PID/io read_bytes), in % of one CPU and MB/s.
"""
import os, subprocess, sys, time

args = sys.argv[1:]
every = None
if args[:1] == ['--every']:
    every, args = float(args[1]), args[2:]
if args[:1] != ['--'] or len(args) < 2:
    sys.exit(__doc__)
HZ = os.sysconf('SC_CLK_TCK')
proc = subprocess.Popen(args[1:], stdout=subprocess.DEVNULL)
last, mark, mark_io, start, lines = {}, {}, 0, time.time(), []

def read_bytes():
    for line in open(f'/proc/{proc.pid}/io'):
        if line.startswith('read_bytes'):
            return int(line.split()[1])
    return 0

next_line = start + (every or 0)
while proc.poll() is None:
    try:
        for tid in os.listdir(f'/proc/{proc.pid}/task'):
            try:
                stat = open(f'/proc/{proc.pid}/task/{tid}/stat').read()
                fields = stat[stat.rindex(')') + 2:].split()
                last[int(tid)] = (int(fields[11]), int(fields[12]))
            except OSError:
                pass
        io = read_bytes()
    except OSError:
        break
    now = time.time()
    if every and now >= next_line:
        delta = {t: sum(v) - sum(mark.get(t, (0, 0))) for t, v in last.items()}
        others = sorted((d for t, d in delta.items() if t != proc.pid), reverse=True)
        pct = lambda ticks: round(100 * ticks / HZ / every)
        lines.append(f'{now - start:6.2f} s  main {pct(delta.get(proc.pid, 0)):3d} %  next two {[pct(d) for d in others[:2]]} %  '
                     f'rest {pct(sum(others[2:])):3d} %  reads {(io - mark_io) / 1e6 / every:7.1f} MB/s')
        mark, mark_io, next_line = dict(last), io, now + every
    time.sleep(0.02)
print('\n'.join(lines))
for tid, (user, system) in sorted(last.items(), key=lambda kv: -sum(kv[1])):
    if user + system:
        print(f'{tid}{"*" if tid == proc.pid else " "} user {user / HZ:6.2f} s  sys {system / HZ:6.2f} s')
sys.exit(proc.returncode)
