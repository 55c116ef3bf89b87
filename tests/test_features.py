"""Tests of wsd.dsp.features: spectral entropy and statistical complexities per frame."""

import math

import numpy as np
import pytest

from wsd.errors import BadInputError, UsageError
from wsd.dsp.features import (
    COMPLEXITY_KINDS,
    FEATURE_NAMES,
    complexity,
    disequilibrium,
    information_series,
    power_distribution,
    spectral_entropy,
)


def test_power_distribution_converts_db_to_normalised_power():
    # 10*log10(3) dB apart: power ratio 3 to 1.
    db = np.array([[-20.0, -20.0 - 10 * math.log10(3)], [-100.0, -100.0]])
    p = power_distribution(db)
    np.testing.assert_allclose(p, [[0.75, 0.25], [0.5, 0.5]])


def test_power_distribution_keeps_very_quiet_and_very_loud_frames_finite():
    db = np.array(
        [[-100.0] * 4, [0.0, -100.0, -100.0, -100.0], [-3000.0, -3000.0, -3010.0, -3000.0]]
    )
    p = power_distribution(db)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    np.testing.assert_allclose(p[0], 0.25)
    assert p[1, 0] == pytest.approx(1.0, abs=1e-9)


def test_power_distribution_rejects_nan():
    with pytest.raises(BadInputError):
        power_distribution(np.array([[0.0, np.nan]]))


def test_uniform_distribution_has_entropy_one_and_no_complexity():
    p = np.full((3, 16), 1 / 16)
    np.testing.assert_allclose(spectral_entropy(p), 1.0)
    for kind in COMPLEXITY_KINDS:
        np.testing.assert_allclose(disequilibrium(p, kind), 0.0, atol=1e-12)
        np.testing.assert_allclose(complexity(p, kind), 0.0, atol=1e-12)


def test_delta_distribution_has_entropy_zero_and_full_disequilibrium():
    p = np.zeros((2, 8))
    p[0, 3] = 1.0
    p[1, 0] = 1.0
    np.testing.assert_allclose(spectral_entropy(p), 0.0, atol=1e-12)
    for kind in COMPLEXITY_KINDS:
        np.testing.assert_allclose(disequilibrium(p, kind), 1.0)
        np.testing.assert_allclose(complexity(p, kind), 0.0, atol=1e-12)


def test_two_bin_distribution_by_hand():
    p = np.array([0.75, 0.25])
    ln = math.log
    # Entropy in bits over log2(2) = 1.
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert h == pytest.approx(0.8112781244591328)
    # Total variation: (|0.75-0.5| + |0.25-0.5|)/2 = 0.25, maximum (N-1)/N = 0.5.
    q_tv = 0.25 / 0.5
    # Squared distance: 0.25**2 + 0.25**2 = 0.125, maximum (N-1)/N = 0.5.
    q_sq = 0.125 / 0.5
    # Jensen-Shannon in nats: S(m) - S(p)/2 - S(u)/2 with m = (0.625, 0.375).
    s_m = -(0.625 * ln(0.625) + 0.375 * ln(0.375))
    s_p = -(0.75 * ln(0.75) + 0.25 * ln(0.25))
    jsd = s_m - s_p / 2 - ln(2) / 2
    # Its maximum, for the delta (1, 0): m = (0.75, 0.25), S(delta) = 0.
    jsd_max = s_p - ln(2) / 2
    q_jsd = jsd / jsd_max
    assert spectral_entropy(p) == pytest.approx(h)
    assert disequilibrium(p, "tv") == pytest.approx(q_tv)
    assert disequilibrium(p, "sq") == pytest.approx(q_sq)
    assert disequilibrium(p, "jsd") == pytest.approx(q_jsd)
    assert complexity(p, "tv") == pytest.approx(q_tv * h)
    assert complexity(p, "sq") == pytest.approx(q_sq * h)
    assert complexity(p, "jsd") == pytest.approx(q_jsd * h)


def test_three_bin_distribution_by_hand():
    p = np.array([0.5, 0.5, 0.0])
    h = math.log(2) / math.log(3)
    # |p - 1/3| = (1/6, 1/6, 1/3): total variation 1/3, maximum 2/3.
    assert complexity(p, "tv") == pytest.approx((1 / 3) / (2 / 3) * h)
    # squares: 1/36 + 1/36 + 1/9 = 1/6, maximum 2/3.
    assert complexity(p, "sq") == pytest.approx((1 / 6) / (2 / 3) * h)
    assert spectral_entropy(p) == pytest.approx(h)


def test_unknown_kind_is_refused_with_the_choices():
    with pytest.raises(UsageError, match="jsd"):
        complexity(np.full(4, 0.25), "euclid")


def test_information_series_shape_dtype_bounds_and_order():
    rng = np.random.default_rng(0)
    w = rng.normal(-70, 10, size=(5, 32, 256))
    w[2, :, 100] = 0.0  # a strong tone in one window
    f = information_series(w)
    assert f.shape == (5, 32, 4) and f.dtype == np.float32
    assert FEATURE_NAMES == ("H", "C_JSD", "C_TV", "C_SQ")
    assert np.all((f >= 0) & (f <= 1))
    p = power_distribution(w[1, 7])
    np.testing.assert_allclose(f[1, 7, 0], spectral_entropy(p), rtol=1e-5)
    for k, kind in enumerate(("jsd", "tv", "sq"), start=1):
        np.testing.assert_allclose(f[1, 7, k], complexity(p, kind), rtol=1e-5, atol=1e-7)
    # The tone lowers entropy well below the noise-only windows.
    assert f[2, :, 0].max() < f[0, :, 0].min()


def test_information_series_all_floor_frames_are_uniform_without_nan():
    w = np.full((2, 4, 256), -100.0, dtype=np.float32)
    f = information_series(w)
    assert not np.isnan(f).any()
    np.testing.assert_allclose(f[..., 0], 1.0)
    np.testing.assert_allclose(f[..., 1:], 0.0, atol=1e-6)


def test_information_series_rejects_wrong_shapes():
    with pytest.raises(BadInputError):
        information_series(np.zeros((32, 256)))
    with pytest.raises(BadInputError):
        information_series(np.zeros((2, 32, 1)))


class Sliceable:
    """An array stand-in with only ``shape`` and slicing, like an HDF5 dataset."""

    def __init__(self, a):
        self.a, self.shape = a, a.shape

    def __getitem__(self, key):
        return self.a[key]


def test_information_series_reads_sliceable_inputs():
    w = np.random.default_rng(1).normal(-60, 8, size=(3, 8, 64))
    np.testing.assert_array_equal(information_series(Sliceable(w)), information_series(w))
