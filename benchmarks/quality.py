"""Quality on real recordings: wsd's default learned pipeline against what needs no learning,
computed in the same run, mean±sd over seeds. One table per task.

    .venv/bin/python benchmarks/quality.py                       # all tasks, seeds 0 1 2
    .venv/bin/python benchmarks/quality.py --tasks calltypes --seeds 0
    .venv/bin/python benchmarks/quality.py --slice-args "--fmin 500 --fmax 11500"
    .venv/bin/python benchmarks/quality.py --tasks upcalls --keep --workdir W   # keep files

Data: ../shared/data/real (or WSD_REAL_DATA); skips with a message when absent.

* **calltypes**: the Southern Resident call catalogue (coastal-science, 136 clips of 31
  types) and orcadata (32 clips of 25 types; S_33b.wav, a duplicate of S_33_b.wav, left out).
  Pipeline, every step the wsd command with its defaults (plus ``--sample-rate 44100`` and
  the labels): ``wsd slice`` -> ``wsd train`` (the default kmeans encoder, and the
  contrastive one; and the kmeans one with one copy, ``-p members=1``, the previous default)
  -> ``wsd embed`` -> one sequence of embeddings per clip, compared fused (``wsd cluster
  --per-file`` itself, whose ``--distance auto`` is fused for kmeans: the pooled cosine
  distance and the DTW of the windows' own frames, each divided by its spread, averaged),
  pooled (mean, std and the means of the start, middle and end, standardised across clips,
  cosine: ``cluster --distance cosine``, through its own function; also without the three
  parts, ``--segments 0``) and by DTW (length-normalised, ``--distance dtw``, the auto
  choice for contrastive step embeddings). Metrics (wsd.metrics.retrieval): leave-one-out
  1-NN over the clips whose type has >= 2 clips, query-by-example mAP (also through ``wsd
  search --per-file`` itself), ARI and NMI of Ward clustering cut at K = the number of
  types. Baselines (the issue's, exactly): pooled bands (|STFT| n_fft 512 hop
  256 at 44.1 kHz, log1p(100|X|), 256 bins averaged into 64 bands, the clip standardised by
  its scalar mean and std, every second frame, mean and std per band, z-scored across clips,
  cosine), PCA-32 of those frames pooled, raw-frame DTW of those frames; and, to be honest
  about where the gain comes from, unlearned controls outside the bar: DTW of the default
  front end's own frames, the pooled bands with wsd's pooling (start, middle and end too),
  and those two fused as ``--distance fused`` fuses.
* **upcalls**: MERIDIAN right-whale up-calls, long/train -> long/val (another deployment):
  an encoder trained on train audio without labels (the default kmeans one, three copies,
  and the contrastive one), a linear probe on train labels, ``wsd detect --truth`` on val:
  event F1 (IoU >= 0.3), AP, false positives per hour; each encoder with windows merged into
  events, and with the detection recipe (``--label-cover``, ``--calibrate``, ``--events
  peaks``); the kmeans encoders also with a strongly regularised probe (``-p c=0.01``) and
  both of ``detect --calibrate``'s per-recording scales (``recording``, robust z; ``peaks``,
  the background peaks' median and MAD), and the recipe's encoder (patches of a few bands,
  ``-p fpatch=8``, with a full-band dictionary beside them, ``-p full=256``) with three
  copies (the recipe) and with one (``-p members=1``, the previous recipe); against the
  untrained ``detect --silence`` in the up-call band.
* **orca**: OrcaCNN orca calls against noise clips: clip ROC AUC, 5-fold cross-validation
  grouped by clip, of a logistic probe on each clip's pooled embeddings (kmeans and
  contrastive; features standardised across all clips first, as for the band energies)
  against band energies with logistic regression; and what the wsd commands give on the
  same folds, each fold fitted on its own training clips: ``embed --rows files`` (wsd pools
  each clip) with wsd's probe (``train --arch linear``'s defaults: rows of unit length, one
  shared scale), also for the kmeans encoder with one copy (``-p members=1``, the previous
  default), and a
  window probe whose window scores make a clip score by each rule of ``detect
  --clip-score``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import REAL, footer, mean_sd, passive_threads, wsd

CATALOGUE = "coastal-science-call-catalog-viewer"
ORCADATA = "orcasound-orcadata"
MERIDIAN = "GabrielDubus-MeridianOSmOSE_AutomaticDetectionOfCetaceans_Benchmark"
ORCACNN = "ZER-0-NE-OrcaCNN-Demo"
METRICS = ("knn1", "map", "ari", "nmi")


# ------------------------------------------------------------------ helpers
def _read_rows(path: Path) -> dict:
    from wsd.io.store import open_file

    with open_file(path) as f:
        key = "embeddings" if f.kind == "embeddings" else "windows"
        return {"x": f.read(key), "sid": f.read("source_id"), "start": f.read("start_s"),
                "end": f.read("end_s"), "label": f.read("label") if f.has("label") else None,
                "paths": list(f.sources["path"]),
                # the probe's default -p blocks for these rows (the encoder's members)
                "blocks": int(f.params.get("member_blocks", 1))}


def _per_file(r: dict) -> tuple[list[np.ndarray], np.ndarray]:
    """Each recording's rows in time order, and its label (the most common)."""
    from wsd.discovery.sequences import sequence_labels, sequences_per_file

    seqs = sequences_per_file(r["sid"], r["start"], r["end"])
    return seqs.arrays(r["x"]), sequence_labels(r["label"], seqs)


