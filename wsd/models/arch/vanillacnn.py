"""VanillaConv: a plain convolutional classifier on spectrogram windows (seed 004).

The Audio-Classification seed's simplest detector: a small CNN mapping a spectrogram window
straight to class neurons ("noise" / "speaker" there, no-call / call here), trained on
labelled windows only.  The seed gives no layer table; this module chooses a conventional
one (defaults, windows of 32 frames x 256 bins)::

    (B, 32, 256) -> (B, 1, 32, 256)
    3 blocks: Conv2d 3x3 'same' -> BatchNorm2d -> ReLU -> MaxPool 2x2
        channels 32, 64, 128                         (B, 128, 4, 32)     93,120
    global average and global max over (frames, bins), concatenated   (B, 256)
    Dropout -> Linear 256 -> 64 -> ReLU = embedding (B, 64)            16,448
    Dropout -> Linear 64 -> n_classes  = logits     (B, n_classes)     65 x n_classes

109,698 trainable parameters for two classes (BatchNorm: 448 of them, plus 448 running
statistics).  The max pool uses ``ceil_mode`` so any window
of at least one frame and one bin works; the global max keeps a call that fills only part
of the window from being averaged away.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from wsd.models import register
from wsd.models.classifier import ClassifierModel


class _GlobalPool(nn.Module):
    """``(B, C, H, W)`` -> ``(B, 2C)``: mean and max over the two spatial axes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


@register("vanillacnn")
class VanillaCnn(ClassifierModel):
    """Plain CNN classifier; embedding = the ``hidden``-unit layer before the logits."""
    cpu_bf16 = True  # bfloat16 autocast and channels-last measured faster (wsd.runtime.device)
    channels_last = True

    input_kind = "spectrogram"
    defaults = {"n_classes": 2, "channels": 32, "blocks": 3, "hidden": 64, "dropout": 0.3}
    param_docs = {
        "n_classes": "number of classes (set by the training loop from the labels)",
        "channels": "channels of the first conv block, doubled by each further block",
        "blocks": "conv blocks (conv 3x3, BatchNorm, ReLU, 2x2 max pool)",
        "hidden": "units of the dense layer before the logits = embedding size",
        "dropout": "dropout probability before each dense layer",
    }
    test_config = {"frames": 16, "bins": 64, "channels": 8, "blocks": 2, "hidden": 16,
                   "dropout": 0.1}

    def __init__(self, frames: int = 32, bins: int = 256, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        c = self.config
        self._require(c["channels"] > 0, f"channels must be > 0, got {c['channels']}")
        self._require(c["blocks"] > 0, f"blocks must be > 0, got {c['blocks']}")
        self._require(c["hidden"] > 0, f"hidden must be > 0, got {c['hidden']}")
        self._require(0 <= c["dropout"] < 1, f"dropout must be in [0, 1), got {c['dropout']}")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        cin = 1
        for i in range(c["blocks"]):
            cout = c["channels"] * 2**i
            layers[f"conv{i + 1}"] = nn.Conv2d(cin, cout, 3, padding=1)
            layers[f"norm{i + 1}"] = nn.BatchNorm2d(cout)
            layers[f"act{i + 1}"] = nn.ReLU()
            layers[f"pool{i + 1}"] = nn.MaxPool2d(2, ceil_mode=True)
            cin = cout
        layers["global_pool"] = _GlobalPool()
        layers["drop1"] = nn.Dropout(c["dropout"])
        layers["dense"] = nn.Linear(2 * cin, c["hidden"])
        layers["act_dense"] = nn.ReLU()
        self.features = nn.Sequential(layers)
        self.head = nn.Sequential(OrderedDict([
            ("drop", nn.Dropout(c["dropout"])),
            ("out", nn.Linear(c["hidden"], self.n_classes)),
        ]))
        self.embedding_dim = c["hidden"]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``(batch, frames, bins)`` -> features ``(batch, hidden)``."""
        self._check_input(x)
        return self.features(x.unsqueeze(1))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``(batch, frames, bins)`` -> logits ``(batch, n_classes)``."""
        return self.head(self.encode(x))
