"""wsd embed: one vector per window with a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from wsd.cli.common import AMP, FORCE, QUIET, TRACEBACK, Reporter, history_entry


def embed_cmd(
    windows: Path = typer.Argument(..., metavar="WINDOWS.h5", help="Windows file."),
    model: Path = typer.Option(..., "--model", "-m", help="Model file from wsd train."),
    output: Path = typer.Option(..., "--output", "-o", help="Embeddings file to write."),
    batch_size: int = typer.Option(256, "--batch-size", help="Windows per inference batch."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    amp: Optional[bool] = AMP,
    reconstruct: int = typer.Option(0, "--reconstruct", help="Also store N input/decoder "
                                    "output pairs (autoencoders) for wsd report."),
    seed: int = typer.Option(0, "--seed", help="Seed choosing the windows to reconstruct."),
    workers: int = typer.Option(1, "--workers", "-j", help="Chunks of windows embedded in "
                                "parallel processes."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask distributed "
                                            "scheduler ADDRESS to run the chunks on."),
    force: bool = FORCE,
    quiet: bool = QUIET,
    traceback: bool = TRACEBACK,
):
    """Embed every window: one vector each, with its source and times.

    Refuses windows made with other spectrogram settings than the model was trained on
    (printing both). The source table, per-window times, padding flags and labels are carried
    forward. With --reconstruct N, N windows spread from the quietest to the loudest of a
    seeded random sample are stored with the decoder's reconstruction; a gan model stores N
    generated windows instead.

    Windows are embedded in chunks of 16,384, each written to a shard under OUTPUT.shards/
    (so an interrupted run resumes, and --workers/--scheduler spread the chunks); the output
    is the same bit for bit whatever the number of workers. A model with large activations
    takes fewer windows per forward call than --batch-size (the seed lstm: 16, about 512 MiB),
    so memory stays bounded.
    """
    from wsd.pipeline import chunks as rowjobs
    from wsd.models.inference import check_model_settings, choose_amp
    from wsd.io.store.rows import read_arrays
    from wsd.errors import UsageError
    from wsd.io.store import atomic_output, check_output, open_file
    from wsd.io.store.rows import RowWriter
    from wsd.pipeline.train import pick_device

    rep = Reporter(quiet, "wsd embed")
    check_output(output, force)
    if batch_size < 1 or reconstruct < 0 or workers < 1:
        raise UsageError("--batch-size and --workers must be >= 1 and --reconstruct >= 0")
    dev = pick_device(device)
    net, info = rowjobs.cached_model(str(model), dev)
    norm = info["norm"]
    mean, std = float(norm["mean"]), float(norm["std"])
    with open_file(windows, "windows") as f:
        check_model_settings(info, f.spectrogram, f.shape("windows")[2], str(windows))
        n = f.n
        use_amp, why = choose_amp(net, lambda: f.read("windows", slice(0, min(8, n))),
                                  info["norm"], dev, amp)
        if why:
            (rep.warn if amp else rep.note)(why)
        params = {"windows": str(windows), "model": str(model), "arch": info["arch"],
                  "batch_size": batch_size, "device": dev, "amp": use_amp,
                  "reconstruct": reconstruct, "seed": seed}
        history = list(dict.fromkeys(f.history + info["history"])) + [history_entry("embed")]
        carried = [k for k in ("padded", "label") if f.has(k)]
        shards = rowjobs.shard_dir(output)
        tasks = rowjobs.plan("embed", str(windows), n, str(shards), model=str(model),
                             batch_size=batch_size, device=dev, amp=use_amp)
        with rep.progress("embedding", n, "windows") as adv:
            done = rowjobs.run(tasks, workers=workers, scheduler=scheduler, progress=adv)
        with atomic_output(output, force) as tmp:
            w = RowWriter(tmp, "embeddings", params, f.spectrogram, history, f.sources)
            try:
                for t, shard in zip(tasks, done):
                    sel = slice(t.a, t.b)
                    cols = {k: f.read(k, sel) for k in ("source_id", "start_s", "end_s",
                                                        *carried)}
                    w.append(embeddings=read_arrays(shard)["embeddings"], **cols)
                if reconstruct:
                    _reconstructions(w, net, f, reconstruct, seed, mean, std, dev)
                w.set_attrs(embedding_dim=int(net.embedding_dim))
            finally:
                w.close()
    rowjobs.remove(shards)
    rep.note(f"{n} windows -> {net.embedding_dim}-d embeddings in {output}")
    return 0


def _reconstructions(w, net, f, k: int, seed: int, mean: float, std: float, dev: str) -> None:
    import numpy as np

    from wsd.models.inference import reconstruct

    idx = _spread_by_level(f, k, seed)
    x = np.stack([f.read("windows", int(i)) for i in idx]).astype(np.float32)
    y = reconstruct(net, x, mean, std, dev)
    if y is not None:
        w.put("recon_index", idx)
        w.put("recon_input", x)
        w.put("recon_output", y.astype(np.float32))
    gen = getattr(net, "generate", None)
    if gen is not None:
        import torch

        with torch.inference_mode():
            g = gen(k, seed)
        if g is not None:
            w.put("generated", g.float().cpu().numpy() * std + mean)


def _spread_by_level(f, k: int, seed: int, candidates: int = 1024):
    """``k`` window indices (sorted) spread from the quietest to the loudest of a seeded
    random sample of up to ``candidates`` windows (level: a window's 99th-percentile dB), so
    the reconstructions show calls as well as the background that most windows hold."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cand = np.sort(rng.choice(f.n, size=min(f.n, max(k, candidates)), replace=False))
    level = np.array([np.percentile(f.read("windows", int(i)).astype(np.float32), 99)
                      for i in cand])
    order = cand[np.argsort(level, kind="stable")]
    pick = np.unique(np.round(np.linspace(0, len(order) - 1, min(k, len(order)))).astype(int))
    return np.sort(order[pick])
