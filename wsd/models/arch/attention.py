"""LSTM + multi-head self-attention on information-feature series (seed 003).

Input: per-frame information features ``(batch, frames, 4)`` = [H, C_JSD, C_TV, C_SQ] from
:func:`wsd.dsp.features.information_series` (models built with ``bins=4``).  After the seed's
Keras code (``src/AttentionLSTM/model.py``): an LSTM branch and a multi-head self-attention
branch read the same series in parallel, their outputs are concatenated, layer-normalised
and passed through two time-distributed dense layers.  Defaults, ``frames=32``::

    (B, 32, 4)
    BatchNorm1d over the 4 features                         (B, 32, 4)           8 (+8)
    LSTM 4 -> 64, all steps                                 (B, 32, 64)     17,920
    Linear 4 -> 64 (query/key/value width)                  (B, 32, 64)        320
    MultiheadAttention 64, 8 heads (self-attention)         (B, 32, 64)     16,640
    concatenate, LayerNorm                                  (B, 32, 128)       256
    time-distributed Linear 128 -> 512, ReLU                (B, 32, 512)    66,048
    time-distributed Linear 512 -> 64, ReLU                 (B, 32, 64)     32,832
    mean and max over the frames, concatenated = embedding  (B, 128)
    Dropout, Linear 128 -> n_classes                        (B, n_classes)

134,282 trainable parameters for two classes.  Differences from the seed: the features
reach the model unstandardised (their scales differ tenfold), so a BatchNorm over the 4
features comes first, as in :mod:`wsd.models.arch.inception`.  Keras' ``MultiHeadAttention(
num_heads=8, key_dim=64)`` projects the 4 features straight into 8 heads of 64 and back to
4 outputs; ``torch.nn.MultiheadAttention`` needs its width divisible by the heads, so the
features are first mapped to ``units`` (64) and each head has ``units / heads`` dimensions.
The seed flattens the (frames, 64) sequence into one sigmoid unit; here the sequence is
pooled (mean and max over time, so the model takes any window length and a short call is
not averaged away) and the head has ``n_classes`` logits trained with cross entropy.

:func:`wsd.models.base.summary_forward` (also used by :mod:`wsd.models.arch.vit`) makes the layer table count the
attention's output projection, which ``nn.MultiheadAttention`` applies without calling its
``out_proj`` module.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from wsd.models import register
from wsd.models.base import summary_forward
from wsd.models.classifier import ClassifierModel


class _TimePool(nn.Module):
    """``(B, T, C)`` -> ``(B, 2C)``: mean and max over time, concatenated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=1), x.amax(dim=1)], dim=1)


@register("attention")
class AttentionLstm(ClassifierModel):
    """LSTM and self-attention branches in parallel; embedding = pooled dense features."""

    input_kind = "information"
    defaults = {"n_classes": 2, "units": 64, "heads": 8, "dense": 512, "dense_out": 64,
                "dropout": 0.1}
    param_docs = {
        "n_classes": "number of classes (set by the training loop from the labels)",
        "units": "LSTM units and attention width (seed: 64); a multiple of heads",
        "heads": "attention heads (seed: 8)",
        "dense": "units of the first time-distributed dense layer (seed: 512)",
        "dense_out": "units of the second time-distributed dense layer (seed: 64); the "
                     "embedding has twice as many (mean and max over time)",
        "dropout": "dropout before the output layer",
    }
    test_config = {"frames": 16, "bins": 4, "units": 8, "heads": 2, "dense": 16,
                   "dense_out": 8}

    def __init__(self, frames: int = 32, bins: int = 4, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        c = self.config
        for key in ("units", "heads", "dense", "dense_out"):
            self._require(c[key] > 0, f"{key} must be > 0, got {c[key]}")
        self._require(c["units"] % c["heads"] == 0,
                      f"units ({c['units']}) must be a multiple of heads ({c['heads']})")
        self._require(0 <= c["dropout"] < 1, f"dropout must be in [0, 1), got {c['dropout']}")
        units = c["units"]
        self.input_norm = nn.BatchNorm1d(self.bins)
        self.lstm = nn.LSTM(self.bins, units, batch_first=True)
        self.embed = nn.Linear(self.bins, units)
        self.attention = nn.MultiheadAttention(units, c["heads"], batch_first=True)
        self.norm = nn.LayerNorm(2 * units)
        self.dense = nn.Sequential(OrderedDict([
            ("dense1", nn.Linear(2 * units, c["dense"])), ("act1", nn.ReLU()),
            ("dense2", nn.Linear(c["dense"], c["dense_out"])), ("act2", nn.ReLU()),
            ("pool", _TimePool()),
        ]))
        self.head = nn.Sequential(OrderedDict([
            ("drop", nn.Dropout(c["dropout"])),
            ("out", nn.Linear(2 * c["dense_out"], self.n_classes)),
        ]))
        self.embedding_dim = 2 * c["dense_out"]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature series ``(batch, frames, 4)`` -> features ``(batch, 2 * dense_out)``."""
        self._check_input(x)
        x = self.input_norm(x.transpose(1, 2)).transpose(1, 2)
        recurrent, _ = self.lstm(x)
        q = self.embed(x)
        attended, _ = self.attention(q, q, q, need_weights=False)
        return self.dense(self.norm(torch.cat([attended, recurrent], dim=-1)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Feature series ``(batch, frames, 4)`` -> logits ``(batch, n_classes)``."""
        return self.head(self.encode(x))

    def _summary_forward(self, x: torch.Tensor) -> None:
        summary_forward(self, lambda: self.logits(x))
