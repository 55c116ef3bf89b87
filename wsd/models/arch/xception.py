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

:class:`wsd.models.pretrained.PretrainedClassifier` (the weights/freeze logic) is shared with :mod:`wsd.models.arch.vit`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from wsd.models import register
from wsd.models.pretrained import PretrainedClassifier

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