def _cos(p: np.ndarray) -> np.ndarray:
    u = p / (np.linalg.norm(p, axis=1, keepdims=True) + 1e-12)
    d = np.clip(1 - u @ u.T, 0, None)
    np.fill_diagonal(d, 0)
    return d


def _pooled_cos(seqs: list[np.ndarray], segments: int | None = None) -> np.ndarray:
    """Cosine distances between clips pooled as ``wsd cluster --distance cosine`` pools them
    (mean, std and the means of ``segments`` parts in time; the command's default when
    None), through the command's own function."""
    from wsd.discovery.search import SEGMENTS
    from wsd.pipeline.cluster import pooled_sequences

    parts = SEGMENTS if segments is None else segments
    return _cos(np.concatenate(pooled_sequences(seqs, parts)))


def _z(p: np.ndarray) -> np.ndarray:
    return (p - p.mean(0)) / (p.std(0) + 1e-9)


def _dtw(seqs: list[np.ndarray], zscore: bool = True) -> np.ndarray:
    from scipy.spatial.distance import squareform

    from wsd.discovery.dtw import dtw_condensed

    if zscore:
        allx = np.concatenate(seqs)
        mu, sd = allx.mean(0), allx.std(0) + 1e-6
        seqs = [(s - mu) / sd for s in seqs]
    return squareform(dtw_condensed(seqs, length_norm="sqrt"))


def _scores(d: np.ndarray, y: np.ndarray, cosine: bool) -> dict:
    from wsd.metrics.retrieval import retrieval_metrics

    return retrieval_metrics(d, y, cosine=cosine)


def _row(name: str, runs: list[dict], keys=METRICS) -> str:
    return f"| {name} | " + " | ".join(mean_sd([r[k] for r in runs]) for k in keys) + " |"


# ------------------------------------------------------------------ call types
def _clip_list(dataset: str, work: Path) -> tuple[list[Path], Path]:
    """The clips of a call-type set and a path,label CSV for them."""
    rows = []
    if dataset == CATALOGUE:
        base = REAL / CATALOGUE
        with open(base / "LABELS.csv") as fh:
            rows = [(base / r["path"], r["label"]) for r in csv.DictReader(fh)]
    else:
        with open(REAL / "index.csv") as fh:
            rows = [(REAL / r["source"] / r["path"], r["label"]) for r in csv.DictReader(fh)
                    if r["source"] == ORCADATA and r["task"] == "srkw_call_type"
                    and not r["path"].endswith("S_33b.wav")]
    table = work / f"{dataset}-labels.csv"
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        w.writerows((str(p), lab) for p, lab in rows)
    return [p for p, _ in rows], table


def _baselines(files, labels_csv, work: Path) -> dict:
    """The issue's unlearned baselines, from wsd's own frames (log1p(100|X|), one frame a
    window)."""
    out = work / "frames.h5"
    wsd("slice", *files, "-o", out, "--labels", labels_csv, "--sample-rate", "44100",
        "--n-fft", "512", "--hop-length", "256", "--frames", "1", "--step", "1",
        "--freq-scale", "linear", "--scale", "log1p", "--no-whiten", "--fmax", "22050",
        "--force", "-q")
    r = _read_rows(out)
    r["x"] = r["x"].reshape(len(r["x"]), -1)
    seqs, y = _per_file(r)
    bands = []
    for s in seqs:  # 256 bins -> 64 bands, the clip standardised, every second frame
        b = s.astype(np.float64).reshape(len(s), 64, 4).mean(2)
        b = (b - b.mean()) / (b.std() + 1e-9)
        bands.append(b[::2])
    pooled = _z(np.stack([np.concatenate([b.mean(0), b.std(0)]) for b in bands]))
    from sklearn.decomposition import PCA

    pca = PCA(32, random_state=0).fit(np.concatenate(bands))
    pcs = [pca.transform(b) for b in bands]
    pca_pooled = _z(np.stack([np.concatenate([p.mean(0), p.std(0)]) for p in pcs]))
    raw_dtw = _dtw(bands, zscore=False)
    base = {"pooled bands": _scores(_cos(pooled), y, True),
            "PCA-32 of frames, pooled": _scores(_cos(pca_pooled), y, True),
            "raw-frame DTW": _scores(raw_dtw, y, False)}
    return base, _pooled_cos(bands), raw_dtw


