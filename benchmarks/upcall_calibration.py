"""Does another per-recording scale of the probe's scores carry the detection threshold
from MERIDIAN train to val better than ``wsd detect --calibrate recording`` (robust z)?

    .venv/bin/python benchmarks/quality.py --tasks upcalls --keep --workdir W
    .venv/bin/python benchmarks/upcall_calibration.py W/quality-*/up   # the folder it printed

The up-call recipe finds 11-12 of val's 20 calls with 1-4 false positives: at the threshold
the probe chose on train, event F1 is about 0.68, while the best threshold on val itself
gives 0.76 (0.82 for an ensemble). Val's best threshold is lower than train's, so this
script asks whether a scale that follows each recording's background (not only its bulk)
would transfer the threshold.

For each seed's recipe embeddings in the folder (``etr{TAG}{seed}.h5`` and
``eva{TAG}{seed}.h5``, TAG ``band-kmeans`` by default) it fits the recipe's probe (rows
standardised per recording, ``c=0.01``; ``--norm unit``: rows of unit length instead) out of fold on train (5 folds by recording, as the
probe's own threshold choice does) and on all of train for val. The log-odds are put on a
per-recording scale:

* ``mad``: ``detect --calibrate recording``'s robust z, (x - median) / (1.4826 MAD);
* ``peaks``: the same with the median and MAD of the trace's local maxima (the background
  peaks a threshold must clear);
* ``peaks-raw``: the same over the local maxima of the unsmoothed trace;
* ``peaks-q90``: (x - median of the peaks) / (their 90th percentile - median);
* ``blockmax-B``: the median and MAD of the maxima of blocks of B windows (a robust Gumbel
  fit of the background's extremes; 15 windows are 3.8 s at the recipe's step);
* ``std``: mean and standard deviation.

Events as in the recipe (peaks of the trace smoothed over 5 windows, one event of the median
train call length each, IoU >= 0.3). Two criteria, for a threshold grid per scale:

* **train only** (what a user can measure): every pair of one train recording with calls
  and one without is held out in turn; the threshold best on the other four recordings
  (out-of-fold scores) is scored on the pair; mean event F1 over the 9 pairs;
* **val**: event F1 at the threshold best on all of train (out of fold), and the best
  F1 any threshold reaches on val (an oracle, not a result).

A scale worth adopting must win on the first criterion, which does not look at val.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from _common import footer, mean_sd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsd.dsp.events import events_from_peaks, recording_z, trace_peaks  # noqa: E402
from wsd.io.labels import assign, read_labels  # noqa: E402
from wsd.metrics.events import event_metrics  # noqa: E402
from wsd.models.probe import (fit_probe, predict_logit, probe_targets,  # noqa: E402
                              recording_standardised)

LABEL_COVER = 0.7  # quality.py's
SMOOTH = 2


def load(path: Path) -> dict:
    with h5py.File(path, "r") as h:
        d = {k: h[k][:] for k in ("embeddings", "source_id", "start_s", "end_s")}
        d["paths"] = [p.decode() if isinstance(p, bytes) else str(p)
                      for p in h["sources/path"][:]]
        d["dur"] = h["sources/duration_s"][:]
    return d


def events_of(table: Path) -> dict[str, np.ndarray]:
    out: dict[str, list] = {}
    with open(table) as fh:
        for r in csv.DictReader(fh):
            out.setdefault(Path(r["path"]).name, []).append((float(r["start_s"]),
                                                             float(r["end_s"])))
    return {k: np.array(v, float).reshape(-1, 2) for k, v in out.items()}


def window_labels(d: dict, table: Path) -> np.ndarray:
    t = read_labels(table, n_inputs=len(d["paths"]))
    lab = np.full(len(d["source_id"]), "", object)
    for s, p in enumerate(d["paths"]):
        rows = np.flatnonzero(d["source_id"] == s)
        lab[rows] = assign(t.for_file(p), d["start_s"][rows], d["end_s"][rows],
                           min_cover=LABEL_COVER)
    return lab


# ---------------------------------------------------------------- per-recording scales
def _robust(v):
    m = np.median(v)
    return m, max(1.4826 * np.median(np.abs(v - m)), 1e-9)


def _peaks(x):
    return trace_peaks(x, SMOOTH)


def mad(x):
    """detect --calibrate recording's robust z, of one recording."""
    return recording_z(np.zeros(len(x), np.int64), x)


