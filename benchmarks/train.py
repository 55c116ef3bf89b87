"""wsd train and wsd embed throughput as a ratio of a bare eager torch loop over the same
model and tensors already in memory (target >= 1.0: the data pipeline is not the
bottleneck).

    .venv/bin/python benchmarks/train.py [--arch convae] [--arch-param width=1.0] [--windows 512]

wsd's training rate is the windows/s it records per epoch (the loop without start-up);
its embedding rate is that of embed's own chunk tasks run in-process and warm. Both bare loops use torch.set_num_threads like wsd (all cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import timed, write_audio


def bare_rates(model_path: str, windows: np.ndarray, batch: int) -> tuple[float, float]:
    import torch

    from wsd.embedding import load_trained

    net, info = load_trained(model_path)
    cfg = dict(info["config"])
    from wsd.training import build_model
    fresh = build_model(info["arch"], cfg.pop("frames"), cfg.pop("bins"), cfg)
    opts = fresh.configure_optimizers(1e-3)
    x = torch.from_numpy((windows - windows.mean()) / windows.std()).float()
    fresh.train_step(x[:batch], opts)  # warm-up, as wsd's 2nd epoch is warm
    t0 = time.perf_counter()
    n = 0
    for a in range(0, len(x) - batch + 1, batch):
        fresh.train_step(x[a : a + batch], opts)
        n += batch
    train = n / (time.perf_counter() - t0)
    net.eval()
    with torch.inference_mode():
        net.encode(x[:256])  # warm-up, as wsd's own run is measured warm too
        t0 = time.perf_counter()
        for a in range(0, len(x), 256):
            net.encode(x[a : a + 256])
    embed = len(x) / (time.perf_counter() - t0)
    return train, embed


def wsd_embed_rate(windows: Path, model: Path, shard_dir: Path, n: int) -> float:
    """wsd embed's own code path (chunk tasks reading HDF5, normalising, encoding, writing
    shards), in-process and warm, without the command's Python start-up."""
    from wsd import rowjobs

    shard_dir.mkdir(exist_ok=True)
    tasks = rowjobs.plan("embed", str(windows), n, str(shard_dir), model=str(model),
                         batch_size=256, device="cpu")
    rowjobs.run(tasks[:1])  # warm-up (loads the model once per process)
    for p in shard_dir.iterdir():
        p.unlink()
    t0 = time.perf_counter()
    rowjobs.run(tasks)
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="convae")
    ap.add_argument("--arch-param", default="width=1.0")
    ap.add_argument("--windows", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        seconds = a.windows * 0.186 / 4 + 1
        write_audio(d / "audio", 4, seconds)
        timed(["slice", d / "audio", "-o", d / "w.h5", "-q"])
        m = d / "m.h5"
        timed(["train", d / "w.h5", "--arch", a.arch, "-p", a.arch_param, "--epochs", "2",
               "--batch-size", a.batch_size, "--val-fraction", "0", "--patience", "0",
               "-o", m, "-q"])
        from wsd.store import open_file
        from wsd.store.models import load_model

        wps = load_model(m)["loss_history"]["windows_per_s"][-1]  # 2nd epoch: warm
        with open_file(d / "w.h5") as f:
            win = f.read("windows").astype(np.float32)
        timed(["embed", d / "w.h5", "--model", m, "-o", d / "e.h5", "-q"])  # the CLI works
        bare_train, bare_embed = bare_rates(str(m), win, a.batch_size)
        wsd_embed = wsd_embed_rate(d / "w.h5", m, d / "shards", len(win))
    print(f"{a.arch} ({a.arch_param}), batch {a.batch_size}, {len(win)} windows")
    print(f"{'':<8}{'wsd':>10}{'bare':>10}{'ratio':>8}   windows/s")
    print(f"{'train':<8}{wps:>10.1f}{bare_train:>10.1f}{wps / bare_train:>8.2f}")
    print(f"{'embed':<8}{wsd_embed:>10.1f}{bare_embed:>10.1f}{wsd_embed / bare_embed:>8.2f}")


if __name__ == "__main__":
    main()
