"""The drift of scenario=continual and its detector: the shift is what the spec says in the steady
inputs' units; the detector's test agrees with scipy's, fires on a shift within its window, and
without one raises false alarms at no more than its level, measured over many seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.measurement.drift import (DriftDetector, DriftSpec, InputStats, apply_drift, features, ks_pvalue,
                                     ks_statistic, mmd_pvalue)


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, 3, 16, 16)).astype(np.float32)


def series(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 20, 4)) * np.array([1.0, 2.0, 0.5, 3.0]) + np.array([0.0, 5.0, -1.0, 2.0])).astype(
        np.float32)


def test_image_drift_shifts_brightness_by_a_fraction_of_the_range_and_stays_in_it():
    steady = images(64, 0)
    stats = InputStats.of(steady)
    shifted = apply_drift(images(64, 1), DriftSpec(brightness=0.1, texture=0.0), stats)
    assert shifted.dtype == np.float32 and shifted.shape == (64, 3, 16, 16)
    assert shifted.min() >= stats.low and shifted.max() <= stats.high
    # Clipping at the top takes some of the shift back: between 0.05 and 0.1 of the range on average.
    assert 0.05 < shifted.mean() - steady.mean() < 0.1
    unchanged = apply_drift(steady, DriftSpec(brightness=0.0, contrast=1.0, texture=0.0), stats)
    np.testing.assert_allclose(unchanged, steady, atol=1e-6)


def test_texture_raises_the_gradient_feature():
    steady = images(32, 0)
    textured = apply_drift(images(32, 1), DriftSpec(brightness=0.0, texture=0.3), InputStats.of(steady))
    assert features(textured)[:, -1].mean() > features(steady)[:, -1].mean()


def test_series_drift_shifts_level_and_scales_spread_per_channel():
    steady = series(512, 0)
    stats = InputStats.of(steady)
    shifted = apply_drift(series(512, 1), DriftSpec(level=1.0, scale=2.0), stats)
    np.testing.assert_allclose(shifted.mean(axis=(0, 1)), stats.mean + stats.std, rtol=0.05, atol=0.05)
    np.testing.assert_allclose(shifted.std(axis=(0, 1)), 2.0 * stats.std, rtol=0.05)


def test_drift_is_refused_for_shapes_it_does_not_define():
    with pytest.raises(ValueError, match="no drift defined"):
        apply_drift(np.zeros((4, 8)), DriftSpec(), InputStats.of(np.zeros((4, 8))))


def test_features_per_sample():
    assert features(images(5, 0)).shape == (5, 7)  # 3 means, 3 deviations, 1 gradient
    assert features(series(5, 0)).shape == (5, 8)  # 4 means, 4 deviations
    assert features(np.zeros((5, 10))).shape == (5, 2)


def test_ks_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for n, m, shift in ((64, 32, 0.0), (64, 32, 0.5), (200, 150, 0.2), (30, 20, 1.0)):
        a, b = rng.normal(size=n), rng.normal(shift, size=m)
        ref = stats.ks_2samp(a, b, method="asymp")
        assert ks_statistic(a, b) == pytest.approx(ref.statistic)
        # Stephens' small-sample correction against scipy's plain asymptotic distribution.
        assert ks_pvalue(ks_statistic(a, b), n, m) == pytest.approx(ref.pvalue, abs=0.03)


def test_mmd_separates_shifted_samples_and_not_equal_ones():
    same, moved = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        ref = rng.normal(size=(64, 3))
        same.append(mmd_pvalue(ref, rng.normal(size=(32, 3)), 200, np.random.default_rng(seed))[1])
        moved.append(mmd_pvalue(ref, rng.normal(1.0, size=(32, 3)), 200, np.random.default_rng(seed))[1])
    assert np.median(same) > 0.2  # uniform without a shift
    assert max(moved) < 0.01


@pytest.mark.parametrize("method", ["ks", "mmd"])
def test_the_detector_fires_within_a_window_of_a_shift(method):
    steady, drifted = images(200, 0), apply_drift(images(200, 1), DriftSpec(brightness=0.05, texture=0.0),
                                                  InputStats.of(images(200, 0)))
    detector = DriftDetector(method=method, reference=64, window=32, check_every=16, alpha=0.005, seed=0,
                             permutations=300)
    assert detector.update(features(steady[:100])) is None
    found = None
    for i in range(0, 200, 4):  # served in batches of 4
        found = detector.update(features(drifted[i:i + 4]))
        if found is not None:
            break
    assert found is not None and found["p_value"] < 0.005
    # The first check whose window holds only drifted samples fires: 32 samples after the drift.
    assert found["sample"] - 100 <= 32
    assert detector.summary()["detection"] == found


@pytest.mark.parametrize("method, seeds", [("ks", 300), ("mmd", 40)])
def test_false_alarms_stay_within_the_level(method, seeds):
    """Without drift, each check raises a false alarm with probability at most alpha: over many seeded
    runs the rate per check is within alpha plus three binomial standard errors."""
    alpha = 0.05
    alarms = checks = 0
    for seed in range(seeds):
        detector = DriftDetector(method=method, reference=64, window=32, check_every=32, alpha=alpha, seed=seed,
                                 permutations=100)
        # Non-overlapping windows: independent checks until the first alarm (the detector then stops).
        detector.update(features(images(64 + 32 * 6, 1000 + seed)))
        checks += len(detector.checks)
        alarms += detector.detection is not None
    rate = alarms / checks
    assert checks >= seeds
    assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / checks), (rate, checks)
    if method == "ks":
        # Bonferroni over 7 features is conservative, not blind: some alarms do happen.
        assert alarms > 0


def test_detector_settings_are_checked():
    with pytest.raises(ValueError, match="not one of"):
        DriftDetector(method="cusum")
    with pytest.raises(ValueError, match="must be >= 2"):
        DriftDetector(window=1)
    with pytest.raises(ValueError, match="alpha"):
        DriftDetector(alpha=1.5)
    with pytest.raises(ValueError, match="use at least 1000"):
        DriftDetector(method="mmd", alpha=0.001, permutations=200)
