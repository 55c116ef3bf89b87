"""Contrastive encoder (SimCLR family) with bioacoustic augmentations: learns, without
labels, what stays the same between two stretches of the same sound.

Each training window gives two views: crops of ``crop`` frames at independent random
offsets within the window (so the views are different moments of the same call or
background), each augmented by mixing with another window of the batch as background
(BYOL-A's log-sum-exp mixing), a small frequency shift (+-``freq_shift`` bands), gain,
contrast and spectral tilt, Gaussian noise, and one time and one frequency mask. The loss is
NT-Xent (temperature ``tau``) on a projection of the pooled views; every other window of the
batch is a negative.

Encoder (bands as channels, 1-D convolutions over time)::

    (B, T, F) -> (B, F, T) Conv1d F->c k5, BatchNorm, ReLU          (B, c, T)
    Conv1d c->c k5 stride 2, BatchNorm, ReLU                        (B, c, T/2)
    + Conv1d c->c k3, BatchNorm, ReLU (residual)                    (B, c, T/2)
    Conv1d c->dim k1 = step embeddings                              (B, T/2, dim)
    embedding = [mean, std] of the steps over time                  (B, 2 dim)

Measured on the Southern Resident call catalogue (benchmarks/quality.py), on mel bands with
per-recording whitening: see benchmarks/README.md. The projection head is used only by the
loss.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wsd.models import register
from wsd.models.base import WsdModel


def _cbr(ci: int, co: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv1d(ci, co, k, stride, k // 2, bias=False)),
        ("norm", nn.BatchNorm1d(co)), ("act", nn.ReLU())]))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """SimCLR's loss on two views ``(B, d)``: each view must pick its partner out of the
    other ``2B - 2`` views."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T / tau
    b = z1.shape[0]
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), -1e9)
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, target)


