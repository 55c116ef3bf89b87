"""Killer whale call types: wsd's learned pipeline against two baselines without learning.

    .venv/bin/python benchmarks/calltype_eval.py [--seeds 0 1 2] [--epochs 4] [--sweep]

Data: the Southern Resident killer whale call catalogue in ../shared/data/real (index.csv, task
``srkw_call_type``: 33 single-call clips of 25 types at 44.1 kHz, label = call type; the
unlabelled J-pod snippet is not evaluated). Skips with a message when the folder is absent.

Every method is measured the same way: one sequence per clip, complete-linkage agglomerative
clustering cut into K = 25 clusters, then wsd.metrics.clustering.label_metrics (ARI, NMI, and
leave-one-out 1-nearest-neighbour accuracy from the distance matrix). 22 of the 25 types have
a single clip, whose nearest neighbour can never share its label, so 1-NN over all 33 clips is
at most 11/33 = 0.333. Two more columns score only the 11 clips of the types with two or more
clips (S06 x4, S33 x5, S45 x2): their 1-NN accuracy (max 1.0; one clip = 0.09) and the mean
average precision of retrieving their same-type clips by distance (uses the whole ranking).
S_33_b.wav and S_33b.wav are the same recording (correlation 0.99999): every method gets
those two right.

Methods:

* wsd pipeline: ``wsd slice`` (--labels from index.csv) -> ``wsd train --arch convae
  --arch-param width=0.5`` (trained on the clips plus the unlabelled orca recordings of
  orcasound-orca-autoencoder and the J-pod snippet, sliced with the same settings; labels are
  not used) -> ``wsd embed`` -> ``wsd cluster --per-file -k 25`` (--normalize, --pca
  variants); metrics from the clusters file, the extra columns from its stored matrix.
* raw-frame DTW: each clip's log-spectrogram frames (``wsd slice --frames 1``, same FFT and
  band) as a (n_frames, bins) sequence, wsd.discovery.dtw.preprocess and
  wsd.discovery.agglomerative.cluster_sequences.
* pooled bands: mean and std of each frequency bin over the clip's frames (no alignment),
  Euclidean distance (length-1 sequences through the same DTW code), same clustering.
* ``length-norm=sqrt``: ``wsd cluster --length-norm sqrt``, the DTW matrix divided by the
  square root of the summed lengths (dtaidistance's DTW is the root of a sum over the
  warping path, so it grows with length and favours short clips as neighbours); for the
  raw-frame baseline the same division of its matrix, re-clustered the same way.
* (diag) rows, not wsd options: ``pooled emb``, the mean and std of each embedding dimension
  over the clip's windows (Euclidean): are the embeddings or the alignment the weak part?

A setting fixes the slicing (window, step, band) for all methods of its block. The pipeline
runs once per seed; cells show mean±sd [min,max] over seeds. Default: settings 0 (the seed's
32x256 windows) and 2 (16-frame windows, step 8: the best found); --sweep runs all. The wsd
children run with OMP_WAIT_POLICY=PASSIVE unless it is set: on a machine whose 2 cores are
shared with other jobs, torch's spinning OpenMP threads made training 10-20x slower.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import REAL, footer, mean_sd, passive_threads, wsd

UNLABELLED = ["orcasound-orcadata/snippets/j_pod.wav", "orcasound-orca-autoencoder"]
BAND = {"fmin": 500.0, "fmax": 11456.0}  # 128 bins, 516.8-11455.7 Hz (convae: bins % 16 == 0)


@dataclass(frozen=True)
class Setting:
    """How the clips are sliced (wsd slice flags) and the encoder trained, for one block."""

    name: str
    frames: int = 32
    step: int = 32
    fmin: float = 0.0
    fmax: float | None = None
    unlabelled: bool = True  # also train on the unlabelled orca recordings
    epochs: int | None = None  # None: --epochs

    def slice_args(self, frames: int | None = None, step: int | None = None) -> list[str]:
        a = ["--sample-rate", "44100", "--frames", str(frames or self.frames),
             "--step", str(step or self.step), "--fmin", str(self.fmin)]
        return a + (["--fmax", str(self.fmax)] if self.fmax else [])

    @property
    def tag(self) -> str:
        return (f"{self.frames}x{self.step}-{self.fmin:g}-{self.fmax or 0:g}-"
                f"{int(self.unlabelled)}-{self.epochs or 0}")


SETTINGS = [
    Setting("0: seed windows 32x256 step 32, full band"),
    Setting("1: 32x128 step 32, 0.5-11.5 kHz", **BAND),
    Setting("2: 16x256 step 8, full band", frames=16, step=8),
    Setting("3: 16x128 step 8, 0.5-11.5 kHz", frames=16, step=8, **BAND),
    Setting("4: as 3, trained on the 33 clips only", frames=16, step=8, unlabelled=False,
            **BAND),
    Setting("5: as 3, 12 epochs", frames=16, step=8, epochs=12, **BAND),
    Setting("6: 32x256 step 8, full band (overlap alone)", step=8),
    Setting("7: 16x256 step 16, full band (short windows alone)", frames=16, step=16),
]
DEFAULT = [0, 2]
PIPELINE_VARIANTS = [("none", None), ("zscore", None), ("l2", None), ("zscore", 16)]
COLS = (("ari", "ARI"), ("nmi", "NMI"), ("nn", "1-NN"), ("nn_multi", "1-NN multi"),
        ("map_multi", "mAP multi"))




def catalogue() -> dict[str, str]:
    """Labelled clip path -> call type, from index.csv."""
    with open(REAL / "index.csv", newline="") as f:
        return {str(REAL / r["source"] / r["path"]): r["label"]
                for r in csv.DictReader(f) if r["task"] == "srkw_call_type"}


def multi_items(true: np.ndarray) -> np.ndarray:
    vals, counts = np.unique(true, return_counts=True)
    return np.flatnonzero(np.isin(true, vals[counts > 1]))


def multi_nn(true: np.ndarray, distance: np.ndarray) -> float:
    """1-NN accuracy over the items whose label occurs at least twice."""
    d = np.array(distance, dtype=np.float64)
    np.fill_diagonal(d, np.inf)
    idx = multi_items(true)
    return float((true[d[idx].argmin(axis=1)] == true[idx]).mean())


def multi_map(true: np.ndarray, distance: np.ndarray) -> float:
    """Mean average precision of retrieving an item's same-label items by increasing
    distance, over the items whose label occurs at least twice."""
    from sklearn.metrics import average_precision_score

    aps = []
    for i in multi_items(true):
        others = np.arange(len(true)) != i
        aps.append(average_precision_score(true[others] == true[i], -distance[i, others]))
    return float(np.mean(aps))


def metrics(true, labels, distance) -> dict:
    from wsd.metrics.clustering import label_metrics

    m = label_metrics(true, labels, distance)
    true = np.asarray(true).astype(str)
    return {"ari": m["ari"], "nmi": m["nmi"], "nn": m["knn1_accuracy"],
            "nn_multi": multi_nn(true, distance), "map_multi": multi_map(true, distance)}


def recluster(distance: np.ndarray, true: np.ndarray, k: int) -> dict:
    """Complete linkage cut into k clusters on a given matrix, then :func:`metrics`."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    d = np.array(distance, dtype=np.float64)
    np.fill_diagonal(d, 0.0)
    labels = fcluster(linkage(squareform(d, checks=False), "complete"), k, "maxclust")
    return metrics(true, labels, d)