def _fused(pooled_cos: np.ndarray, frames_dtw: np.ndarray) -> np.ndarray:
    """wsd's fused distance (cluster --distance fused) of two square matrices."""
    from wsd.discovery.frames import fuse

    off = ~np.eye(len(pooled_cos), dtype=bool)
    d = fuse(pooled_cos, frames_dtw, pairs=off)
    np.fill_diagonal(d, 0.0)
    return d


def _rerank(d: np.ndarray) -> np.ndarray:
    """The re-ranking ``wsd cluster`` applies by default (--rerank mp+qe)."""
    from wsd.discovery.rerank import rerank

    return rerank(d, "mp+qe")


def _frontend_dtw(files, labels_csv, work: Path, slice_args: list[str]) -> dict:
    """The default front end's own frames, no learning: mel bands, log1p, each clip's
    20th percentile per band subtracted and the clip standardised, every second frame; DTW
    (length-normalised) between clips."""
    out = work / "fe-frames.h5"
    wsd("slice", *files, "-o", out, "--labels", labels_csv, "--sample-rate", "44100",
        *slice_args, "--frames", "1", "--step", "2", "--no-whiten", "--force", "-q")
    r = _read_rows(out)
    r["x"] = r["x"].reshape(len(r["x"]), -1).astype(np.float64)
    seqs, y = _per_file(r)
    white = []
    for s in seqs:
        s = s - np.percentile(s, 20, axis=0, keepdims=True)
        white.append((s - s.mean()) / (s.std() + 1e-9))
    d = _dtw(white, zscore=False)
    return _scores(d, y, False), d


#: The learned rows: each encoder's window (kmeans) or step (contrastive) embeddings per
#: clip, by DTW and pooled; the default pipeline is kmeans pooled (cluster --distance auto).
LEARNED = ("kmeans: fused (cluster --per-file, --distance auto)",
           "kmeans: fused, not re-ranked (cluster --per-file --rerank none)",
           "kmeans: pooled (cosine)",
           "kmeans: pooled, mean and std only (--segments 0)", "kmeans: DTW", "kmeans -p members=1 (the previous default): pooled (cosine)",
           "contrastive: DTW", "contrastive: pooled (cosine)")
#: The encoders trained per seed: (row name, arch, extra train flags).
ENCODERS = (("kmeans", "kmeans", []), ("kmeans -p members=1 (the previous default)", "kmeans",
                                        ["-p", "members=1"]),
            ("contrastive", "contrastive", []))
DEFAULT_ROW = "kmeans: fused (cluster --per-file, --distance auto)"
NOT_RERANKED_ROW = "kmeans: fused, not re-ranked (cluster --per-file --rerank none)"

#: Epochs of the seed convae row (its windows/s on 2 CPU cores make more too slow here).
CONVAE_EPOCHS = 3


def _seed_convae(win: Path, work: Path, seed: int) -> tuple[dict, dict]:
    """The seed's convae (its layer table unchanged) on the default front end, one window
    embedding a row: DTW per clip (``cluster --distance auto`` for it), and ``wsd cluster
    --distance fused``: does the seed's path at least match the bar?"""
    enc, emb = work / "convae.h5", work / "convae-emb.h5"
    wsd("train", win, "--arch", "convae", "--epochs", CONVAE_EPOCHS, "--seed", seed, "-o",
        enc, "--force", "-q")
    wsd("embed", win, "--model", enc, "-o", emb, "--force", "-q")
    seqs, y = _per_file(_read_rows(emb))
    return _scores(_dtw(seqs), y, False), _cluster_scores(emb, work, "--distance", "fused")


def _cluster_scores(emb: Path, work: Path, *extra) -> dict:
    """The scores of ``wsd cluster EMB --per-file [extra]``'s own stored matrix (its default
    distance: fused for the kmeans encoder)."""
    from wsd.io.store import open_file

    out = work / "clusters.h5"
    wsd("cluster", emb, "--per-file", *extra, "-o", out, "--force", "-q")
    with open_file(out) as f:
        assert f.params["distance"] == "fused", f.params["distance"]
        d, y = f.read("distance").astype(np.float64), np.asarray(f.read("label"), str)
    return _scores(d, y, False)