def peaks(x):
    """detect --calibrate peaks, of one recording (its trace averaged over 5 windows)."""
    return recording_z(np.zeros(len(x), np.int64), x, "peaks")


def peaks_raw(x):
    """The same over the unsmoothed trace's local maxima (what a detector can use without
    knowing the events' smoothing)."""
    m, d = _robust(trace_peaks(x, 0))
    return (x - m) / d


def peaks_q90(x):
    p = _peaks(x)
    m = np.median(p)
    return (x - m) / max(np.quantile(p, 0.9) - m, 1e-9)


def blockmax(b):
    def f(x):
        k = len(x) // b
        m, d = _robust(x[:k * b].reshape(k, b).max(1))
        return (x - m) / d
    return f


def std(x):
    return (x - x.mean()) / max(x.std(), 1e-9)


SCALES = {"mad": (mad, np.arange(1.0, 9.01, 0.1)),
          "peaks": (peaks, np.arange(0.0, 9.01, 0.1)),
          "peaks-raw": (peaks_raw, np.arange(0.0, 9.01, 0.1)),
          "peaks-q90": (peaks_q90, np.arange(0.3, 5.01, 0.05)),
          "blockmax-8": (blockmax(8), np.arange(-2.0, 9.01, 0.1)),
          "blockmax-15": (blockmax(15), np.arange(-2.0, 9.01, 0.1)),
          "blockmax-30": (blockmax(30), np.arange(-2.0, 9.01, 0.1)),
          "std": (std, np.arange(0.5, 12.01, 0.1))}


def scaled_per_recording(sid, x, fn):
    out = np.empty(len(x))
    for s in np.unique(sid):
        r = sid == s
        out[r] = fn(x[r])
    return out


# ---------------------------------------------------------------- event F1 curves
def f1_curve(d, z, truth, recs, grid, length):
    """Event F1 over the recordings ``recs`` at each threshold of ``grid``."""
    m = np.isin(d["source_id"], recs)
    sid, st, en, zz = d["source_id"][m], d["start_s"][m], d["end_s"][m], z[m]
    refs = {s: truth.get(Path(d["paths"][s]).name, np.zeros((0, 2))) for s in recs}
    hours = d["dur"][list(recs)].sum() / 3600
    out = []
    for t in grid:
        ev = events_from_peaks(sid, st, en, zz, t, length, length, SMOOTH)
        dets = {s: np.stack([ev["start_s"][ev["source_id"] == s],
                             ev["end_s"][ev["source_id"] == s],
                             ev["score"][ev["source_id"] == s]], 1) for s in recs}
        out.append(event_metrics(dets, refs, hours)["f1"])
    return np.array(out)