def length_normalised(distance: np.ndarray, lengths: np.ndarray, true, k: int) -> dict:
    lengths = np.asarray(lengths, dtype=np.float64)
    return recluster(distance / np.sqrt(lengths[:, None] + lengths[None, :]), true, k)


def cluster_arrays(arrays: list[np.ndarray], true: np.ndarray, k: int) -> tuple[dict, dict]:
    """(metrics, metrics of the length-normalised matrix) of a complete-linkage DTW
    clustering of the arrays (length-1 arrays: Euclidean)."""
    from wsd.discovery.agglomerative import cluster_sequences

    res = cluster_sequences(arrays, "complete", n_clusters=k, novelty_k=None)
    return (metrics(true, res.labels, res.distance),
            length_normalised(res.distance, [len(a) for a in arrays], true, k))


def read_per_clip(path: Path, dataset: str):
    """(rows ``(n, D)`` float64, Sequences per clip, clip labels ``(m,)``) of a wsd file."""
    from wsd.discovery.sequences import sequence_labels, sequences_per_file
    from wsd.io.store import open_file

    with open_file(path) as f:
        x = f.read(dataset).astype(np.float64)
        seqs = sequences_per_file(f.read("source_id"), f.read("start_s"), f.read("end_s"))
        true = sequence_labels(f.read("label"), seqs)
    return x.reshape(len(x), -1), seqs, true