def _search_map(emb: Path, work: Path, *extra) -> dict:
    """Query by example through the command itself: ``wsd search EMB --query EMB
    --per-file`` (its default match, or ``extra`` flags), every clip a query ranking every
    clip; the mAP of its ranking (self-hits left out, as retrieval_metrics does)."""
    from wsd.io.store import open_file
    from wsd.metrics.retrieval import mean_average_precision

    hits = work / "hits.h5"
    with open_file(emb) as e:
        n = len(e.sources["path"])
    wsd("search", emb, "--query", emb, "--per-file", "-k", n, "-o", hits, "--force", "-q",
        *extra)
    with open_file(hits) as h:
        qpath, qlab = list(h.read("queries/path")), np.asarray(h.read("queries/label"), str)
        qid, sid, score = h.read("query_id"), h.read("source_id"), h.read("score")
        paths = list(h.sources["path"])
    col = {p: i for i, p in enumerate(qpath)}
    d = np.full((len(qpath), len(qpath)), np.nan)
    for q, s_, sc in zip(qid, sid, score):
        d[q, col[paths[s_]]] = -float(sc)
    d[np.isnan(d)] = np.nanmax(d) + 1  # not returned: ranked last
    np.fill_diagonal(d, -np.inf)
    return {"map": mean_average_precision(d, qlab)}


def calltypes(dataset: str, seeds, work: Path, slice_args: list[str]) -> list[str]:
    files, labels_csv = _clip_list(dataset, work)
    t0 = time.perf_counter()
    base, bands_cos, raw_dtw = _baselines(files, labels_csv, work)
    win = work / "win.h5"
    wsd("slice", *files, "-o", win, "--labels", labels_csv, "--sample-rate", "44100",
        *slice_args, "--force", "-q")
    fe, fe_dtw = _frontend_dtw(files, labels_csv, work, slice_args)
    _, y_fe = _per_file(_read_rows(work / "fe-frames.h5"))
    controls = {"pooled bands, wsd's pooling (mean, std, start, middle, end)":
                _scores(bands_cos, y_fe, True),
                "fused: pooled bands (wsd's pooling) + DTW of the front end's frames":
                _scores(_fused(bands_cos, fe_dtw), y_fe, False),
                "DTW of the front end's frames, re-ranked as cluster re-ranks (mp+qe)":
                _scores(_rerank(fe_dtw), y_fe, False),
                "raw-frame DTW (a baseline), re-ranked (mp+qe)":
                _scores(_rerank(raw_dtw), y_fe, False)}
    convae, convae_fused = _seed_convae(win, work, seeds[0])
    learned = {k: [] for k in LEARNED}
    times = {name: [] for name, _, _ in ENCODERS}
    searched = {name: [] for name, _, _ in ENCODERS}
    pooled_search, plain_search = [], []
    for seed in seeds:
        for i, (name, arch, extra) in enumerate(ENCODERS):
            enc, emb = work / f"enc{arch}{i}-{seed}.h5", work / f"emb{arch}{i}-{seed}.h5"
            t = time.perf_counter()
            wsd("train", win, "--arch", arch, *extra, "-o", enc, "--seed", seed, "--force",
                "-q")
            times[name].append(time.perf_counter() - t)
            wsd("embed", win, "--model", enc, "-o", emb, "--force", "-q")
            seqs, y = _per_file(_read_rows(emb))
            if f"{name}: DTW" in learned:
                learned[f"{name}: DTW"].append(_scores(_dtw(seqs), y, False))
            learned[f"{name}: pooled (cosine)"].append(_scores(_pooled_cos(seqs), y, True))
            if f"{name}: pooled, mean and std only (--segments 0)" in learned:
                learned[f"{name}: pooled, mean and std only (--segments 0)"].append(
                    _scores(_pooled_cos(seqs, 0), y, True))
            searched[name].append(_search_map(emb, work))
            if name == ENCODERS[0][0]:
                assert list(y) == list(y_fe), "clips out of order"
                learned[DEFAULT_ROW].append(_cluster_scores(emb, work))
                learned[NOT_RERANKED_ROW].append(_cluster_scores(emb, work, "--rerank",
                                                                 "none"))
                pooled_search.append(_search_map(emb, work, "--match", "pooled"))
                plain_search.append(_search_map(emb, work, "--rerank", "none"))
    bar = {k: max(b[k] for b in base.values()) for k in METRICS}
    lines = [f"\n### call types: {dataset} ({len(files)} clips, {len(set(y))} types; seeds "
             f"{' '.join(map(str, seeds))}; slice {' '.join(slice_args) or '(defaults)'})",
             "", "| method | 1-NN (types >= 2 clips) | mAP | ARI (Ward) | NMI |",
             "|---|---|---|---|---|"]
    lines += [_row(f"baseline: {k}", [v]) for k, v in base.items()]
    lines.append(_row("**best baseline (the bar)**", [bar]))
    lines.append(_row("unlearned: DTW of the default front end's frames (every 2nd, each "
                      "clip whitened and standardised)", [fe]))
    lines += [_row(f"unlearned control: {k}", [v]) for k, v in controls.items()]
    for k, v in learned.items():
        lines.append(_row(f"**wsd default: {k}**" if k == DEFAULT_ROW else f"{k}", v))
    for arch, rs in searched.items():
        how = "fused" if "kmeans" in arch else "dtw"  # default_distance of each encoder
        lines.append(f"| wsd search --query E.h5 --per-file ({arch} embeddings, --match auto: "
                     f"{how}, the command's ranking) | | {mean_sd([r['map'] for r in rs])} "
                     "| | |")
    lines.append(f"| wsd search --query E.h5 --per-file --match pooled ({ENCODERS[0][0]} "
                 f"embeddings) | | {mean_sd([r['map'] for r in pooled_search])} | | |")
    lines.append(f"| wsd search --query E.h5 --per-file --rerank none ({ENCODERS[0][0]} "
                 f"embeddings, fused, not re-ranked) | | "
                 f"{mean_sd([r['map'] for r in plain_search])} | | |")
    lines.append(_row(f"seed convae (--arch convae --epochs {CONVAE_EPOCHS}, seed "
                      f"{seeds[0]}): DTW of window embeddings", [convae]))
    lines.append(_row("seed convae, the same embeddings: cluster --distance fused",
                      [convae_fused]))
    gap = {k: np.mean([r[k] for r in learned[DEFAULT_ROW]]) - bar[k] for k in METRICS}
    gap_fe = {k: np.mean([r[k] for r in learned[DEFAULT_ROW]]) - fe[k] for k in METRICS}
    lines.append("\ngain of the default over the bar: "
                 + ", ".join(f"{k} {gap[k]:+.3f}" for k in METRICS)
                 + "; over the unlearned front-end DTW: "
                 + ", ".join(f"{k} {gap_fe[k]:+.3f}" for k in METRICS)
                 + "; training " + ", ".join(f"{a} {mean_sd(t)} s" for a, t in times.items())
                 + f" per seed; {time.perf_counter() - t0:.0f} s")
    return lines


