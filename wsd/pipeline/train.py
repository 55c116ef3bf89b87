"""The training loop behind ``wsd train``: any registered architecture, streamed windows,
validation split by recording, early stopping, a checkpoint every epoch (atomically) and
exact resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from wsd.errors import UsageError
from wsd.models.targets import class_targets, input_bins


@dataclass(frozen=True)
class TrainParams:
    arch: str
    arch_params: dict = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    val_fraction: float = 0.1
    patience: int = 5
    max_windows: int | None = None
    loader_workers: int = 1
    amp: bool | None = None  # None: auto (wsd.runtime.device.use_amp)
    positive: str | None = None  # classifiers: the class that counts as a detection
    encoder: str | None = None  # readout: the frozen encoder's model file

    def __post_init__(self):
        def need(cond, msg):
            if not cond:
                raise UsageError(msg)
        need(self.epochs >= 1, f"--epochs must be at least 1 (got {self.epochs})")
        need(self.batch_size >= 1, f"--batch-size must be at least 1 (got {self.batch_size})")
        need(self.lr > 0, f"--lr must be positive (got {self.lr})")
        need(0 <= self.val_fraction < 1, f"--val-fraction must be in [0, 1) "
                                         f"(got {self.val_fraction})")
        need(self.patience >= 0, f"--patience must be >= 0 (got {self.patience})")
        need(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
             f"--device must be auto, cpu or cuda (got {self.device})")
        need(self.max_windows is None or self.max_windows >= 1,
             f"--max-windows must be at least 1 (got {self.max_windows})")
        need(self.loader_workers >= 0, "--loader-workers must be >= 0")

    def as_attrs(self) -> dict:
        d = dataclasses.asdict(self)
        d["arch_params"] = dict(self.arch_params)
        return d


def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but torch sees no CUDA device")
    return name


def build_model(arch: str, frames: int, bins: int, arch_params: dict):
    """Build from the registry, turning its errors into usage errors (exit 2)."""
    from wsd import models

    try:
        return models.build(arch, frames, bins, **arch_params)
    except (models.UnknownArchitecture, models.ArchParamError) as e:
        raise UsageError(str(e)) from None


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


def train(windows_path: str, meta: dict, p: TrainParams, *, out: Path,
          history_lines: list[str], resume: bool = False,
          report: Callable = lambda *a, **k: None) -> dict:
    """Train ``p.arch`` on the windows file and write the model to ``out`` (atomically).

    ``meta``: ``source_id (n,)`` and ``spectrogram`` (dict) of the windows file.
    ``report(event, **info)`` gets "setup", "batch", "epoch" events for progress.
    Returns a summary dict.
    """
    import torch

    from wsd.models import data as datasets
    from wsd.io.store import atomic_output
    from wsd.io.store.models import checkpoint_path, load_model, save_model

    from wsd.runtime import device as accel
    from wsd import models as registry
    from wsd.models.inference import choose_amp

    torch.manual_seed(p.seed)
    np.random.seed(p.seed % (2**32))
    from wsd.runtime import torchrun as distributed

    dd = distributed.from_env()
    device = distributed.init(dd, pick_device(p.device))
    spec = meta["spectrogram"]
    try:
        cls = registry.get(p.arch)
    except registry.UnknownArchitecture as e:
        raise UsageError(str(e)) from None
    supervised = cls.kind == "classifier"
    input_kind = getattr(cls, "input_kind", "spectrogram")
    enc_info = None
    if supervised and p.arch == "readout":
        enc_info = _readout_encoder(p, spec, meta, {})
        input_kind = enc_info["params"].get("input_kind") or "spectrogram"
    frames = int(spec["frames"])
    bins = input_bins(input_kind, int(meta["bins"]))
    arch_params, sup = dict(p.arch_params), {}
    targets, enc = None, None
    if supervised:
        if meta.get("label") is None:
            raise UsageError(f"{p.arch} is supervised: slice the windows with --labels")
        targets, classes, weights = class_targets(meta["label"], p.positive)
        arch_params["n_classes"] = len(classes)
        sup = {"classes": classes, "positive": p.positive, "input_kind": input_kind}
        if enc_info is not None:
            enc = _readout_encoder(p, spec, meta, arch_params, enc_info)
    elif p.positive or p.encoder:
        raise UsageError(f"--positive and --encoder are for supervised architectures, not "
                         f"{p.arch}")
    model = accel.to_layout(build_model(p.arch, frames, bins, arch_params).to(device))
    if supervised:
        model.set_class_weights(weights)
        if enc is not None:
            model.load_encoder_state(enc["state_dict"])
    seq = int(model.config.get("seq_len", 1))
    tr_idx, va_idx, split_note = datasets.split_by_source(meta["source_id"], p.val_fraction,
                                                          p.seed)
    if targets is not None:
        tr_idx, va_idx = tr_idx[targets[tr_idx] >= 0], va_idx[targets[va_idx] >= 0]
    run = max(256, seq)
    tr_runs = datasets.subsample_runs(datasets.make_runs(meta["source_id"], tr_idx, run),
                                      p.max_windows, p.seed)
    va_runs = datasets.make_runs(meta["source_id"], va_idx, run)
    if p.max_windows and len(va_runs):
        va_runs = datasets.subsample_runs(va_runs, max(1, int(p.max_windows * p.val_fraction)),
                                          p.seed + 1)
    n_train = int((tr_runs[:, 1] - tr_runs[:, 0]).sum())
    n_val = int((va_runs[:, 1] - va_runs[:, 0]).sum()) if len(va_runs) else 0
    if n_train < seq:
        raise UsageError(f"only {n_train} training windows; {p.arch} needs at least {seq}")
    if enc is not None:
        mean, std = float(enc["norm"]["mean"]), float(enc["norm"]["std"])
    elif input_kind == "information":
        mean, std = 0.0, 1.0
    else:
        mean, std = datasets.norm_stats(windows_path, tr_runs)
    distributed.sync_model(dd, model)
    opts = model.configure_optimizers(p.lr)
    distributed.average_gradients(dd, opts)
    st = TrainState()
    ckpt = checkpoint_path(out)
    if resume:
        if not ckpt.exists():
            raise UsageError(f"--resume: no checkpoint {ckpt} (it is written after each epoch "
                             "and removed when training completes)")
        c = load_model(ckpt, checkpoint=True)
        if c["arch"] != p.arch or c["params"].get("seed") != p.seed:
            raise UsageError(f"--resume: checkpoint {ckpt} was made with other settings "
                             f"({c['arch']}, seed {c['params'].get('seed')})")
        model.load_state_dict(c["state_dict"])
        ck = c["checkpoint"]
        for o, sd in zip(opts, ck["optim"]):
            o.load_state_dict(sd)
            accel.match_state_layout(o)
        st.epoch, st.best_val = int(ck["epoch"]), float(ck["best_val"])
        st.best_epoch, st.bad_epochs = int(ck["best_epoch"]), int(ck["bad_epochs"])
        st.history = {k: list(v) for k, v in c["loss_history"].items()}
        st.best_state = ck.get("best_state") or None
        torch.set_rng_state(ck["rng_torch"].to(torch.uint8))
        mean, std = float(c["norm"]["mean"]), float(c["norm"]["std"])
    norm = {"mean": mean, "std": std}
    amp, amp_note = choose_amp(model, lambda: _first_rows(windows_path, tr_runs), norm,
                               device, p.amp, kind=input_kind, train=True)
    autocast = accel.autocast(device, amp)
    if not dd.main:
        report = lambda *a, **k: None  # noqa: E731  (only rank 0 reports)
    report("setup", n_train=n_train, n_val=n_val, split=split_note, device=device,
           params=sum(x.numel() for x in model.parameters()), epochs=p.epochs,
           start_epoch=st.epoch, amp=amp, amp_note=amp_note)
    workers = p.loader_workers if n_train > 4 * p.batch_size else 0
    data_kw = {"targets": targets, "input_kind": input_kind}
    train_dl = datasets.loader(windows_path, tr_runs, p.batch_size, mean, std, seed=p.seed,
                               rank=dd.rank, world=dd.world,
                               shuffle=True, seq=seq, workers=workers, epoch=st.epoch,
                               **data_kw)
    val_dl = datasets.loader(windows_path, va_runs, max(p.batch_size, 256 // seq * seq), mean,
                             std, shuffle=False, seq=seq, **data_kw) if n_val else None
    common = {"arch": p.arch, "config": model.config, "spectrogram": spec, "norm": norm,
              "params": {**p.as_attrs(), "windows": str(windows_path), "device_used": device,
                         "amp_used": amp, **sup},
              "history": history_lines, "sources": meta.get("sources")}

    def step(batch):
        if supervised:
            x, y = batch
            return model.train_step(x.to(device), opts, autocast, y=y.to(device)), len(x)
        x = batch.to(device, non_blocking=True)
        return model.train_step(x, opts, autocast), len(x)

    def val_loss(batch):
        if supervised:
            x, y = batch
            return model.eval_loss(x.to(device), y.to(device)), len(x)
        return model.eval_loss(batch.to(device)), len(batch)

    def save(path, checkpoint=None, state=None):
        save_model(path, state_dict=state or model.state_dict(),
                   loss_history=st.history, checkpoint=checkpoint, **common)

    while st.epoch < p.epochs and not st.stopped_early:
        t0, seen, total = time.perf_counter(), 0, 0.0
        model.train()
        it = iter(train_dl)
        while True:
            batch = next(it, None)
            if not distributed.all_have(dd, batch is not None):
                break
            logs, k = step(batch)
            seen += k
            total += logs["loss"] * k
            report("batch", n=k, loss=logs["loss"], epoch=st.epoch)
        dt = time.perf_counter() - t0
        val = math.nan
        if val_dl is not None:
            vs = vn = 0.0
            for batch in val_dl:
                v, k = val_loss(batch)
                vs += v * k
                vn += k
            val = vs / vn
        st.history["loss"].append(total / max(seen, 1))
        st.history["val_loss"].append(val)
        st.history["windows_per_s"].append(seen / dt if dt else 0.0)
        st.history["seconds"].append(dt)
        if val_dl is not None and p.patience:
            if val < st.best_val - 1e-9:
                st.best_val, st.best_epoch, st.bad_epochs = val, st.epoch, 0
                st.best_state = {k: v.detach().cpu().clone() for k, v in
                                 model.state_dict().items()}
            else:
                st.bad_epochs += 1
                if st.bad_epochs >= p.patience:
                    st.stopped_early = True
        st.epoch += 1
        report("epoch", epoch=st.epoch, loss=st.history["loss"][-1], val_loss=val,
               wps=st.history["windows_per_s"][-1], stopped=st.stopped_early)
        ck = {"optim": [o.state_dict() for o in opts], "epoch": st.epoch,
              "best_val": st.best_val, "best_epoch": st.best_epoch,
              "bad_epochs": st.bad_epochs, "rng_torch": torch.get_rng_state(),
              "best_state": st.best_state or {}}
        if st.stopped_early:
            ck["epoch"] = p.epochs  # nothing left to do on resume
        if dd.main:
            tmp = ckpt.with_name(f".{ckpt.name}.{os.getpid()}.tmp")
            save(tmp, checkpoint=ck)
            os.replace(tmp, ckpt)
        distributed.barrier(dd)
    final = st.best_state if st.best_state else None
    if final:
        model.load_state_dict(final)
    if supervised:
        common["params"].update(_validation_scores(model, val_dl, device, p.positive,
                                                   autocast))
    if dd.main:
        with atomic_output(out, force=True) as tmp:
            save(tmp, state=final)
        with contextlib.suppress(OSError):
            ckpt.unlink()
    distributed.barrier(dd)
    distributed.finish(dd)
    return {"epochs": st.epoch, "best_epoch": st.best_epoch, "best_val": st.best_val,
            "stopped_early": st.stopped_early, "n_train": n_train, "n_val": n_val,
            "loss": st.history["loss"][-1] if st.history["loss"] else math.nan,
            "device": device, "split": split_note,
            "validation": common["params"].get("val_metrics")}


def _first_rows(path: str, runs: np.ndarray, n: int = 8) -> np.ndarray:
    """The first ``n`` training windows (dB)."""
    from wsd.io.store.reader import read_rows

    a, b = (int(v) for v in runs[0])
    return read_rows(path, "windows", a, min(b, a + n))


def _readout_encoder(p: TrainParams, spec: dict, meta: dict, arch_params: dict,
                     enc: dict | None = None) -> dict:
    """Load the frozen encoder of a readout head and put its architecture in the params."""
    import json

    from wsd.models.inference import check_model_settings
    from wsd.io.store.models import load_model

    if not p.encoder:
        raise UsageError("--arch readout needs --encoder MODEL.h5 (a trained encoder)")
    if enc is None:
        enc = load_model(p.encoder)
        check_model_settings(enc, spec, int(meta["bins"]), p.encoder)
    cfg = {k: v for k, v in enc["config"].items() if k not in ("frames", "bins")}
    arch_params.update(encoder_arch=enc["arch"], encoder_config=json.dumps(cfg))
    return enc


def _validation_scores(model, val_dl, device: str, positive: str | None,
                       autocast=contextlib.nullcontext) -> dict:
    """Threshold (max F1) and metrics of a trained classifier on the validation windows
    (scored with the same precision as ``wsd detect`` will use by default)."""
    import torch

    from wsd.metrics.detection import best_threshold, binary_metrics

    if val_dl is None:
        return {"threshold": 0.5, "val_metrics": None}
    ys, ps = [], []
    with torch.inference_mode(), autocast():
        for x, y in val_dl:
            ps.append(model.predict_proba(x.to(device)).float().cpu().numpy())
            ys.append(y.numpy())
    y, prob = np.concatenate(ys), np.concatenate(ps)
    if positive is None:
        acc = float((prob.argmax(1) == y).mean())
        return {"threshold": 0.5, "val_metrics": {"accuracy": acc, "n": int(len(y))}}
    score = prob[:, 1]
    if len(set(y.tolist())) < 2:
        return {"threshold": 0.5, "val_metrics": binary_metrics(y, score, 0.5)}
    thr, _ = best_threshold(y, score)
    return {"threshold": float(thr), "val_metrics": binary_metrics(y, score, thr)}
