#!/usr/bin/env python3
"""Interleaved launch timer: each round runs every command once, in a fresh random
order, so a busy spell on a shared machine hits all commands alike (hyperfine runs
each command's runs as one block). Prints medians and the ratio to the last command.

    bench/interleave.py [--vs NAME] ROUNDS 'cmd one' 'cmd two' ... 'baseline cmd'

NAME labels the baseline in the ratio column (default: bwrap).
"""
import random
import shlex
import statistics
import subprocess
import sys
import time


def main() -> None:
    args = sys.argv[1:]
    vs = "bwrap"
    if args[0] == "--vs":
        vs, args = args[1], args[2:]
    rounds = int(args[0])
    cmds = [shlex.split(c) for c in args[1:]]
    times = [[] for _ in cmds]
    for _ in range(rounds):
        order = list(range(len(cmds)))
        random.shuffle(order)
        for i in order:
            t0 = time.perf_counter()
            rc = subprocess.call(cmds[i], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[i].append(time.perf_counter() - t0)
            if rc != 0:
                sys.exit(f"interleave: {args[1 + i]!r} exited {rc}")
    base = statistics.median(times[-1])
    for c, t in zip(args[1:], times):
        m = statistics.median(t)
        print(f"  {m * 1000:9.2f} ms median  ({m / base:5.3f}x {vs})  {c[:60]}")


if __name__ == "__main__":
    main()
