"""InceptionTime on information-feature series, with and without residuals (seed 003).

Input: per-frame information features ``(batch, frames, 4)`` = [H, C_JSD, C_TV, C_SQ] from
:func:`wsd.dsp.features.information_series` (models built with ``bins=4``).  Layers follow the
seed's Keras code (``src/InceptionTime/model.py``), defaults = the seed's sizes; with
``frames=32``::

    (B, 32, 4) -> (B, 4, 32)
    BatchNorm1d over the 4 features                                (B, 4, 32)      8 (+8)
    stem: Conv1d 4 -> 128, kernel 1, ReLU                          (B, 128, 32)       640
    3 inception modules, each three parallel branches
        Conv1d kernel 1 -> 32, kernel 2 -> 64, kernel 4 -> 128 ('same' padding),
        each followed by ReLU and Dropout(0.2), concatenated       (B, 224, 32)
        module 1: 86,240; modules 2 and 3: 150,752 each
    MaxPool1d(3, stride 2), Flatten                                (B, 3,360)
    Linear 3,360 -> 256, ReLU = embedding                          (B, 256)       860,416
    Dropout(0.1), Linear 256 -> n_classes                          (B, n_classes)

1,249,322 trainable parameters for two classes (``inception``).  Branch widths are
``filters * k`` for kernel ``k`` (the seed's 32, 64, 128).  Two departures from the seed:
the features reach the model unstandardised (H about 0.6 +- 0.2 but C_SQ about 0.07 +- 0.04
on ocean noise), so a BatchNorm over the 4 features comes first (on the synthetic test task
it turns a slow start into ROC AUC 1.0 after 6 short epochs); and the seed ends in one
sigmoid unit trained with the mean squared error, where here the head has ``n_classes``
logits trained with cross entropy, like every wsd classifier.

``inception-res``: the seed's residual variant (its notebook's "this line makes residual
network") concatenates each module's input to the branch outputs.  As its README describes
and the InceptionTime paper does, this module *adds* the shortcut instead: each module's
output is ``branches(x) + shortcut(x)``, the shortcut a 1x1 Conv1d projection when the
channel counts differ (module 1: 128 -> 224, 28,896 parameters) and the identity otherwise,
so widths stay at 224 and the parameter count grows by only the projection (1,278,218).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from wsd.models import register
from wsd.models.classifier import ClassifierModel

_KERNELS = (1, 2, 4)


class _InceptionModule(nn.Module):
    """Parallel Conv1d branches of kernel 1, 2, 4 (ReLU + Dropout), concatenated; with
    ``residual`` the (projected) input is added.
    ``(B, cin, T)`` -> ``(B, 7 * filters, T)``."""

    def __init__(self, cin: int, filters: int, dropout: float, residual: bool) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(OrderedDict([
                # Keras 'same': k - 1 zeros, the odd one after (explicit, so torch makes
                # no padded copy for even kernels)
                ("pad", nn.ConstantPad1d(((k - 1) // 2, k // 2), 0.0)),
                ("conv", nn.Conv1d(cin, filters * k, k)),
                ("act", nn.ReLU()),
                ("drop", nn.Dropout(dropout)),
            ]))
            for k in _KERNELS
        )
        cout = filters * sum(_KERNELS)
        self.residual = residual
        self.shortcut = (nn.Conv1d(cin, cout, 1) if residual and cin != cout
                         else nn.Identity())
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([branch(x) for branch in self.branches], dim=1)
        return y + self.shortcut(x) if self.residual else y


class _InceptionTime(ClassifierModel):
    """InceptionTime classifier; embedding = the ``hidden``-unit dense layer."""
    cpu_bf16 = True  # bfloat16 autocast measured faster (wsd.runtime.device)

    input_kind = "information"
    residual = False
    defaults = {"n_classes": 2, "filters": 32, "modules": 3, "stem": 128, "hidden": 256,
                "dropout": 0.2, "head_dropout": 0.1}
    param_docs = {
        "n_classes": "number of classes (set by the training loop from the labels)",
        "filters": "branch width unit: kernel k branches have filters * k channels "
                   "(seed: 32 -> 32, 64, 128)",
        "modules": "number of stacked inception modules (seed: 3)",
        "stem": "channels of the kernel-1 Conv1d before the first module (seed: 128)",
        "hidden": "units of the dense layer after the pooling = embedding size (seed: 256)",
        "dropout": "dropout after each branch's ReLU (seed: 0.2)",
        "head_dropout": "dropout before the output layer (seed: 0.1)",
    }
    test_config = {"frames": 16, "bins": 4, "filters": 4, "modules": 2, "stem": 8,
                   "hidden": 16}

    def __init__(self, frames: int = 32, bins: int = 4, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        c = self.config
        for key in ("filters", "modules", "stem", "hidden"):
            self._require(c[key] > 0, f"{key} must be > 0, got {c[key]}")
        for key in ("dropout", "head_dropout"):
            self._require(0 <= c[key] < 1, f"{key} must be in [0, 1), got {c[key]}")
        self._require(self.frames >= 3, f"needs windows of at least 3 frames for the max "
                                         f"pool, got {self.frames}")
        self.stem = nn.Sequential(OrderedDict([
            ("norm", nn.BatchNorm1d(self.bins)),
            ("conv", nn.Conv1d(self.bins, c["stem"], 1)), ("act", nn.ReLU())]))
        mods, cin = [], c["stem"]
        for _ in range(c["modules"]):
            mod = _InceptionModule(cin, c["filters"], c["dropout"], self.residual)
            mods.append(mod)
            cin = mod.out_channels
        self.blocks = nn.Sequential(*mods)
        pooled = (self.frames - 3) // 2 + 1
        self.features = nn.Sequential(OrderedDict([
            ("pool", nn.MaxPool1d(3, stride=2)),
            ("flatten", nn.Flatten()),
            ("dense", nn.Linear(cin * pooled, c["hidden"])),
            ("act", nn.ReLU()),
        ]))
        self.head = nn.Sequential(OrderedDict([
            ("drop", nn.Dropout(c["head_dropout"])),
            ("out", nn.Linear(c["hidden"], self.n_classes)),
        ]))
        self.embedding_dim = c["hidden"]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature series ``(batch, frames, 4)`` -> features ``(batch, hidden)``."""
        self._check_input(x)
        return self.features(self.blocks(self.stem(x.transpose(1, 2))))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Feature series ``(batch, frames, 4)`` -> logits ``(batch, n_classes)``."""
        return self.head(self.encode(x))


@register("inception")
class InceptionTime(_InceptionTime):
    """InceptionTime without shortcuts (the seed's classic variant)."""


@register("inception-res")
class InceptionTimeResidual(_InceptionTime):
    """InceptionTime with an additive shortcut around every inception module."""

    residual = True
