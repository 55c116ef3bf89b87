"""Convnet V1: convolutional autoencoder on 32-frame windows (seed 001).

Encoder (seed-sized default, windows of 32 frames x 256 bins)::

    (B, 32, 256) -> (B, 1, 32, 256)
    Conv2d 1->128, 8x8 stride 2 'same' + LeakyReLU   (B, 128, 16, 128)     8,320
    Conv2d 128->64                    + LeakyReLU   (B, 64, 8, 64)      524,352
    Conv2d 64->32                     + LeakyReLU   (B, 32, 4, 32)      131,104
    Conv2d 32->16                     + LeakyReLU   (B, 16, 2, 16)       32,784
    Flatten (512) -> Linear 128 -> BatchNorm1d -> LeakyReLU  (B, 128)    65,664 + 512

762,480 trainable parameters (+256 BatchNorm running statistics), exactly the Keras table.
Keras' 'same' padding of an 8x8 kernel at stride 2 pads 3 on each side of an even-sized
axis, which ``padding=3`` reproduces.  LeakyReLU uses Keras' default slope 0.3.

The decoder mirrors it: Linear 128 -> 512, BatchNorm1d, LeakyReLU, unflatten to
(16, frames/16, bins/16), four ConvTranspose2d 8x8 stride 2 (16->32->64->128->1) doubling
each axis, LeakyReLU between them and a linear output (inputs are normalised, not bounded).
Trained with the mean squared reconstruction error.

Other window shapes work when frames and bins are multiples of 16.  ``width`` scales every
channel count. 0.5 is the light CPU preset (209,400 encoder parameters): measured at batch 64
on 2 cores with native bfloat16, 543 training windows/s against 220 seed-sized (160 and 59 in
float32). Narrower widths (0.25, 0.375) give layer shapes whose bfloat16 convolution is
faulty in torch 2.13 on the CPU (see :mod:`wsd.runtime.device`): they train in float32, at 444
windows/s for 0.25.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from wsd.models import register
from wsd.models.base import AutoencoderModel

_CHANNELS = (128, 64, 32, 16)
_KERNEL, _STRIDE, _PAD = 8, 2, 3  # halves an even axis exactly, like Keras 'same'


@register("convae")
class ConvAE(AutoencoderModel):
    """Convolutional autoencoder (Convnet V1); embedding = the 128-d bottleneck."""
    cpu_bf16 = True  # bfloat16 autocast and channels-last measured faster (wsd.runtime.device)
    channels_last = True

    defaults = {"width": 1.0, "latent": 128, "slope": 0.3}
    param_docs = {
        "width": "channel multiplier of the four conv layers (1.0 = seed: 128, 64, 32, 16; "
                 "0.5 = light CPU preset)",
        "latent": "embedding size: units of the bottleneck Linear layer (seed: 128)",
        "slope": "negative slope of every LeakyReLU (Keras default 0.3)",
    }
    test_config = {"frames": 16, "bins": 32, "width": 0.125, "latent": 8}

    def __init__(self, frames: int = 32, bins: int = 256, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        frames, bins = self.frames, self.bins  # coerced to int
        width = self.config["width"]
        latent = self.config["latent"]
        slope = self.config["slope"]
        self._require(frames % 16 == 0 and bins % 16 == 0,
                      f"frames and bins must be multiples of 16, got {frames} x {bins}")
        self._require(width > 0, f"width must be > 0, got {width}")
        self._require(latent > 0, f"latent must be > 0, got {latent}")
        self._require(slope >= 0, f"slope must be >= 0, got {slope}")
        c1, c2, c3, c4 = (max(1, round(c * width)) for c in _CHANNELS)
        grid = (frames // 16, bins // 16)
        flat = c4 * grid[0] * grid[1]

        def conv(cin: int, cout: int) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, _KERNEL, _STRIDE, _PAD)

        def deconv(cin: int, cout: int) -> nn.ConvTranspose2d:
            return nn.ConvTranspose2d(cin, cout, _KERNEL, _STRIDE, _PAD)

        self.encoder = nn.Sequential(OrderedDict([
            ("conv1", conv(1, c1)), ("act1", nn.LeakyReLU(slope)),
            ("conv2", conv(c1, c2)), ("act2", nn.LeakyReLU(slope)),
            ("conv3", conv(c2, c3)), ("act3", nn.LeakyReLU(slope)),
            ("conv4", conv(c3, c4)), ("act4", nn.LeakyReLU(slope)),
            ("flatten", nn.Flatten()),
            ("dense", nn.Linear(flat, latent)),
            ("norm", nn.BatchNorm1d(latent)),
            ("act5", nn.LeakyReLU(slope)),
        ]))
        self.decoder = nn.Sequential(OrderedDict([
            ("dense", nn.Linear(latent, flat)),
            ("norm", nn.BatchNorm1d(flat)),
            ("act0", nn.LeakyReLU(slope)),
            ("unflatten", nn.Unflatten(1, (c4, *grid))),
            ("deconv1", deconv(c4, c3)), ("act1", nn.LeakyReLU(slope)),
            ("deconv2", deconv(c3, c2)), ("act2", nn.LeakyReLU(slope)),
            ("deconv3", deconv(c2, c1)), ("act3", nn.LeakyReLU(slope)),
            ("deconv4", deconv(c1, 1)),
        ]))
        self.embedding_dim = latent

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``(batch, frames, bins)`` -> bottleneck ``(batch, latent)``."""
        self._check_input(x)
        return self.encoder(x.unsqueeze(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bottleneck ``(batch, latent)`` -> windows ``(batch, frames, bins)``."""
        return self.decoder(z).squeeze(1)
