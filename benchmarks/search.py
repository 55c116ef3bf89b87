"""``wsd index`` / ``wsd search --index`` at archive scale, against exact numpy search and the
bare faiss library in the same run.

    .venv/bin/python benchmarks/search.py                  # 1 M random + 1 M real-like (~15 min)
    .venv/bin/python benchmarks/search.py --n 100000       # a quick look
    .venv/bin/python benchmarks/search.py --kinds real --workdir /big/disk

Needs the ``search`` extra (faiss-cpu). For each kind of data, ``--n`` 128-d float32 vectors
are written to an embeddings file (wsd.io.store.rows.RowWriter, recordings of 3,600 windows):

* **random**: i.i.d. Gaussian, no neighbourhood structure (the worst case for any ANN index:
  every point is about equally far from every other);
* **real-like**: what wsd's embeddings look like (the structure measured in
  /work/research/search): 3,000 call-type centres with Zipf popularity on an anisotropic
  spectrum, recordings made of segments (mean 30 windows) that drift as an AR(1) process, so
  neighbouring windows are near-duplicates.

Then, in the same run:

* **build**: ``wsd index EMB -o IDX`` as a child process (training, adding, on-disk merge and
  nprobe calibration included), against a child process that builds the same
  ``IVF<nlist>,SQfp16`` index with bare faiss from the same file in the same batches
  (training and adding only); wall and CPU seconds, peak RSS (``ru_maxrss`` of the child),
  bytes on disk;
* **recall@10** against exact search (numpy, every vector in RAM) for ``--queries`` rows
  drawn from the file, through wsd's index at the nprobe its calibration chose, and through
  bare faiss at the same nprobe;
* **latency** of one query (median and 99th percentile over 200 single queries, one thread)
  and of a batch of ``--queries`` (per query): wsd's opened index (memory-mapped lists),
  bare faiss (lists in RAM), exact numpy; and ``wsd search EMB --query Q.h5 --index IDX``
  end to end as a child process (start-up and writing the hits included);
* an **extrapolation** to the Orchive's ~400 M windows from the per-vector figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import ROOT, WSD, synthetic_sources

D = 128
K = 10
BATCH = 100_000
WINDOW_S = 0.5
PER_RECORDING = 3600
#: CPU-us per vector of an HNSW32 coarse quantizer over 32-64 k lists (efSearch 64),
#: measured in /work/research/search (16.5 k vectors/s on 2 threads).
HNSW_ASSIGN_CPU_US = 2 / 16_500 * 1e6


# ------------------------------------------------------------------ data
def _unit(x: np.ndarray) -> np.ndarray:
    return (x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)).astype(np.float32)


def _structure():
    rng = np.random.default_rng(12345)
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    spec_sd = 1.0 / np.sqrt(np.arange(1, D + 1))
    centres = (rng.standard_normal((3000, D)) * spec_sd) @ q.T
    pop = 1.0 / np.arange(1, 3001) ** 0.8
    pop = pop[rng.permutation(3000)]
    return q.astype(np.float32), spec_sd.astype(np.float32), centres.astype(np.float32), \
        pop / pop.sum()


def _real_like(n: int, rng: np.random.Generator, struct) -> np.ndarray:
    q, spec_sd, centres, pop = struct
    out = np.empty((n, D), np.float32)
    rho, w, iso, lmax = 0.95, 0.45, 0.03, 400
    t = np.arange(lmax)
    ar = (np.tril(rho ** (t[:, None] - t[None, :]).clip(0)) * np.sqrt(1 - rho * rho)
          ).astype(np.float32)
    decay = (rho ** (t + 1)).astype(np.float32)[:, None]
    i = 0
    while i < n:
        L = min(int(rng.geometric(1 / 30)), n - i, lmax)
        c = centres[rng.choice(len(centres), p=pop)]
        seg = ar[:L, :L] @ rng.standard_normal((L, D)).astype(np.float32) \
            + decay[:L] * rng.standard_normal(D).astype(np.float32)
        out[i:i + L] = c + w * (seg * spec_sd) @ q.T \
            + iso * rng.standard_normal((L, D)).astype(np.float32)
        i += L
    return out


def write_embeddings(path: Path, n: int, kind: str, seed: int = 0) -> None:
    from wsd.io.store.rows import RowWriter

    rng = np.random.default_rng(seed)
    struct = _structure() if kind == "real" else None
    n_rec = -(-n // PER_RECORDING)
    sources = synthetic_sources([f"/synthetic/{kind}/rec{i:05d}.flac" for i in range(n_rec)],
                                [PER_RECORDING * WINDOW_S] * n_rec, [PER_RECORDING] * n_rec,
                                rate=32000, fmt="FLAC/PCM_16")
    spec = {"sample_rate": 32000, "n_fft": 512, "hop_length": 512, "frames": 32}
    w = RowWriter(path, "embeddings", {"windows": f"synthetic {kind}"}, spec,
                  ["benchmarks/search.py"], sources)
    try:
        for a in range(0, n, BATCH):
            m = min(BATCH, n - a)
            x = rng.standard_normal((m, D)).astype(np.float32) if kind == "random" \
                else _real_like(m, rng, struct)
            row = np.arange(a, a + m)
            st = (row % PER_RECORDING) * WINDOW_S
            w.append(embeddings=x, source_id=(row // PER_RECORDING).astype(np.int32),
                     start_s=st, end_s=st + WINDOW_S)
    finally:
        w.close()


def write_queries(path: Path, emb: Path, rows: np.ndarray) -> None:
    """An embeddings file holding ``rows`` of ``emb`` (the queries of ``wsd search``)."""
    from wsd.io.store import open_file
    from wsd.io.store.rows import RowWriter

    with open_file(emb, "embeddings") as e:
        sources = {k: v for k, v in e.sources.items()}
        w = RowWriter(path, "embeddings", {"windows": "queries"}, e.spectrogram,
                      ["benchmarks/search.py"], sources)
        try:
            w.append(embeddings=e.f["embeddings"][rows], source_id=e.f["source_id"][rows],
                     start_s=e.f["start_s"][rows], end_s=e.f["end_s"][rows])
        finally:
            w.close()


# ------------------------------------------------------------------ child processes
TIME = shutil.which("time") and Path("/usr/bin/time")


def child(cmd: list[str]) -> dict:
    """Run ``cmd``; its wall and CPU seconds and peak RSS (MB).

    The peak comes from ``/usr/bin/time -f %M`` where it exists: a child spawned straight
    from this process (vfork + exec) inherits this process's high-water mark in
    ``ru_maxrss``, which after the exact search here is far above the child's own."""
    prefix = [str(TIME), "-f", "maxrss_kb=%M"] if TIME and TIME.exists() else []
    t0 = time.perf_counter()
    p = subprocess.Popen(prefix + [str(c) for c in cmd], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    out, err = p.stdout.read(), p.stderr.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({p.returncode}): {err.strip()}")
    rss = ru.ru_maxrss / 1024
    if prefix:
        last = err.strip().splitlines()[-1]
        rss = int(last.split("=")[1]) / 1024
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_mb": rss,
            "stdout": out, "stderr": err}