def pooled(x: np.ndarray, seqs, norm: str) -> list[np.ndarray]:
    """Per clip, mean and std of each column over its rows, normalised over clips with
    wsd.discovery.dtw.preprocess, as ``(1, 2 D)`` sequences."""
    from wsd.discovery.dtw import preprocess

    feats = np.stack([np.concatenate([x[a:b].mean(0), x[a:b].std(0)])
                      for a, b in zip(seqs.start.tolist(), seqs.stop.tolist())])
    return list(preprocess(feats, norm)[:, None, :])


def baselines(s: Setting, tmp: Path, clips: list[str], label_csv: Path) -> list[tuple]:
    from wsd.discovery.dtw import preprocess

    frames = tmp / "frames.h5"
    wsd("slice", *clips, "--labels", label_csv, *s.slice_args(frames=1, step=1), "-o", frames,
        "-q", "--force")
    x, seqs, true = read_per_clip(frames, "windows")
    k = len(np.unique(true))
    rows = []
    for norm, pca in (("none", None), ("zscore", None), ("none", 16), ("zscore", 16)):
        m, ln = cluster_arrays(seqs.arrays(preprocess(x, norm, pca)), true, k)
        rows.append((f"raw-frame DTW  norm={norm} pca={pca or '-'}", [m]))
        if pca:
            rows.append((f"raw-frame DTW  norm={norm} pca=16 length-norm=sqrt", [ln]))
    for norm in ("none", "zscore"):
        rows.append((f"pooled bands   norm={norm}",
                     [cluster_arrays(pooled(x, seqs, norm), true, k)[0]]))
    return rows


def read_clusters(path: Path, k: int) -> tuple[dict, dict]:
    """(metrics as stored by wsd cluster + the multi columns, length-normalised metrics)."""
    from wsd.io.store import open_file

    with open_file(path, "clusters") as f:
        m = json.loads(f.attrs("/")["metrics_json"])
        true, d = np.asarray(f.read("label")).astype(str), f.read("distance")
        lengths = f.read("seq_stop") - f.read("seq_start")
    return ({"ari": m["ari"], "nmi": m["nmi"], "nn": m["knn1_accuracy"],
             "nn_multi": multi_nn(true, d), "map_multi": multi_map(true, d)},
            length_normalised(d, lengths, true, k))


