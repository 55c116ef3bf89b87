"""wsd train: fit an encoder (or, later, a supervised detector) on a windows file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer

from wsd.cli.common import AMP, FORCE, QUIET, TRACEBACK, Reporter, history_entry


def parse_arch_params(items: list[str]) -> dict:
    from wsd.errors import UsageError

    out = {}
    for it in items or []:
        if "=" not in it:
            raise UsageError(f"--arch-param takes key=value (got {it!r})")
        k, v = it.split("=", 1)
        out[k.strip().replace("-", "_")] = v.strip()
    return out


def train_cmd(
    windows: Path = typer.Argument(..., metavar="WINDOWS.h5", help="Windows file from "
                                   "wsd slice."),
    arch: str = typer.Option(..., "--arch", "-a", help="Architecture: convae, lstm, gan "
                             "(self-supervised); vanillacnn, inception, inception-res, "
                             "attention, xception, vit, readout (supervised); an unknown "
                             "--arch-param key lists the valid ones."),
    output: Path = typer.Option(..., "--output", "-o", help="Model file to write (.h5)."),
    arch_param: List[str] = typer.Option([], "--arch-param", "-p", help="key=value option of "
                                         "the architecture (repeatable), e.g. width=0.5."),
    epochs: int = typer.Option(10, "--epochs", help="Passes over the training windows."),
    batch_size: int = typer.Option(64, "--batch-size", help="Windows per step."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed for initialisation, split and order."),
    device: str = typer.Option("auto", "--device", help="auto (cuda when present), cpu or "
                               "cuda."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Share of windows held "
                                       "out for validation, whole recordings at a time."),
    patience: int = typer.Option(5, "--patience", help="Stop after this many epochs without "
                                 "a better validation loss (0: never); the best epoch's "
                                 "weights are kept."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT.ckpt, the "
                                "checkpoint written after every epoch."),
    max_windows: Optional[int] = typer.Option(None, "--max-windows", help="Train on a random "
                                              "subset of about this many windows (read in "
                                              "runs)."),
    loader_workers: int = typer.Option(1, "--loader-workers", help="DataLoader processes "
                                       "reading windows ahead of the model."),
    amp: Optional[bool] = AMP,
    positive: Optional[str] = typer.Option(None, "--positive", help="Supervised: the label "
                                           "that counts as a detection (e.g. call; '*' for "
                                           "any label); all other windows are negatives."),
    encoder: Optional[Path] = typer.Option(None, "--encoder", help="readout: the trained "
                                           "encoder (model file) whose embedding it reads."),
    force: bool = FORCE,
    quiet: bool = QUIET,
    traceback: bool = TRACEBACK,
):
    """Train a model on the windows of a windows file.

    Supervised detectors and classifiers (windows sliced with --labels): vanillacnn, xception
    and vit on spectrogram windows; inception, inception-res and attention on per-frame
    information features (spectral entropy and three statistical complexities); readout, a
    small head on a frozen encoder (--encoder). With --positive LABEL the model is a binary
    detector whose score is P(LABEL), its threshold set for the best F1 on the validation
    recordings; classes are weighted against imbalance.

    Self-supervised encoders: convae (Convnet V1 seed: 32x256 windows, four 8x8 stride-2
    convolutions, 128-d bottleneck; 762,480 trainable encoder parameters), lstm (LSTM V4 seed:
    128x256 windows, a 256-filter 8x8 convolution, max-pool over frequency, BiLSTM 128+128,
    LSTM 128; 610,048 trainable encoder parameters in PyTorch, whose LSTMs carry two bias
    vectors where Keras counts 608,512) and gan (LSTM-GAN seed: 128x128 windows, trained on
    sequences of consecutive windows; the embedding is the discriminator's LSTM state).

    Windows are read in runs of consecutive windows and shuffled through a buffer, so files
    larger than memory train. Under torchrun --nproc-per-node N (e.g. `torchrun
    --nproc-per-node 4 -m wsd train ...`) each process reads its share of the windows and
    gradients are averaged across processes before every step (gloo on CPU, nccl on GPUs). The validation split takes whole recordings (a single recording
    gives its last windows). Inputs are normalised with the training split's mean and
    standard deviation, stored in the model with the spectrogram settings and the loss
    history. CPU memory of one training step, measured: the seed-sized lstm about 63 MiB per
    window (4 GiB at batch 64), its light preset (--arch-param filters=32 --arch-param
    freq_pool=4) about 4 MiB, convae about 7 MiB. On CPUs with native bfloat16 the
    convolutional models train under bfloat16 autocast with channels-last weights by default
    (convae 3.7x faster measured); the lstm and attention models are fastest in float32.
    """
    from wsd.io.store import check_output, open_file
    from wsd.pipeline.train import TrainParams, train

    from wsd.runtime.torchrun import from_env

    rep = Reporter(quiet or not from_env().main, "wsd train")  # under torchrun: rank 0 speaks
    if not resume:
        check_output(output, force)
    params = TrainParams(arch=arch, arch_params=parse_arch_params(arch_param), epochs=epochs,
                         batch_size=batch_size, lr=lr, seed=seed, device=device,
                         val_fraction=val_fraction, patience=patience,
                         max_windows=max_windows, loader_workers=loader_workers, amp=amp,
                         positive=positive, encoder=str(encoder) if encoder else None)
    with open_file(windows, "windows") as f:
        meta = {"source_id": f.read("source_id"), "spectrogram": f.spectrogram,
                "bins": f.shape("windows")[2], "sources": f.sources,
                "label": f.read("label") if f.has("label") else None}
        history = f.history + [history_entry("train")]
    state = {}

    def report(event, **k):
        if event == "setup":
            if k["amp_note"]:
                (rep.warn if amp else rep.note)(k["amp_note"])
            rep.note(f"{arch}: {k['params']:,} parameters on {k['device']}"
                     f"{' (bf16 autocast)' if k['amp'] else ''}; {k['n_train']} training "
                     f"windows, {k['n_val']} validation ({k['split']})")
            per = math.ceil(k["n_train"] / batch_size)
            state["cm"] = rep.progress("training", per * (k["epochs"] - k["start_epoch"]),
                                       "batches")
            state["adv"] = state["cm"].__enter__()
        elif event == "batch":
            state["adv"](1, status=f"epoch {k['epoch'] + 1} loss {k['loss']:.4f}")
        elif event == "epoch":
            msg = (f"epoch {k['epoch']}/{epochs}: loss {k['loss']:.4f}"
                   + (f", val {k['val_loss']:.4f}" if k["val_loss"] == k["val_loss"] else "")
                   + f", {k['wps']:.0f} windows/s" + (" (early stop)" if k["stopped"] else ""))
            if rep.show_progress:
                rep.console.print(msg)
            else:
                rep.note(msg)

    try:
        s = train(str(windows), meta, params, out=output, history_lines=history,
                  resume=resume, report=report)
    finally:
        if "cm" in state:
            state["cm"].__exit__(None, None, None)
    best = f", best validation loss {s['best_val']:.4f} at epoch {s['best_epoch'] + 1}" \
        if s["best_epoch"] >= 0 else ""
    rep.note(f"{s['epochs']} epochs{best} -> {output}")
    v = s.get("validation") or {}
    if v.get("roc_auc") is not None or v.get("accuracy") is not None:
        rep.note("validation: " + ", ".join(f"{k} {v[k]:.3f}" for k in
                 ("roc_auc", "average_precision", "f1", "accuracy") if v.get(k) is not None))
    return 0


def model_info(f) -> dict:
    """``wsd info`` section for model files: the layer table and the loss history."""
    from wsd.models.inference import load_trained
    from wsd.models.base import format_layer_table

    model, info = load_trained(f.path)
    rows = model.layer_table()
    hist = info["loss_history"]
    lines = [f"architecture: {info['arch']} {info['config']}", format_layer_table(rows)]
    if hist.get("loss"):
        lines.append("loss history: " + ", ".join(
            f"{a:.4f}" + (f"/{b:.4f}" if b == b else "")
            for a, b in zip(hist["loss"], hist.get("val_loss", [math.nan] * len(hist["loss"])))))
    return {"arch": info["arch"], "arch_config": info["config"],
            "layers": [list(r) for r in rows], "loss_history": hist,
            "normalisation": info["norm"], "text_model": "\n".join(lines)}