def bare_build(emb: str, out: str, nlist: int, seed: int) -> None:
    """What ``wsd index`` does, with faiss alone: the same sample, index and batches."""
    import faiss
    import h5py

    with h5py.File(emb, "r") as f:
        ds = f["embeddings"]
        n = ds.shape[0]
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, size=min(n, 50 * nlist), replace=False))
        quant = faiss.IndexFlatIP(D)
        idx = faiss.IndexIVFScalarQuantizer(quant, D, nlist, faiss.ScalarQuantizer.QT_fp16,
                                            faiss.METRIC_INNER_PRODUCT)
        c0, t0 = time.process_time(), time.perf_counter()
        idx.train(_unit(ds[sample]))
        train = {"train_cpu": time.process_time() - c0, "train_wall": time.perf_counter() - t0}
        for a in range(0, n, BATCH):
            x = _unit(ds[a:a + BATCH])
            idx.add_with_ids(x, np.arange(a, a + len(x), dtype=np.int64))
    faiss.write_index(idx, out)
    print(json.dumps(train))


def _size(p: Path) -> int:
    return p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*")
                                                   if f.is_file())


# ------------------------------------------------------------------ measuring
def _latency(fn, q: np.ndarray, singles: int = 200) -> dict:
    t = []
    for i in range(min(singles, len(q))):
        t0 = time.perf_counter()
        fn(q[i:i + 1])
        t.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    found = fn(q)
    batch = (time.perf_counter() - t0) / len(q)
    return {"p50_ms": 1e3 * float(np.median(t)), "p99_ms": 1e3 * float(np.percentile(t, 99)),
            "batch_ms": 1e3 * batch, "found": found}


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, exact)]))


