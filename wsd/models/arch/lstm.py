"""LSTM V4: one conv layer + BiLSTM stack encoding a 128-frame window to one vector (seed 000).

Encoder (seed-sized default, windows of 128 frames x 256 bins)::

    (B, 128, 256) -> (B, 1, 128, 256)
    Conv2d 1->256, 8x8 'same'                     (B, 256, 128, 256)   16,640
    max over the whole frequency axis + ReLU      (B, 256, 128)
    BatchNorm1d over the 256 features             (B, 256, 128)          512 (+512)
    -> (B, 128, 256) LSTM 256->128 bidirectional, sequences   (B, 128, 256)   395,264
    LSTM 256->128, last hidden state = embedding  (B, 128)               197,632

Parameter count: PyTorch gives 610,048 trainable parameters where the Keras table says
608,512.  The difference is only the LSTM biases: Keras keeps one bias vector per gate
(4 x units) while ``torch.nn.LSTM`` has two (``bias_ih`` and ``bias_hh``, 8 x units), so
each LSTM direction carries 512 more parameters: 3 directions x 512 = 1,536 =
610,048 - 608,512.  Conv (16,640) and BatchNorm (512 trainable + 512 running statistics)
match exactly.  ``test_models.py`` asserts 610,048.

The Keras table shows no activation (a Conv2D's activation is not a row of its own); this
module applies a ReLU after the frequency max, which equals a ReLU on the conv output before
the max (ReLU is monotone) but never materialises a second full-size activation.

Decoder (one-to-many): the embedding is repeated over the frames, an LSTM 128->256 returns
sequences, and a ConvTranspose2d with a (1 x bins) kernel maps each frame's 256 features
back to a spectrum: (B, 128, 256).  Trained with the mean squared reconstruction error.

Memory: the 256-channel conv output is 128 x 256 x 256 float32 = 32 MiB per window and
dominates.  The max over frequency keeps only its indices for the backward pass, so the conv
output is not held between forward and backward; the backward pass materialises one gradient
of that size.  Measured growth of peak resident memory for one eager float32 CPU training
step (benchmarks/models_probe.py --memory): 63 MiB per window at the default size (1.1 GiB
at batch 16, 4.0 GiB at batch 64); 3.7 MiB per window with the light CPU preset
``filters=32 freq_pool=4`` (the conv then runs on 128 x 64 with 1/8 of the filters).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from wsd.models import register
from wsd.models.base import AutoencoderModel


class _FreqMax(nn.Module):
    """Max over the last (frequency) axis: ``(B, C, T, F)`` -> ``(B, C, T)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.max(dim=-1).values


class _Encoder(nn.Module):
    def __init__(self, filters: int, kernel: int, freq_pool: int, hidden: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d((1, freq_pool)) if freq_pool > 1 else nn.Identity()
        before = (kernel - 1) // 2  # Keras/TF 'same': the odd pixel goes after
        self.pad = nn.ZeroPad2d((before, kernel - 1 - before, before, kernel - 1 - before))
        self.conv = nn.Conv2d(1, filters, kernel)
        self.freq_max = _FreqMax()
        self.act = nn.ReLU()
        self.norm = nn.BatchNorm1d(filters)
        self.bilstm = nn.LSTM(filters, hidden, batch_first=True, bidirectional=True)
        self.lstm = nn.LSTM(2 * hidden, hidden, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` -> ``(B, hidden)``."""
        h = self.conv(self.pad(self.pool(x.unsqueeze(1))))  # (B, C, T, F')
        h = self.norm(self.act(self.freq_max(h)))          # (B, C, T)
        seq, _ = self.bilstm(h.transpose(1, 2))            # (B, T, 2 hidden)
        _, (last, _) = self.lstm(seq)                      # (1, B, hidden)
        return last[-1]


class _Decoder(nn.Module):
    def __init__(self, frames: int, bins: int, hidden: int) -> None:
        super().__init__()
        self.frames = frames
        self.lstm = nn.LSTM(hidden, 2 * hidden, batch_first=True)
        self.deconv = nn.ConvTranspose2d(2 * hidden, 1, (1, bins))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, hidden)`` -> ``(B, T, F)``."""
        seq, _ = self.lstm(z.unsqueeze(1).expand(-1, self.frames, -1))   # (B, T, 2 hidden)
        out = self.deconv(seq.transpose(1, 2).unsqueeze(-1))              # (B, 1, T, F)
        return out.squeeze(1)


@register("lstm")
class LstmAE(AutoencoderModel):
    """Conv + BiLSTM sequence autoencoder (LSTM V4); embedding = last LSTM state."""

    defaults = {"filters": 256, "kernel": 8, "freq_pool": 1, "hidden": 128}
    param_docs = {
        "filters": "filters of the single conv layer (seed: 256; 32 for a light CPU preset)",
        "kernel": "conv kernel size, square (seed: 8)",
        "freq_pool": "average-pool the frequency axis by this factor before the conv "
                     "(1 = seed; 4 divides the conv's memory and time by 4)",
        "hidden": "LSTM units per direction = embedding size (seed: 128)",
    }
    test_config = {"frames": 12, "bins": 16, "filters": 6, "kernel": 3, "freq_pool": 2,
                   "hidden": 5}

    def __init__(self, frames: int = 128, bins: int = 256, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        frames, bins = self.frames, self.bins  # coerced to int
        filters, kernel, freq_pool, hidden = (
            self.config[k] for k in ("filters", "kernel", "freq_pool", "hidden"))
        for key in ("filters", "kernel", "freq_pool", "hidden"):
            self._require(self.config[key] > 0, f"{key} must be > 0, got {self.config[key]}")
        self._require(bins % freq_pool == 0,
                      f"bins ({bins}) must be a multiple of freq_pool ({freq_pool})")
        self.encoder = _Encoder(filters, kernel, freq_pool, hidden)
        self.decoder = _Decoder(frames, bins, hidden)
        self.embedding_dim = hidden

    def max_inference_batch(self) -> int:
        """The conv output, ``filters x frames x bins / freq_pool`` floats a window, bounds
        the batch (seed: 32 MiB a window, 16 windows a call)."""
        per_window = 4 * self.config["filters"] * self.frames * (self.bins // self.config["freq_pool"])
        return max(1, self.INFERENCE_BYTES // per_window)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``(batch, frames, bins)`` -> last LSTM state ``(batch, hidden)``."""
        self._check_input(x)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(batch, hidden)`` -> windows ``(batch, frames, bins)``."""
        return self.decoder(z)
