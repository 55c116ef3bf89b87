"""``train --arch linear -p scale=feature|shared`` (what the probe divides its centred input
by) and ``-p norm=unit`` (each row scaled to unit length first, the default). With few rows (one pooled row per clip) a sparse feature that barely varies in the
training rows is blown up by its own tiny standard deviation when it varies in a new row;
one shared scale keeps it in proportion."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from wsd import models
from wsd.models.probe import fit_probe, predict_logit


def _rows(rng, n):
    """``n`` pooled rows: 4 informative dense features, and 200 sparse ones (codes that a
    few clips use), each nearly constant in most rows."""
    y = np.arange(n) % 2
    dense = rng.normal(size=(n, 4)) + 1.0 * y[:, None]
    sparse = np.where(rng.random((n, 200)) < 0.03, rng.gamma(2.0, 1.0, (n, 200)), 0.0)
    sparse += 1e-4 * rng.random((n, 200))
    return np.c_[dense, sparse], y


def test_shared_scale_is_one_number_and_the_logistic_regression():
    rng = np.random.default_rng(0)
    z, y = _rows(rng, 60)
    probe = fit_probe(z, y, c=0.5, norm="global", scale="shared")
    assert probe.config["scale"] == "shared"
    sd = np.sqrt(np.mean(np.square(z.std(0))))
    np.testing.assert_allclose(probe.scale.numpy(), sd, rtol=1e-5)
    np.testing.assert_allclose(probe.mean.numpy(), z.mean(0), rtol=1e-5, atol=1e-6)
    ref = LogisticRegression(C=0.5, class_weight="balanced", max_iter=2000)
    ref.fit((z - z.mean(0)) / sd, y)
    np.testing.assert_allclose(predict_logit(probe, z), ref.decision_function(
        (z - z.mean(0)) / sd), rtol=1e-3, atol=1e-3)
    # the default divides each feature by its own deviation
    own = fit_probe(z, y, c=0.5, norm="global", scale="feature")
    np.testing.assert_allclose(own.scale.numpy(), z.std(0), rtol=1e-5)


def test_shared_scale_ranks_new_rows_where_per_feature_scale_fails():
    """Fitted on 30 pooled rows, scored on 200 new ones: per-feature scaling turns the sparse
    codes' rare values into huge inputs and the ranking falls apart; one shared scale
    keeps the informative features in charge."""
    rng = np.random.default_rng(3)
    z, y = _rows(rng, 30)
    zt, yt = _rows(rng, 200)
    auc = {s: roc_auc_score(yt, predict_logit(fit_probe(z, y, norm="global", scale=s), zt))
           for s in ("feature", "shared")}
    assert auc["shared"] > 0.75
    assert auc["shared"] > auc["feature"] + 0.05


def test_unknown_scale_is_refused():
    with pytest.raises(Exception, match="scale must be one of"):
        models.build("linear", 1, 8, scale="robust")
    with pytest.raises(Exception, match="scale must be one of"):
        fit_probe(np.eye(4), np.array([0, 1, 0, 1]), scale="robust")


def test_auto_scale_is_shared_unless_rows_are_standardised_per_recording():
    rng = np.random.default_rng(1)
    z, y = _rows(rng, 40)
    assert fit_probe(z, y).config["scale"] == "shared"
    assert fit_probe(z, y, norm="global").config["scale"] == "shared"
    assert fit_probe(z, y, norm="recording").config["scale"] == "feature"
    assert models.build("linear", 1, 8).config["scale"] == "auto"


def test_a_probe_file_from_before_scale_reads_as_per_feature(tmp_path):
    """A model file written before ``scale`` existed divided by each feature's deviation:
    read back, its config says so (the weights are the file's either way)."""
    from wsd.dsp.spectrogram import SpectrogramParams
    from wsd.io.store.models import save_model
    from wsd.models.probe import load_probe

    rng = np.random.default_rng(2)
    z, y = _rows(rng, 40)
    probe = fit_probe(z, y, norm="global", scale="feature")
    old = {k: v for k, v in probe.config.items() if k != "scale"}
    save_model(tmp_path / "old.h5", arch="linear", config=old, state_dict=probe.state_dict(),
               spectrogram=SpectrogramParams(sample_rate=2000).as_dict(),
               norm={"mean": 0.0, "std": 1.0}, params={"positive": "x", "threshold": 0.5},
               history=[], loss_history={}, sources=None)
    loaded = load_probe(tmp_path / "old.h5", z.shape[1])
    assert loaded.model.config["scale"] == "feature"
    np.testing.assert_allclose(loaded.predict(z), 1 / (1 + np.exp(-predict_logit(probe, z))),
                               rtol=1e-4, atol=1e-5)


def test_unit_norm_scales_each_row_to_length_one_first():
    """norm=unit (the default): the probe is the logistic regression on rows of unit length,
    fitted and scored alike, so a row's overall level does not change its score."""
    rng = np.random.default_rng(4)
    z, y = _rows(rng, 60)
    probe = fit_probe(z, y, c=0.5)
    assert probe.config["norm"] == "unit" and models.build("linear", 1, 8).config["norm"] == "unit"
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    sd = np.sqrt(np.mean(np.square(u.std(0))))
    ref = LogisticRegression(C=0.5, class_weight="balanced", max_iter=2000)
    ref.fit((u - u.mean(0)) / sd, y)
    np.testing.assert_allclose(predict_logit(probe, z), ref.decision_function(
        (u - u.mean(0)) / sd), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(predict_logit(probe, 10.0 * z), predict_logit(probe, z),
                               rtol=1e-4, atol=1e-4)
    # an all-zero row stays finite
    assert np.isfinite(predict_logit(probe, np.zeros((1, z.shape[1])))).all()
