"""A small vision transformer on spectrogram windows, optionally pretrained (seed 003).

The Whale Sound Detection seed fine-tunes torchvision's ImageNet ``vit_b_16`` (patch 16,
768 wide, 12 layers of 12 heads, MLP 3072, 86M parameters) with a new linear head.  This
module builds the same kind of network on one-channel spectrogram windows ``(batch,
frames, bins)`` with torchvision's module names, so a ``vit_b_16`` state dict a user has
saved loads as is (``weights=FILE``, with ``patch=16 hidden=768 layers=12 heads=12
mlp=3072``; nothing is ever downloaded)::

    (B, frames, bins), zero-padded to multiples of patch -> (B, 1, F, W)
    conv_proj: Conv2d 1 -> hidden, kernel = stride = patch   (B, hidden, F/p, W/p)
    flatten to (F/p * W/p) patch tokens, prepend the learned class token
    + learned position embeddings, Dropout
    ``layers`` pre-norm encoder blocks: LayerNorm, MultiheadAttention, Dropout, residual;
        LayerNorm, Linear hidden -> mlp, GELU, Dropout, Linear mlp -> hidden, Dropout,
        residual
    LayerNorm; the class token's output = embedding          (B, hidden)
    Dropout, Linear hidden -> n_classes

Defaults are a small ViT sized for spectrogram windows rather than 224 x 224 photographs:
patch 8, hidden 192, 6 layers of 3 heads, MLP 768 (ViT-Tiny's width at half its depth):
with 32 x 256 windows (4 x 32 = 128 patches) 2,707,394 trainable parameters for two classes.

Pretrained weights (``weights=FILE``, see :mod:`wsd.models.pretrained` for the rules): a
3-channel ``conv_proj`` is summed to one channel; position embeddings of a square grid
(torchvision's 14 x 14 at 224 px) are resized bicubically to this model's patch grid.
``freeze=true`` trains only the head.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wsd.models import register
from wsd.models.base import summary_forward
from wsd.models.pretrained import PretrainedClassifier

_LN_EPS = 1e-6  # torchvision's ViT LayerNorm epsilon


class _EncoderBlock(nn.Module):
    """Pre-norm transformer block ``(B, S, D)`` -> ``(B, S, D)`` (torchvision's names)."""

    def __init__(self, hidden: int, heads: int, mlp: int, dropout: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden, eps=_LN_EPS)
        self.self_attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(hidden, eps=_LN_EPS)
        self.mlp = nn.Sequential(nn.Linear(hidden, mlp), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp, hidden), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + self.dropout(y)
        return x + self.mlp(self.ln_2(x))


class _Encoder(nn.Module):
    """Position embeddings, the blocks and a final LayerNorm."""

    def __init__(self, seq_length: int, layers: int, heads: int, hidden: int, mlp: int,
                 dropout: float) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, hidden).normal_(std=0.02))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(OrderedDict(
            (f"encoder_layer_{i}", _EncoderBlock(hidden, heads, mlp, dropout))
            for i in range(layers)))
        self.ln = nn.LayerNorm(hidden, eps=_LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class _VitBackbone(nn.Module):
    """``(B, 1, F, W)`` (multiples of ``patch``) -> class-token features ``(B, hidden)``."""

    def __init__(self, grid: tuple[int, int], patch: int, hidden: int, layers: int,
                 heads: int, mlp: int, dropout: float) -> None:
        super().__init__()
        self.conv_proj = nn.Conv2d(1, hidden, kernel_size=patch, stride=patch)
        fan_in = patch * patch
        nn.init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.conv_proj.bias)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.encoder = _Encoder(1 + grid[0] * grid[1], layers, heads, hidden, mlp, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.conv_proj(x).flatten(2).transpose(1, 2)  # (B, S, D)
        cls = self.class_token.expand(tokens.shape[0], -1, -1)
        return self.encoder(torch.cat([cls, tokens], dim=1))[:, 0]


@register("vit")
class VisionTransformer(PretrainedClassifier):
    """Vision transformer classifier; embedding = the class token's final features."""
    cpu_bf16 = True  # bfloat16 autocast measured faster (wsd.runtime.device)

    input_kind = "spectrogram"
    defaults = {"n_classes": 2, "patch": 8, "hidden": 192, "layers": 6, "heads": 3,
                "mlp": 768, "dropout": 0.1, "weights": "", "freeze": False}
    param_docs = {
        "n_classes": "number of classes (set by the training loop from the labels)",
        "patch": "square patch size in frames and bins (vit_b_16: 16); windows are "
                 "zero-padded up to multiples of it",
        "hidden": "token width = embedding size (vit_b_16: 768); a multiple of heads",
        "layers": "transformer encoder blocks (vit_b_16: 12)",
        "heads": "attention heads per block (vit_b_16: 12)",
        "mlp": "hidden units of each block's MLP (vit_b_16: 3072)",
        "dropout": "dropout on embeddings, attention output, MLP and before the head",
        "weights": "pretrained weights to start from: a torch.save'd state dict (e.g. "
                   "torchvision's vit_b_16) or a wsd model .h5; empty = random",
        "freeze": "train only the head; the backbone keeps its pretrained weights",
    }
    test_config = {"frames": 16, "bins": 64, "patch": 8, "hidden": 32, "layers": 2,
                   "heads": 4, "mlp": 64, "dropout": 0.0}

    def __init__(self, frames: int = 32, bins: int = 256, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        c = self.config
        for key in ("patch", "hidden", "layers", "heads", "mlp"):
            self._require(c[key] > 0, f"{key} must be > 0, got {c[key]}")
        self._require(c["hidden"] % c["heads"] == 0,
                      f"hidden ({c['hidden']}) must be a multiple of heads ({c['heads']})")
        self._require(0 <= c["dropout"] < 1, f"dropout must be in [0, 1), got {c['dropout']}")
        p = c["patch"]
        self.grid = (-(-self.frames // p), -(-self.bins // p))
        self._pad = (0, self.grid[1] * p - self.bins, 0, self.grid[0] * p - self.frames)
        self.backbone = _VitBackbone(self.grid, p, c["hidden"], c["layers"], c["heads"],
                                     c["mlp"], c["dropout"])
        self.head = nn.Sequential(OrderedDict([
            ("drop", nn.Dropout(c["dropout"])),
            ("out", nn.Linear(c["hidden"], self.n_classes)),
        ]))
        self.embedding_dim = c["hidden"]
        self._load_and_freeze()

    def _adapt_pretrained(self, key: str, src: torch.Tensor,
                          shape: torch.Size) -> torch.Tensor | None:
        """Also resize square-grid position embeddings ``(1, 1 + s*s, D)`` to this grid."""
        if key.endswith("pos_embedding") and src.dim() == 3 and src.shape[2] == shape[2]:
            side = math.isqrt(src.shape[1] - 1)
            if side * side == src.shape[1] - 1:
                grid = src[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
                grid = F.interpolate(grid.float(), size=self.grid, mode="bicubic",
                                     align_corners=False)
                grid = grid.permute(0, 2, 3, 1).reshape(1, -1, src.shape[2])
                return torch.cat([src[:, :1].float(), grid], dim=1)
            return None
        return super()._adapt_pretrained(key, src, shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``(batch, frames, bins)`` -> class-token features ``(batch, hidden)``."""
        self._check_input(x)
        x = x.unsqueeze(1)
        if any(self._pad):
            x = F.pad(x, self._pad)
        return self.backbone(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``(batch, frames, bins)`` -> logits ``(batch, n_classes)``."""
        return self.head(self.encode(x))

    def _summary_forward(self, x: torch.Tensor) -> None:
        summary_forward(self, lambda: self.logits(x))
