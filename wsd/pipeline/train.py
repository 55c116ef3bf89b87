"""Coordinator of ``wsd train``: any registered architecture, streamed windows, a validation
split that keeps most of the data for training, early stopping, a checkpoint every epoch
(atomically, not interrupted by Ctrl-C) and exact resume; under torchrun, data-parallel.

:func:`train` runs four steps: :func:`_setup` (model, targets, split, normalisation, the
numeric path), :func:`_restore` (a checkpoint, with ``--resume``),
:func:`wsd.pipeline.train_epoch.run_epoch` (one pass over the training data, then validation
and early stopping) and :func:`_finish` (the best epoch's weights, a classifier's
threshold, the model file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsd.errors import UsageError
from wsd.pipeline.progress import Progress
from wsd.pipeline.train_epoch import TrainState, run_epoch, validation_scores

#: ``--epochs`` above this is a typing slip, not a plan.
MAX_EPOCHS = 100_000
#: Windows read per run (consecutive windows; shuffled through a buffer afterwards).
RUN_WINDOWS = 256
#: Windows used to check the bfloat16 path against float32.
AMP_SAMPLE = 8


@dataclass(frozen=True)
class TrainParams:
    """What ``wsd train`` was asked to do (validated here; saved in the model)."""

    arch: str = "kmeans"
    arch_params: dict = field(default_factory=dict)
    epochs: int | None = None  # None: the architecture's plan (default_steps), else 10
    batch_size: int | None = None  # None: the architecture's default_batch_size, else 64
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    val_fraction: float = 0.1
    patience: int | None = None  # None: the architecture's default_patience, else 5
    max_windows: int | None = None
    loader_workers: int = 1
    amp: bool | None = None  # None: auto (wsd.runtime.device.use_amp)
    positive: str | None = None  # classifiers: the class that counts as a detection
    encoder: str | None = None  # heads on a frozen encoder: its model file

    def __post_init__(self):
        from wsd.runtime.device import check_device_name

        def need(cond, msg):
            if not cond:
                raise UsageError(msg)
        need(self.epochs is None or 1 <= self.epochs <= MAX_EPOCHS,
             f"--epochs must be in 1..{MAX_EPOCHS:,} (got {self.epochs})")
        need(self.batch_size is None or self.batch_size >= 1,
             f"--batch-size must be at least 1 (got {self.batch_size})")
        need(math.isfinite(self.lr) and self.lr > 0,
             f"--lr must be a positive number (got {self.lr})")
        need(0 <= self.val_fraction < 1, f"--val-fraction must be in [0, 1) "
                                         f"(got {self.val_fraction})")
        need(self.patience is None or self.patience >= 0,
             f"--patience must be >= 0 (got {self.patience})")
        need(self.max_windows is None or self.max_windows >= 1,
             f"--max-windows must be at least 1 (got {self.max_windows})")
        need(self.loader_workers >= 0, "--loader-workers must be >= 0")
        check_device_name(self.device)

    def as_attrs(self) -> dict:
        d = dataclasses.asdict(self)
        d["arch_params"] = dict(self.arch_params)
        return d


@dataclass
class _Run:
    """Everything :func:`_setup` prepares for the epochs."""

    p: TrainParams
    windows: str
    model: object
    opts: list
    device: str
    dd: object
    supervised: bool
    autocast: object
    train_dl: object
    val_dl: object
    n_train: int
    n_val: int
    common: dict  # what every saved model or checkpoint carries


def train(windows_path: str, meta: dict, p: TrainParams, *, out: Path,
          history_lines: list[str], resume: bool = False,
          progress: Progress | None = None) -> dict:
    """Train ``p.arch`` on the windows file and write the model to ``out`` (atomically).

    ``meta``: ``source_id (n,)``, ``spectrogram`` (dict), ``bins``, ``sources`` and
    ``label`` (or None) of the windows file. Returns a summary dict."""
    from wsd.io.store.models import checkpoint_path
    from wsd.runtime import torchrun

    progress = progress or Progress()
    dd = torchrun.from_env()
    if not dd.main:
        progress = Progress()  # only rank 0 reports
    run, split = _setup(windows_path, meta, p, dd, history_lines, progress)
    p = run.p  # with the epochs and batch size resolved
    st = TrainState()
    ckpt = checkpoint_path(out)
    if resume:
        _restore(run, st, ckpt)
    per_epoch = math.ceil(run.n_train / p.batch_size / max(1, dd.world))
    with progress.task("training", per_epoch * (p.epochs - st.epoch), "batches") as advance:
        while st.epoch < p.epochs and not st.stopped_early:
            run_epoch(run, st, advance)
            e = st.history
            progress.note(f"epoch {st.epoch}/{p.epochs}: loss {e['loss'][-1]:.4f}"
                          + (f", val {e['val_loss'][-1]:.4f}" if run.val_dl is not None else "")
                          + f", {e['windows_per_s'][-1]:.0f} windows/s"
                          + (" (early stop)" if st.stopped_early else ""))
            if dd.main:
                _save_checkpoint(run, st, ckpt)
            torchrun.barrier(dd)
    val = _finish(run, st, out, ckpt)
    torchrun.barrier(dd)
    torchrun.finish(dd)
    return {"epochs": st.epoch, "best_epoch": st.best_epoch, "best_val": st.best_val,
            "stopped_early": st.stopped_early, "n_train": run.n_train, "n_val": run.n_val,
            "loss": st.history["loss"][-1] if st.history["loss"] else math.nan,
            "device": run.device, "split": split.note, "validation": val}


def _setup(windows_path: str, meta: dict, p: TrainParams, dd, history_lines: list[str],
           progress: Progress) -> tuple[_Run, object]:
    """Build the model, the targets, the split, the normalisation and the loaders."""
    import torch

    from wsd import models as registry
    from wsd.models import data
    from wsd.models.inference import choose_amp
    from wsd.runtime import device as accel
    from wsd.runtime import torchrun

    torch.manual_seed(p.seed)
    np.random.seed(p.seed % (2**32))
    device = torchrun.init(dd, accel.pick_device(p.device))
    spec = meta["spectrogram"]
    cls = registry.get(p.arch)
    model, targets, input_kind, sup, enc = _build(cls, p, spec, meta, device)
    supervised = bool(sup)
    seq = int(model.config.get("seq_len", 1))
    p = _resolved(p, cls, int(np.asarray(meta["source_id"]).size), dd.world)
    split = data.split_by_source(meta["source_id"], p.val_fraction, p.seed,
                                 labels=targets if supervised else None)
    for w in split.warnings:
        progress.warn(f"validation split: {w}", windows_path)
    tr_idx, va_idx = split.train, split.val
    if targets is not None:
        tr_idx, va_idx = tr_idx[targets[tr_idx] >= 0], va_idx[targets[va_idx] >= 0]
    run_len = max(RUN_WINDOWS, seq)
    tr_runs = data.subsample_runs(data.make_runs(meta["source_id"], tr_idx, run_len),
                                  p.max_windows, p.seed)
    va_runs = data.make_runs(meta["source_id"], va_idx, run_len)
    if p.max_windows and len(va_runs):
        va_runs = data.subsample_runs(va_runs, max(1, int(p.max_windows * p.val_fraction)),
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
        mean, std = data.norm_stats(windows_path, tr_runs)
    if hasattr(model, "prepare"):  # e.g. k-means: whitening and seeds from a sample
        n_prep = int(model.config.get("prepare_windows", 4096))
        sample = _sample_rows(windows_path, tr_runs, n_prep, p.seed)
        model.prepare(torch.as_tensor((sample.astype(np.float32) - mean) / std,
                                      device=device))
    torchrun.sync_model(dd, model)
    opts = model.configure_optimizers(p.lr)
    if hasattr(model, "plan_training"):
        model.plan_training(p.epochs * math.ceil(n_train / p.batch_size / max(1, dd.world)))
    torchrun.average_gradients(dd, opts)
    norm = {"mean": mean, "std": std}
    amp, amp_note = choose_amp(model, lambda: _first_rows(windows_path, tr_runs), norm,
                               device, p.amp, kind=input_kind, train=True)
    if amp_note:
        (progress.warn if p.amp else progress.note)(amp_note)
    progress.note(f"{p.arch}: {sum(x.numel() for x in model.parameters()):,} parameters on "
                  f"{device}{' (bf16 autocast)' if amp else ''}; {n_train} training windows, "
                  f"{n_val} validation ({split.note})")
    workers = p.loader_workers if n_train > 4 * p.batch_size else 0
    kw = {"targets": targets, "input_kind": input_kind}
    train_dl = data.loader(windows_path, tr_runs, p.batch_size, mean, std, seed=p.seed,
                           rank=dd.rank, world=dd.world, shuffle=True, seq=seq,
                           workers=workers, **kw)
    val_dl = data.loader(windows_path, va_runs, max(p.batch_size, 256 // seq * seq), mean,
                         std, shuffle=False, seq=seq, **kw) if n_val else None
    common = {"arch": p.arch, "config": model.config, "spectrogram": spec, "norm": norm,
              "params": {**p.as_attrs(), "windows": str(windows_path), "device_used": device,
                         "amp_used": amp, **sup},
              "history": history_lines, "sources": meta.get("sources")}
    run = _Run(p, str(windows_path), model, opts, device, dd, supervised,
               accel.autocast(device, amp), train_dl, val_dl, n_train, n_val, common)
    return run, split


def _build(cls, p: TrainParams, spec: dict, meta: dict, device: str):
    """The model on ``device`` (channels-last where it helps), with a classifier's class
    targets and weights and a head's frozen encoder: ``(model, targets or None, input
    kind, supervised params (empty for encoders), frozen encoder file or None)``."""
    from wsd import models as registry
    from wsd.models.targets import class_targets, input_bins
    from wsd.runtime import device as accel

    supervised = cls.kind == "classifier"
    input_kind = getattr(cls, "input_kind", "spectrogram")
    arch_params, sup, targets, weights = dict(p.arch_params), {}, None, None
    enc = None
    if getattr(cls, "needs_encoder", False):
        enc = _frozen_encoder(p, spec, meta, arch_params)
        input_kind = enc["params"].get("input_kind") or "spectrogram"
    elif p.encoder:
        raise UsageError(f"--encoder is for heads on a frozen encoder, not {p.arch}")
    if supervised:
        if meta.get("label") is None:
            raise UsageError(f"{p.arch} is supervised: slice the windows with --labels")
        targets, classes, weights = class_targets(meta["label"], p.positive)
        arch_params["n_classes"] = len(classes)
        sup = {"classes": classes, "positive": p.positive, "input_kind": input_kind}
    elif p.positive:
        raise UsageError(f"--positive is for supervised architectures, not {p.arch}")
    frames, bins = int(spec["frames"]), input_bins(input_kind, int(meta["bins"]))
    model = accel.to_layout(registry.build(p.arch, frames, bins, **arch_params).to(device))
    if supervised:
        model.set_class_weights(weights)
    if enc is not None:
        model.load_encoder_state(enc["state_dict"])
    return model, targets, input_kind, sup, enc


#: --epochs and --patience when neither the user nor the architecture says.
DEFAULT_EPOCHS = 10
DEFAULT_PATIENCE = 5
#: Most epochs an architecture's step plan may ask for on a small windows file.
MAX_PLANNED_EPOCHS = 100


def _resolved(p: TrainParams, cls, n_windows: int, world: int) -> TrainParams:
    """``p`` with the epochs and batch size the user left out: the architecture's
    ``default_batch_size`` and, from its ``default_steps``, enough epochs for about that
    many steps on this file (at least one, at most :data:`MAX_PLANNED_EPOCHS`)."""
    batch = p.batch_size or int(getattr(cls, "default_batch_size", 64))
    epochs = p.epochs
    if epochs is None:
        steps = getattr(cls, "default_steps", None)
        per_epoch = max(1, math.ceil(n_windows / batch / max(1, world)))
        epochs = (min(MAX_PLANNED_EPOCHS, max(1, math.ceil(steps / per_epoch))) if steps
                  else DEFAULT_EPOCHS)
    patience = p.patience if p.patience is not None else \
        int(getattr(cls, "default_patience", DEFAULT_PATIENCE))
    return dataclasses.replace(p, epochs=epochs, batch_size=batch, patience=patience)


def _restore(run: _Run, st: TrainState, ckpt: Path) -> None:
    """Continue from the checkpoint written after the last finished epoch."""
    import torch

    from wsd.io.store.models import load_model
    from wsd.runtime.device import match_state_layout

    p = run.p
    if not ckpt.exists():
        raise UsageError(f"--resume: no checkpoint {ckpt} (it is written after each epoch "
                         "and removed when training completes)")
    c = load_model(ckpt, checkpoint=True)
    if c["arch"] != p.arch or c["params"].get("seed") != p.seed:
        raise UsageError(f"--resume: checkpoint {ckpt} was made with other settings "
                         f"({c['arch']}, seed {c['params'].get('seed')})")
    run.model.load_state_dict(c["state_dict"])
    ck = c["checkpoint"]
    for o, sd in zip(run.opts, ck["optim"]):
        o.load_state_dict(sd)
        match_state_layout(o)
    st.epoch, st.best_val = int(ck["epoch"]), float(ck["best_val"])
    st.best_epoch, st.bad_epochs = int(ck["best_epoch"]), int(ck["bad_epochs"])
    st.history = {k: list(v) for k, v in c["loss_history"].items()}
    st.best_state = ck.get("best_state") or None
    torch.set_rng_state(ck["rng_torch"].to(torch.uint8))
    run.common["norm"] = {"mean": float(c["norm"]["mean"]), "std": float(c["norm"]["std"])}
    run.train_dl.dataset.epoch = st.epoch


def _save_checkpoint(run: _Run, st: TrainState, ckpt: Path) -> None:
    """The state after this epoch, written atomically; Ctrl-C waits for it."""
    import torch

    from wsd.io.store import atomic_output
    from wsd.io.store.models import save_model
    from wsd.runtime.signals import critical

    ck = {"optim": [o.state_dict() for o in run.opts], "epoch": st.epoch,
          "best_val": st.best_val, "best_epoch": st.best_epoch, "bad_epochs": st.bad_epochs,
          "rng_torch": torch.get_rng_state(), "best_state": st.best_state or {}}
    if st.stopped_early:
        ck["epoch"] = run.p.epochs  # nothing left to do on resume
    with critical(), atomic_output(ckpt, force=True) as tmp:
        save_model(tmp, state_dict=run.model.state_dict(), loss_history=st.history,
                   checkpoint=ck, **run.common)


def _finish(run: _Run, st: TrainState, out: Path, ckpt: Path) -> dict | None:
    """Keep the best epoch's weights, set a classifier's threshold on validation, write the
    model (rank 0) and remove the checkpoint."""
    from wsd.io.store import atomic_output
    from wsd.io.store.models import save_model
    from wsd.runtime.signals import critical

    final = st.best_state or None
    if final:
        run.model.load_state_dict(final)
    # what the file holds: the weights of which epoch, and why training ended
    run.common["params"].update(epochs_run=st.epoch, stopped_early=st.stopped_early,
                                best_epoch=(st.best_epoch + 1) if final else st.epoch)
    if run.supervised:
        run.common["params"].update(validation_scores(run))
    if run.dd.main:
        with critical(), atomic_output(out, force=True) as tmp:
            save_model(tmp, state_dict=final or run.model.state_dict(),
                       loss_history=st.history, **run.common)
        with contextlib.suppress(OSError):
            ckpt.unlink()
    return run.common["params"].get("val_metrics")


def _first_rows(path: str, runs: np.ndarray, n: int = AMP_SAMPLE) -> np.ndarray:
    """The first ``n`` training windows (dB), from as many runs as it takes (a run of one
    window, a short clip, would give a trial training step one window, which BatchNorm
    refuses)."""
    from wsd.io.store.reader import read_rows

    parts, got = [], 0
    for a, b in np.asarray(runs, np.int64).reshape(-1, 2):
        parts.append(read_rows(path, "windows", int(a), int(min(b, a + n - got))))
        got += len(parts[-1])
        if got >= n:
            break
    return np.concatenate(parts)


def _sample_rows(path: str, runs: np.ndarray, n: int, seed: int) -> np.ndarray:
    """About ``n`` training windows (dB) drawn at random (seeded) from all of ``runs``, read
    in order."""
    from wsd.io.store.reader import read_rows

    runs = np.asarray(runs, np.int64).reshape(-1, 2)
    lens = runs[:, 1] - runs[:, 0]
    ends = np.cumsum(lens)
    total = int(ends[-1]) if len(ends) else 0
    rng = np.random.default_rng([seed, 11])
    if total > 64 * n:  # positions in the runs' concatenation, which is never materialised
        pos = np.unique(rng.integers(0, total, n))  # (about n / 128 repeats dropped)
    elif total > n:
        pos = np.sort(rng.choice(total, n, replace=False))
    else:
        pos = np.arange(total)
    run = np.searchsorted(ends, pos, side="right")
    idx = np.sort(runs[run, 0] + pos - (ends[run] - lens[run]))  # runs may come shuffled
    blocks, i = [], 0
    while i < len(idx):  # contiguous stretches in one read each
        j = i + 1
        while j < len(idx) and idx[j] == idx[j - 1] + 1:
            j += 1
        blocks.append(read_rows(path, "windows", int(idx[i]), int(idx[j - 1]) + 1))
        i = j
    return np.concatenate(blocks)


def _frozen_encoder(p: TrainParams, spec: dict, meta: dict, arch_params: dict) -> dict:
    """Load the frozen encoder of a head (``--encoder``), check its settings and put its
    architecture in the head's parameters."""
    from wsd.io.store.models import load_model
    from wsd.models.inference import check_model_settings

    if not p.encoder:
        raise UsageError(f"--arch {p.arch} needs --encoder MODEL.h5 (a trained encoder)")
    enc = load_model(p.encoder)
    check_model_settings(enc, spec, int(meta["bins"]), p.encoder)
    cfg = {k: v for k, v in enc["config"].items() if k not in ("frames", "bins")}
    arch_params.update(encoder_arch=enc["arch"], encoder_config=json.dumps(cfg))
    return enc
