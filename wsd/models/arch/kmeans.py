"""Spherical k-means feature learning: a one-layer convolutional encoder learned without
labels (Coates & Ng 2012; Stowell & Plumbley 2014, "Automatic large-scale classification of
bird sounds is strongly improved by unsupervised feature learning").

A window ``(T, F)`` is clipped to [``clip_lo``, ``clip_hi``] (normalised units) and averaged
over ``tpool`` frames; every run of ``patch`` pooled frames (all ``F`` bands) is a patch,
centred to zero mean, PCA-whitened to ``pca`` dimensions and scaled to unit length. Each of
the ``k`` unit-length centroids then codes the patch as ``max(0, d . z - alpha)``. The
window's embedding is ``[max and mean of the codes over the patches in the window's centre
(core frames), max over all its patches]`` (``3 k`` values): the centre tells a call centred
in the window from one at its edge, which is what a detector is trained on.

With ``fpatch`` > 0 a patch spans ``fpatch`` bands instead of all of them, cut every
``fstride`` bands; the codes are pooled over time at each of the ``Q`` band positions
separately (``3 k Q`` values). A patch then sees a call's own band only, so noise in other
bands does not change its code: on the MERIDIAN up-calls, trained in one basin and scored in
another, this ranked calls better (benchmarks/README.md).

With ``full`` > 0 (and ``fpatch`` > 0) the model also learns a second dictionary of ``full``
centroids over patches of all bands (the ``fpatch=0`` encoder, with ``full_pca``
dimensions), trained on the same batches; the embedding is the two embeddings side by side
(``3 k Q + 3 full`` values). The band codes see a call's band alone, the full-band codes its
whole shape; on the MERIDIAN up-calls the pair (``full=256``) detected val calls a little
better than the band codes alone and varied far less between seeds (event F1 0.680±0.012
against 0.624±0.097 over three seeds, benchmarks/quality.py --tasks upcalls).

With ``members`` = M > 1 (the default is 3) the model is M independent copies of itself,
each prepared on its own random half of the preparation windows and trained on its own
random half of every batch, their embeddings side by side (M times the values); a probe
(``wsd train --arch linear``) fits one logistic regression per copy and averages them. The
copies' codes differ as different seeds' do, and the ensemble beat one copy in
benchmarks/quality.py on call-type retrieval (1-NN and mAP on both catalogues), orca clips
against noise and the MERIDIAN up-calls (benchmarks/README.md); ``members=1`` is the single
encoder, a third of the size.

Training is mini-batch spherical k-means (Sculley 2010) in the ordinary training loop: the
first batch (or :meth:`prepare`'s sample, which ``wsd train`` draws at random from all
training windows) fixes the whitening and seeds the centroids; every step assigns the
batch's patches to their nearest centroid and moves each centroid towards the mean of its
patches with the rate ``n_batch / n_seen``. The update is applied through SGD at rate 1 on
the centroid difference, so checkpoints, resumption and torchrun's gradient averaging work
as for every other model. The loss is the mean cosine distance of a patch to its centroid.

Measured on the MERIDIAN right-whale up-calls (benchmarks/quality.py, benchmarks/README.md):
with a linear probe it ranks val calls far better than the contrastive encoder, and fits in
seconds on a CPU.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wsd.models import register
from wsd.models.base import WsdModel


@register("kmeans")
class KMeansEncoder(WsdModel):
    """Convolutional spherical k-means dictionary; embedding = pooled patch codes."""

    kind = "kmeans"
    defaults = {"k": 256, "patch": 16, "fpatch": 0, "fstride": 4, "tpool": 2, "pca": 96,
                "alpha": 0.25, "core": 0, "full": 0, "full_pca": 96, "members": 3,
                "clip_lo": -2.0, "clip_hi": 5.0, "whiten_eps": 0.1, "prepare_windows": 4096}
    #: what a model file written before ``members`` existed was: one copy
    file_defaults = {"members": 1}
    param_docs = {
        "k": "number of centroids (the embedding has 3 k values per band position and "
             "member)",
        "patch": "frames of a patch, after pooling by tpool",
        "fpatch": "bands of a patch (0: all); patches of fewer bands are cut every fstride "
                  "bands and coded at each of those positions separately",
        "fstride": "bands between the patches of fpatch bands",
        "full": "with fpatch > 0: centroids of a second dictionary over patches of all "
                "bands, its codes added to the embedding (0: none)",
        "full_pca": "whitened dimensions of the full-band dictionary's patches",
        "members": "independent copies of the encoder (each its own random half of the "
                   "data and its own centroids), their embeddings side by side; a probe "
                   "fits one logistic regression per copy and averages them (1: one "
                   "copy, a third of the embedding's size)",
        "tpool": "frames averaged into one before patches are cut",
        "pca": "whitened dimensions a patch keeps",
        "alpha": "activation offset: a code is max(0, d . z - alpha)",
        "core": "frames at the window's centre pooled separately (0: half the window)",
        "clip_lo": "input values below this (normalised units) are clipped",
        "clip_hi": "input values above this are clipped",
        "whiten_eps": "whitening regulariser, as a share of the mean eigenvalue",
        "prepare_windows": "random training windows that fix the whitening and seed the "
                           "centroids",
    }
    test_config = {"frames": 16, "bins": 8, "k": 6, "patch": 4, "pca": 8}
    test_batch = 6
    #: About this many batches when --epochs is not given: mini-batch k-means settles fast.
    default_steps = 300
    default_batch_size = 256
    default_patience = 0

    def __init__(self, frames: int = 64, bins: int = 64, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        c = self.config
        tp, patch = c["tpool"], c["patch"]
        self._require(tp >= 1 and patch >= 1, "tpool and patch must be >= 1")
        self._require(self.frames // tp >= patch,
                      f"a window of {self.frames} frames pooled by {tp} is shorter than a "
                      f"patch of {patch}; lower --arch-param patch or tpool")
        fp = c["fpatch"] or self.bins
        self._require(1 <= fp <= self.bins, f"fpatch must be between 0 and {self.bins} "
                      "(the bands)")
        self._require(c["fstride"] >= 1, "fstride must be >= 1")
        self.fpatch = fp
        self.n_fpos = (self.bins - fp) // c["fstride"] + 1
        dim = patch * fp
        self._require(1 <= c["pca"] <= dim, f"pca must be between 1 and {dim} "
                      f"(patch x fpatch)")
        self._require(c["k"] >= 1, "k must be >= 1")
        self._require(c["clip_lo"] < c["clip_hi"], "clip_lo must be below clip_hi")
        n_patch = self.frames // tp - patch + 1
        core = c["core"] or self.frames // 2
        self._require(0 < core <= self.frames, "core must be between 1 and frames")
        self.n_patch = n_patch
        self.n_core = max(1, min(n_patch, core // tp - patch + 1))
        self.core_at = (n_patch - self.n_core) // 2
        self.register_buffer("mu", torch.zeros(dim))
        self.register_buffer("whiten", torch.eye(dim)[:, : c["pca"]].clone())
        self.register_buffer("counts", torch.zeros(c["k"]))
        self.register_buffer("prepared", torch.zeros((), dtype=torch.bool))
        # the dictionary: weight (k, pca) holds the unit-length centroids
        self.dictionary = nn.Linear(c["pca"], c["k"], bias=False)
        with torch.no_grad():
            self.dictionary.weight.copy_(F.normalize(self.dictionary.weight, dim=1))
        self.embedding_dim = 3 * c["k"] * self.n_fpos
        self.full: KMeansEncoder | None = None
        if c["full"]:
            self._require(c["full"] >= 1, "full must be >= 0")
            self._require(c["fpatch"] > 0, "full (a second, full-band dictionary) needs band "
                          "patches: give fpatch > 0")
            shared = {key: c[key] for key in ("patch", "tpool", "alpha", "core", "clip_lo",
                                              "clip_hi", "whiten_eps", "prepare_windows")}
            self._require(1 <= c["full_pca"] <= patch * self.bins,
                          f"full_pca must be between 1 and {patch * self.bins} "
                          "(patch x bands)")
            self.full = KMeansEncoder(self.frames, self.bins, k=c["full"], pca=c["full_pca"],
                                      members=1, **shared)
            self.embedding_dim += self.full.embedding_dim
        self._require(1 <= c["members"] <= 16, "members must be between 1 and 16")
        one = {**{key: c[key] for key in self.defaults}, "members": 1}
        self.members = nn.ModuleList(KMeansEncoder(self.frames, self.bins, **one)
                                     for _ in range(c["members"] - 1))
        self.embedding_dim += sum(m.embedding_dim for m in self.members)

    # ---------------------------------------------------------------- encoder
    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` -> centred patches ``(B, P * Q, patch * fpatch)`` (``Q`` band
        positions; time-major)."""
        c = self.config
        x = x.float().clamp(c["clip_lo"], c["clip_hi"])
        tp = c["tpool"]
        t = self.frames // tp * tp
        x = x[:, :t].reshape(x.shape[0], t // tp, tp, self.bins).mean(2)
        p = x.unfold(1, c["patch"], 1).unfold(2, self.fpatch, c["fstride"])
        # (B, P, Q, patch, fpatch) -> (B, P * Q, patch * fpatch), time-major as before
        p = p.reshape(p.shape[0], p.shape[1] * p.shape[2], -1)
        return p - p.mean(-1, keepdim=True)

    def _white(self, p: torch.Tensor) -> torch.Tensor:
        return F.normalize((p - self.mu) @ self.whiten, dim=-1)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` -> patch codes ``(B, P, Q, k)``."""
        with _no_autocast(x):
            z = self._white(self._patches(x))
            a = torch.relu(self.dictionary(z) - self.config["alpha"])
            return a.reshape(a.shape[0], self.n_patch, self.n_fpos, -1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        a = self.codes(x)
        core = a[:, self.core_at: self.core_at + self.n_core]
        parts = [core.amax(1).flatten(1), core.mean(1).flatten(1), a.amax(1).flatten(1)]
        if self.full is not None:
            parts.append(self.full.encode(x))
        parts += [m.encode(x) for m in self.members]
        return torch.cat(parts, dim=1)

    # ---------------------------------------------------------------- training
    @torch.no_grad()
    def prepare(self, x: torch.Tensor) -> None:
        """Fix the whitening from the patches of the windows ``x`` ``(n, T, F)``
        (normalised) and seed the centroids with random whitened patches."""
        c = self.config
        p = self._patches(x.to(self.mu.device)).reshape(-1, self.mu.numel()).double()
        mu = p.mean(0)
        cov = torch.cov((p - mu).T) if len(p) > 1 else torch.zeros(len(mu), len(mu))
        ev, vec = torch.linalg.eigh(cov.double())
        ev, vec = ev.flip(0)[: c["pca"]].clamp_min(0), vec.flip(1)[:, : c["pca"]]
        eps = c["whiten_eps"] * float(ev.mean()) + 1e-8
        self.mu.copy_(mu.float())
        self.whiten.copy_((vec / torch.sqrt(ev + eps)).float())
        z = self._white(p.float())
        pick = torch.randperm(len(z))[: c["k"]]
        seeds = z[pick]
        if len(seeds) < c["k"]:  # fewer patches than centroids: keep the random rest
            seeds = torch.cat([seeds, self.dictionary.weight[len(seeds):]])
        self.dictionary.weight.copy_(F.normalize(seeds, dim=1))
        self.counts.zero_()
        self.prepared.fill_(True)
        if self.full is not None:
            self.full.prepare(x)
        for m in self.members:  # each member its own random half: whitening and centroids
            m.prepare(x[_half(len(x), x.device)])

    def _coders(self) -> list["KMeansEncoder"]:
        """The encoders whose own dictionary this model trains: itself, its full-band
        dictionary and its members' (each with theirs)."""
        out = [self] + ([self.full] if self.full is not None else [])
        for m in self.members:
            out += m._coders()
        return out

    def _dictionaries(self) -> list[nn.Parameter]:
        return [e.dictionary.weight for e in self._coders()]

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        """SGD at rate 1 on the centroids: a step applies the k-means update exactly (the
        learning rate of the command line does not apply)."""
        return [torch.optim.SGD(self._dictionaries(), lr=1.0)]

    def _assign(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self._white(self._patches(x)).reshape(-1, self.whiten.shape[1])
        sim = self.dictionary(z)
        best, idx = sim.max(1)
        return z, best, idx

    @torch.no_grad()
    def _kmeans_grad(self, x: torch.Tensor) -> float:
        """Set this dictionary's gradient to ``centroids - their k-means update`` on the
        batch ``x`` (so that SGD at rate 1 applies the update); the mean cosine distance of
        a patch to its centroid."""
        z, best, idx = self._assign(x)
        d = self.dictionary.weight
        k = d.shape[0]
        acc = torch.zeros_like(d).index_add_(0, idx, z * best.clamp_min(0)[:, None])
        n = torch.bincount(idx, minlength=k).to(d.dtype)
        self.counts.add_(n)
        rate = (n / self.counts.clamp_min(1))[:, None]
        target = torch.where(n[:, None] > 0, F.normalize(
            (1 - rate) * d + rate * F.normalize(acc, dim=1), dim=1), d)
        # centroids never chosen after a thousand patches each restart on a random patch
        dead = (self.counts == 0) & (self.counts.sum() > 1000 * k)
        if bool(dead.any()):
            target[dead] = z[torch.randint(len(z), (int(dead.sum()),))]
        d.grad = d - target
        return float((1 - best).mean())

    def train_step(self, x, optimizers, autocast=contextlib.nullcontext, **_):
        self.train()
        (opt,) = optimizers
        with torch.no_grad(), _no_autocast(x):
            if not bool(self.prepared):
                self.prepare(x)
            opt.zero_grad(set_to_none=True)
            losses = [self._kmeans_grad(x)]
            if self.full is not None:
                losses.append(self.full._kmeans_grad(x))
            for m in self.members:  # each member learns from its own random half a batch
                xm = x[_half(len(x), x.device)]
                losses += [e._kmeans_grad(xm) for e in m._coders()]
        opt.step()
        with torch.no_grad():
            for d in self._dictionaries():
                d.copy_(F.normalize(d, dim=1))
        return {"loss": sum(losses) / len(losses)}

    def eval_loss(self, x: torch.Tensor, **_) -> float:
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                return float(self.loss(x))
        finally:
            self.train(was)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean cosine distance of a patch to its centroid (averaged over the dictionaries,
        with ``full`` or ``members``)."""
        coders = self._coders()
        return sum((1 - e._assign(x)[1]).mean() for e in coders) / len(coders)

    def _summary_forward(self, x: torch.Tensor) -> None:
        self.encode(x)


def _half(n: int, device) -> torch.Tensor:
    """A random half of ``n`` rows (at least one), from torch's generator (seeded by wsd
    train --seed)."""
    return torch.randperm(n, device=device)[: max(1, n // 2)]


def _no_autocast(x: torch.Tensor):
    """k-means runs in float32 whatever the autocast around it."""
    return torch.autocast(x.device.type, enabled=False)
