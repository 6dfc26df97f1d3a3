#!/usr/bin/env python3
"""Where a program waits on a FUSE mount: runs COMMAND under `perf record` of the kernel's
fuse:fuse_request_send and fuse:fuse_request_end tracepoints (Linux 6.x, root), then prints per
request type how many were sent and how long each took from the kernel queueing it to the mount
process answering it ("in the mount"), and per pair of consecutive requests the time from one
answer to the next request ("in the client": the client's own work, its other syscalls, and being
woken). No change to the mount process is needed, and every FUSE mount the command touches counts.

  python3 bench/fuse-trace.py -- cp -a /mnt/cairn/ARCHIVE/dir /var/tmp/copy
  python3 bench/fuse-trace.py --stalls 1 -- cp -a ...   # also list each request that waited over 1 ms in the mount

With --stalls MS, each request that took the mount longer than MS milliseconds is listed first, in order, with
when it was queued (from the first request) and how long it waited: where a program stood still.
"""
import collections, os, re, subprocess, sys, tempfile

EVENT = re.compile(r'\s(\d+\.\d+):\s+fuse:fuse_request_(send|end): connection \d+ req (\d+)(?: opcode \d+ \((\w+)\))?')


def main() -> None:
    args = sys.argv[1:]
    stall_ms = None
    if len(args) >= 2 and args[0] == '--stalls':
        try:
            stall_ms = float(args[1])
        except ValueError:
            sys.exit(__doc__)
        args = args[2:]
    if len(args) < 2 or args[0] != '--':
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, 'perf.data')
        run = subprocess.run(['perf', 'record', '-q', '-a', '-o', data, '-e', 'fuse:fuse_request_send', '-e', 'fuse:fuse_request_end',
                              '--', *args[1:]])
        if run.returncode != 0:
            sys.exit(f'perf record or the command failed (exit {run.returncode}); is perf installed and are you root?')
        script = subprocess.run(['perf', 'script', '-i', data], capture_output=True, text=True, check=True).stdout
    report(script.splitlines(), stall_ms)


def quantile(values: list, q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))]


def report(lines: list, stall_ms: float | None = None) -> None:
    sent = {}  # request number -> (time, opcode)
    in_mount = collections.defaultdict(list)
    in_client = collections.defaultdict(list)
    last_answer = None  # (time, opcode) of the latest answer
    first = last = None
    for line in lines:
        m = EVENT.search(line)
        if not m:
            continue
        t, kind, req, op = float(m.group(1)), m.group(2), m.group(3), m.group(4)
        first = t if first is None else first
        last = t
        if kind == 'send':
            sent[req] = (t, op)
            if last_answer:
                in_client[(last_answer[1], op)].append(t - last_answer[0])
        elif req in sent:
            t0, op = sent.pop(req)
            in_mount[op].append(t - t0)
            if stall_ms is not None and t - t0 > stall_ms / 1e3:
                print(f'  stall: {op} queued at {1e3 * (t0 - first):.1f} ms waited {1e3 * (t - t0):.1f} ms')
            last_answer = (t, op)
    if first is None:
        sys.exit('no FUSE requests were traced')
    print(f'span {1e3 * (last - first):.1f} ms, from the first request to the last answer\n')
    print('in the mount (queued -> answered)')
    rows = sorted(in_mount.items(), key=lambda kv: -sum(kv[1]))
    for op, v in rows:
        v.sort()
        print(f'  {op:20} {len(v):7} requests  {1e3 * sum(v):8.1f} ms  median {1e6 * quantile(v, 0.5):7.1f} µs  p90 {1e6 * quantile(v, 0.9):7.1f} µs')
    print(f'  {"all":20} {sum(len(v) for v in in_mount.values()):7} requests  {1e3 * sum(sum(v) for v in in_mount.values()):8.1f} ms\n')
    print('in the client (answer -> next request), by the pair of requests')
    for (a, b), v in sorted(in_client.items(), key=lambda kv: -sum(kv[1]))[:12]:
        v.sort()
        print(f'  {a:>20} -> {b:20} {len(v):7}  {1e3 * sum(v):8.1f} ms  median {1e6 * quantile(v, 0.5):7.1f} µs')
    print(f'  {"all":>20}    {"":20} {sum(len(v) for v in in_client.values()):7}  {1e3 * sum(sum(v) for v in in_client.values()):8.1f} ms')


if __name__ == '__main__':
    main()
