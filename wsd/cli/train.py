"""wsd train: fit an encoder (or, later, a supervised detector) on a windows file."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import List, Optional

import typer

from wsd.cli.common import AMP, DEVICE, FORCE, QUIET, TRACEBACK, Reporter, history_entry


def parse_arch_params(items: list[str]) -> dict:
    from wsd.errors import UsageError

    out = {}
    for it in items or []:
        if "=" not in it:
            raise UsageError(f"--arch-param takes key=value (got {it!r})")
        k, v = it.split("=", 1)
        out[k.strip().replace("-", "_")] = v.strip()
    return out


def arch_help_request(args: list[str]) -> str | None:
    """The architecture whose keys ``wsd train ARGS`` asks for with ``-p help`` (``--arch``,
    else the default), or None when it does not ask: so that ``wsd train --arch linear -p
    help`` answers without a windows file or ``-o``."""
    arch, asked, it = "kmeans", False, iter(args)
    for a in it:
        if a == "--":
            break
        if a in ("-a", "--arch"):
            arch = next(it, arch)
        elif a.startswith("--arch="):
            arch = a.split("=", 1)[1]
        elif a in ("-p", "--arch-param"):
            asked |= next(it, "") == "help"
        elif a in ("--arch-param=help", "-phelp"):
            asked = True
    return arch if asked else None


def print_arch_params(arch: str) -> None:
    """``-p help``: each --arch-param key of ``arch`` with its default and meaning."""
    import textwrap

    from wsd import models

    cls = models.get(arch)
    doc = (cls.__doc__ or "").strip().split("\n")[0]
    lines = [f"{arch}: {doc}", "", "--arch-param keys (-p key=value):"]
    width = max((len(k) for k in cls.defaults), default=0)
    for key, default in cls.defaults.items():
        head = f"  {key:<{width}}  [default {default!r}]  "
        text = cls.param_docs.get(key, "")
        lines.append(textwrap.fill(text, 88, initial_indent=head,
                                   subsequent_indent=" " * (width + 4)) if text else head)
    if not cls.defaults:
        lines.append("  none")
    typer.echo("\n".join(lines))


def train_cmd(
    windows: Path = typer.Argument(..., metavar="WINDOWS.h5", help="Windows file from "
                                   "wsd slice (or an embeddings file, for --arch linear)."),
    arch: str = typer.Option("kmeans", "--arch", "-a", help="Architecture: "
                             "{architectures}; `-p help` lists an architecture's "
                             "--arch-param keys with their defaults and meaning. The "
                             "default is the best measured self-supervised encoder "
                             "(benchmarks/quality.py: call types, up-calls, orca vs noise)."),
    output: Path = typer.Option(..., "--output", "-o", help="Model file to write (.h5)."),
    arch_param: List[str] = typer.Option([], "--arch-param", "-p", help="key=value option of "
                                         "the architecture (repeatable), e.g. width=0.5; "
                                         "`-p help` lists them and exits."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Passes over the training "
                                         "windows [default: the architecture's plan, e.g. "
                                         "about 300 steps for kmeans, 200 for "
                                         "contrastive; else 10]."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Windows per step "
                                             "[default: 256 for kmeans, 128 for "
                                             "contrastive, else 64]."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed for initialisation, split and order."),
    device: str = DEVICE,
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Share of windows held "
                                       "out for validation, whole recordings at a time."),
    patience: Optional[int] = typer.Option(None, "--patience", help="Stop after this many "
                                           "epochs without a better validation loss (0: "
                                           "never) and keep the best epoch's weights "
                                           "[default: 5; 0 for kmeans and contrastive, "
                                           "whose plans run to their end]."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT.ckpt, the "
                                "checkpoint written after every epoch."),
    max_windows: Optional[int] = typer.Option(None, "--max-windows", help="Train on a random "
                                              "subset of about this many windows (read in "
                                              "runs)."),
    loader_workers: int = typer.Option(1, "--loader-workers", help="DataLoader processes "
                                       "reading windows ahead of the model."),
    amp: Optional[bool] = AMP,
    positive: Optional[str] = typer.Option(None, "--positive", help="Supervised: the label "
                                           "that counts as a detection (e.g. call; `'*'` for "
                                           "any label); all other windows are negatives."),
    encoder: Optional[Path] = typer.Option(None, "--encoder", help="readout: the trained "
                                           "encoder (model file) whose embedding it reads."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="A label table (as for wsd "
                                          "slice --labels, or the CSV the review page "
                                          "saves) giving the rows of an embeddings file "
                                          "their labels (--arch linear)."),
    label_cover: float = typer.Option(0.0, "--label-cover", help="With --labels: a row "
                                      "takes an event's label only when the overlap is at "
                                      "least this share of the shorter of the two (e.g. 0.7: "
                                      "most of a short call lies in the window); rows that "
                                      "touch an event less are left out, not negatives."),
    force: bool = FORCE,
    quiet: bool = QUIET,
    traceback: bool = TRACEBACK,
):
    """Train a model on the windows of a windows file.

    Architectures (--arch; the registry in wsd/models/arch/, one file each):

    {architecture_list}

    Supervised ones need windows sliced with --labels. With --positive LABEL the model is a
    binary detector whose score is P(LABEL), its threshold set for the best F1 on the
    validation windows; classes are weighted against imbalance. readout is a small head on
    a frozen encoder (--encoder). The seeds' parameter counts: convae 762,480 trainable
    encoder parameters; lstm 610,048 in PyTorch (its LSTMs carry two bias vectors where
    Keras counts 608,512).

    Windows are read in runs of consecutive windows and shuffled through a buffer, so files
    larger than memory train. Under torchrun --nproc-per-node N (e.g. `torchrun
    --nproc-per-node 4 -m wsd train ...`) each process reads its share of the windows and
    gradients are averaged across processes before every step (gloo on CPU, nccl on GPUs).

    The validation split (--val-fraction) takes whole recordings when there are at least
    ten, else the end of every recording, and is stratified by class for supervised models,
    so most data and every recording and class stay in training; a lopsided split is
    warned about. Training stops early when the validation loss has not improved for
    --patience epochs and keeps the best epoch. Windows or a loss that hold NaN stop it
    with nothing written. Inputs are normalised with the training split's mean and
    standard deviation, stored in the model with the spectrogram settings and the loss
    history. CPU memory of one training step, measured: the seed-sized lstm about 63 MiB per
    window (4 GiB at batch 64), its light preset (--arch-param filters=32 --arch-param
    freq_pool=4) about 4 MiB, convae about 7 MiB. On CPUs with native bfloat16 the
    convolutional models train under bfloat16 autocast with channels-last weights by default
    (convae 3.7x faster measured); the lstm and attention models are fastest in float32.
    """
    if "help" in arch_param:
        print_arch_params(arch)
        raise typer.Exit(0)
    from wsd.errors import UsageError
    from wsd.io.store import check_output, open_file, output_lock
    from wsd.pipeline.train import TrainParams, train
    from wsd.runtime.torchrun import from_env

    rep = Reporter(quiet or not from_env().main, "wsd train")  # under torchrun: rank 0 speaks
    if not resume:
        check_output(output, force, inputs=[windows, encoder, labels])
    params = TrainParams(arch=arch, arch_params=parse_arch_params(arch_param), epochs=epochs,
                         batch_size=batch_size, lr=lr, seed=seed, device=device,
                         val_fraction=val_fraction, patience=patience,
                         max_windows=max_windows, loader_workers=loader_workers, amp=amp,
                         positive=positive, encoder=str(encoder) if encoder else None)
    with open_file(windows, ("windows", "embeddings")) as f:
        kind = f.kind
        meta = {"source_id": f.read("source_id"), "spectrogram": f.spectrogram,
                "bins": f.shape("windows")[2] if kind == "windows" else None,
                "sources": f.sources, "label": f.read("label") if f.has("label") else None}
        history = f.history + [history_entry("train")]
    lock = output_lock(output) if from_env().main else contextlib.nullcontext()
    with lock:
        if kind == "embeddings":
            from wsd.io.labels import read_labels
            from wsd.pipeline.probe import train_probe

            table = read_labels(labels, n_inputs=len(meta["sources"]["path"])) \
                if labels else None
            s = train_probe(str(windows), params, out=output, history_lines=history,
                            labels=table, progress=rep, label_cover=label_cover)
        else:
            if labels or label_cover:
                raise UsageError("--labels (and --label-cover) relabel the rows of an "
                                 "embeddings file; windows "
                                 "take their labels from wsd slice --labels")
            s = train(str(windows), meta, params, out=output, history_lines=history,
                      resume=resume, progress=rep)
    best = f", best validation loss {s['best_val']:.4f} at epoch {s['best_epoch'] + 1}" \
        if s["best_epoch"] >= 0 else ""
    rep.note(f"{s['epochs']} epochs{best} -> {output}")
    v = s.get("validation") or {}
    if v.get("roc_auc") is not None or v.get("accuracy") is not None:
        rep.note("validation: " + ", ".join(f"{k} {v[k]:.3f}" for k in
                 ("roc_auc", "average_precision", "f1", "accuracy") if v.get(k) is not None))
    return 0
