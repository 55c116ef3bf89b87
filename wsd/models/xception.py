"""Xception: depthwise-separable CNN on spectrogram windows, optionally pretrained (seed 003).

The Whale Sound Detection seed fine-tunes Keras' ImageNet Xception (frozen) under a head of
global average pooling, Dense(100, ReLU), Dropout(0.1) and the output.  This module builds
the same network on one-channel spectrogram windows ``(batch, frames, bins)``, with the
module names of timm's ``xception`` (the Keras weights ported to PyTorch), so a state dict a
user has saved from it loads as is (``weights=FILE``; nothing is ever downloaded)::

    conv1 3x3 stride 2 (valid) 1 -> 32, BN, ReLU; conv2 3x3 (valid) 32 -> 64, BN, ReLU
    block1..3   (entry flow: separable convs + max pool stride 2, 1x1 strided shortcut)
                64 -> 128 -> 256 -> 728
    block4..11  (middle flow, ``middle_blocks`` = 8): 3 separable convs 728, identity shortcut
    block12     (exit flow): 728 -> 728 -> 1024, max pool stride 2, strided shortcut
    conv3 separable 1024 -> 1536, BN, ReLU; conv4 separable 1536 -> 2048, BN, ReLU
    global average pool (B, 2048); Linear 2048 -> 100, ReLU = embedding (B, 100)
    Dropout(0.1), Linear 100 -> n_classes

Defaults are the seed's full Xception: 21,011,478 trainable parameters for two classes
(20,806,376 in the backbone: timm's count less 576 for the one-channel first conv),
overall stride 32 (a 32 x 256 window leaves a 1 x 8 map).  That is GPU-sized; ``width``
scales every channel count and ``middle_blocks`` sets the depth for light models (``width=0.25
middle_blocks=2``: 768,804 parameters).  Windows need at least 7 frames and 7 bins.

Pretrained weights (``weights=FILE``): a PyTorch state dict (``torch.save``; read with
``weights_only=True``) or a wsd model file (.h5) of this architecture.  Keys are matched
as they are or under ``backbone.``; a 3-channel first convolution is summed over its
channels to take one-channel input; tensors of another shape are skipped.  What was loaded
is in ``model.pretrained_report``.  A file none of whose tensors fit is an error naming the
missing and unexpected keys.  ``freeze=true`` trains only the head, with the backbone in
inference mode (BatchNorm statistics fixed), as the seed did (without weights: a head on a
random backbone, a baseline).  Rebuilding a trained model for inference should pass
``weights=""``: its saved state dict replaces the pretrained weights anyway.

:class:`PretrainedClassifier` (the weights/freeze logic) is shared with :mod:`wsd.models.vit`.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wsd.errors import BadInputError, InputMissingError
from wsd.models import register
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


class _SeparableConv2d(nn.Module):
    """Depthwise ``k x k`` conv (``conv1``) then pointwise 1x1 (``pointwise``), no biases."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1,
                 padding: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, kernel, stride, padding, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class _Block(nn.Module):
    """Xception block: ``reps`` x (ReLU, separable conv, BN), an optional max pool, plus a
    shortcut (1x1 strided conv + BN when the shape changes).  Module indices inside ``rep``
    follow timm's so state dicts line up."""

    def __init__(self, cin: int, cout: int, reps: int, stride: int = 1,
                 start_with_relu: bool = True, grow_first: bool = True) -> None:
        super().__init__()
        if cout != cin or stride != 1:
            self.skip = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(cout)
        else:
            self.skip = None
        rep: list[nn.Module] = []
        for i in range(reps):
            if grow_first:
                a, b = (cin if i == 0 else cout), cout
            else:
                a, b = cin, (cin if i < reps - 1 else cout)
            rep += [nn.ReLU(), _SeparableConv2d(a, b), nn.BatchNorm2d(b)]
        if not start_with_relu:
            rep = rep[1:]
        if stride != 1:
            rep.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*rep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + shortcut


