"""Where a model runs: the device (:func:`pick_device`), and the numeric fast paths, bfloat16
autocast and channels-last weights, where they measure faster.

Measured on this project's 2-core CPU machine (an Intel Xeon with AMX and AVX512-BF16;
benchmarks/models_probe.py, batch 64, windows/s of eager float32 -> bfloat16 autocast with
channels-last weights): convae training 59 -> 220 and inference 376 -> 1,643; gan 6.6 -> 75
and 119 -> 1,540; vanillacnn 136 -> 332 and 301 -> 1,833; xception 14 -> 42 and 57 -> 223;
vit 23 -> 37 and 123 -> 218. The recurrent models lose: lstm training 13.1 -> 9.2, the
attention detector 3,650 -> 2,200 (float32 stays their default). torch.compile measured
slower than eager for convae training (48 against 59) after a 23 s first step.

So ``amp=None`` ("auto") means: on for cuda; on the CPU, on for architectures that declare
``cpu_bf16`` when the CPU computes bfloat16 natively (AVX512-BF16 or AMX), where emulated
bfloat16 would be slower than float32. Architectures declaring ``channels_last`` get their
4-D weights in that memory format (a layout change, same values).

bfloat16 is never trusted blindly: torch 2.13's CPU convolution returns wrong values in
bfloat16 for some layer shapes (measured: any 8x8 stride-2 convolution with 8 input
channels, e.g. the last layer of ``convae --arch-param width=0.25``, is off by about 100%,
where bfloat16 rounding alone costs 0.3%). :func:`decide_amp` runs the model's forward paths
on a few real windows in both precisions first and keeps float32 when they disagree.
"""

from __future__ import annotations

import contextlib
import functools

#: Largest relative difference (L2 norm of the difference / L2 norm of the float32 output)
#: between bfloat16 autocast and float32 outputs accepted by :func:`decide_amp`. Rounding
#: alone measured 0.002-0.008 on the registered architectures (random weights, 8 windows);
#: the faulty kernel 0.14-0.28 untrained and about 1 on a trained model.
TOLERANCE = 0.05


def pick_device(name: str) -> str:
    """``auto`` -> cuda when torch sees a GPU, else cpu; ``cuda`` without one is a usage
    error (exit 2)."""
    import torch

    from wsd.errors import UsageError

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but torch sees no CUDA device")
    return name


def check_device_name(name: str) -> None:
    """A usage error (exit 2) unless ``name`` is auto, cpu, cuda or cuda:N."""
    from wsd.errors import UsageError

    if not (name in ("auto", "cpu", "cuda") or (name.startswith("cuda:")
                                                 and name[5:].isdigit())):
        raise UsageError(f"--device must be auto, cpu or cuda (got {name})")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when torch reports native bfloat16 arithmetic on this CPU (AVX512-BF16 or AMX)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # a torch build without the probe: assume no native bfloat16
            pass
    return False


def use_amp(model_cls, device: str, amp: bool | None) -> bool:
    """Whether to run ``model_cls`` under bfloat16 autocast on ``device`` (None: auto)."""
    if amp is not None:
        return bool(amp)
    if device.startswith("cuda"):
        return True
    return bool(getattr(model_cls, "cpu_bf16", False)) and cpu_has_bf16()


def autocast(device: str, amp: bool):
    """A factory of autocast contexts (bfloat16) for ``device``, or of null contexts."""
    if not amp:
        return contextlib.nullcontext
    import torch

    return functools.partial(torch.autocast, "cuda" if device.startswith("cuda") else "cpu",
                             dtype=torch.bfloat16)


def to_layout(model):
    """``model`` with its 4-D weights channels-last when its class declares it."""
    if getattr(type(model), "channels_last", False):
        import torch

        model = model.to(memory_format=torch.channels_last)
    return model


def match_state_layout(optimizer) -> None:
    """Lay each optimiser state tensor out like its parameter. A checkpoint stores them
    contiguous; left so beside channels-last weights, the fused Adam step rounds differently
    and a resumed run would drift from an uninterrupted one."""
    import torch

    for p, state in optimizer.state.items():
        for k, v in state.items():
            if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def disagreement(model, x) -> float:
    """Largest relative difference between bfloat16 autocast and float32 on the model's
    forward paths (encode, and reconstruct / predict_proba / generate where it has them),
    in eval mode, on prepared windows ``x`` ``(b, frames, bins)``."""
    import torch

    dev = str(model.device)
    x = x.to(model.device)
    paths = [model.encode, model.reconstruct, getattr(model, "predict_proba", None),
             lambda _: model.generate(len(_), 0)]
    worst = 0.0
    with model._evaluating(), torch.inference_mode():
        for fn in paths:
            if fn is None:
                continue
            ref = fn(x)
            if ref is None:
                continue
            with autocast(dev, True)():
                low = fn(x)
            ref = ref.float()
            err = float((low.float() - ref).norm() / ref.norm().clamp_min(1e-12))
            worst = max(worst, err if err == err else float("inf"))
    return worst


def bf16_failure(model, x, train: bool = False) -> str | None:
    """Why ``model`` cannot run under bfloat16 autocast on its device, or None when it can.

    Runs the forward paths (and, with ``train``, one training step on a copy of the model)
    on prepared windows ``x`` ``(b, frames, bins)``. Some builds of torch have no bfloat16
    kernel for a layer on some CPUs (oneDNN's LSTM on a CPU without AVX512-BF16 or AMX:
    "could not create a primitive descriptor"); those raise RuntimeError, reported here
    instead of crashing. The global random state is left as it was, so seeded runs repeat."""
    import copy

    import torch

    dev = str(model.device)
    devices = [model.device] if model.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            disagreement(model, x)
            if train and len(x) > 1:  # training drops a batch of one window too
                clone = copy.deepcopy(model)
                kw = {}
                if getattr(clone, "kind", "") == "classifier":
                    kw["y"] = torch.zeros(len(x), dtype=torch.long, device=clone.device)
                clone.train_step(x.to(clone.device), clone.configure_optimizers(1e-6),
                                 autocast(dev, True), **kw)
    except RuntimeError as e:
        return str(e).strip().split("\n")[0][:160]
    return None


def decide_amp(model, device: str, amp: bool | None, sample,
               train: bool = False) -> tuple[bool, str | None]:
    """(use bfloat16 autocast?, a message when it was wanted but is turned off).

    ``amp``: True, False or None (auto, :func:`use_amp`); ``sample``: a few prepared
    windows (a tensor) to check on, or None to skip the checks; ``train``: also check that
    a training step runs. bfloat16 is turned off, with a message, when the model's bfloat16
    path fails on this machine (:func:`bf16_failure`) or its output differs from float32
    by more than :data:`TOLERANCE`."""
    want = use_amp(type(model), device, amp)
    if not want or sample is None or len(sample) == 0:
        return want, None
    why = bf16_failure(model, sample, train=train)
    if why is not None:
        return False, (f"bfloat16 autocast is off: this torch build cannot run "
                       f"{getattr(model, 'name', 'the model')} in bfloat16 on this "
                       f"{'GPU' if device.startswith('cuda') else 'CPU'} ({why}); "
                       "running in float32")
    err = disagreement(model, sample)
    if err <= TOLERANCE:
        return True, None
    return False, (f"bfloat16 autocast is off: on this model its output differs from float32 "
                   f"by {err:.0%} (a faulty bfloat16 kernel of this torch build for one of "
                   "the model's layer shapes); running in float32")
