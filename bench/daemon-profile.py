#!/usr/bin/env python3
"""Not the benchmark: what a running mount process spends its CPU on while a command runs, as quoted in
bench/RESULTS.md (session 19).

  python3 bench/daemon-profile.py PID -- COMMAND...

Runs `perf record -g` (5 kHz) on process PID for as long as COMMAND runs, then sorts the samples: the main
thread (the one whose id is PID) into its JavaScript, garbage collection, replies to the kernel (writev), the spin
between requests (poll from libuv's prepare phase), waiting (epoll) and the rest; the other threads into
garbage collection, TurboFan compiling, and the rest (libuv's pool, the FUSE helper). Start the mount with
NODE_OPTIONS=--perf-basic-prof so that JavaScript frames have names; without it they count as the main
thread's rest. Needs perf and root.
"""
import collections, os, re, signal, subprocess, sys, tempfile, time

GC = ('Scavenge', 'Marking', 'MarkCompact', 'Sweeper', 'Heap::Collect', 'ConcurrentMarking')
HEADER = re.compile(r'^\s*\S.*?\s+(\d+)\s*$')


def category(main: bool, frames: list) -> str:
    s = ' '.join(frames)
    gc = any(k in s for k in GC)
    if not main:
        return 'other threads: gc' if gc else 'other threads: compile' if 'compiler' in s else 'other threads: rest'
    if 'uv__run_prepare' in s and '__poll' in s:
        return 'main: spin'
    if 'epoll_wait' in s or 'epoll_pwait' in s:
        return 'main: waiting'
    if gc:
        return 'main: gc'
    if 'writev' in s:
        return 'main: replies'
    if 'JS:' in s:
        return 'main: javascript'
    return 'main: rest'


def main() -> None:
    args = sys.argv[1:]
    if len(args) < 3 or args[1] != '--' or not args[0].isdigit():
        sys.exit(__doc__)
    pid = args[0]
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, 'perf.data')
        perf = subprocess.Popen(['perf', 'record', '-q', '-F', '5000', '-g', '-p', pid, '-o', data])
        time.sleep(0.3)  # perf attaching
        command = subprocess.run(args[2:])
        perf.send_signal(signal.SIGINT)
        if perf.wait() not in (0, -signal.SIGINT) or command.returncode != 0:  # perf ends by re-raising the SIGINT
            sys.exit(f'perf record (exit {perf.returncode}) or the command (exit {command.returncode}) failed; is perf installed, are you root?')
        script = subprocess.run(['perf', 'script', '-i', data, '-F', 'comm,tid,ip,sym'], capture_output=True, text=True, check=True).stdout
    samples = []
    for block in script.split('\n\n'):
        lines = block.strip('\n').split('\n')
        m = HEADER.match(lines[0]) if lines and lines[0].strip() else None
        if m:
            samples.append((int(m.group(1)), [(f.strip().split(None, 1) + [''])[1] for f in lines[1:]]))
    if not samples:
        sys.exit('no samples: is PID the mount process?')
    counts = collections.Counter(category(tid == int(pid), frames) for tid, frames in samples)
    print(f'{len(samples)} samples ({len(samples) / 5000:.2f} s of CPU)')
    for name, n in sorted(counts.items()):
        print(f'  {name:28} {100 * n / len(samples):5.1f}%')


if __name__ == '__main__':
    main()
