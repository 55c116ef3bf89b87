"""What carries a detector from one site to another: k-means patches of a few bands
(``--arch kmeans -p fpatch=B``), whose codes do not change with noise in other bands, and a
probe that standardises each row by its own recording (``--arch linear -p norm=recording``)
at training and at scoring."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from wsd import models
from wsd.models.probe import (RECORDING_SD_FLOOR, fit_probe, load_probe, predict_logit,
                              recording_blocks, recording_standardised)


def test_recording_standardisation_is_per_recording_and_streams(tmp_path):
    rng = np.random.default_rng(0)
    # three recordings, one split into two runs of rows, at very different levels
    sid = np.array([0] * 50 + [1] * 70 + [0] * 30 + [2] * 5)
    z = rng.normal(size=(len(sid), 6)) * (1 + 3 * sid[:, None]) + 10 * sid[:, None]
    whole = recording_standardised(z, sid)
    for s in range(3):
        m = sid == s
        ref = (z[m] - z[m].mean(0)) / (z[m].std(0) + RECORDING_SD_FLOOR)
        assert np.allclose(whole[m], ref, atol=1e-5)
    # blocks smaller than a recording, read from an HDF5 dataset: the same values
    with h5py.File(tmp_path / "e.h5", "w") as f:
        f["z"] = z.astype(np.float32)
    with h5py.File(tmp_path / "e.h5") as f:
        out = np.full(z.shape, np.nan, np.float32)
        for rows, x in recording_blocks(f["z"], sid, block=16):
            assert len(rows) <= 16 and len(np.unique(sid[rows])) == 1
            out[rows] = x
    assert np.allclose(out, whole, atol=1e-4)


def test_a_constant_feature_stays_finite():
    z = np.ones((10, 3))
    z[:, 1] = np.arange(10)
    out = recording_standardised(z, np.zeros(10, int))
    assert np.isfinite(out).all() and np.allclose(out[:, 0], 0)


def test_probe_with_recording_norm_scores_a_file_as_it_was_fitted(tmp_path):
    """A call is what stands out in its recording: with norm=recording a probe fitted on
    two quiet recordings ranks the calls of a loud one (every feature shifted and scaled)
    first; the file scored a block at a time gives the in-memory scores."""
    from wsd.dsp.spectrogram import SpectrogramParams
    from wsd.io.store.models import save_model

    rng = np.random.default_rng(1)
    n, d = 300, 8
    sid = np.repeat([0, 1, 2], n)
    y = (rng.random(3 * n) < 0.05).astype(int)
    z = rng.normal(size=(3 * n, d))
    z[y == 1, :2] += 3.0
    z[sid == 2] = 5.0 * z[sid == 2] + 20.0  # another site: louder, shifted
    zs = recording_standardised(z, sid)
    tr = sid < 2
    probe = fit_probe(zs[tr], y[tr], c=1.0, norm="recording")
    assert probe.config["norm"] == "recording"
    save_model(tmp_path / "p.h5", arch="linear", config=probe.config,
               state_dict=probe.state_dict(),
               spectrogram=SpectrogramParams(sample_rate=2000).as_dict(), norm={"mean": 0.0, "std": 1.0},
               params={"positive": "x", "threshold": 0.5}, history=[], loss_history={},
               sources=None)
    loaded = load_probe(tmp_path / "p.h5", d)
    with h5py.File(tmp_path / "e.h5", "w") as f:
        f["z"] = z.astype(np.float32)
    with h5py.File(tmp_path / "e.h5") as f:
        with pytest.raises(Exception, match="source ids"):
            loaded.predict_rows(f["z"], logit=True)
        lo = loaded.predict_rows(f["z"], logit=True, source_id=sid)
    assert np.allclose(lo, predict_logit(probe, zs), atol=1e-4)
    from sklearn.metrics import roc_auc_score

    site = sid == 2
    assert roc_auc_score(y[site], lo[site]) > 0.95
    hit = lo[site] > 0
    assert y[site][hit].mean() > 0.5 and hit[y[site] == 1].mean() > 0.8
    # a probe fitted without it fires on most of the loud site's rows at its threshold
    plain = fit_probe(z[tr], y[tr], c=1.0, norm="global")
    assert (predict_logit(plain, z[site]) > 0).mean() > 0.5


def test_unknown_norm_is_refused():
    with pytest.raises(Exception, match="norm must be one of"):
        models.build("linear", 1, 8, norm="site")


def _prepared(**kw):
    torch.manual_seed(0)
    m = models.build("kmeans", 64, 32, k=16, pca=24, **{"members": 1, **kw})  # one copy
    m.prepare(torch.randn(40, 64, 32))
    return m


def test_fpatch_of_every_band_is_the_full_band_encoder():
    x = torch.randn(5, 64, 32)
    full = _prepared()
    same = models.build("kmeans", 64, 32, k=16, pca=24, fpatch=32, members=1)
    same.load_state_dict(full.state_dict())
    assert torch.allclose(full.encode(x), same.encode(x))
    assert full.embedding_dim == 48


def test_band_patches_ignore_noise_in_other_bands():
    m = _prepared(fpatch=8, fstride=8)
    assert m.n_fpos == 4 and m.embedding_dim == 3 * 16 * 4
    x = torch.randn(3, 64, 32)
    y = x.clone()
    y[:, :, :8] += 3.0 * torch.randn(3, 64, 8)  # noise in the lowest 8 bands only
    a, b = (m.encode(v).reshape(3, 3, 4, 16) for v in (x, y))  # (B, pool, position, k)
    assert not torch.allclose(a[:, :, 0], b[:, :, 0])
    assert torch.allclose(a[:, :, 1:], b[:, :, 1:])


def test_fpatch_is_checked():
    with pytest.raises(Exception, match="fpatch must be between"):
        models.build("kmeans", 64, 32, fpatch=33)
    with pytest.raises(Exception, match="pca must be between"):
        models.build("kmeans", 64, 32, fpatch=4, patch=4, pca=96)


def test_full_band_dictionary_beside_the_band_one():
    """-p full=K: the band encoder's embedding, then the full-band encoder's, each exactly
    what that encoder alone gives with the same dictionary."""
    x = torch.randn(5, 64, 32)
    both = _prepared(fpatch=8, fstride=8, full=12, full_pca=20)
    assert both.embedding_dim == 3 * 16 * 4 + 3 * 12
    band = models.build("kmeans", 64, 32, k=16, pca=24, fpatch=8, fstride=8, members=1)
    band.load_state_dict({k: v for k, v in both.state_dict().items()
                          if not k.startswith("full.")})
    alone = models.build("kmeans", 64, 32, k=12, pca=20, members=1)
    alone.load_state_dict({k[5:]: v for k, v in both.state_dict().items()
                           if k.startswith("full.")})
    e = both.encode(x)
    assert torch.allclose(e[:, :192], band.encode(x))
    assert torch.allclose(e[:, 192:], alone.encode(x))
    assert bool(both.full.prepared)  # prepare() fixed the second dictionary's whitening too


def test_full_band_dictionary_is_trained_too():
    m = _prepared(fpatch=8, fstride=8, full=12, full_pca=20)
    (opt,) = m.configure_optimizers(1e-3)
    d0, f0 = m.dictionary.weight.clone(), m.full.dictionary.weight.clone()
    losses = [m.train_step(torch.randn(32, 64, 32), [opt])["loss"] for _ in range(3)]
    assert not torch.allclose(d0, m.dictionary.weight)
    assert not torch.allclose(f0, m.full.dictionary.weight)
    assert torch.allclose(m.full.dictionary.weight.norm(dim=1), torch.ones(12))
    assert all(0 <= v <= 2 for v in losses) and float(m.full.counts.sum()) > 0


def test_full_needs_band_patches():
    with pytest.raises(Exception, match="needs band patches"):
        models.build("kmeans", 64, 32, full=64)
    with pytest.raises(Exception, match="full_pca must be between"):
        models.build("kmeans", 64, 32, fpatch=8, full=8, patch=4, pca=16, full_pca=200)


def test_members_are_independent_copies_side_by_side():
    """-p members=M: M encoders of the same settings, each prepared on its own random half
    of the windows (whitening, centroids) and trained on its own random half of every
    batch; the embedding is theirs side by side."""
    x = torch.randn(5, 64, 32)
    m = _prepared(fpatch=8, fstride=8, full=12, full_pca=20, members=3)
    one = 3 * 16 * 4 + 3 * 12
    assert m.embedding_dim == 3 * one and len(m._coders()) == 6
    e = m.encode(x)
    for i, member in enumerate(m.members, start=1):
        assert torch.allclose(e[:, i * one:(i + 1) * one], member.encode(x))
        assert not torch.allclose(member.whiten, m.whiten)
        assert not torch.allclose(member.dictionary.weight, m.dictionary.weight)
    (opt,) = m.configure_optimizers(1e-3)
    before = [d.clone() for d in m._dictionaries()]
    out = m.train_step(torch.randn(32, 64, 32), [opt])
    assert all(not torch.allclose(a, b) for a, b in zip(before, m._dictionaries()))
    assert 0 <= out["loss"] <= 2 and 0 <= m.eval_loss(x) <= 2
    with pytest.raises(Exception, match="members must be between 1 and 16"):
        models.build("kmeans", 64, 32, members=0)


def test_probe_blocks_average_one_fit_per_block():
    """-p blocks=B: the probe's log-odds are the mean of B logistic regressions, each fitted
    on its own block of the features (the members of an encoder)."""
    from sklearn.linear_model import LogisticRegression

    from wsd.errors import UsageError

    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.2).astype(int)
    z = rng.standard_normal((300, 12)) + y[:, None] * np.r_[np.ones(6), -np.ones(6)] * 0.7
    probe = fit_probe(z, y, c=0.5, blocks=2, norm="global", scale="feature")
    assert probe.config["blocks"] == 2
    zs = (z - z.mean(0)) / z.std(0)
    want = np.mean([LogisticRegression(C=0.5, class_weight="balanced", max_iter=2000,
                                       random_state=0).fit(zs[:, s], y).decision_function(
                        zs[:, s]) for s in (slice(0, 6), slice(6, 12))], axis=0)
    np.testing.assert_allclose(predict_logit(probe, z), want, rtol=1e-4, atol=1e-4)
    with pytest.raises(UsageError, match="equal blocks"):
        fit_probe(z, y, blocks=5)


def test_a_kmeans_file_from_before_members_reads_as_one_copy(tmp_path):
    """kmeans files written before ``members`` existed (then always one copy) load as one
    copy now that the default is three, with their own weights and embedding size."""
    import torch

    from wsd.dsp.spectrogram import SpectrogramParams
    from wsd.io.store.models import save_model
    from wsd.models.inference import load_trained

    one = _prepared(fpatch=8, fstride=8)
    old = {k: v for k, v in one.config.items() if k != "members"}
    save_model(tmp_path / "old.h5", arch="kmeans", config=old, state_dict=one.state_dict(),
               spectrogram=SpectrogramParams(sample_rate=2000).as_dict(),
               norm={"mean": 0.0, "std": 1.0}, params={}, history=[], loss_history={},
               sources=None)
    net, info = load_trained(tmp_path / "old.h5")
    assert net.config["members"] == 1 and len(net.members) == 0
    x = torch.randn(3, 64, 32)
    with torch.no_grad():
        np.testing.assert_array_equal(net.encode(x).numpy(), one.encode(x).numpy())
    assert models.build("kmeans", 64, 32).config["members"] == 3  # the default now
