"""LSTM-GAN: a DCGAN on 128 x 128 windows with LSTMs over consecutive windows (seed 002).

Generator: a sequence of noise vectors z_t (``z_dim``, 100) runs through an LSTM
(``g_hidden`` units); each window is generated from ``concat(z_t, lstm_t)`` by a Linear
projection to (8c, frames/16, bins/16) and four ConvTranspose2d 4x4 stride 2 layers
(8c -> 4c -> 2c -> c -> 1, BatchNorm + ReLU between, c = ``channels``), DCGAN style.
The output is linear, not tanh, because windows are normalised but not bounded.

Discriminator: four Conv2d 4x4 stride 2 (1 -> c -> 2c -> 4c -> 8c, LeakyReLU 0.2,
BatchNorm from the second on), flatten, Linear to ``features`` per window, LeakyReLU; an
LSTM (``hidden`` units) runs over the windows of a sequence and a Linear layer gives one
real/fake logit per window from the LSTM output.

Training: the loop passes consecutive windows in order; a batch of N windows is cut into
N // ``seq_len`` sequences of ``seq_len`` consecutive windows (the remainder dropped; a
batch shorter than ``seq_len`` is used as one shorter sequence).  Each step updates the
discriminator on real and generated sequences, then the generator, with the standard
non-saturating loss (BCEWithLogits; the generator maximises log D(G(z))) and Adam with
betas (0.5, 0.999).  ``train_step`` reports the discriminator loss as ``loss`` (plus
``loss_d`` and ``loss_g``).  ``eval_loss`` is the discriminator loss on the real windows and
as many generated ones from fixed noise (seed 0), so it is deterministic across epochs; it
measures how well the discriminator separates real from generated, not sample quality.

Embedding: ``encode`` runs each window alone through the discriminator's convs and LSTM,
starting from a zero state (a length-1 sequence), and returns the LSTM hidden state
``(batch, hidden)``.  It is therefore per window and, in eval mode, deterministic and
independent of batch composition.  ``generate(n, seed)`` draws one sequence of ``n``
consecutive windows.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wsd.models import register
from wsd.models.base import AutocastFactory, WsdModel


def _conv(cin: int, cout: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 4, 2, 1, bias=bias)          # halves each axis


def _deconv(cin: int, cout: int, bias: bool) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=bias)  # doubles each axis


class _Discriminator(nn.Module):
    def __init__(self, frames: int, bins: int, channels: int, features: int,
                 hidden: int) -> None:
        super().__init__()
        c = channels
        layers: list[tuple[str, nn.Module]] = [("conv1", _conv(1, c, True)),
                                               ("act1", nn.LeakyReLU(0.2))]
        for i, (cin, cout) in enumerate([(c, 2 * c), (2 * c, 4 * c), (4 * c, 8 * c)], 2):
            layers += [(f"conv{i}", _conv(cin, cout, False)), (f"norm{i}", nn.BatchNorm2d(cout)),
                       (f"act{i}", nn.LeakyReLU(0.2))]
        flat = 8 * c * (frames // 16) * (bins // 16)
        layers += [("flatten", nn.Flatten()), ("dense", nn.Linear(flat, features)),
                   ("act5", nn.LeakyReLU(0.2))]
        self.convs = nn.Sequential(OrderedDict(layers))
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.decision = nn.Linear(hidden, 1)

    def window_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, frames, bins)`` -> ``(N, features)``."""
        return self.convs(x.unsqueeze(1))

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """Sequences ``(n, L, frames, bins)`` -> logits ``(n, L)``."""
        n, length = seq.shape[:2]
        feats = self.window_features(seq.reshape(n * length, *seq.shape[2:]))
        out, _ = self.lstm(feats.reshape(n, length, -1))
        return self.decision(out).squeeze(-1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``(N, frames, bins)`` each as a length-1 sequence -> ``(N, hidden)``."""
        _, (last, _) = self.lstm(self.window_features(x).unsqueeze(1))
        return last[-1]


class _Generator(nn.Module):
    def __init__(self, frames: int, bins: int, z_dim: int, g_hidden: int,
                 channels: int) -> None:
        super().__init__()
        c = channels
        grid = (frames // 16, bins // 16)
        self.lstm = nn.LSTM(z_dim, g_hidden, batch_first=True)
        layers: list[tuple[str, nn.Module]] = [
            ("dense", nn.Linear(z_dim + g_hidden, 8 * c * grid[0] * grid[1], bias=False)),
            ("unflatten", nn.Unflatten(1, (8 * c, *grid))),
            ("norm0", nn.BatchNorm2d(8 * c)), ("act0", nn.ReLU()),
        ]
        for i, (cin, cout) in enumerate([(8 * c, 4 * c), (4 * c, 2 * c), (2 * c, c)], 1):
            layers += [(f"deconv{i}", _deconv(cin, cout, False)),
                       (f"norm{i}", nn.BatchNorm2d(cout)), (f"act{i}", nn.ReLU())]
        layers.append(("deconv4", _deconv(c, 1, True)))
        self.net = nn.Sequential(OrderedDict(layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Noise ``(n, L, z_dim)`` -> windows ``(n, L, frames, bins)``."""
        n, length = z.shape[:2]
        h, _ = self.lstm(z)
        out = self.net(torch.cat([z, h], dim=-1).reshape(n * length, -1))
        return out.reshape(n, length, *out.shape[2:])


@register("gan")
class LstmGan(WsdModel):
    """DCGAN with LSTMs over consecutive windows; embedding = discriminator LSTM state."""
    cpu_bf16 = True  # bfloat16 autocast and channels-last measured faster (wsd.runtime.device)
    channels_last = True

    kind = "gan"
    defaults = {"z_dim": 100, "g_hidden": 100, "channels": 64, "features": 128,
                "hidden": 128, "seq_len": 8}
    param_docs = {
        "z_dim": "noise vector size per window (seed: 100)",
        "g_hidden": "units of the generator's LSTM over the noise sequence",
        "channels": "base channel count c of both conv stacks (c, 2c, 4c, 8c; DCGAN: 64)",
        "features": "per-window feature size fed to the discriminator's LSTM",
        "hidden": "units of the discriminator's LSTM = embedding size",
        "seq_len": "consecutive windows per training sequence (batch cut into sequences)",
    }
    test_config = {"frames": 16, "bins": 16, "z_dim": 4, "g_hidden": 3, "channels": 2,
                   "features": 6, "hidden": 5, "seq_len": 2}
    test_batch = 4

    def __init__(self, frames: int = 128, bins: int = 128, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        frames, bins = self.frames, self.bins  # coerced to int
        p = self.config
        self._require(frames % 16 == 0 and bins % 16 == 0,
                      f"frames and bins must be multiples of 16, got {frames} x {bins}")
        for key in self.defaults:
            self._require(p[key] > 0, f"{key} must be > 0, got {p[key]}")
        # The discriminator comes first so first_conv_weights() shows its input filters.
        self.discriminator = _Discriminator(frames, bins, p["channels"], p["features"],
                                            p["hidden"])
        self.generator = _Generator(frames, bins, p["z_dim"], p["g_hidden"], p["channels"])
        self.embedding_dim = p["hidden"]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``(batch, frames, bins)`` -> discriminator LSTM state ``(batch, hidden)``,
        each window on its own (zero initial state)."""
        self._check_input(x)
        return self.discriminator.embed(x)

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        """[discriminator Adam, generator Adam], betas (0.5, 0.999) as in DCGAN."""
        return [torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.5, 0.999),
                                 fused=True),
                torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999),
                                 fused=True)]

    def _sequences(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, frames, bins)`` -> ``(N // L, L, frames, bins)``, L = min(seq_len, N)."""
        self._check_input(x)
        length = min(self.config["seq_len"], x.shape[0])
        n = x.shape[0] // length
        return x[: n * length].reshape(n, length, self.frames, self.bins)

    def _noise(self, n: int, length: int, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        return torch.randn(n, length, self.config["z_dim"], device=self.device,
                           generator=generator)

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real_logits = self.discriminator(real).float()
        fake_logits = self.discriminator(fake).float()
        return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits,
                                                     torch.zeros_like(fake_logits)))

    def train_step(self, x: torch.Tensor, optimizers: list[torch.optim.Optimizer],
                   autocast: AutocastFactory = contextlib.nullcontext) -> dict[str, float]:
        """One discriminator step then one generator step on consecutive windows ``x``
        ``(batch, frames, bins)``; returns ``{"loss": loss_d, "loss_d", "loss_g"}``."""
        self.train()
        opt_d, opt_g = optimizers
        real = self._sequences(x)
        z = self._noise(*real.shape[:2])

        opt_d.zero_grad(set_to_none=True)
        with autocast():
            fake = self.generator(z)
            loss_d = self._d_loss(real, fake.detach())
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        with autocast():
            logits = self.discriminator(fake).float()
            loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        loss_g.backward()
        opt_g.step()
        return {"loss": float(loss_d.detach()), "loss_d": float(loss_d.detach()),
                "loss_g": float(loss_g.detach())}

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Discriminator loss on real sequences of ``x`` and generated ones from fixed noise
        (seed 0) of the same shape."""
        real = self._sequences(x)
        fixed = torch.Generator(device=self.device).manual_seed(0)
        fake = self.generator(self._noise(*real.shape[:2], generator=fixed))
        return self._d_loss(real, fake)

    def generate(self, n: int, seed: int = 0) -> torch.Tensor:
        """One sequence of ``n`` consecutive generated windows ``(n, frames, bins)``,
        float32, in eval mode; the same ``seed`` gives the same windows."""
        if n < 1:
            raise ValueError(f"gan: generate needs n >= 1 windows, got {n}")
        rng = torch.Generator(device=self.device).manual_seed(seed)
        with self._evaluating():
            return self.generator(self._noise(1, n, generator=rng))[0].float()

    def _summary_forward(self, x: torch.Tensor) -> None:
        self.discriminator(x.unsqueeze(1))
        fixed = torch.Generator(device=self.device).manual_seed(0)  # leave the global RNG
        self.generator(self._noise(1, 1, generator=fixed))