# ------------------------------------------------------------------ up-calls
def _meridian(split: str) -> tuple[list[Path], Path]:
    base = REAL / MERIDIAN
    files = sorted((base / "long" / split).glob("*/*.wav"))
    truth = base / f"annotations_{split}.csv"
    return files, truth


UPCALL_SLICE = ["--n-fft", "256", "--hop-length", "64", "--frames", "64", "--step", "8",
                "--fmin", "30", "--fmax", "400", "--n-mels", "32"]


def _labels_from_truth(truth: Path, out: Path) -> Path:
    with open(truth) as fh, open(out, "w", newline="") as o:
        w = csv.writer(o)
        w.writerow(["path", "start_s", "end_s", "label"])
        for r in csv.DictReader(fh):
            w.writerow([r["filename"], r["start"], r["end"], "upcall"])
    return out


def _event_scores(det: Path) -> dict:
    import json

    from wsd.io.store import open_file

    with open_file(det) as f:
        return json.loads(f.attrs("/")["metrics_json"])["events"]


def _median_duration(truth: Path) -> float:
    with open(truth) as fh:
        return float(np.median([float(r["end"]) - float(r["start"])
                                for r in csv.DictReader(fh)]))


#: The detection recipe (research in the closing notes of issue 16): a probe on windows
#: that hold most of a call, log-odds scaled per recording, one event of the median train
#: call length around each peak of the trace smoothed over 5 windows (1.3 s), peaks at
#: least an event length apart (detect's default: events never overlap; 1 s apart left
#: second peaks beside calls as false positives).
LABEL_COVER = "0.7"
PEAKS = ["--events", "peaks", "--smooth", "2"]
#: The recipe's calibration: the log-odds per recording in spreads of the trace's own
#: background peaks (chosen with the encoder's three members, below) ...
CAL = ["--calibrate", "peaks"]
#: ... and the previous recipe's, robust z of all the trace's scores.
CAL_REC = ["--calibrate", "recording"]


