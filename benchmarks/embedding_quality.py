"""Call-type information in learned embeddings: 5-NN accuracy of convae, lstm and gan windows
against PCA(128) of the same raw windows, on synthetic recordings with known call types.

    .venv/bin/python benchmarks/embedding_quality.py [--epochs 4] [--seeds 0 1 2]
        [--archs convae lstm gan] [--patience 5] [--step-div 2] [--minutes 5]

Data: ``examples/synth.py OUTDIR --seed 0`` (6 recordings, 5 minutes, 5 call types: whistle,
upcall, clicks, burst, pulsed) in a temporary folder; ``wsd slice OUTDIR/recordings
--sample-rate 22050 --labels OUTDIR/labels.csv``. Each architecture gets its own window
geometry (the windows it was designed for), and is evaluated on its own windows, against PCA
on those same windows:

* convae: 32 frames x 256 bins (n_fft 512), 0.37 s;
* lstm: 128 frames x 256 bins (n_fft 512), 1.49 s;
* gan: 128 frames x 128 bins (n_fft 256), 1.49 s.

Windows overlap by half (step = frames / ``--step-div``), which doubles the few 1.49 s windows
the lstm and gan learn from. Every model is trained without labels on all windows of its file
(``wsd train``, light CPU preset, settings printed; wsd's validation split and early stopping
with ``--patience``), once per seed, then ``wsd embed``. The PCA
baseline is sklearn PCA(128) (whitening off) fitted on all windows of the same file (dB values,
flattened). Scored on the labelled windows only (a window carries the label of the event that
overlaps it most, any overlap counts), with sklearn's KNeighborsClassifier(5):

* ``by recording``: GroupKFold over the 6 source recordings (train on 5, test on the 6th): no
  neighbour from the same recording, so nothing leaks from adjacent windows of the same call;
* ``LOO``: leave-one-window-out over all labelled windows (optimistic: the neighbours may be
  the overlapping windows just before and after, of the same call);
* ``by rec, core``: by recording, on the windows at least half covered by their event (or
  covering at least half of it), which drops windows that only graze a call;
* ``by rec, zscore``: by recording with features standardised on the training folds.

Chance level is about 0.2 (5 balanced types). The wsd children run with
OMP_WAIT_POLICY=PASSIVE unless it is set (see README).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import ROOT, footer, mean_sd, passive_threads, wsd


# arch -> (slice flags, train --arch-param light preset, batch size)
GEOMETRY = {
    "convae": (["--n-fft", "512", "--frames", "32"], ["width=0.5"], 32),
    "lstm": (["--n-fft", "512", "--frames", "128"], ["filters=32", "freq_pool=4"], 16),
    "gan": (["--n-fft", "256", "--frames", "128"], ["channels=16"], 32),
}




def importable(arch: str) -> str | None:
    """None when ``wsd.models`` registers ``arch`` and builds it; else the reason."""
    try:
        from wsd.models import build as _build

        frames, bins = (32, 256) if arch == "convae" else (128, 256 if arch == "lstm" else 128)
        _build(arch, frames, bins)
        return None
    except Exception as e:  # report any failure: the model may be in progress elsewhere
        return f"{type(e).__name__}: {e}"


def read_windows(path: Path):
    """(flattened windows ``(n, frames*bins)`` float32, labels ``(n,)`` str, source ids,
    start_s, end_s, source paths) of a windows file."""
    from wsd.io.store import open_file

    with open_file(path, "windows") as f:
        x = f.read("windows").astype(np.float32)
        return (x.reshape(len(x), -1), np.asarray(f.read("label")).astype(str),
                f.read("source_id"), f.read("start_s"), f.read("end_s"),
                [str(p) for p in f.sources["path"]])


def read_embeddings(path: Path) -> np.ndarray:
    from wsd.io.store import open_file

    with open_file(path, "embeddings") as f:
        return f.read("embeddings").astype(np.float64)


def core_mask(labels_csv: Path, labels, sid, start_s, end_s, paths) -> np.ndarray:
    """True for labelled windows whose best event covers at least half of the window or
    at least half of the event."""
    events: dict[str, list[tuple[float, float]]] = {}
    with open(labels_csv, newline="") as f:
        for r in csv.DictReader(f):
            events.setdefault(Path(r["path"]).name, []).append(
                (float(r["start_s"]), float(r["end_s"])))
    out = np.zeros(len(labels), dtype=bool)
    for i in np.flatnonzero(labels != ""):
        evs = np.array(events.get(Path(paths[sid[i]]).name, []))
        if not len(evs):
            continue
        ov = np.minimum(end_s[i], evs[:, 1]) - np.maximum(start_s[i], evs[:, 0])
        j = ov.argmax()
        out[i] = ov[j] >= 0.5 * min(end_s[i] - start_s[i], evs[j, 1] - evs[j, 0])
    return out


def knn_scores(x: np.ndarray, y: np.ndarray, groups: np.ndarray, core: np.ndarray) -> dict:
    """5-NN accuracies of features ``x`` ``(n, D)`` for labels ``y`` (labelled rows only)."""
    from sklearn.model_selection import GroupKFold, LeaveOneOut, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    knn = KNeighborsClassifier(5)
    cv = GroupKFold(n_splits=len(np.unique(groups)))
    out = {"by recording": cross_val_score(knn, x, y, groups=groups, cv=cv).mean(),
           "LOO": cross_val_score(knn, x, y, cv=LeaveOneOut()).mean()}
    cv_core = GroupKFold(n_splits=len(np.unique(groups[core])))
    out["by rec, core"] = cross_val_score(knn, x[core], y[core], groups=groups[core],
                                          cv=cv_core).mean()
    out["by rec, zscore"] = cross_val_score(make_pipeline(StandardScaler(), knn), x, y,
                                            groups=groups, cv=cv).mean()
    return out


def evaluate(arch: str, tmp: Path, data: Path, epochs: int, seeds: list[int],
             step_div: int, patience: int) -> list[tuple]:
    """Rows (name, window, dim, train seconds, [scores per seed]) for PCA and ``arch``."""
    from sklearn.decomposition import PCA

    flags, preset, batch = GEOMETRY[arch]
    frames = int(flags[3])
    win = tmp / f"win-{arch}.h5"
    wsd("slice", data / "recordings", "--sample-rate", 22050, "--labels", data / "labels.csv",
        *flags, "--step", frames // step_div, "-o", win, "-q", "--force")
    x, labels, sid, st, en, paths = read_windows(win)
    lab = labels != ""
    core = core_mask(data / "labels.csv", labels, sid, st, en, paths)[lab]
    geometry = f"{frames}x{x.shape[1] // frames}"
    counts = dict(zip(*np.unique(labels[lab], return_counts=True)))
    print(f"  {arch}: {len(x)} windows of {geometry}, step {frames // step_div}; "
          f"{lab.sum()} labelled ({core.sum()} core): "
          + ", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)
    pca = PCA(128, random_state=0).fit_transform(x)
    rows = [("PCA(128) of raw windows", geometry, 128, "-",
             [knn_scores(pca[lab], labels[lab], sid[lab], core)])]
    params = [a for p in preset for a in ("--arch-param", p)]
    runs, secs = [], []
    for seed in seeds:
        model, emb = tmp / f"model-{arch}-{seed}.h5", tmp / f"emb-{arch}-{seed}.h5"
        t = time.perf_counter()
        err = wsd("train", win, "--arch", arch, *params, "--epochs", epochs, "--batch-size",
                  batch, "--seed", seed, "--patience", patience, "-o", model, "--force")
        wsd("embed", win, "--model", model, "-o", emb, "-q", "--force")
        secs.append(time.perf_counter() - t)
        last = [ln for ln in err.splitlines() if "epochs" in ln and "->" in ln]
        print(f"  {arch} seed {seed}: trained and embedded in {secs[-1]:.0f} s; "
              f"{last[-1].split(': ', 1)[-1].split(' -> ')[0] if last else ''}",
              file=sys.stderr)
        z = read_embeddings(emb)
        runs.append(knn_scores(z[lab], labels[lab], sid[lab], core))
    rows.append((f"{arch} ({' '.join(preset)}, batch {batch})", geometry, z.shape[1],
                 f"{np.mean(secs):.0f}", runs))
    return rows




def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", nargs="+", default=list(GEOMETRY), choices=list(GEOMETRY))
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--patience", type=int, default=5, help="wsd train --patience (0: keep "
                    "the last epoch's weights; wsd keeps the best validation epoch's)")
    ap.add_argument("--step-div", type=int, default=2,
                    help="window step = frames / this (default 2: half-overlapping windows)")
    ap.add_argument("--minutes", type=float, default=5.0, help="synthetic audio (synth.py)")
    ap.add_argument("--workdir", type=Path, help="keep the intermediate files in this "
                    "existing folder (default: a temporary folder, removed at the end)")
    args = ap.parse_args(argv)
    passive_threads()
    t0 = time.perf_counter()
    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="wsd-embq-") as d:
        tmp = args.workdir or Path(d)
        data = tmp / "data"
        r = subprocess.run([sys.executable, str(ROOT / "examples" / "synth.py"), str(data),
                            "--seed", "0", "--minutes", str(args.minutes), "--force"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"examples/synth.py failed: {r.stderr.strip()}")
        print(f"  {r.stderr.strip()}", file=sys.stderr)
        for arch in args.archs:
            why = importable(arch)
            if why:
                skipped.append(f"{arch}: not evaluated, the model does not build: {why}")
                print(f"  {skipped[-1]}", file=sys.stderr)
                continue
            rows += evaluate(arch, tmp, data, args.epochs, args.seeds, args.step_div,
                             args.patience)
    cols = ("by recording", "LOO", "by rec, core", "by rec, zscore")
    print(f"\n5-NN call-type accuracy, synthetic recordings (examples/synth.py --seed 0 "
          f"--minutes {args.minutes:g}; 5 types, chance ~0.2); windows step frames/"
          f"{args.step_div}; models: {args.epochs} epochs, patience {args.patience}, seeds "
          f"{args.seeds} (mean±sd)")
    print(f"{'features':40s}{'window':>9s}{'dim':>5s}{'train s':>8s}"
          + "".join(f"{c:>16s}" for c in cols))
    for name, geom, dim, secs, runs in rows:
        print(f"{name:40s}{geom:>9s}{dim:>5d}{secs:>8s}"
              + "".join(f"{mean_sd([r[c] for r in runs]):>16s}" for c in cols))
    for s in skipped:
        print(s)
    print(footer(t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
