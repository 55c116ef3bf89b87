"""``wsd cluster`` against a bare dtaidistance call, and its wall time at 1,000-10,000 sequences.

    .venv/bin/python benchmarks/cluster.py [--rate-n 400] [--rounds 5] [--sizes 1000 3000 10000]

Synthetic embeddings files are written with wsd.io.store.rows.RowWriter into a temporary folder
(removed afterwards): one recording per sequence (``--per-file``), lengths 5-30 windows
(uniform), 128-d, 8 types (noisy random trajectories, labelled, so the run also prints ARI).

1. DTW matrix rate. ``wsd cluster EMB.h5 --per-file`` (128-d, no PCA, no band: the case where
   the DTW dominates) on ``--rate-n`` sequences against a bare
   ``dtaidistance.dtw_ndim.distance_matrix_fast(seqs, ndim=128, compact=True, parallel=True)``
   on the same sequences already in memory as float64. Each round runs both alternately;
   the median of ``--rounds`` rounds is reported. Two wsd figures:
   * DTW stage: ``wsd cluster`` run in-process (``wsd.cli.main.main``) with
     ``wsd.discovery.agglomerative.dtw_condensed`` wrapped by a timer: wsd's validation, float64
     conversion and the library call, as the command does them (target ratio >= 0.9);
   * whole command: the wall time of a ``wsd cluster`` child process (Python start-up,
     reading, linkage, medoids, silhouette, novelty, label metrics, writing included).
2. Scale. Wall time of a ``wsd cluster`` child process for each size in ``--sizes``, 128-d
   embeddings reduced with ``--pca 16`` (16-d keeps 10,000 runnable in a few minutes on 2
   cores; 128-d costs about 6 times more per pair), ``-k 8``; sizes above ``--sample-from``
   run with ``--sample 2000``. Novelty (default k=5) is on, so with --sample every other
   sequence is compared with all 2,000 sampled ones (``--novelty-k 0`` would compare it with
   the 8 medoids only; ``--no-novelty`` times that instead).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import synthetic_sources

DIM = 128
TYPES = 8


def write_embeddings(path: Path, n: int, seed: int = 0) -> np.ndarray:
    """An embeddings file of ``n`` sequences (one per source), lengths 5-30, DIM-d float32:
    each type a piecewise-linear path through 6 random knots, plus noise. Returns the
    ``(n,)`` lengths."""
    from wsd.io.store.rows import RowWriter

    rng = np.random.default_rng(seed)
    protos = rng.standard_normal((TYPES, 6, DIM))  # 6 knots per type trajectory
    lengths = rng.integers(5, 31, n)
    kinds = rng.integers(0, TYPES, n)
    sources = synthetic_sources([f"/synthetic/seq{i:05d}.wav" for i in range(n)],
                                lengths * 0.19, lengths)
    spec = {"sample_rate": 44100, "n_fft": 512, "hop_length": 256, "frames": 32}
    w = RowWriter(path, "embeddings", {"windows": "synthetic"}, spec, ["benchmarks/cluster.py"],
                  sources)
    try:
        for a in range(0, n, 500):
            emb, sid, st, lab = [], [], [], []
            for i in range(a, min(n, a + 500)):
                L, k = int(lengths[i]), int(kinds[i])
                t = np.linspace(0, 5, L)
                j = np.minimum(t.astype(int), 4)
                frac = (t - j)[:, None]
                traj = protos[k][j] * (1 - frac) + protos[k][j + 1] * frac
                emb.append(traj + 0.5 * rng.standard_normal((L, DIM)))
                sid.append(np.full(L, i, np.int32))
                st.append(np.arange(L) * 0.19)
                lab += [f"type{k}"] * L
            st = np.concatenate(st)
            w.append(embeddings=np.concatenate(emb).astype(np.float32),
                     source_id=np.concatenate(sid), start_s=st, end_s=st + 0.19,
                     label=np.array(lab, dtype=object))
    finally:
        w.close()
    return lengths


def read_sequences(path: Path) -> list[np.ndarray]:
    """The per-source sequences as C-contiguous float64 ``(len_i, DIM)`` arrays."""
    from wsd.io.store import open_file

    with open_file(path, "embeddings") as f:
        x = f.read("embeddings").astype(np.float64)
        sid = f.read("source_id")
    cuts = np.flatnonzero(np.diff(sid)) + 1
    return [np.ascontiguousarray(s) for s in np.split(x, cuts)]


def cluster_child(emb: Path, out: Path, *extra) -> tuple[float, str]:
    """Wall seconds and stderr of ``wsd cluster EMB --per-file -o OUT EXTRA`` in a child."""
    cmd = [sys.executable, "-m", "wsd", "cluster", str(emb), "--per-file", "-o", str(out),
           "--force", *map(str, extra)]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])} failed ({r.returncode}): {r.stderr.strip()}")
    return wall, r.stderr


def dtw_stage_in_process(emb: Path, out: Path, *extra) -> float:
    """Seconds ``wsd cluster`` (in-process) spends in wsd.discovery.agglomerative.dtw_condensed."""
    from wsd.discovery import agglomerative as clustering
    from wsd.cli.main import main

    spent = []
    inner = clustering.dtw_condensed

    def timed(*a, **k):
        t = time.perf_counter()
        d = inner(*a, **k)
        spent.append(time.perf_counter() - t)
        return d

    clustering.dtw_condensed = timed
    try:
        code = main(["cluster", str(emb), "--per-file", "-o", str(out), "--force", "-q",
                     *map(str, extra)])
    finally:
        clustering.dtw_condensed = inner
    if code != 0 or len(spent) != 1:
        raise RuntimeError(f"wsd cluster exited {code}, {len(spent)} DTW matrix call(s)")
    return spent[0]


def rate_benchmark(tmp: Path, n: int, rounds: int) -> None:
    from dtaidistance import dtw_ndim

    from wsd.discovery import dtw

    emb = tmp / f"rate{n}.h5"
    mean_len = write_embeddings(emb, n, seed=1).mean()
    seqs = read_sequences(emb)
    pairs = n * (n - 1) // 2
    bare_fn = lambda: dtw_ndim.distance_matrix_fast(seqs, ndim=DIM, compact=True,  # noqa: E731
                                                    parallel=True)
    bare_fn()  # warm-up (page in the library, first OpenMP team)
    opts = ("-k", TYPES)
    bare, stage, whole = [], [], []
    for _ in range(rounds):
        t = time.perf_counter()
        bare_fn()
        bare.append(time.perf_counter() - t)
        stage.append(dtw_stage_in_process(emb, tmp / "rate_cl.h5", *opts))
        whole.append(cluster_child(emb, tmp / "rate_cl.h5", *opts)[0])
    threads = os.environ.get("OMP_NUM_THREADS") or str(len(os.sched_getaffinity(0)))
    b, s, w = (statistics.median(v) for v in (bare, stage, whole))
    print(f"DTW matrix rate: {n} sequences, lengths 5-30 (mean {mean_len:.1f}), {DIM}-d, no "
          f"band, {pairs:,} pairs; dtaidistance C={dtw.c_available()}, "
          f"OpenMP={dtw.openmp_available()}, {threads} threads; median of {rounds} rounds")
    print(f"{'':34s}{'seconds':>9s}{'pairs/s':>10s}{'ratio':>7s}   all rounds (s)")
    for name, v, m in (("bare distance_matrix_fast", bare, b),
                       ("wsd cluster, DTW stage", stage, s),
                       ("wsd cluster, whole command", whole, w)):
        print(f"{name:34s}{m:9.2f}{pairs / m:10,.0f}{b / m:7.3f}   "
              + " ".join(f"{x:.2f}" for x in v))


def scale_benchmark(tmp: Path, sizes: list[int], sample_from: int, sample: int,
                    novelty: bool) -> None:
    from wsd.discovery import cost

    print(f"\nwsd cluster wall time (child process, start-up included), {DIM}-d embeddings "
          f"with --pca 16, lengths 5-30, -k {TYPES}, novelty {'k=5' if novelty else 'off'}")
    print(f"{'sequences':>10s}{'windows':>9s}{'clustered':>10s}{'DTW pairs':>13s}"
          f"{'estimate s':>11s}{'wall s':>8s}{'pairs/s':>10s}{'ARI':>7s}")
    for n in sizes:
        emb = tmp / f"scale{n}.h5"
        lengths = write_embeddings(emb, n, seed=2)
        opts = ["--pca", 16, "-k", TYPES, *([] if novelty else ["--novelty-k", 0])]
        m = n
        if n > sample_from:
            opts += ["--sample", sample]
            m = sample
        pairs = m * (m - 1) // 2 + (n - m) * (m if novelty else TYPES)
        _, est = cost.estimate_cost(m, lengths, 16)
        est += (n - m) * (m if novelty else TYPES) * cost.pair_seconds(lengths, 16)
        wall, _ = cluster_child(emb, tmp / "scale_cl.h5", *opts)
        ari = read_ari(tmp / "scale_cl.h5")
        print(f"{n:10,d}{lengths.sum():9,d}{m:10,d}{pairs:13,d}{est:11.0f}{wall:8.1f}"
              f"{pairs / wall:10,.0f}{ari:7.3f}")
        (tmp / "scale_cl.h5").unlink()
        emb.unlink()


def read_ari(path: Path) -> float:
    from wsd.io.store import open_file

    with open_file(path, "clusters") as f:
        return float(json.loads(f.attrs("/")["metrics_json"])["ari"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate-n", type=int, default=400, help="sequences for the rate (400)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 3000, 10000])
    ap.add_argument("--sample-from", type=int, default=5000,
                    help="sizes above this run with --sample")
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--no-novelty", action="store_true", help="scale runs with --novelty-k 0")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wsd-bench-cluster-") as d:
        tmp = Path(d)
        if args.rounds > 0:
            rate_benchmark(tmp, args.rate_n, args.rounds)
        if args.sizes:
            scale_benchmark(tmp, args.sizes, args.sample_from, args.sample,
                            not args.no_novelty)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average now "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