#: The encoder of the detection recipe: k-means patches of 8 of the 32 bands every 4 bands,
#: coded at each band position (noise in other bands leaves a patch's code alone) ...
UPCALL_BAND = ["-p", "fpatch=8", "-p", "fstride=4", "-p", "k=128", "-p", "pca=64"]
#: ... with a second dictionary of 256 full-band centroids beside it (the call's whole
#: shape; measured steadier across seeds than the band codes alone), in three copies (the
#: kmeans default -p members=3; the probe fits one per copy) ...
UPCALL_KMEANS = UPCALL_BAND + ["-p", "full=256"]
#: ... and its probe: strong L2, rows of unit length (the probe's default; chosen over
#: per-recording standardisation by benchmarks/upcall_calibration.py's train-only
#: criterion: 0.779±0.007 against 0.766±0.012) ...
UPCALL_PROBE = ["-p", "c=0.01"]
#: ... and the previous recipe: the same with one copy of the encoder, --calibrate recording.
ONE = ["-p", "members=1"]


def upcalls(seeds, work: Path) -> list[str]:
    tr_files, tr_truth = _meridian("train")
    va_files, va_truth = _meridian("val")
    tr_labels = _labels_from_truth(tr_truth, work / "train-labels.csv")
    va_table = _labels_from_truth(va_truth, work / "val-truth.csv")
    length = f"{_median_duration(tr_truth):.3f}"
    tr, va = work / "tr.h5", work / "va.h5"
    wsd("slice", *tr_files, "-o", tr, "--labels", tr_labels, *UPCALL_SLICE, "--force", "-q")
    wsd("slice", *va_files, "-o", va, *UPCALL_SLICE, "--force", "-q")
    rows = []
    det = work / "sil.h5"
    wsd("detect", va, "--silence", "--fmin", "50", "--fmax", "300", "--truth", va_table,
        "-o", det, "--force", "-q")
    rows.append(("untrained: detect --silence, 50-300 Hz", [_event_scores(det)]))
    runs: dict[str, list] = {}
    times = []
    # (tag, arch, train flags, [(row key, probe flags, detect flags)])
    plan = (("", "contrastive", [], [("merge", None, None), ("peaks", [], CAL_REC)]),
            ("km-", "kmeans", [], [("merge", None, None), ("peaks", [], CAL_REC),
                                   ("peaks-c", UPCALL_PROBE, CAL_REC),
                                   ("peaks-c-cal", UPCALL_PROBE, CAL)]),
            ("band1-", "kmeans", UPCALL_KMEANS + ONE, [("peaks-c", UPCALL_PROBE, CAL_REC),
                                                      ("peaks-c-cal", UPCALL_PROBE, CAL)]),
            ("band-", "kmeans", UPCALL_KMEANS, [("peaks-c", UPCALL_PROBE, CAL_REC),
                                                ("peaks-c-cal", UPCALL_PROBE, CAL)]))
    for seed in seeds:
        for tag, arch, extra, probes in plan:
            enc, etr, eva = (work / f"{n}{tag}{arch}{seed}.h5" for n in ("u", "etr", "eva"))
            clf, d = work / f"clf{tag}{arch}{seed}.h5", work / f"d{tag}{arch}{seed}.h5"
            t = time.perf_counter()
            wsd("train", tr, "--arch", arch, *extra, "-o", enc, "--seed", seed, "--force",
                "-q")
            if tag == "km-":
                times.append(time.perf_counter() - t)
            # one row a window: for detection, measured better than the step rows (seed 0:
            # event F1 0.09 against 0.02 with 32-frame windows)
            wsd("embed", tr, "--model", enc, "--rows", "windows", "-o", etr, "--force", "-q")
            wsd("embed", va, "--model", enc, "--rows", "windows", "-o", eva, "--force", "-q")
            fitted = set()
            for key, probe, cal in probes:
                if probe is None:  # a plain probe on every window, windows merged
                    wsd("train", etr, "--arch", "linear", "--positive", "upcall", "-o", clf,
                        "--force", "-q")
                    wsd("detect", eva, "--model", clf, "--min-gap", "0.3", "--truth",
                        va_table, "-o", d, "--force", "-q")
                else:
                    pc = work / f"clf{tag}{arch}{seed}-{'-'.join(probe) or 'default'}.h5"
                    if pc not in fitted:  # one probe serves both calibrations
                        wsd("train", etr, "--arch", "linear", "--positive", "upcall",
                            "--labels", tr_labels, "--label-cover", LABEL_COVER, *probe,
                            "-o", pc, "--force", "-q")
                        fitted.add(pc)
                    wsd("detect", eva, "--model", pc, *cal, *PEAKS, "--event-length", length,
                        "--truth", va_table, "-o", d, "--force", "-q")
                runs.setdefault(tag + key, []).append(_event_scores(d))
    recipe = (f"probe on --label-cover {LABEL_COVER}, detect --events peaks --event-length "
              f"{length} --smooth 2")
    probe = " ".join(UPCALL_PROBE)
    enc = " ".join(UPCALL_KMEANS)
    rows += [("contrastive encoder + linear probe, merged windows", runs["merge"]),
             (f"contrastive encoder, {recipe} --calibrate recording", runs["peaks"]),
             ("default encoder (kmeans, 3 members) + linear probe, merged windows",
              runs["km-merge"]),
             (f"default encoder, {recipe} --calibrate recording", runs["km-peaks"]),
             (f"default encoder, probe {probe}, same detection, --calibrate recording",
              runs["km-peaks-c"]),
             (f"default encoder, probe {probe}, same detection, --calibrate peaks",
              runs["km-peaks-c-cal"]),
             (f"kmeans {enc} -p members=1, probe {probe}, --calibrate recording (the "
              "previous recipe)", runs["band1-peaks-c"]),
             (f"kmeans {enc} -p members=1, probe {probe}, --calibrate peaks",
              runs["band1-peaks-c-cal"]),
             (f"kmeans {enc} (3 members), probe {probe}, --calibrate recording",
              runs["band-peaks-c"]),
             (f"**wsd: kmeans {enc} (3 members), probe {probe}, --calibrate peaks**",
              runs["band-peaks-c-cal"])]
    keys = ("f1", "precision", "recall", "average_precision", "fp_per_hour")
    lines = ["\n### up-calls: MERIDIAN long/train -> long/val (events, IoU >= 0.3)", "",
             "| method | event F1 | precision | recall | AP | false positives / hour |",
             "|---|---|---|---|---|---|"]
    for name, rs in rows:
        lines.append(f"| {name} | " + " | ".join(
            mean_sd([r[k] if r[k] is not None else np.nan for r in rs]) for k in keys) + " |")
    lines.append(f"\nkmeans training {mean_sd(times)} s per seed")
    return lines


