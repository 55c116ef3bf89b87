"""Throughput and memory probe of the seed-sized models on the CPU.

For each architecture and variant (eager float32, channels_last, bfloat16 autocast,
torch.compile) a fresh subprocess times a bare training loop (``train_step``) and inference
(``encode`` under ``torch.inference_mode``) on random windows, and reports windows per
wall-clock second and per CPU-second of the process (the latter is steadier on a shared
machine).
``--memory`` instead measures the peak resident memory of one training step at two batch
sizes and prints the slope in MiB per window.

    .venv/bin/python benchmarks/models_probe.py                      # all, batch 64
    .venv/bin/python benchmarks/models_probe.py --arch lstm --memory
    .venv/bin/python benchmarks/models_probe.py --arch lstm --arch-param filters=32 \
        --arch-param freq_pool=4 --variant eager
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

ARCH_SHAPES = {"convae": (32, 256), "lstm": (128, 256), "gan": (128, 128)}
VARIANTS = ["eager", "channels_last", "bf16", "bf16_channels_last", "compile"]


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(arch: str, variant: str, batch: int, steps: int, threads: int,
             params: dict) -> dict:
    """Run in a child process: windows/s for training and inference of one variant."""
    import torch

    from wsd import models

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    frames, bins = ARCH_SHAPES[arch]
    model = models.build(arch, frames, bins, **params)
    x = torch.randn(batch, frames, bins)
    autocast = contextlib.nullcontext
    if variant.endswith("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    if variant.startswith("bf16"):
        autocast = functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16)
    optimizers = model.configure_optimizers(1e-3)
    step = model.train_step
    encode = model.encode
    if variant == "compile":
        # Compile the forward parts; train_step's optimiser code stays eager.
        for part in ("encoder", "decoder", "discriminator", "generator"):
            if hasattr(model, part):
                setattr(model, part, torch.compile(getattr(model, part)))
    t0 = time.perf_counter()
    step(x, optimizers, autocast)  # warm-up (and compilation)
    warmup = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step(x, optimizers, autocast)
    train = batch * steps / (time.perf_counter() - t0)
    train_cpu = batch * steps / (time.process_time() - c0)
    model.eval()
    with torch.inference_mode(), autocast():
        encode(x)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            encode(x)
        infer = batch * steps / (time.perf_counter() - t0)
        infer_cpu = batch * steps / (time.process_time() - c0)
    return {"arch": arch, "variant": variant, "batch": batch, "warmup_s": round(warmup, 1),
            "train_win_s": round(train, 1), "infer_win_s": round(infer, 1),
            "train_win_cpu_s": round(train_cpu, 1), "infer_win_cpu_s": round(infer_cpu, 1)}


def _memory(arch: str, batch: int, threads: int, params: dict) -> dict:
    """Run in a child process: peak RSS growth of one eager float32 training step."""
    import torch

    from wsd import models

    torch.set_num_threads(threads)
    frames, bins = ARCH_SHAPES[arch]
    model = models.build(arch, frames, bins, **params)
    optimizers = model.configure_optimizers(1e-3)
    x = torch.randn(batch, frames, bins)
    base = _rss_mib()
    model.train_step(x, optimizers)
    return {"arch": arch, "batch": batch, "peak_extra_mib": round(_peak_mib() - base, 1)}


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["convae", "lstm"],
                        choices=sorted(ARCH_SHAPES))
    parser.add_argument("--variant", nargs="+", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arch-param", action="append", default=[], metavar="KEY=VALUE",
                        help="architecture option, e.g. width=0.25 (repeatable)")
    parser.add_argument("--memory", action="store_true",
                        help="peak memory per window of one training step instead")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    params = dict(item.split("=", 1) for item in args.arch_param)
    common = ["--threads", str(args.threads)]
    for item in args.arch_param:
        common += ["--arch-param", item]
    if args.child:
        kind, arch, *rest = args.child
        result = (_memory(arch, int(rest[0]), args.threads, params) if kind == "memory" else
                  _measure(arch, rest[0], int(rest[1]), int(rest[2]), args.threads, params))
        print(json.dumps(result))
        return
    for arch in args.arch:
        if args.memory:
            small, large = max(1, args.batch // 4), args.batch
            a = _child(["memory", arch, str(small), *common])
            b = _child(["memory", arch, str(large), *common])
            slope = (b["peak_extra_mib"] - a["peak_extra_mib"]) / (large - small)
            print(f"{arch}: one training step, peak extra RSS {a['peak_extra_mib']} MiB at "
                  f"batch {small}, {b['peak_extra_mib']} MiB at batch {large}: "
                  f"{slope:.1f} MiB per window")
            continue
        for variant in args.variant:
            try:
                r = _child(["speed", arch, variant, str(args.batch), str(args.steps), *common])
            except subprocess.CalledProcessError as err:
                tail = (err.stderr or "").strip().splitlines()[-1:] or ["?"]
                print(f"{arch:7s} {variant:18s} failed: {tail[0]}")
                continue
            print(f"{arch:7s} {variant:18s} batch {r['batch']}: train {r['train_win_s']:6.1f}"
                  f" win/s ({r['train_win_cpu_s']:6.1f} per CPU-s)  inference "
                  f"{r['infer_win_s']:6.1f} win/s ({r['infer_win_cpu_s']:6.1f} per CPU-s)  "
                  f"first step {r['warmup_s']} s", flush=True)


if __name__ == "__main__":
    main()
