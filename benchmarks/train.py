"""wsd train and wsd embed throughput as a ratio of a bare eager torch loop over the same
model and tensors already in memory (target >= 1.0: the data pipeline is not the
bottleneck).

    .venv/bin/python benchmarks/train.py [--arch convae|lstm|gan] [--arch-param KEY=VALUE]...
                                         [--windows 512] [--batch-size 64]

Each architecture is sliced with its own window geometry (convae 32x256, lstm 128x256, gan
128x128 from ``--n-fft 256``) and built seed-sized unless ``--arch-param`` says otherwise.
wsd's training rate is the windows/s it records for its 2nd (warm) epoch (the loop without
start-up, its DataLoader worker included); its embedding rate is that of embed's own chunk
tasks run in-process and warm. Both bare loops use torch's default threads, like wsd, and
the same numeric path as wsd's run (channels-last weights and bfloat16 autocast where wsd
chose them: the ``amp_used`` the model records), so the ratio measures wsd's overhead only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import timed, write_audio

# window frames and n_fft (hop = n_fft / 2, bins = n_fft / 2) of each architecture's seed
GEOMETRY = {"convae": (32, 512), "lstm": (128, 512), "gan": (128, 256)}


def bare_rates(model_path: str, windows: np.ndarray, batch: int) -> tuple[float, float]:
    import torch

    from wsd.models.inference import load_trained

    from wsd.runtime.device import autocast, to_layout

    net, info = load_trained(model_path)
    cfg = dict(info["config"])
    from wsd.models import build as _build
    # the same numeric path as wsd's run: its layout and its (recorded) autocast decision
    amp = bool(info["params"].get("amp_used", False))
    ctx = autocast("cpu", amp)
    fresh = to_layout(_build(info["arch"], cfg.pop("frames"), cfg.pop("bins"), **cfg))
    opts = fresh.configure_optimizers(1e-3)
    x = torch.from_numpy((windows - windows.mean()) / windows.std()).float()
    fresh.train_step(x[:batch], opts, ctx)  # warm-up, as wsd's 2nd epoch is warm
    t0 = time.perf_counter()
    n = 0
    for a in range(0, len(x) - batch + 1, batch):
        fresh.train_step(x[a : a + batch], opts, ctx)
        n += batch
    train = n / (time.perf_counter() - t0)
    net.eval()
    with torch.inference_mode(), ctx():
        net.encode(x[:256])  # warm-up, as wsd's own run is measured warm too
        t0 = time.perf_counter()
        for a in range(0, len(x), 256):
            net.encode(x[a : a + 256])
    embed = len(x) / (time.perf_counter() - t0)
    return train, embed


def wsd_embed_rate(windows: Path, model: Path, shard_dir: Path, n: int) -> float:
    """wsd embed's own code path (chunk tasks reading HDF5, normalising, encoding, writing
    shards), in-process and warm, without the command's Python start-up."""
    from wsd.pipeline import chunks as rowjobs

    shard_dir.mkdir(exist_ok=True)
    from wsd.io.store.models import load_model

    amp = bool(load_model(model)["params"].get("amp_used", False))
    tasks = rowjobs.plan("embed", str(windows), n, str(shard_dir), model=str(model),
                         batch_size=256, device="cpu", amp=amp)
    rowjobs.run(tasks[:1])  # warm-up (loads the model once per process)
    for p in shard_dir.iterdir():
        p.unlink()
    t0 = time.perf_counter()
    rowjobs.run(tasks)
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="convae", choices=list(GEOMETRY))
    ap.add_argument("--arch-param", "-p", action="append", default=[], metavar="KEY=VALUE",
                    help="an architecture option (default: the seed-sized model)")
    ap.add_argument("--loader-workers", type=int, default=None,
                    help="wsd train --loader-workers (default: wsd's own default)")
    ap.add_argument("--windows", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        frames, n_fft = GEOMETRY[a.arch]
        seconds = a.windows * frames * (n_fft // 2) / 44100 / 4 + 1
        write_audio(d / "audio", 4, seconds)
        timed(["slice", d / "audio", "-o", d / "w.h5", "-q", "--frames", frames,
               "--n-fft", n_fft, "--hop-length", n_fft // 2])
        m = d / "m.h5"
        params = [x for kv in a.arch_param for x in ("-p", kv)]
        if a.loader_workers is not None:
            params += ["--loader-workers", a.loader_workers]
        timed(["train", d / "w.h5", "--arch", a.arch, *params, "--epochs", "2",
               "--batch-size", a.batch_size, "--val-fraction", "0", "--patience", "0",
               "-o", m, "-q"])
        from wsd.io.store import open_file
        from wsd.io.store.models import load_model

        wps = load_model(m)["loss_history"]["windows_per_s"][-1]  # 2nd epoch: warm
        with open_file(d / "w.h5") as f:
            win = f.read("windows").astype(np.float32)
        timed(["embed", d / "w.h5", "--model", m, "-o", d / "e.h5", "-q"])  # the CLI works
        bare_train, bare_embed = bare_rates(str(m), win, a.batch_size)
        wsd_embed = wsd_embed_rate(d / "w.h5", m, d / "shards", len(win))
    print(f"{a.arch} ({' '.join(a.arch_param) or 'seed-sized'}), {frames}x{n_fft // 2}, batch {a.batch_size}, {len(win)} windows")
    print(f"{'':<8}{'wsd':>10}{'bare':>10}{'ratio':>8}   windows/s")
    print(f"{'train':<8}{wps:>10.1f}{bare_train:>10.1f}{wps / bare_train:>8.2f}")
    print(f"{'embed':<8}{wsd_embed:>10.1f}{bare_embed:>10.1f}{wsd_embed / bare_embed:>8.2f}")


if __name__ == "__main__":
    main()
