"""Inference with a trained model: load it from its HDF5 file (checked: weights that fit the
architecture and are finite, a usable normalisation), check the windows were made with the
same spectrogram settings, and map windows to vectors in batches."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from wsd.errors import BadInputError, SettingsMismatchError, UsageError


def check_settings(model_spec: dict, windows_spec: dict, windows_bins: int, where: str,
                   model_bins: int | None = None) -> None:
    """Refuse windows made with other spectrogram settings than the model's (printing both)."""
    from wsd.dsp.spectrogram import SpectrogramParams

    a = SpectrogramParams.from_dict(model_spec).comparable()
    b = SpectrogramParams.from_dict(windows_spec).comparable()
    if model_bins is not None:
        a["bins"] = model_bins
    b["bins"] = windows_bins
    diff = [k for k in a if a[k] != b[k]]
    if diff:
        fmt = lambda d: " ".join(f"{k}={d[k]}" for k in diff)  # noqa: E731
        flags = " ".join(f"--{k.replace('_', '-')} {model_spec[k]:g}"
                         for k in ("sample_rate", "n_fft", "hop_length", "frames", "fmin",
                                   "fmax")
                         if model_spec.get(k) is not None)
        raise SettingsMismatchError(
            f"windows were made with other spectrogram settings than the model: model "
            f"{fmt(a)}; windows {fmt(b)} (re-slice the audio with the model's settings: "
            f"wsd slice ... {flags}; --sample-rate resamples)", where)


def check_model_settings(info: dict, windows_spec: dict, windows_bins: int, where: str) -> None:
    """:func:`check_settings` for a loaded model file (models on information features take
    4 features per frame whatever the number of bins)."""
    feats = info["params"].get("input_kind") == "information"
    check_settings(info["spectrogram"], windows_spec, windows_bins, where,
                   model_bins=windows_bins if feats else info["config"]["bins"])