def run_kind(kind: str, n: int, n_queries: int, work: Path, seed: int) -> dict:
    import faiss
    import h5py

    from wsd.io import index as ix

    emb, idx_dir, bare = work / f"{kind}.h5", work / f"{kind}.idx", work / f"{kind}.faiss"
    t0 = time.perf_counter()
    write_embeddings(emb, n, kind, seed)
    print(f"[{kind}] {n:,} vectors written in {time.perf_counter() - t0:.0f} s", flush=True)

    r = {"kind": kind, "n": n, "embeddings_mb": _size(emb) / 2**20}
    r["wsd_build"] = child(WSD + ["index", emb, "-o", idx_dir, "--seed", seed, "-q"])
    meta = ix.read_meta(idx_dir)
    r["nlist"], r["nprobe"], r["calibrated_recall"] = meta.nlist, meta.nprobe, meta.recall_at_10
    r["wsd_build"]["disk_mb"] = _size(idx_dir) / 2**20
    print(f"[{kind}] wsd index: {r['wsd_build']['wall']:.0f} s, nlist {meta.nlist}, "
          f"nprobe {meta.nprobe}", flush=True)
    r["bare_build"] = child([sys.executable, __file__, "--bare-build", emb, bare, meta.nlist,
                             seed])
    r["bare_build"]["disk_mb"] = _size(bare) / 2**20
    r["bare_build"].update(json.loads(r["bare_build"]["stdout"].strip().splitlines()[-1]))
    print(f"[{kind}] bare faiss: {r['bare_build']['wall']:.0f} s", flush=True)

    # the queries: rows of the file; wsd search end to end first (a child process)
    rng = np.random.default_rng(seed + 1)
    rows = np.sort(rng.choice(n, size=min(n, n_queries), replace=False))
    qfile, hits = work / f"{kind}-q.h5", work / f"{kind}-hits.h5"
    write_queries(qfile, emb, rows)
    r["wsd_search"] = child(WSD + ["search", emb, "--query", qfile, "--index", idx_dir, "-k",
                                   K, "-o", hits, "-q"])
    r["wsd_search"]["queries"] = len(rows)
    # exact answers (every vector in RAM: n x 128 float32)
    with h5py.File(emb, "r") as f:
        allx = _unit(f["embeddings"][:])
    q = allx[rows]
    faiss.omp_set_num_threads(1)

    def exact_fn(qq):  # blocks of 64 queries: (64, n) scores at a time
        out = []
        for a in range(0, len(qq), 64):
            s = qq[a:a + 64] @ allx.T
            part = np.argpartition(-s, K - 1, axis=1)[:, :K]
            order = np.argsort(-np.take_along_axis(s, part, 1), 1)
            out.append(np.take_along_axis(part, order, 1))
        return np.concatenate(out)

    lat = {"exact numpy": _latency(exact_fn, q, singles=50)}
    exact = lat["exact numpy"]["found"]
    from wsd.io.store import open_file

    with open_file(emb, "embeddings") as e:
        opened = ix.open_index(idx_dir, e)
        lat["wsd index"] = _latency(lambda qq: opened.search(qq, K)[0], q)
    b = faiss.read_index(str(bare))
    faiss.extract_index_ivf(b).nprobe = meta.nprobe
    lat["bare faiss"] = _latency(lambda qq: b.search(qq, K)[1], q)
    for v in lat.values():
        v["recall"] = _recall(v.pop("found"), exact)
    with open_file(hits) as h:  # the command's own hits, mapped back to row numbers
        qid, sid, st = h.read("query_id"), h.read("source_id"), h.read("start_s")
    row = sid.astype(np.int64) * PER_RECORDING + np.round(st / WINDOW_S).astype(np.int64)
    found = [row[qid == i] for i in range(len(rows))]
    r["wsd_search"]["recall"] = _recall(found, exact)
    r["latency"] = lat

    for p in (emb, qfile, hits, bare):
        p.unlink()
    return r