def pipeline(s: Setting, tmp: Path, clips: list[str], label_csv: Path, seeds: list[int],
             epochs: int) -> list[tuple]:
    win, train_win = tmp / f"win-{s.tag}.h5", tmp / f"train-{s.tag}.h5"
    wsd("slice", *clips, "--labels", label_csv, *s.slice_args(), "-o", win, "-q", "--force")
    if s.unlabelled:
        wsd("slice", *clips, *[REAL / p for p in UNLABELLED], *s.slice_args(), "-o", train_win,
            "-q", "--force")
    else:
        train_win = win
    out: dict[str, list[dict]] = {}
    for seed in seeds:
        model, emb, cl = (tmp / f"{p}-{s.tag}-{seed}.h5" for p in ("ae", "emb", "cl"))
        t = time.perf_counter()
        wsd("train", train_win, "--arch", "convae", "--arch-param", "width=0.5", "--epochs",
            s.epochs or epochs, "--batch-size", 32, "--seed", seed, "-o", model, "-q", "--force")
        wsd("embed", win, "--model", model, "-o", emb, "-q", "--force")
        print(f"  [{s.name}] seed {seed}: trained and embedded in "
              f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
        x, seqs, true = read_per_clip(emb, "embeddings")
        k = len(np.unique(true))
        for norm, pca in PIPELINE_VARIANTS:
            wsd("cluster", emb, "--per-file", "-k", k, "--normalize", norm,
                *(["--pca", pca] if pca else []), "-o", cl, "-q", "--force")
            m, _ = read_clusters(cl, k)
            out.setdefault(f"wsd pipeline   norm={norm} pca={pca or '-'}", []).append(m)
            if pca is None and norm != "l2":
                wsd("cluster", emb, "--per-file", "-k", k, "--normalize", norm,
                    "--length-norm", "sqrt", "-o", cl, "-q", "--force")
                out.setdefault(f"wsd pipeline   norm={norm} length-norm=sqrt", []).append(
                    read_clusters(cl, k)[0])
        for norm in ("none", "zscore"):
            out.setdefault(f"(diag) pooled emb norm={norm}", []).append(
                cluster_arrays(pooled(x, seqs, norm), true, k)[0])
    return list(out.items())




def print_table(blocks: list[tuple[Setting, list[tuple]]], seeds, epochs: int) -> None:
    print(f"\nSRKW call types: 33 clips, 25 types, complete linkage, K=25. wsd pipeline: "
          f"convae width=0.5, batch 32, seeds {seeds} (mean±sd [min,max]); baselines have "
          f"no seed")
    head = f"{'method':50s}" + "".join(f"{c:>25s}" for _, c in COLS)
    for s, rows in blocks:
        print(f"\n== {s.name}: pipeline trained {s.epochs or epochs} epochs on "
              f"{'the clips + unlabelled orca audio' if s.unlabelled else 'the clips only'}")
        print(head)
        for name, runs in rows:
            print(f"{name:50s}" + "".join(f"{mean_sd([r[c] for r in runs], spread=True):>25s}"
                                          for c, _ in COLS))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--sweep", action="store_true", help="run every setting")
    ap.add_argument("--settings", type=int, nargs="+",
                    help=f"indices of the settings to run (0..{len(SETTINGS) - 1}; default "
                         f"{DEFAULT})")
    ap.add_argument("--skip-pipeline", action="store_true", help="baselines only")
    ap.add_argument("--workdir", type=Path, help="keep the intermediate files in this "
                    "existing folder (default: a temporary folder, removed at the end)")
    args = ap.parse_args(argv)
    if not (REAL / "index.csv").is_file():
        print(f"calltype_eval: skipped: real data not found at {REAL} (set WSD_REAL_DATA)",
              file=sys.stderr)
        return 0
    passive_threads()
    labels = catalogue()
    clips = sorted(labels)
    chosen = args.settings or (range(len(SETTINGS)) if args.sweep else DEFAULT)
    blocks, cache = [], {}  # the baselines depend on the band only
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wsd-calltype-") as d:
        tmp = args.workdir or Path(d)
        label_csv = tmp / "labels.csv"
        with open(label_csv, "w", newline="") as f:
            csv.writer(f).writerows([("path", "label"), *labels.items()])
        for i in chosen:
            s = SETTINGS[i]
            band = (s.fmin, s.fmax)
            if band not in cache:
                cache[band] = baselines(s, tmp, clips, label_csv)
            rows = cache[band]
            if not args.skip_pipeline:
                rows = pipeline(s, tmp, clips, label_csv, args.seeds, args.epochs) + rows
            blocks.append((s, rows))
            print(f"  [{s.name}] done at {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print_table(blocks, args.seeds, args.epochs)
    print(footer(t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
