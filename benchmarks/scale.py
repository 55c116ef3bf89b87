"""Throughput of wsd slice and wsd embed on 1 and 2 local workers, and on a Dask LocalCluster
of 2 workers, with an extrapolation to the Orchive (20,000 hours) on 10 nodes of 32 cores.

    .venv/bin/python benchmarks/scale.py [--files 4] [--seconds 300]

Every configuration runs in this one process tree, twice, keeping the faster run (the
machines are shared and noisy). Speed-up = rate with 2 workers / rate with 1.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import timed, write_audio


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        write_audio(d / "audio", a.files, a.seconds)
        audio_s = a.files * a.seconds
        rows = []

        def best(args):
            return min(timed(args + ["--force", "-q"]) for _ in range(a.repeat))

        t1 = best(["slice", d / "audio", "-o", d / "w1.h5"])
        t2 = best(["slice", d / "audio", "-o", d / "w2.h5", "--workers", "2"])
        rows.append(("slice", "audio s/s", audio_s / t1, audio_s / t2))
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=None, silence_logs=50) as c:
            td = best(["slice", d / "audio", "-o", d / "w3.h5", "--scheduler",
                       c.scheduler_address])
        rows.append(("slice (dask 2)", "audio s/s", audio_s / t1, audio_s / td))
        timed(["train", d / "w1.h5", "--arch", "convae", "-p", "width=0.25", "--epochs", "1",
               "--max-windows", "256", "-o", d / "m.h5", "-q", "--force"])
        from wsd.store import open_file

        with open_file(d / "w1.h5") as f:
            n = f.n
        e1 = best(["embed", d / "w1.h5", "--model", d / "m.h5", "-o", d / "e1.h5"])
        e2 = best(["embed", d / "w1.h5", "--model", d / "m.h5", "-o", d / "e2.h5",
                   "--workers", "2"])
        rows.append(("embed (convae w=0.25)", "windows/s", n / e1, n / e2))
    print(f"{'command':<24}{'unit':<11}{'1 worker':>10}{'2 workers':>11}{'speed-up':>10}")
    for name, unit, r1, r2 in rows:
        print(f"{name:<24}{unit:<11}{r1:>10.1f}{r2:>11.1f}{r2 / r1:>10.2f}")
    per_core = rows[0][2]
    orchive = 20000 * 3600
    cores = 10 * 32
    eff = min(1.0, rows[0][3] / rows[0][2] / 2)
    hours = orchive / (per_core * cores * eff) / 3600
    print(f"\nslice: {per_core:.0f} s of audio per second on one core (wall time of the whole "
          f"command, including start-up); 2-worker efficiency {eff:.2f}.")
    print(f"Orchive, 20,000 h on 10 nodes x 32 cores at that rate and efficiency: about "
          f"{hours:.1f} h of wall time (before I/O limits of the shared file system).")


if __name__ == "__main__":
    main()
