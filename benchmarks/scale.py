"""Throughput of wsd slice and wsd embed on 1 and 2 workers (local processes and a Dask
LocalCluster), and what that means for the Orchive (20,000 hours) on 10 nodes of 32 cores.

    .venv/bin/python benchmarks/scale.py [--files 4] [--minutes 30] [--repeat 2]

Audio: ``--files`` mp3s of ``--minutes`` each at 44.1 kHz (the Orchive is mp3), made by
repeating the MPEG frames of one minute encoded at a constant 160 kbit/s (see slice.py).
Every configuration runs ``--repeat`` times in this one process tree, the fastest run kept
(the machines are shared and noisy). Speed-up = rate with 2 workers / rate with 1.

* slice, local processes: ``--workers 1`` (in-process) against ``--workers 2``, joined into
  one file (``--join merge``, a serial copy of every window) and mapped as a virtual dataset
  (``--join virtual``, no copy).
* slice, Dask: a LocalCluster of 1 worker against one of 2 (one thread each), same command.
* embed, the seed-sized convae: per core, ``--workers 1`` with torch on one thread against
  ``--workers 2`` (one thread each); and in-process on all cores, torch's default.

The extrapolation multiplies the per-core rates by 320 cores and the measured 2-worker
efficiency, and gives the data volume the file system must carry.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import slice as slice_bench
from _common import timed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--embed-windows", type=int, default=32768,
                    help="windows embedded in the embed rows (default 32768: two chunk tasks "
                         "of 16,384)")
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="wsd-scale-") as d:
        d = Path(d)
        audio = d / "audio"
        audio.mkdir()
        slice_bench.make_unit_mp3(d / "unit.mp3")
        slice_bench.write_long_mp3(audio / "f0.mp3", a.minutes, d / "unit.mp3")
        for i in range(1, a.files):
            shutil.copyfile(audio / "f0.mp3", audio / f"f{i}.mp3")
        audio_s = a.files * a.minutes * 60
        rows = []

        def best(args, env=None):
            """Fastest of --repeat fresh runs: finished shards of the previous run are
            removed first (wsd would reuse them: that is its resume)."""
            out = Path(args[args.index("-o") + 1])
            times = []
            for _ in range(a.repeat):
                shutil.rmtree(out.with_name(out.name + ".shards"), ignore_errors=True)
                times.append(timed(args + ["--force", "-q"], env))
            return min(times)

        for join in ("merge", "virtual"):
            t1 = best(["slice", audio, "-o", d / "w1.h5", "--join", join])
            t2 = best(["slice", audio, "-o", d / "w2.h5", "--join", join, "--workers", "2"])
            rows.append((f"slice --join {join}", "audio s/s", audio_s / t1, audio_s / t2))
            if join == "merge":
                merged_slice = rows[-1]
        from distributed import LocalCluster

        rates = []
        for n in (1, 2):
            with LocalCluster(n_workers=n, threads_per_worker=1, host="127.0.0.1",
                              dashboard_address=None, silence_logs=50) as c:
                rates.append(audio_s / best(["slice", audio, "-o", d / f"wd{n}.h5",
                                             "--join", "virtual", "--scheduler",
                                             c.scheduler_address]))
        rows.append(("slice, Dask LocalCluster", "audio s/s", *rates))

        from wsd.io.store import open_file

        timed(["train", d / "w1.h5", "--arch", "convae", "--epochs", "1", "--max-windows",
               "256", "--val-fraction", "0", "--patience", "0", "-o", d / "m.h5", "-q",
               "--force"])
        with open_file(d / "w1.h5") as f:
            n_all, window_s = f.n, float(f.read("start_s", 1) - f.read("start_s", 0))
        nbytes = n_all * 32 * 256 * 2  # float16 windows
        # the embedding runs: one recording of about --embed-windows windows
        (d / "emb").mkdir()
        slice_bench.write_long_mp3(d / "emb" / "e.mp3", max(1, round(a.embed_windows
                                   * window_s / 60)), d / "unit.mp3")
        sub = d / "sub.h5"
        timed(["slice", d / "emb", "-o", sub, "-q"])
        with open_file(sub) as f:
            n = f.n
        one = {"OMP_NUM_THREADS": "1"}
        e1 = best(["embed", sub, "--model", d / "m.h5", "-o", d / "e1.h5"], one)
        e2 = best(["embed", sub, "--model", d / "m.h5", "-o", d / "e2.h5", "--workers", "2"])
        eall = best(["embed", sub, "--model", d / "m.h5", "-o", d / "e3.h5"])
        rows.append(("embed convae (seed), per core", "windows/s", n / e1, n / e2))
    print(f"wsd scale benchmark: {a.files} x {a.minutes:g} min mp3, 44.1 kHz; "
          f"{os.cpu_count()} cores, load average {load0:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"{'command':<32}{'unit':<11}{'1 worker':>10}{'2 workers':>11}{'speed-up':>10}")
    for name, unit, r1, r2 in rows:
        print(f"{name:<32}{unit:<11}{r1:>10.1f}{r2:>11.1f}{r2 / r1:>10.2f}")
    print(f"{'embed convae, in-process':<32}{'windows/s':<11}{n / eall:>10.1f}"
          f"{'':>11}{'':>10}   (torch on all {os.cpu_count()} cores)")

    orchive_s, cores = 20000 * 3600, 10 * 32
    s1, s2 = merged_slice[2], merged_slice[3]
    s_eff = min(1.0, s2 / s1 / 2)
    e_core, e_eff = rows[-1][2], min(1.0, rows[-1][3] / rows[-1][2] / 2)
    windows = orchive_s / window_s
    slice_h = orchive_s / (s1 * cores * s_eff) / 3600
    embed_h = windows / (e_core * cores * e_eff) / 3600
    out_tb = nbytes / audio_s * orchive_s / 1e12
    mp3_tb = 160e3 / 8 * orchive_s / 1e12
    print(f"\nOrchive, 20,000 h of 44.1 kHz mp3 on 10 nodes x 32 cores, at the per-core rates "
          f"above and the 2-worker efficiencies (slice {s_eff:.2f}, embed {e_eff:.2f}):")
    print(f"  slice  {orchive_s / s1 / 3600:8.0f} core-hours -> {slice_h:5.1f} h wall; reads "
          f"{mp3_tb:.1f} TB of mp3 (at 160 kbit/s), writes {out_tb:.1f} TB of float16 windows "
          f"({out_tb * 1e6 / (slice_h * 3600):.0f} MB/s sustained)")
    print(f"  embed  {windows / e_core / 3600:8.0f} core-hours -> {embed_h:5.1f} h wall for "
          f"{windows / 1e6:.0f} M windows, one every {window_s:.3f} s (seed convae)")
    print("  before file-system limits; `slice --drop-silence` keeps only the active windows, "
          "which cuts the writes and the embedding work by the share of silence.")


if __name__ == "__main__":
    main()
