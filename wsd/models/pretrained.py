"""Classifiers whose backbone can start from user-provided weights (arch param ``weights``,
a ``.pt``/``.pth`` state dict or a safetensors file) and be frozen (``freeze``): what the
Xception- and ViT-style architectures share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from wsd.errors import BadInputError, InputMissingError
from wsd.models.classifier import ClassifierModel

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_PREFIXES = ("", "backbone.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file: a ``torch.save``'d state dict (optionally wrapped in a
    dict under ``state_dict``/``model``), or a wsd model file (HDF5).  Raises
    :class:`InputMissingError` / :class:`BadInputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputMissingError("weights file not found", str(path))
    with open(path, "rb") as f:
        magic = f.read(len(_HDF5_MAGIC))
    if magic == _HDF5_MAGIC:
        from wsd.io.store.models import load_model

        return dict(load_model(path)["state_dict"])
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and version errors all mean "not usable"
        raise BadInputError(f"cannot read weights ({type(e).__name__}: {e})".split("\n")[0],
                            str(path)) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise BadInputError("weights file does not hold a state dict (names -> tensors)",
                            str(path))
    return obj


def _first(names: list[str], n: int = 4) -> str:
    more = f" (+{len(names) - n} more)" if len(names) > n else ""
    return (", ".join(names[:n]) + more) if names else "none"


class PretrainedClassifier(ClassifierModel):
    """A classifier with a ``backbone`` that can start from user-provided weights
    (arch param ``weights``) and be frozen (arch param ``freeze``).  Subclasses build
    ``self.backbone`` and then call :meth:`_load_and_freeze`."""

    backbone: nn.Module
    pretrained_report: dict[str, Any] | None = None

    def _adapt_pretrained(self, key: str, src: torch.Tensor,
                          shape: torch.Size) -> torch.Tensor | None:
        """``src`` reshaped to ``shape`` for target ``key``, or None when it cannot be.
        Base rule: a colour first convolution ``(out, 3, kh, kw)`` summed to one channel."""
        if (src.dim() == 4 and len(shape) == 4 and shape[1] == 1 and src.shape[1] > 1
                and (src.shape[0], *src.shape[2:]) == (shape[0], *shape[2:])):
            return src.sum(dim=1, keepdim=True)
        return None

    def load_pretrained(self, path: str | Path) -> dict[str, Any]:
        """Copy every tensor of the weights file at ``path`` that fits into this model
        (``load_state_dict(strict=False)``) and return the report: lists ``loaded``,
        ``adapted``, ``mismatched`` (key, file shape, model shape), ``unexpected`` (in the
        file only), ``missing`` (in the model only).  Nothing fitting is an error."""
        source = read_state_dict(path)
        target = self.state_dict()
        found: dict[str, torch.Tensor] = {}
        report: dict[str, Any] = {"path": str(path), "loaded": [], "adapted": [],
                                  "mismatched": [], "unexpected": [], "missing": []}
        for key, tensor in source.items():
            bare = key[len("module."):] if key.startswith("module.") else key
            name = next((p + bare for p in _PREFIXES if p + bare in target), None)
            if name is None:
                report["unexpected"].append(key)
                continue
            shape = target[name].shape
            if tensor.shape != shape:
                adapted = self._adapt_pretrained(name, tensor, shape)
                if adapted is None or adapted.shape != shape:
                    report["mismatched"].append((key, tuple(tensor.shape), tuple(shape)))
                    continue
                report["adapted"].append(name)
                tensor = adapted
            found[name] = tensor.to(target[name].dtype)
            report["loaded"].append(name)
        report["missing"] = [k for k in target if k not in found]
        if not found:
            shapes = [f"{k} {a} vs {b}" for k, a, b in report["mismatched"]]
            raise BadInputError(
                f"{self.name}: no tensor of the weights file fits this model; missing: "
                f"{_first(report['missing'])}; unexpected: {_first(report['unexpected'])}; "
                f"other shape (file vs model): {_first(shapes)}", str(path))
        self.load_state_dict(found, strict=False)
        return report

    def _load_and_freeze(self) -> None:
        """Apply the ``weights`` and ``freeze`` arch params (end of ``__init__``)."""
        c = self.config
        if c["weights"]:
            self.pretrained_report = self.load_pretrained(c["weights"])
        if c["freeze"]:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True) -> PretrainedClassifier:
        """Set the mode; a frozen backbone always stays in eval mode."""
        super().train(mode)
        if self.config.get("freeze"):
            self.backbone.eval()
        return self

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        """Adam over the trainable parameters (the head alone when frozen)."""
        return [torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=lr)]
