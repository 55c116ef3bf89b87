"""Coordinator of ``wsd train EMB.h5 --arch linear``: a few-shot linear probe fitted on the
rows of an embeddings file (labels from a table, such as the review page's marks, or from
the file), its threshold and validation metrics from recording-grouped cross-validation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from wsd.errors import UsageError
from wsd.pipeline.progress import Progress
from wsd.pipeline.train import TrainParams


def train_probe(emb_path: str, p: TrainParams, *, out: Path, history_lines: list[str],
                labels=None, progress: Progress | None = None,
                label_cover: float = 0.0) -> dict:
    """Fit a linear probe (``--arch linear``) on the rows of an embeddings file and write it
    to ``out``. Labels come from ``labels`` (a :class:`wsd.io.labels.LabelTable`: each row
    takes the label of the event covering most of it) or the file's own ``label`` dataset.
    The threshold (best F1) and the validation metrics come from predictions out of
    recording-grouped cross-validation, so they are not scored on the rows fitted."""
    from wsd.io.labels import assign
    from wsd.io.store import atomic_output, open_file
    from wsd.io.store.models import save_model
    from wsd import models
    from wsd.models.arch.linear import resolve_scale
    from wsd.models.probe import fit_probe, probe_targets, recording_standardised

    progress = progress or Progress()
    if not (0.0 <= label_cover <= 1.0):
        raise UsageError(f"--label-cover must be between 0 and 1 (got {label_cover})")
    if label_cover and labels is None:
        raise UsageError("--label-cover applies to the events of --labels LABELS.csv")
    if p.arch != "linear":
        raise UsageError(f"an embeddings file trains a probe: --arch linear (got {p.arch})")
    if not p.positive:
        raise UsageError("--arch linear needs --positive LABEL (the class to detect)")
    with open_file(emb_path, "embeddings") as e:
        z = e.read("embeddings")
        sid, st, en = e.read("source_id"), e.read("start_s"), e.read("end_s")
        if labels is not None:
            lab = np.full(len(z), "", object)
            for s, path in enumerate(e.sources["path"]):
                rows = np.flatnonzero(sid == s)
                if len(rows):
                    lab[rows] = assign(labels.for_file(path), st[rows], en[rows],
                                       min_cover=label_cover)
        elif e.has("label"):
            lab = e.read("label")
        else:
            raise UsageError("the embeddings carry no labels: give --labels LABELS.csv",
                             emb_path)
        spec, sources, hist = e.spectrogram, e.sources, list(dict.fromkeys(e.history))
        member_blocks = e.params.get("member_blocks")  # kmeans -p members=N: N
        enc = {"encoder_model": e.params.get("model"), "encoder_model_id":
               e.params.get("model_id"), "encoder_arch": e.params.get("arch")}
    arch_params = dict(p.arch_params)
    if "blocks" not in arch_params:  # one fit per copy of a kmeans -p members=N encoder
        arch_params["blocks"] = int(member_blocks or 1)
    cfg = models.build("linear", 1, 1, **arch_params).config  # checks the keys
    c, norm, blocks = float(cfg["c"]), str(cfg["norm"]), int(cfg["blocks"])
    scale = resolve_scale(str(cfg["scale"]), norm)
    if z.shape[1] % blocks:
        raise UsageError(f"-p blocks={blocks}: the embeddings' {z.shape[1]} features do not "
                         "cut into that many equal blocks (give the encoder's members)",
                         emb_path)
    if norm == "recording":
        if len(np.unique(sid)) == len(sid):
            raise UsageError("-p norm=recording standardises each row by its own recording's "
                             "rows, and here there is one row per recording (as embed "
                             "--rows files writes): every row would be 0. Use the default "
                             "norm=unit", emb_path)
        z = recording_standardised(z, sid)
    y = probe_targets(lab, p.positive)
    progress.note(f"linear probe: {int((y == 1).sum())} positive and {int((y == 0).sum())} "
                  f"negative rows of {len(y)} ({int((y < 0).sum())} left out as unsure)")
    thr, val, thr_cal = _probe_threshold(z, y, sid, c, p.seed, blocks, scale, norm,
                                         start_s=st)
    probe = fit_probe(z, y, c=c, seed=p.seed, norm=norm, blocks=blocks, scale=scale)
    params = {**p.as_attrs(), "windows": str(emb_path), "embeddings": str(emb_path),
              "classes": ["other", p.positive], "input_kind": "embeddings",
              "threshold": thr, "val_metrics": val, **enc}
    for name, t in (thr_cal or {}).items():  # detect --calibrate recording | peaks
        params[f"threshold_{name}"] = t
    if labels is not None:  # detect --events peaks: events as long as the labelled ones
        lengths = [b - a for path in sources["path"] for a, b, name in labels.for_file(path)
                   if name == p.positive and b > a]
        if lengths:
            params["event_length_s"] = float(np.median(lengths))
    with atomic_output(out, force=True) as tmp:
        save_model(tmp, arch="linear", config=probe.config, state_dict=probe.state_dict(),
                   spectrogram=spec, norm={"mean": 0.0, "std": 1.0}, params=params,
                   history=hist + history_lines, loss_history={}, sources=sources)
    return {"epochs": 0, "best_epoch": -1, "best_val": math.nan, "stopped_early": False,
            "n_train": int((y >= 0).sum()), "n_val": 0, "loss": math.nan, "device": "cpu",
            "split": "cross-validated by recording", "validation": val}


#: Folds of the probe's cross-validation (fewer when there are fewer recordings).
PROBE_FOLDS = 5


def _probe_threshold(z, y, sid, c: float, seed: int, blocks: int = 1, scale: str = "auto",
                     norm: str = "unit", start_s=None
                     ) -> tuple[float, dict | None, dict[str, float] | None]:
    """Best-F1 threshold and metrics of out-of-fold probabilities, folds by recording
    (0.5 and no metrics when the positives sit in fewer than two recordings); and the
    best-F1 thresholds of the out-of-fold log-odds on each per-recording scale of
    ``wsd detect --calibrate`` (``{"recording": z, "peaks": z}``), or None."""
    from sklearn.model_selection import GroupKFold

    from wsd.dsp.events import CALIBRATIONS, recording_z
    from wsd.metrics.detection import best_threshold, binary_metrics
    from wsd.models.probe import fit_probe, predict_logit

    use = np.flatnonzero(y >= 0)
    groups = sid[use]
    if len(np.unique(groups[y[use] == 1])) < 2:
        return 0.5, None, None
    folds = min(PROBE_FOLDS, len(np.unique(groups)))
    prob = np.full(len(use), np.nan)
    logit = np.full(len(y), np.nan)  # every row, the unsure ones too: z is per recording
    for tr, te in GroupKFold(folds).split(use, y[use], groups):
        yt = y[use][tr]
        if (yt == 1).any() and (yt == 0).any():
            probe = fit_probe(z[use][tr], yt, c=c, seed=seed, blocks=blocks, scale=scale,
                              norm=norm)
            rows = np.flatnonzero(np.isin(sid, np.unique(groups[te])))
            logit[rows] = predict_logit(probe, z[rows])
            # P(positive) is the sigmoid of the two classes' log-odds (the probe's softmax)
            prob[te] = 1.0 / (1.0 + np.exp(-logit[use[te]].astype(np.float64)))
    ok = np.isfinite(prob)
    yy = y[use][ok]
    if not (yy == 1).any() or not (yy == 0).any():
        return 0.5, None, None
    thr, _ = best_threshold(yy, prob[ok])
    thr_cal = None
    seen = np.isfinite(logit)
    m = seen & (y >= 0)
    if seen.any() and (y[m] == 1).any() and (y[m] == 0).any():
        thr_cal = {}
        for cal in CALIBRATIONS:
            zr = np.full(len(y), np.nan)
            zr[seen] = recording_z(sid[seen], logit[seen], cal,
                                   None if start_s is None else start_s[seen])
            thr_cal[cal] = float(best_threshold(y[m], zr[m])[0])
    return float(thr), binary_metrics(yy, prob[ok], thr), thr_cal