# ------------------------------------------------------------------ the table
def extrapolate(r: dict, target: int = 400_000_000) -> list[str]:
    """Per-vector figures measured at ``n`` scaled to ``target`` windows on 2 cores."""
    from wsd.io.index import HNSW_QUANTIZER_ABOVE, TRAIN_PER_LIST, nlist_for

    n, b = r["n"], r["bare_build"]
    disk = r["wsd_build"]["disk_mb"] * 2**20 / n
    nlist = nlist_for(target)
    add_cpu = (b["cpu"] - b["train_cpu"]) / n  # read + normalise + assign + encode, per vector
    # k-means costs ~ samples x lists x iterations, with TRAIN_PER_LIST samples per list
    train_h = b["train_cpu"] * (nlist / r["nlist"]) ** 2 / 2 / 3600
    return [
        f"- index on disk: {disk:.0f} B/vector -> **{disk * target / 1e9:.0f} GB** "
        f"for {target / 1e6:.0f} M windows",
        f"- {nlist} lists, HNSW32 coarse quantizer (used above {HNSW_QUANTIZER_ABOVE} lists)",
        f"- training: k-means of {TRAIN_PER_LIST * nlist / 1e6:.1f} M samples into {nlist} "
        f"lists, ~(samples x lists) from the {b['train_cpu']:.1f} CPU-s measured at "
        f"{r['nlist']} lists: **~{train_h:.1f} h on 2 cores**",
        f"- adding: {add_cpu * 1e6:.0f} CPU-us/vector measured here (read, normalise, "
        f"assign over {r['nlist']} flat lists, encode); at {nlist} lists the HNSW32 "
        f"quantizer assigns ~16.5 k vectors/s on 2 cores (/work/research/search), "
        f"+{HNSW_ASSIGN_CPU_US:.0f} CPU-us: **~{(add_cpu + HNSW_ASSIGN_CPU_US / 1e6) * target / 3600 / 2:.1f} h "
        "on 2 cores**, linear in N, spread over `--workers`/`--scheduler`",
        "- memory while searching: the quantizer plus the pages of the lists a query reads "
        "(the lists are memory-mapped); while building: one task's rows (1 M rows: ~0.3 GB)",
    ]


def table(results: list[dict]) -> str:
    lines = ["## benchmarks/search.py", ""]
    for r in results:
        wb, bb, s = r["wsd_build"], r["bare_build"], r["wsd_search"]
        lines += [f"### {r['n']:,} {r['kind']} 128-d vectors (embeddings file "
                  f"{r['embeddings_mb']:.0f} MB); IVF{r['nlist']},SQfp16, nprobe "
                  f"{r['nprobe']} by calibration (its recall@10 {r['calibrated_recall']:.3f})",
                  "", "| build | wall s | CPU s | peak RSS MB | disk MB |", "|---|---|---|---|---|",
                  f"| wsd index (train, add, merge on disk, calibrate) | {wb['wall']:.1f} | "
                  f"{wb['cpu']:.1f} | {wb['rss_mb']:.0f} | {wb['disk_mb']:.0f} |",
                  f"| bare faiss (train, add) | {bb['wall']:.1f} | {bb['cpu']:.1f} | "
                  f"{bb['rss_mb']:.0f} | {bb['disk_mb']:.0f} |",
                  f"| ratio wsd / bare | {wb['wall'] / bb['wall']:.2f} | "
                  f"{wb['cpu'] / bb['cpu']:.2f} | | |", "",
                  "| search (k = 10, one thread) | recall@10 | one query p50 ms | p99 ms | "
                  "batch ms/query |", "|---|---|---|---|---|"]
        for name, v in r["latency"].items():
            lines.append(f"| {name} | {v['recall']:.3f} | {v['p50_ms']:.2f} | "
                         f"{v['p99_ms']:.2f} | {v['batch_ms']:.3f} |")
        lines += [f"| `wsd search --index` child process, {s['queries']} queries | "
                  f"{s['recall']:.3f} | | | "
                  f"{1e3 * s['wall'] / s['queries']:.2f} (whole command {s['wall']:.1f} s, "
                  f"peak {s['rss_mb']:.0f} MB) |", "",
                  "extrapolation to 400 M windows:", *extrapolate(r), ""]
    lines.append(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-build":
        emb, out, nlist, seed = sys.argv[2:6]
        return bare_build(emb, out, int(nlist), int(seed))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--kinds", nargs="+", default=["random", "real"],
                    choices=["random", "real"])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = ap.parse_args()
    try:
        import faiss  # noqa: F401
    except ImportError:
        print("skipped: faiss is not installed (pip install 'wsd[search]')")
        return
    results = []
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        for kind in a.kinds:
            results.append(run_kind(kind, a.n, a.queries, Path(tmp), a.seed))
    for r in results:
        for k in ("wsd_build", "bare_build", "wsd_search"):
            r[k].pop("stdout"), r[k].pop("stderr")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    print(table(results))
    print(f"(peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    sys.exit(main())