@register("contrastive")
class Contrastive(WsdModel):
    """Contrastive 1-D CNN (SimCLR); embedding = mean and std of its step embeddings."""

    kind = "contrastive"
    defaults = {"channels": 128, "dim": 128, "proj": 128, "crop": 48, "tau": 0.1,
                "freq_shift": 2, "gain_sd": 0.3, "contrast": 0.2, "tilt_sd": 0.3,
                "mix_p": 0.5, "mix_max": 0.4, "time_mask": 8, "freq_mask": 8,
                "noise_sd": 0.1, "weight_decay": 1e-4}
    param_docs = {
        "channels": "channels of the convolutions",
        "dim": "size of a step embedding (the window's embedding is twice this)",
        "proj": "size of the projection the loss compares",
        "crop": "frames of each view (at most the window's frames)",
        "tau": "temperature of the NT-Xent loss",
        "freq_shift": "largest frequency shift of a view, in bands",
        "gain_sd": "standard deviation of a view's level offset (normalised units)",
        "contrast": "a view's level is scaled by U(1 - contrast, 1 + contrast)",
        "tilt_sd": "standard deviation of a view's linear spectral tilt",
        "mix_p": "probability of mixing another window into a view as background",
        "mix_max": "largest weight of that background",
        "time_mask": "widest time mask (frames)",
        "freq_mask": "widest frequency mask (bands)",
        "noise_sd": "standard deviation of the Gaussian noise added",
        "weight_decay": "AdamW weight decay",
    }
    test_config = {"frames": 16, "bins": 8, "channels": 8, "dim": 4, "proj": 4, "crop": 12,
                   "time_mask": 2, "freq_mask": 2}
    test_batch = 6
    #: Training windows are read this many times over when --epochs is not given (the
    #: measured recipe: about 200 steps of 128 windows on the call catalogue).
    default_steps = 200
    default_batch_size = 128
    #: No early stopping: the one-cycle schedule runs to its end (its validation loss is
    #: too noisy on small files to stop on).
    default_patience = 0

    def __init__(self, frames: int = 64, bins: int = 64, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        c = self.config
        self._require(2 <= c["crop"], "crop must be at least 2 frames")
        ch, dim = c["channels"], c["dim"]
        self.l1 = _cbr(self.bins, ch, 5)
        self.l2 = _cbr(ch, ch, 5, 2)
        self.l3 = _cbr(ch, ch, 3)
        self.out = nn.Conv1d(ch, dim, 1)
        self.head = nn.Sequential(OrderedDict([
            ("fc1", nn.Linear(2 * dim, 256)), ("norm", nn.BatchNorm1d(256)),
            ("act", nn.ReLU()), ("fc2", nn.Linear(256, c["proj"]))]))
        self.embedding_dim = 2 * dim
        self.register_buffer("step_count", torch.zeros((), dtype=torch.int64))
        self.total_steps = 0  # set by plan_training: the learning-rate schedule's length
        self._max_lr = None

    # ---------------------------------------------------------------- encoder
    def steps(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` -> step embeddings ``(B, ceil(T/2), dim)``."""
        h = self.l2(self.l1(x.transpose(1, 2)))
        h = h + self.l3(h)
        return self.out(h).transpose(1, 2)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        s = self.steps(x)
        return torch.cat([s.mean(1), s.std(1)], dim=1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self._pool(x)

    # ---------------------------------------------------------------- training
    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        self._max_lr = lr
        return [torch.optim.AdamW(self.parameters(), lr=lr,
                                  weight_decay=self.config["weight_decay"])]

    def plan_training(self, total_steps: int) -> None:
        """The training loop says how many steps it will take: the learning rate follows a
        one-cycle schedule over them (warm-up over the first 10%, then cosine down)."""
        self.total_steps = int(total_steps)

    def _lr_factor(self) -> float:
        import math

        n, t = self.total_steps, int(self.step_count)
        if n <= 1:
            return 1.0
        warm = max(1, int(0.1 * n))
        if t < warm:
            return 0.04 + 0.96 * t / warm
        frac = min(1.0, (t - warm) / max(1, n - warm))
        return 4e-6 + (1 - 4e-6) * 0.5 * (1 + math.cos(math.pi * frac))

    def train_step(self, x, optimizers, autocast=None, **kw):
        import contextlib

        if self._max_lr is not None:
            for g in optimizers[0].param_groups:
                g["lr"] = self._max_lr * self._lr_factor()
        out = super().train_step(x, optimizers, autocast or contextlib.nullcontext, **kw)
        self.step_count += 1
        return out

    def eval_loss(self, x: torch.Tensor) -> float:
        """Validation loss with fixed crops and augmentations (the same every epoch, so
        early stopping compares like with like); the global random state is untouched."""
        with torch.random.fork_rng(devices=[]), self._evaluating():
            torch.manual_seed(0)
            return float(self.loss(x))

    def _crops(self, x: torch.Tensor) -> torch.Tensor:
        """A random crop of ``crop`` frames of each window, ``(B, crop, F)``."""
        b, t, _ = x.shape
        crop = min(self.config["crop"], t)
        start = torch.randint(0, t - crop + 1, (b,), device=x.device)
        idx = start[:, None] + torch.arange(crop, device=x.device)[None, :]
        return torch.gather(x, 1, idx[:, :, None].expand(-1, -1, x.shape[2]))

    def augment(self, x: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
        """The view augmentations on crops ``x`` ``(B, T, F)``, with ``bg`` (same shape)
        as background for mixing."""
        c = self.config
        b, t, f = x.shape
        dev = x.device
        if c["mix_p"] > 0:
            lam = torch.rand(b, 1, 1, device=dev) * c["mix_max"] * \
                (torch.rand(b, 1, 1, device=dev) < c["mix_p"])
            x = torch.logaddexp(x + torch.log1p(-lam), bg + torch.log(lam + 1e-8))
        if c["freq_shift"] > 0:
            sh = torch.randint(-c["freq_shift"], c["freq_shift"] + 1, (b,), device=dev)
            idx = (torch.arange(f, device=dev)[None, :] - sh[:, None]).clamp(0, f - 1)
            x = torch.gather(x, 2, idx[:, None, :].expand(b, t, f))
        tilt = torch.randn(b, 1, 1, device=dev) * c["tilt_sd"] * \
            torch.linspace(-1, 1, f, device=dev)[None, None, :]
        scale = 1 + (2 * torch.rand(b, 1, 1, device=dev) - 1) * c["contrast"]
        x = x * scale + torch.randn(b, 1, 1, device=dev) * c["gain_sd"] + tilt
        if c["noise_sd"] > 0:
            x = x + torch.randn_like(x) * c["noise_sd"]
        fill = x.mean(dim=(1, 2), keepdim=True)
        for axis, width, size in ((1, c["time_mask"], t), (2, c["freq_mask"], f)):
            if width > 0:
                w = torch.randint(0, width + 1, (b,), device=dev)
                lo = (torch.rand(b, device=dev) * (size - w + 1)).long()
                pos = torch.arange(size, device=dev)[None, :]
                m = (pos >= lo[:, None]) & (pos < (lo + w)[:, None])
                m = m[:, :, None] if axis == 1 else m[:, None, :]
                x = torch.where(m, fill, x)
        return x

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """NT-Xent between two augmented crops of every window ``(B, frames, bins)``."""
        self._check_input(x)
        v1, v2 = self._crops(x), self._crops(x)
        bg1, bg2 = self._crops(x.roll(1, 0)), self._crops(x.roll(2, 0))
        z1 = self.head(self._pool(self.augment(v1, bg1)))
        z2 = self.head(self._pool(self.augment(v2, bg2)))
        return nt_xent(z1, z2, self.config["tau"])

    def _summary_forward(self, x: torch.Tensor) -> None:
        self.head(self._pool(torch.cat([x, x])))
