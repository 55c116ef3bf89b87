"""One epoch of ``wsd train`` (training pass, validation loss, early stopping) and a trained
classifier's validation scores; the loop around them is :mod:`wsd.pipeline.train`."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from wsd.errors import BadInputError, WsdError


@dataclass
class TrainState:
    epoch: int = 0
    history: dict = field(default_factory=lambda: {"loss": [], "val_loss": [],
                                                   "windows_per_s": [], "seconds": []})
    best_val: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    best_state: dict | None = None
    stopped_early: bool = False


def run_epoch(run, st: TrainState, advance) -> None:
    """One pass over the training windows, then the validation loss and early stopping.
    Windows holding NaN or infinite values, or a loss that becomes NaN, stop training
    before anything is written (the last epoch's checkpoint stays for --resume)."""
    from wsd.runtime import torchrun

    model, dev, p = run.model, run.device, run.p
    t0, seen, total = time.perf_counter(), 0, 0.0
    model.train()
    it = iter(run.train_dl)
    while True:
        batch = next(it, None)
        if not torchrun.all_have(run.dd, batch is not None):
            break
        x, y = batch if run.supervised else (batch, None)
        _check_batch(x, run.windows, st.epoch)
        kw = {"y": y.to(dev)} if run.supervised else {}
        logs = model.train_step(x.to(dev, non_blocking=True), run.opts, run.autocast, **kw)
        if not math.isfinite(logs["loss"]):
            raise WsdError(f"training diverged in epoch {st.epoch + 1}: the loss is "
                           f"{logs['loss']}; nothing was written (try a lower --lr than "
                           f"{p.lr:g})", run.windows)
        seen += len(x)
        total += logs["loss"] * len(x)
        advance(1, status=f"epoch {st.epoch + 1} loss {logs['loss']:.4f}")
    dt = time.perf_counter() - t0
    val = _validation_loss(run) if run.val_dl is not None else math.nan
    h = st.history
    h["loss"].append(total / max(seen, 1))
    h["val_loss"].append(val)
    h["windows_per_s"].append(seen / dt if dt else 0.0)
    h["seconds"].append(dt)
    if run.val_dl is not None and p.patience:
        if val < st.best_val - 1e-9:
            st.best_val, st.best_epoch, st.bad_epochs = val, st.epoch, 0
            st.best_state = {k: v.detach().cpu().clone() for k, v in
                             model.state_dict().items()}
        else:
            st.bad_epochs += 1
            st.stopped_early = st.bad_epochs >= p.patience
    st.epoch += 1


def _check_batch(x, path: str, epoch: int) -> None:
    import torch

    if not bool(torch.isfinite(x).all()):
        raise BadInputError(f"windows hold NaN or infinite values (met in epoch {epoch + 1}); "
                            "nothing was written (re-slice the audio)", path)


def _validation_loss(run) -> float:
    vs = vn = 0.0
    for batch in run.val_dl:
        x, y = batch if run.supervised else (batch, None)
        _check_batch(x, run.windows, 0)
        kw = {"y": y.to(run.device)} if run.supervised else {}
        vs += run.model.eval_loss(x.to(run.device), **kw) * len(x)
        vn += len(x)
    return vs / vn


def validation_scores(run) -> dict:
    """Threshold (max F1) and metrics of a trained classifier on the validation windows
    (scored with the same precision as ``wsd detect`` will use by default)."""
    import torch

    from wsd.metrics.detection import best_threshold, binary_metrics

    if run.val_dl is None:
        return {"threshold": 0.5, "val_metrics": None}
    ys, ps = [], []
    with torch.inference_mode(), run.autocast():
        for x, y in run.val_dl:
            ps.append(run.model.predict_proba(x.to(run.device)).float().cpu().numpy())
            ys.append(y.numpy())
    y, prob = np.concatenate(ys), np.concatenate(ps)
    if run.p.positive is None:
        acc = float((prob.argmax(1) == y).mean())
        return {"threshold": 0.5, "val_metrics": {"accuracy": acc, "n": int(len(y))}}
    score = prob[:, 1]
    if len(set(y.tolist())) < 2:
        return {"threshold": 0.5, "val_metrics": binary_metrics(y, score, 0.5)}
    thr, _ = best_threshold(y, score)
    return {"threshold": float(thr), "val_metrics": binary_metrics(y, score, thr)}