class _XceptionBackbone(nn.Module):
    """``(B, 1, H, W)`` -> ``(B, C)`` globally averaged features (C = 2048 * width)."""

    def __init__(self, width: float, middle_blocks: int) -> None:
        super().__init__()

        def ch(n: int) -> int:
            return max(1, round(n * width))

        c32, c64, c128, c256, c728 = ch(32), ch(64), ch(128), ch(256), ch(728)
        c1024, c1536, c2048 = ch(1024), ch(1536), ch(2048)
        self.conv1 = nn.Conv2d(1, c32, 3, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(c32)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c32, c64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(c64)
        self.act2 = nn.ReLU()
        blocks: OrderedDict[str, nn.Module] = OrderedDict()
        blocks["block1"] = _Block(c64, c128, 2, 2, start_with_relu=False)
        blocks["block2"] = _Block(c128, c256, 2, 2)
        blocks["block3"] = _Block(c256, c728, 2, 2)
        for i in range(middle_blocks):
            blocks[f"block{4 + i}"] = _Block(c728, c728, 3, 1)
        blocks[f"block{4 + middle_blocks}"] = _Block(c728, c1024, 2, 2, grow_first=False)
        for name, block in blocks.items():
            self.add_module(name, block)
        self.block_names = list(blocks)
        self.conv3 = _SeparableConv2d(c1024, c1536, 3, 1, 1)
        self.bn3 = nn.BatchNorm2d(c1536)
        self.act3 = nn.ReLU()
        self.conv4 = _SeparableConv2d(c1536, c2048, 3, 1, 1)
        self.bn4 = nn.BatchNorm2d(c2048)
        self.act4 = nn.ReLU()
        self.out_channels = c2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))
        for name in self.block_names:
            x = getattr(self, name)(x)
        x = self.act3(self.bn3(self.conv3(x)))
        x = self.act4(self.bn4(self.conv4(x)))
        return x.mean(dim=(2, 3))


@register("xception")
class Xception(PretrainedClassifier):
    """Xception classifier; embedding = the ``hidden``-unit dense layer of the head."""
    cpu_bf16 = True  # bfloat16 autocast and channels-last measured faster (wsd.runtime.device)
    channels_last = True

    input_kind = "spectrogram"
    defaults = {"n_classes": 2, "width": 1.0, "middle_blocks": 8, "hidden": 100,
                "dropout": 0.1, "weights": "", "freeze": False}
    param_docs = {
        "n_classes": "number of classes (set by the training loop from the labels)",
        "width": "channel multiplier (1.0 = Xception: 32, 64, 128, 256, 728, 1024, 1536, "
                 "2048)",
        "middle_blocks": "middle-flow blocks of 728 channels (Xception: 8)",
        "hidden": "units of the dense layer after global pooling = embedding (seed: 100)",
        "dropout": "dropout before the output layer (seed: 0.1)",
        "weights": "pretrained weights to start from: a torch.save'd state dict (e.g. "
                   "timm's xception) or a wsd model .h5; empty = random initialisation",
        "freeze": "train only the head; the backbone keeps its pretrained weights and "
                  "BatchNorm statistics (the seed's transfer learning)",
    }
    test_config = {"frames": 16, "bins": 64, "width": 0.125, "middle_blocks": 0,
                   "hidden": 8}

    def __init__(self, frames: int = 32, bins: int = 256, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        c = self.config
        self._require(c["width"] > 0, f"width must be > 0, got {c['width']}")
        self._require(c["middle_blocks"] >= 0,
                      f"middle_blocks must be >= 0, got {c['middle_blocks']}")
        self._require(c["hidden"] > 0, f"hidden must be > 0, got {c['hidden']}")
        self._require(0 <= c["dropout"] < 1, f"dropout must be in [0, 1), got {c['dropout']}")
        self._require(self.frames >= 7 and self.bins >= 7,
                      f"windows need at least 7 frames and 7 bins, got "
                      f"{self.frames} x {self.bins}")
        self.backbone = _XceptionBackbone(c["width"], c["middle_blocks"])
        self.features = nn.Sequential(OrderedDict([
            ("dense", nn.Linear(self.backbone.out_channels, c["hidden"])),
            ("act", nn.ReLU()),
        ]))
        self.head = nn.Sequential(OrderedDict([
            ("drop", nn.Dropout(c["dropout"])),
            ("out", nn.Linear(c["hidden"], self.n_classes)),
        ]))
        self.embedding_dim = c["hidden"]
        self._load_and_freeze()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``(batch, frames, bins)`` -> features ``(batch, hidden)``."""
        self._check_input(x)
        return self.features(self.backbone(x.unsqueeze(1)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``(batch, frames, bins)`` -> logits ``(batch, n_classes)``."""
        return self.head(self.encode(x))
