"""What `wsd slice --workers 2` would take against `--workers 1` on two idle cores, predicted
from CPU times: for a machine shared with other jobs, where wall times cannot show it.

    .venv/bin/python benchmarks/slice_critical_path.py [--rounds 3] [--minutes 10] [--files 200]

Slices the two shapes of ``benchmarks/slice.py``'s workers test (four ``--minutes`` mp3s, and
``--files`` flac files of 10 s; the same generated audio and flags) in child processes whose
``run_tasks`` is wrapped to record, per task, its worker's CPU time, and the coordinator's CPU
time when the fork server is started, when the tasks are handed out, when the last one is
done and at the end. Then, per round:

* w1 = the ``--workers 1`` run's CPU time (one process does everything; nothing waits);
* w2 = max(the coordinator's CPU time before the tasks, its CPU time when it started the
  fork server + the server's own start-up, measured here as a child importing
  ``PRELOAD``) + the tasks' CPU times list-scheduled in order on two workers + half the
  coordinator's CPU time while they run (the join's copies share the two cores) + its CPU
  time after the last task.

A prediction, not a measurement: it leaves out the workers slowing each other (shared cache
and memory bandwidth), process start and exit, and I/O waits. Applied to the code before
issue 13's overlap (one join after every task, fork server started after the arguments were
parsed) it predicted 1.48-1.52x (flac) and 1.48-1.49x (mp3) where a quieter machine had
measured 1.43x and 1.45-1.67x: trust it to about 0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOG: list = []


def traced(arg):
    """Run one task in a worker; return its result with the worker's CPU time."""
    fn, task = arg
    c = time.process_time()
    r = fn(task)
    return ("traced", r, time.process_time() - c)


def child(argv: list[str]) -> None:
    """``wsd ARGV`` in this process, timed; prints the log as JSON on the last line."""
    import wsd.runtime.executor as ex

    run, start = ex.run_tasks, ex.start_workers

    def run_tasks(fn, tasks, *, on_result=None, **kw):
        LOG.append(("tasks", time.process_time()))

        def got(x):
            LOG.append(("task", x[1].index, x[2]))
            if on_result:
                on_result(x[1])
        out = run(traced, [(fn, t) for t in tasks], on_result=got, **kw)
        LOG.append(("done", time.process_time()))
        return [x[1] for x in out]

    def start_workers(*a, **k):
        if not any(e[0] == "early" for e in LOG):
            LOG.append(("early", time.process_time()))
        return start(*a, **k)
    ex.run_tasks, ex.start_workers = run_tasks, start_workers
    from wsd.cli.main import main

    code = main(argv)
    LOG.append(("end", time.process_time()))
    print(json.dumps({"code": code, "log": LOG}))


def fork_server_s() -> float:
    """CPU seconds of a fresh interpreter importing what the fork server preloads."""
    from wsd.pipeline.slice import PRELOAD

    code = ("import time, importlib; [importlib.import_module(m) for m in %r]; "
            "print(time.process_time())" % (PRELOAD,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.split()[-1])


def trace(files, out: Path, workers: int) -> dict:
    out.unlink(missing_ok=True)
    sys.path.insert(0, str(HERE))
    from slice import SAME_WORK  # benchmarks/slice.py

    cmd = [sys.executable, __file__, "--child", "slice", *map(str, files), "-o", str(out),
           "-q", "--force", *SAME_WORK, "--workers", str(workers)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(p.stderr)
    log = json.loads(p.stdout.strip().splitlines()[-1])["log"]
    ev = {e[0]: e for e in log if e[0] != "task"}
    return {"ev": ev, "tasks": sorted((e[1], e[2]) for e in log if e[0] == "task")}


def predict(t1: dict, t2: dict, fs: float) -> tuple[float, float, dict]:
    w1 = t1["ev"]["end"][1]
    ev = t2["ev"]
    pre = ev["tasks"][1]
    start = max(pre, ev.get("early", ("", pre))[1] + fs)
    free = [start, start]
    for _, cpu in t2["tasks"]:  # in order, each to the worker free first
        free[free.index(min(free))] += cpu
    during = ev["done"][1] - ev["tasks"][1]
    tail = ev["end"][1] - ev["done"][1]
    w2 = max(free) + during / 2 + tail
    return w1, w2, {"pre": pre, "start": start, "makespan": max(free) - start,
                    "during": during, "tail": tail}


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--files", type=int, default=200)
    a = ap.parse_args()
    sys.path.insert(0, str(HERE))
    import slice as bench  # benchmarks/slice.py: the same test audio

    fs = fork_server_s()
    print(f"fork server start-up: {fs:.2f} s of CPU; load average {os.getloadavg()[0]:.1f}")
    tmp = Path(tempfile.mkdtemp(prefix="wsd-cp-", dir="/tmp"))
    try:
        bench.write_mp3(tmp / "ten.mp3", a.minutes)
        mp3s = []
        for i in range(4):
            mp3s.append(tmp / f"m{i}.mp3")
            shutil.copyfile(tmp / "ten.mp3", mp3s[-1])
        flacs = bench.write_flacs(tmp / "flac", a.files, 10)
        for name, files in ((f"4 x {a.minutes:g} min mp3", mp3s), (f"{a.files} x 10 s flac",
                                                                    flacs)):
            ratios = []
            for r in range(a.rounds):
                w1, w2, d = predict(trace(files, tmp / "o1.h5", 1),
                                    trace(files, tmp / "o2.h5", 2), fs)
                ratios.append(w1 / w2)
                print(f"{name}, round {r}: w1 {w1:.2f} s | w2 {w2:.2f} s (tasks from "
                      f"{d['start']:.2f} s, coordinator {d['pre']:.2f}; makespan "
                      f"{d['makespan']:.2f}; join during {d['during']:.2f}, after "
                      f"{d['tail']:.2f}) -> {w1 / w2:.2f}x; load average "
                      f"{os.getloadavg()[0]:.1f}", flush=True)
            ratios.sort()
            print(f"{name}: predicted speed-up {ratios[len(ratios) // 2]:.2f}x (median; "
                  f"{ratios[0]:.2f}-{ratios[-1]:.2f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