# ------------------------------------------------------------------ orca vs noise
def orca(seeds, work: Path) -> list[str]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    base = REAL / ORCACNN
    pos, neg = sorted((base / "orca_pos").glob("*.wav")), sorted((base / "orca_neg").glob("*.wav"))
    files = pos + neg
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))].astype(int)
    win = work / "orca.h5"
    wsd("slice", *files, "-o", win, "--sample-rate", "44100", "--force", "-q")

    def auc(features, seed):
        clf = LogisticRegression(class_weight="balanced", max_iter=5000, C=1.0)
        cv = StratifiedKFold(5, shuffle=True, random_state=seed)
        p = cross_val_predict(clf, _z(features), y, cv=cv, method="predict_proba")[:, 1]
        return {"auc": float(roc_auc_score(y, p))}

    r = _read_rows(win)
    seqs, _ = _per_file({**r, "label": np.full(len(r["sid"]), "", object)})
    band = np.stack([np.concatenate([s.mean((0, 1)), s.std((0, 1))]) for s in seqs])
    rows = [("band energies + logistic regression", [auc(band, s) for s in seeds])]

    def wsd_probe_cv(x, sid, seed, blocks=1):
        """Out-of-fold P(orca) of rows ``x`` (clip ``sid`` each) from wsd's probe (`train
        --arch linear`'s defaults: rows of unit length, centred and scaled on the training
        rows, balanced, C=1, one fit per member of the encoder), on the folds of the rows
        above, split by clip."""
        from wsd.models.probe import fit_probe, predict

        prob = np.zeros(len(sid))
        cv = StratifiedKFold(5, shuffle=True, random_state=seed)
        for tr, te in cv.split(np.zeros(len(y)), y):
            m, t = np.isin(sid, tr), np.isin(sid, te)
            prob[t] = predict(fit_probe(x[m], y[sid[m]], seed=seed, blocks=blocks), x[t])
        return prob

    def clip_scores(e, seed):
        """A window probe (every window of a clip carrying the clip's label), each held-out
        clip's window scores made one by each of `detect --clip-score`'s rules: ROC AUC
        per rule."""
        from wsd.metrics.detection import CLIP_SCORES, per_recording

        sid = np.asarray(e["sid"])
        prob = wsd_probe_cv(e["x"], sid, seed, e["blocks"])
        return {how: float(roc_auc_score(y, per_recording(y[sid], prob, sid, how)[2]))
                for how in CLIP_SCORES}

    def files_rows(emb, seed):
        """`wsd embed --rows files` (each clip's windows pooled by wsd itself) with wsd's
        probe, on the same folds."""
        e = _read_rows(emb)
        assert np.array_equal(e["sid"], np.arange(len(y))), "one row per clip, in order"
        return {"auc": float(roc_auc_score(y, wsd_probe_cv(e["x"], e["sid"], seed,
                                                           e["blocks"])))}

    by_rule = {}
    for arch, name in (("kmeans", "**wsd default (kmeans), pooled per clip + logistic "
                                  "probe**"),
                       ("contrastive", "contrastive encoder, pooled per clip + logistic "
                                       "probe")):
        runs = []
        for seed in seeds:
            enc, emb = work / f"{arch}{seed}.h5", work / f"e{arch}{seed}.h5"
            wsd("train", win, "--arch", arch, "-o", enc, "--seed", seed, "--force", "-q")
            wsd("embed", win, "--model", enc, "-o", emb, "--force", "-q")
            e = _read_rows(emb)
            es, _ = _per_file({**e, "label": np.full(len(e["sid"]), "", object)})
            pooled = np.stack([np.concatenate([s.mean(0), s.std(0)]) for s in es])
            runs.append(auc(pooled, seed))
            for how, v in clip_scores(e, seed).items():
                by_rule.setdefault((arch, how), []).append({"auc": v})
            ef = work / f"f{arch}{seed}.h5"
            wsd("embed", win, "--model", enc, "--rows", "files", "-o", ef, "--force", "-q")
            by_rule.setdefault((arch, "files"), []).append(files_rows(ef, seed))
            if arch == "kmeans":  # the previous default: one copy of the encoder
                enc1, ef1 = work / f"kmeans1-{seed}.h5", work / f"fkmeans1-{seed}.h5"
                wsd("train", win, "--arch", arch, "-p", "members=1", "-o", enc1, "--seed",
                    seed, "--force", "-q")
                wsd("embed", win, "--model", enc1, "--rows", "files", "-o", ef1, "--force",
                    "-q")
                by_rule.setdefault(("kmeans -p members=1 (the previous default)", "files"),
                                   []).append(files_rows(ef1, seed))
        rows.append((name, runs))
    for (arch, how), runs in by_rule.items():
        rows.append((f"{arch}: `embed --rows files` (wsd pools each clip) + wsd's probe"
                     if how == "files" else
                     f"{arch}: window probe, clip score `detect --clip-score {how}`"
                     + (" (auto for clips)" if how == "median" else ""), runs))
    lines = [f"\n### orca calls vs noise: OrcaCNN ({len(pos)} calls, {len(neg)} noise clips; "
             "5-fold CV, each clip its own group)", "", "| method | ROC AUC |", "|---|---|"]
    lines += [f"| {n} | {mean_sd([x['auc'] for x in rs])} |" for n, rs in rows]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["calltypes", "upcalls", "orca"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--datasets", nargs="+", default=[CATALOGUE, ORCADATA])
    ap.add_argument("--slice-args", default="", help="extra wsd slice flags for the "
                    "call-type pipeline (e.g. '--fmin 500 --fmax 11500')")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where the run's temporary folder goes (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the run's folder (windows, "
                    "models, embeddings, detections; under --workdir or the system's temporary "
                    "folder) and print its path; "
                    "benchmarks/upcall_calibration.py reads the up-call files from it")
    a = ap.parse_args()
    if not REAL.exists():
        print(f"skipped: real recordings not found at {REAL}")
        return
    passive_threads()
    t0 = time.perf_counter()
    lines = ["## benchmarks/quality.py"]
    with contextlib.ExitStack() as stack:
        if a.keep:
            work = Path(tempfile.mkdtemp(prefix="quality-", dir=a.workdir))
            print(f"keeping the run's files in {work}", flush=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=a.workdir)))
        if "calltypes" in a.tasks:
            for ds in a.datasets:
                (work / ds).mkdir()
                lines += calltypes(ds, a.seeds, work / ds, shlex.split(a.slice_args))
                print("\n".join(lines[-12:]), flush=True)
        if "upcalls" in a.tasks:
            (work / "up").mkdir()
            lines += upcalls(a.seeds, work / "up")
        if "orca" in a.tasks:
            (work / "orca").mkdir()
            lines += orca(a.seeds, work / "orca")
    print("\n".join(lines))
    print(footer(t0))


if __name__ == "__main__":
    sys.exit(main())
