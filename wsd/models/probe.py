"""Few-shot classifiers on stored embeddings: fitting the linear probe (:mod:`wsd.models.arch.linear`)
with scikit-learn, reading it back, and scoring embeddings in bounded memory.

Targets follow ``wsd train --positive``: rows labelled ``positive`` are positives, every
other row (other labels and unlabelled ones) a negative, except rows labelled
:data:`IGNORED` (a reviewer's "unsure"), which are left out. Classes are balanced by loss
weights, so five positives against thousands of background windows still count.
"""

from __future__ import annotations

import numpy as np

from wsd.errors import BadInputError, UsageError
from wsd.io.labels import UNSURE

#: Rows with this label are neither positives nor negatives.
IGNORED = UNSURE
#: Rows scored per block when a probe scores a whole embeddings file.
SCORE_BLOCK = 65536
#: ``norm=recording``: added to a recording's standard deviation of a feature (embedding
#: units), so that a feature almost constant in a recording is not blown up.
RECORDING_SD_FLOOR = 1e-3


#: ``norm=recording``: bytes of embeddings read at a time (a block of rows of one recording).
RECORDING_BLOCK_BYTES = 64 << 20


def recording_blocks(z, source_id: np.ndarray, block: int | None = None):
    """Rows of ``z`` (an array or an HDF5 dataset, ``(n, D)``) standardised per recording:
    each feature minus its mean over the recording's rows, over their standard deviation
    plus :data:`RECORDING_SD_FLOOR`. Yields ``(row numbers, standardised rows)`` a recording
    and at most ``block`` rows at a time (default: :data:`RECORDING_BLOCK_BYTES` of
    float32 rows); a recording longer than a block is read twice (its statistics, then its
    rows), so memory stays bounded whatever its length."""
    sid = np.asarray(source_id)
    if block is None:
        block = max(1, RECORDING_BLOCK_BYTES // (4 * max(1, int(np.shape(z)[1]))))
    order = np.argsort(sid, kind="stable")
    for rows in np.split(order, np.flatnonzero(np.diff(sid[order])) + 1):
        if not len(rows):
            continue
        parts = [rows[a:a + block] for a in range(0, len(rows), block)]
        cache = [_read_rows(z, r) for r in parts] if len(parts) == 1 else None
        s1 = s2 = 0.0
        for i, r in enumerate(parts):
            x = cache[i] if cache else _read_rows(z, r)
            s1 = s1 + x.sum(0, dtype=np.float64)
            s2 = s2 + np.square(x, dtype=np.float64).sum(0)
        mean = s1 / len(rows)
        sd = np.sqrt(np.maximum(s2 / len(rows) - np.square(mean), 0.0)) + RECORDING_SD_FLOOR
        for i, r in enumerate(parts):
            x = cache[i] if cache else _read_rows(z, r)
            yield r, ((x - mean) / sd).astype(np.float32)


def _read_rows(z, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (increasing) of an array or HDF5 dataset, as float32."""
    if rows[-1] - rows[0] + 1 == len(rows):  # contiguous: one slice
        return np.asarray(z[int(rows[0]):int(rows[-1]) + 1], np.float32)
    return np.asarray(z[rows], np.float32)


def recording_standardised(z: np.ndarray, source_id: np.ndarray) -> np.ndarray:
    """``z`` standardised per recording (:func:`recording_blocks`), in memory."""
    out = np.empty(np.shape(z), np.float32)
    for rows, x in recording_blocks(z, source_id):
        out[rows] = x
    return out


def probe_targets(labels: np.ndarray, positive: str) -> np.ndarray:
    """``(n,)`` int: 1 positive, 0 negative, -1 ignored (label :data:`IGNORED`)."""
    from wsd.models.targets import is_positive

    labels = np.asarray(labels, dtype=object)
    y = is_positive(labels, positive).astype(np.int64)
    y[labels == IGNORED] = -1
    if not (y == 1).any():
        found = sorted(set(labels) - {""})
        raise UsageError(f"--positive {positive!r}: no row has that label (labels: "
                         f"{', '.join(found) or 'none'})")
    if not (y == 0).any():
        raise UsageError(f"--positive {positive!r}: every row has that label; there are no "
                         "negatives to learn from")
    return y


def fit_probe(z: np.ndarray, y: np.ndarray, c: float = 1.0, seed: int = 0,
              norm: str = "unit", blocks: int = 1, scale: str = "auto"):
    """A :class:`~wsd.models.arch.linear.LinearProbe` fitted on embeddings ``z`` ``(n, D)``
    and targets ``y`` ``(n,)`` (0/1, -1 left out): standardisation from the rows used, then
    balanced L2 logistic regression (sklearn, lbfgs). With ``norm="unit"`` (the default)
    each row is first scaled to unit length, here and by the model whenever it scores a
    row (cosine geometry: a row's overall level drops out). With ``norm="recording"``, ``z`` must
    already be standardised per recording (:func:`recording_standardised`); the probe
    records it, so that :meth:`LoadedProbe.predict_rows` does the same. With ``blocks`` >
    1 the features are cut into that many equal blocks (the members of a ``kmeans -p
    members=N`` encoder), one logistic regression is fitted on each and the probe's log-odds
    are their mean: one linear model still, whose errors average out over the members.
    ``scale`` (:data:`wsd.models.arch.linear.SCALES`): ``feature`` divides each centred
    feature by its own standard deviation over the rows used; ``shared`` divides them all by
    one number, the root mean square of those deviations, so that a feature which barely
    varies in the training rows is not blown up when it varies in new ones (few rows, sparse
    codes: the pooled rows of ``embed --rows files``); ``auto`` is ``feature`` with
    ``norm="recording"`` and ``shared`` otherwise. The probe's config records the one used."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from wsd import models
    from wsd.discovery.search import normalise
    from wsd.models.arch.linear import SCALES, resolve_scale

    if scale not in SCALES:
        raise UsageError(f"scale must be one of {', '.join(SCALES)} (got {scale!r})")
    scale = resolve_scale(scale, norm)
    use = y >= 0
    x, t = np.asarray(z, np.float64)[use], y[use]
    if not np.isfinite(x).all():
        raise BadInputError("embeddings hold NaN or infinite values")
    if norm == "unit":  # the model does the same to every row it scores
        x = normalise(x, np.float64)
    mean, sd = x.mean(0), x.std(0)
    if scale == "shared":
        sd = np.full_like(sd, float(np.sqrt(np.mean(np.square(sd)))))
    sd[sd < 1e-8] = 1.0
    dim = x.shape[1]
    if blocks < 1 or dim % blocks:
        raise UsageError(f"blocks={blocks}: the {dim} features do not cut into that many "
                         "equal blocks (give the encoder's members)")
    xs = (x - mean) / sd
    step = dim // blocks
    coef, bias = np.zeros(dim), 0.0
    for i in range(blocks):
        part = slice(i * step, (i + 1) * step)
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000,
                                random_state=seed)
        lr.fit(xs[:, part], t)
        coef[part] = lr.coef_[0] / blocks
        bias += float(lr.intercept_[0]) / blocks
    probe = models.build("linear", 1, z.shape[1], n_classes=2, c=c, norm=norm, blocks=blocks,
                         scale=scale)
    with torch.no_grad():
        probe.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        probe.scale.copy_(torch.as_tensor(sd, dtype=torch.float32))
        w = torch.as_tensor(coef, dtype=torch.float32)
        b = bias
        # two logits whose softmax is the logistic regression's probability
        probe.out.weight.copy_(torch.stack([-w / 2, w / 2]))
        probe.out.bias.copy_(torch.tensor([-b / 2, b / 2]))
    return probe.eval()


def predict(model, z: np.ndarray) -> np.ndarray:
    """P(positive) of embeddings ``z`` ``(n, D)`` under a linear probe: ``(n,)`` float32."""
    import torch

    with torch.inference_mode():
        t = torch.from_numpy(np.ascontiguousarray(z, np.float32))[:, None, :]
        return model.predict_proba(t)[:, 1].numpy().astype(np.float32)


def predict_logit(model, z: np.ndarray) -> np.ndarray:
    """Log-odds of the positive class of embeddings ``z`` ``(n, D)``: ``(n,)`` float32 (not
    saturated, unlike a float32 probability)."""
    import torch

    with torch.inference_mode():
        t = torch.from_numpy(np.ascontiguousarray(z, np.float32))[:, None, :]
        lo = model.logits(t)
        return (lo[:, 1] - lo[:, 0]).numpy().astype(np.float32)


class LoadedProbe:
    """A probe read from its model file: ``positive``, ``threshold``, :meth:`predict`."""

    def __init__(self, model, info: dict):
        self.model, self.info = model, info
        self.positive = str(info["params"].get("positive") or "")
        self.threshold = float(info["params"].get("threshold", 0.5))
        self.norm = str(info["config"].get("norm", "global"))

    def predict(self, z: np.ndarray) -> np.ndarray:
        """P(positive) of embeddings ``(n, D)``: ``(n,)`` float32."""
        return predict(self.model, z)

    def predict_rows(self, ds, advance=lambda n=1, **_: None, logit: bool = False,
                     source_id: np.ndarray | None = None) -> np.ndarray:
        """:meth:`predict` (or, with ``logit``, the log-odds) of every row of ``ds`` (an
        HDF5 dataset), a block at a time. A probe trained with ``norm=recording`` needs the
        rows' ``source_id``: each row is standardised by its recording's rows first."""
        out = np.empty(ds.shape[0], np.float32)
        if self.norm == "recording":
            if source_id is None:
                raise UsageError("this probe standardises rows per recording (norm="
                                 "recording) and needs their source ids")
            for rows, x in recording_blocks(ds, source_id):
                out[rows] = predict_logit(self.model, x) if logit else self.predict(x)
                advance(len(rows))
            return out
        for a in range(0, ds.shape[0], SCORE_BLOCK):
            x = np.asarray(ds[a:a + SCORE_BLOCK], np.float32)
            out[a:a + len(x)] = predict_logit(self.model, x) if logit else self.predict(x)
            advance(len(x))
        return out


def load_probe(path, dim: int) -> LoadedProbe:
    """The linear probe in model file ``path``, checked to take ``dim``-d embeddings."""
    from wsd.models.inference import load_trained

    model, info = load_trained(path)
    if info["arch"] != "linear":
        raise BadInputError(f"is a {info['arch']} model; expected a linear probe (wsd train "
                            "EMB.h5 --arch linear)", path)
    if int(info["config"]["bins"]) != dim:
        raise BadInputError(f"the probe takes {info['config']['bins']}-d embeddings, these are "
                            f"{dim}-d (embedded with another model?)", path)
    return LoadedProbe(model, info)
