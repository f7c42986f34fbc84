#!/usr/bin/env python3
"""Interleaved launch timer: each round runs every command once, in a fresh random
order, so a busy spell on a shared machine hits all commands alike (hyperfine runs
each command's runs as one block). Prints medians and the ratio to the last command.

    bench/interleave.py ROUNDS 'cmd one' 'cmd two' ... 'baseline cmd'
"""
import random
import shlex
import statistics
import subprocess
import sys
import time


def main() -> None:
    rounds = int(sys.argv[1])
    cmds = [shlex.split(c) for c in sys.argv[2:]]
    times = [[] for _ in cmds]
    for _ in range(rounds):
        order = list(range(len(cmds)))
        random.shuffle(order)
        for i in order:
            t0 = time.perf_counter()
            rc = subprocess.call(cmds[i], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[i].append(time.perf_counter() - t0)
            if rc != 0:
                sys.exit(f"interleave: {sys.argv[2 + i]!r} exited {rc}")
    base = statistics.median(times[-1])
    for c, t in zip(sys.argv[2:], times):
        m = statistics.median(t)
        print(f"  {m * 1000:9.2f} ms median  ({m / base:5.3f}x bwrap)  {c[:60]}")


if __name__ == "__main__":
    main()
