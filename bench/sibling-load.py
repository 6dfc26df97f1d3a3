#!/usr/bin/env python3
"""Not the benchmark: how much a busy second CPU slows a program on the first, as quoted in bench/RESULTS.md
(session 19). On this project's VM it does: a FUSE daemon's work on the other vCPU costs its client time even
when the client never waits for it.

  python3 bench/sibling-load.py [--runs N] DIR

Copies DIR (`cp -a`, from the page cache, to a directory under /dev/shm) N times (default 4) with CPU 0 for cp
and CPU 1 idle, then N times with a busy loop on CPU 1, then with a loop that sleeps 50 µs at a time there;
prints each copy's time and the medians. Needs two CPUs and `taskset`.
"""
import os, shutil, statistics, subprocess, sys, tempfile, time

LOOPS = {
    'idle': None,
    'busy loop': 'while True: pass',
    'sleeping 50 us at a time': 'import time\nwhile True: time.sleep(50e-6)',
}


def copy_once(src: str, dst_root: str) -> float:
    dst = os.path.join(dst_root, 'copy')
    start = time.perf_counter()
    subprocess.run(['taskset', '-c', '0', 'cp', '-a', src, dst], check=True)
    took = time.perf_counter() - start
    shutil.rmtree(dst)
    return took


def main() -> None:
    args = sys.argv[1:]
    runs = 4
    if args[:1] == ['--runs'] and len(args) >= 2 and args[1].isdigit():
        runs, args = int(args[1]), args[2:]
    if len(args) != 1 or not os.path.isdir(args[0]) or os.cpu_count() < 2:
        sys.exit(__doc__)
    src = args[0]
    for top, _, names in os.walk(src):  # the page cache holds every file: no disk in the times
        for name in names:
            path = os.path.join(top, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, 'rb') as f:
                    f.read()
    with tempfile.TemporaryDirectory(dir='/dev/shm') as dst_root:
        for name, loop in LOOPS.items():
            load = subprocess.Popen(['taskset', '-c', '1', sys.executable, '-c', loop]) if loop else None
            try:
                time.sleep(0.3)
                times = [copy_once(src, dst_root) for _ in range(runs)]
            finally:
                if load:
                    load.kill()
                    load.wait()
            print(f'{name:26} median {statistics.median(times):.3f} s  ({" / ".join(f"{t:.3f}" for t in times)})')


if __name__ == '__main__':
    main()