def oof_logits(a, y, sid, seed, blocks, norm="recording"):
    from sklearn.model_selection import GroupKFold

    use = np.flatnonzero(y >= 0)
    logit = np.full(len(y), np.nan)
    for tr, te in GroupKFold(min(5, len(np.unique(sid)))).split(use, y[use], sid[use]):
        probe = fit_probe(a[use][tr], y[use][tr], c=0.01, seed=seed, blocks=blocks, norm=norm)
        rows = np.flatnonzero(np.isin(sid, np.unique(sid[use][te])))
        logit[rows] = predict_logit(probe, a[rows])
    return logit


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="quality.py's up-call folder (QUALITY/up)")
    ap.add_argument("--tag", default="band-kmeans",
                    help="embeddings etr{TAG}{seed}.h5 / eva{TAG}{seed}.h5 (default: the "
                    "recipe's)")
    ap.add_argument("--blocks", type=int, default=1,
                    help="the probe's -p blocks (3 for embeddings of kmeans -p members=3)")
    ap.add_argument("--norm", choices=("recording", "unit"), default="recording",
                    help="the probe's -p norm: recording (the recipe's) or unit (the probe's "
                    "default: rows of unit length)")
    ap.add_argument("--scales", nargs="+", choices=list(SCALES), default=list(SCALES),
                    help="the per-recording scales to score (default: all)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    w = a.folder
    seeds = sorted(int(p.stem[len("etr" + a.tag):]) for p in w.glob(f"etr{a.tag}*.h5")
                   if p.stem[len("etr" + a.tag):].isdigit())
    if not seeds:
        print(f"no etr{a.tag}SEED.h5 in {w}: run quality.py --tasks upcalls --keep first")
        return 1
    train_table, val_table = w / "train-labels.csv", w / "val-truth.csv"
    ttruth, vtruth = events_of(train_table), events_of(val_table)
    length = float(np.median([e - s for v in ttruth.values() for s, e in v]))
    scales = {k: SCALES[k] for k in a.scales}
    res = {k: {"train": [], "val": [], "oracle": [], "thr": []} for k in scales}
    for seed in seeds:
        tr, va = load(w / f"etr{a.tag}{seed}.h5"), load(w / f"eva{a.tag}{seed}.h5")
        y = probe_targets(window_labels(tr, train_table), "upcall")
        if a.norm == "recording":
            at = recording_standardised(tr["embeddings"], tr["source_id"])
            av = recording_standardised(va["embeddings"], va["source_id"])
        else:  # the probe scales each row to unit length itself
            at, av = tr["embeddings"], va["embeddings"]
        lt = oof_logits(at, y, tr["source_id"], seed, a.blocks, a.norm)
        lv = predict_logit(fit_probe(at, y, c=0.01, seed=seed, blocks=a.blocks, norm=a.norm),
                           av)
        trecs = list(range(len(tr["paths"])))
        calls = [s for s in trecs if len(ttruth.get(Path(tr["paths"][s]).name, ()))]
        quiet = [s for s in trecs if s not in calls]
        for name, (fn, grid) in scales.items():
            zt = scaled_per_recording(tr["source_id"], lt, fn)
            zv = scaled_per_recording(va["source_id"], lv, fn)
            pairs = []
            for c, q in itertools.product(calls, quiet):
                rest = [s for s in trecs if s not in (c, q)]
                k = int(np.argmax(f1_curve(tr, zt, ttruth, rest, grid, length)))
                pairs.append(f1_curve(tr, zt, ttruth, [c, q], grid[k:k + 1], length)[0])
            k = int(np.argmax(f1_curve(tr, zt, ttruth, trecs, grid, length)))
            cv = f1_curve(va, zv, vtruth, list(range(len(va["paths"]))), grid, length)
            r = res[name]
            r["train"].append(np.mean(pairs))
            r["val"].append(cv[k])
            r["oracle"].append(cv.max())
            r["thr"].append(grid[k])
        print(f"seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n## upcall_calibration.py: {a.tag}, probe norm={a.norm} blocks={a.blocks}, seeds "
          f"{' '.join(map(str, seeds))}\n")
    print("| scale | train only: F1 on held-out pairs | val F1 at train's threshold | "
          "val best F1 (oracle) | train's threshold |")
    print("|---|---|---|---|---|")
    for name, r in res.items():
        print(f"| {name} | {mean_sd(r['train'])} | {mean_sd(r['val'])} | "
              f"{mean_sd(r['oracle'])} | {', '.join(f'{t:.2f}' for t in r['thr'])} |")
    print(footer(t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
