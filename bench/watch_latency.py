#!/usr/bin/env python3
"""Measures `devgraph watch`: how long from a file write to the start of the task that reads
the file, on a generated graph (bench/README.md, "Watch").

    python3 bench/watch_latency.py PROJECT DEVGRAPH [--edits 20] [--debounce 100ms]
                                   [--jobs 2] [--seed 1]

PROJECT is a `gen_graph.py --mode drift` project (tasks `lLL-tTTT` with inputs
`src/<task>/**`). The script starts `DEVGRAPH watch --json` there, waits until the first
round is over (everything converged), then, --edits times: picks a task at random, appends
a line to one of its input files, and takes the time from just before the write to the
moment the `task_started` event of that task is read from watch's stdout; it waits for the
round to end before the next edit. It prints the start-up time, the kernel watches used,
and the latencies (median, p90, min, max), and exits 1 if watch misbehaved (a wrong task
started, a round without the task, a round that failed).

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time


def inotify_watches(pid: int) -> int:
    """The number of inotify watches process `pid` holds (from /proc/PID/fdinfo)."""
    total = 0
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                total += sum(1 for line in f if line.startswith("inotify wd:"))
        except OSError:
            continue
    return total


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("project")
    ap.add_argument("devgraph")
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--debounce", default="100ms")
    ap.add_argument("--jobs", default="2")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    tasks = sorted(os.listdir(os.path.join(args.project, "src")))
    rng = random.Random(args.seed)
    began = time.monotonic()
    proc = subprocess.Popen(
        [os.path.abspath(args.devgraph), "watch", "--json", "-j", args.jobs, "--debounce", args.debounce, "all"],
        cwd=args.project,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None

    def until(kind: str, task: str | None = None) -> dict:
        for line in proc.stdout:
            event = json.loads(line)
            if event.get("event") == kind and (task is None or event.get("task") == task):
                return event
            if event.get("event") == "run_finished" and not event.get("ok"):
                raise SystemExit(f"a round failed: {line}")
        raise SystemExit("watch ended early")

    try:
        until("watching")
        startup = time.monotonic() - began
        watches = inotify_watches(proc.pid)
        latencies = []
        for i in range(args.edits):
            task = rng.choice(tasks)
            folder = os.path.join(args.project, "src", task)
            sub = rng.choice(sorted(os.listdir(folder)))
            name = rng.choice(sorted(os.listdir(os.path.join(folder, sub))))
            path = os.path.join(folder, sub, name)
            t0 = time.monotonic()
            with open(path, "a") as f:
                f.write(f"edit {i}\n")
            until("task_started", task)
            latencies.append(time.monotonic() - t0)
            until("watching")
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()

    ms = sorted(x * 1000 for x in latencies)
    p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
    files = sum(len(fs) for _, _, fs in os.walk(os.path.join(args.project, "src")))
    print(f"graph:    {len(tasks)} tasks, {files} input files")
    print(f"watches:  {watches} (one per folder); fs.inotify.max_user_watches = "
          f"{open('/proc/sys/fs/inotify/max_user_watches').read().strip()}")
    print(f"start-up: {startup:.2f} s (first round over everything, then watching)")
    print(f"edits:    {len(ms)}, debounce {args.debounce}, -j{args.jobs}")
    print(f"latency:  median {statistics.median(ms):.0f} ms, p90 {p90:.0f} ms, "
          f"min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms  (write -> task_started)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