def load_trained(path, device: str = "cpu"):
    """(model in eval mode on ``device``, model file dict) from a model file. A file whose
    weights do not fit its architecture, hold NaN or infinite values, or whose
    normalisation is unusable is refused (:class:`BadInputError` naming it, exit 65)."""
    import torch

    from wsd import models
    from wsd.io.store.models import load_model
    from wsd.runtime.device import to_layout

    info = load_model(path)
    cfg = dict(info["config"])
    try:
        frames, bins = int(cfg.pop("frames")), int(cfg.pop("bins"))
    except (KeyError, TypeError, ValueError):
        raise BadInputError("model config lacks its input shape (frames, bins)", path) from None
    if cfg.get("weights"):
        cfg["weights"] = ""  # pretrained weights were only a starting point: the file has all
    try:  # settings added since the file was written take what the file's model did
        cfg = {**models.get(info["arch"]).file_defaults, **cfg}
        model = models.build(info["arch"], frames, bins, **cfg)
    except UsageError as e:
        raise BadInputError(f"model cannot be rebuilt: {e}", path) from None
    try:
        model.load_state_dict(info["state_dict"])
    except (RuntimeError, KeyError) as e:
        first = str(e).strip().split("\n")
        raise BadInputError(f"weights do not fit the {info['arch']} architecture "
                            f"({'; '.join(x.strip() for x in first[:3])[:300]})", path) from None
    bad = [k for k, v in info["state_dict"].items()
           if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise BadInputError(f"weights hold NaN or infinite values ({', '.join(bad[:3])}"
                            f"{', ...' if len(bad) > 3 else ''})", path)
    norm = info["norm"]
    if not (np.isfinite(norm.get("mean", np.nan)) and np.isfinite(norm.get("std", np.nan))
            and norm["std"] > 0):
        raise BadInputError(f"normalisation is unusable (mean {norm.get('mean')}, std "
                            f"{norm.get('std')}): inputs would become NaN", path)
    model = to_layout(model.to(device)).eval()
    return model, info


def model_info(f) -> dict:
    """``wsd info`` fields of a model file: the layer table and the loss history."""
    import math

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


def embed_batches(model, batches: Iterator[np.ndarray], mean: float, std: float,
                  device: str = "cpu", scores: bool = False,
                  amp: bool = False, steps: bool = False) -> Iterator[np.ndarray]:
    """Prepare each ``(b, frames, bins)`` dB batch as the model expects (normalised, or
    information features) and encode it -> ``(b, D)`` float32; with ``scores``, a
    classifier's class probabilities ``(b, n_classes)`` instead. ``amp``: under bfloat16
    autocast (see :mod:`wsd.runtime.device`)."""
    import torch

    from wsd.models.targets import prepare
    from wsd.runtime.device import autocast

    kind = getattr(model, "input_kind", "spectrogram")
    fn = model.predict_proba if scores else model.steps if steps else model.encode
    with torch.inference_mode(), autocast(device, amp)():
        for x in batches:
            t = torch.from_numpy(prepare(x, kind, mean, std)).to(device)
            yield _in_parts(fn, t, model).float().cpu().numpy()


def _in_parts(fn, t, model):
    """``fn(t)``, in slices of at most ``model.max_inference_batch()`` windows."""
    import torch

    step = model.max_inference_batch() if hasattr(model, "max_inference_batch") else None
    if not step or len(t) <= step:
        return fn(t)
    return torch.cat([fn(t[a:a + step]) for a in range(0, len(t), step)])


def choose_amp(model, sample, norm: dict, device: str, amp: bool | None,
               kind: str | None = None, train: bool = False) -> tuple[bool, str | None]:
    """:func:`wsd.runtime.device.decide_amp` on a few real windows: ``sample()`` returns them in dB
    ``(b, frames, bins)`` and is called only when bfloat16 is wanted; they are prepared as
    the model reads them (``kind``: default the model's input kind) with ``norm``;
    ``train``: also check a training step (for ``wsd train``)."""
    import torch

    from wsd.runtime.device import decide_amp, use_amp
    from wsd.models.targets import prepare

    if not use_amp(type(model), device, amp):
        return False, None
    x = sample()
    # windows holding NaN or infinity are the data's fault, reported as such by the caller
    # (exit 65): checked on them, bfloat16 would look faulty (a difference of inf%)
    x = x[np.isfinite(x).reshape(len(x), -1).all(1)] if len(x) else x
    if len(x) == 0:
        return True, None
    kind = kind or getattr(model, "input_kind", "spectrogram")
    x = prepare(x, kind, float(norm["mean"]), float(norm["std"]))
    return decide_amp(model, device, amp, torch.from_numpy(np.ascontiguousarray(x)),
                      train=train)


def reconstruct(model, x: np.ndarray, mean: float, std: float, device="cpu") -> np.ndarray | None:
    """Decoder output for windows ``x`` in dB (de-normalised), or None for non-autoencoders."""
    import torch

    with torch.inference_mode():
        t = torch.from_numpy(((x.astype(np.float32) - mean) / std)).to(device)
        y = _in_parts(model.reconstruct, t, model)
    return None if y is None else y.float().cpu().numpy() * std + mean


def keep_steps(n_steps: int, frames: int, step: int, first: np.ndarray, last: np.ndarray,
               padded_end: np.ndarray) -> list[tuple[int, int]]:
    """Which step embeddings of each window to keep so that a recording's windows, cut
    every ``step`` frames, give one step sequence without repeats: a window's central
    ``step`` frames, plus everything before them for the first window of a run (``first``
    ``(n,)`` bool) and after them for the last (``last``). ``n_steps`` steps span the
    ``frames`` of a window; ``padded_end`` ``(n,)``: the step where a window's audio ends
    (steps past it are padding, dropped). Returns ``[(k0, k1), ...]`` per window."""
    per = frames / n_steps  # frames per step
    lo = int(round((frames - step) / 2 / per))
    hi = int(round((frames - step) / 2 / per + step / per))
    out = []
    for f, la, end in zip(first, last, padded_end):
        k0, k1 = (0 if f else lo), (n_steps if la else hi)
        out.append((k0, max(k0, min(k1, int(end)))))
    return out
