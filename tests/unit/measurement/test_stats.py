"""The statistics, exactly, on known samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.measurement.stats import (
    Sample,
    _binomial_cdf,
    order_statistic_bounds,
    quantile,
    quantile_ci,
    t_quantile,
    throughput_estimate,
)


def test_quantile_matches_numpy_linear_interpolation():
    rng = np.random.default_rng(1)
    values = np.sort(rng.exponential(size=37))
    for q in (0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)), rel=1e-12)


def test_quantile_known_values():
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([10.0], 0.99) == 10.0
    with pytest.raises(ValueError):
        quantile([], 0.5)


@pytest.mark.parametrize(
    "n, q, expected",
    [
        (10, 0.5, (2, 9)),  # the textbook median interval of 10 values, coverage 97.85%
        (100, 0.5, (40, 61)),  # published tables of the 95% median interval
        (5, 0.5, (None, None)),  # 2 * 0.5**5 = 6.25% > 5%: five values cannot bound the median
        (100, 0.99, (97, None)),  # a hundred values cannot bound the 99th percentile from above
    ],
)
def test_order_statistic_bounds_known(n, q, expected):
    assert order_statistic_bounds(n, q, 0.95) == expected


@pytest.mark.parametrize("n", [6, 10, 31, 100, 257, 1000])
@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_order_statistic_bounds_cover_and_are_tight(n, q):
    lower, upper = order_statistic_bounds(n, q, 0.95)
    cdf = _binomial_cdf(n, q)  # B = number of samples below the true quantile
    p_below = cdf[lower - 1] if lower is not None else 0.0  # P(true < x_(l)) = P(B <= l - 1)
    p_upto = cdf[upper - 1] if upper is not None else 1.0  # P(true < x_(u)) = P(B <= u - 1)
    assert p_below <= 0.025 + 1e-12
    assert 1.0 - p_upto <= 0.025 + 1e-12
    assert p_upto - p_below >= 0.95 - 1e-12  # exact coverage
    # Tight: moving either bound inwards would break its tail.
    if lower is not None and lower < n:
        assert cdf[lower] > 0.025
    if upper is not None and upper >= 2:
        assert cdf[upper - 2] < 0.975


def test_binomial_cdf_matches_direct_sum():
    n, p = 20, 0.3
    direct = np.cumsum([math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)])
    np.testing.assert_allclose(_binomial_cdf(n, p), direct, rtol=1e-12)


def test_binomial_cdf_large_n_extreme_p_is_finite():
    cdf = _binomial_cdf(1_000_000, 0.99)
    assert np.all(np.isfinite(cdf)) and cdf[-1] == pytest.approx(1.0)
    assert np.all(np.diff(cdf) >= -1e-15)


def test_quantile_ci_returns_order_statistics():
    values = list(range(1, 101))
    assert quantile_ci(values, 0.5) == (40.0, 61.0)
    assert quantile_ci(values, 0.99) == (97.0, None)


@pytest.mark.parametrize(
    "prob, df, expected",
    [(0.975, 1, 12.706204736), (0.975, 9, 2.262157163), (0.975, 19, 2.093024054), (0.95, 5, 2.015048373),
     (0.975, 1000, 1.962339081), (0.025, 5, -2.570581836)],
)
def test_t_quantile_known_values(prob, df, expected):
    assert t_quantile(prob, df) == pytest.approx(expected, abs=1e-8)


def test_sample_statistics_exact():
    s = Sample([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (s.n, s.min, s.max, s.median, s.mean) == (5, 1.0, 5.0, 3.0, 3.0)
    assert s.std == pytest.approx(math.sqrt(2.5))
    assert s.percentile(0.9) == pytest.approx(4.6)
    assert s.median_ci == (None, None)
    assert s.median_rel_half_width == math.inf


def test_sample_median_half_width():
    s = Sample(np.arange(1, 101, dtype=float))
    assert s.median == 50.5
    assert s.median_rel_half_width == pytest.approx(max(50.5 - 40, 61 - 50.5) / 50.5)


def test_outliers_by_modified_z_score():
    values = [10.0, 10.1, 9.9, 10.2, 9.8, 10.0, 10.1, 9.9] * 5 + [100.0]
    assert Sample(values).outlier_count == 1
    assert Sample([1.0] * 10).outlier_count == 0  # MAD 0: nothing can be called an outlier


def test_throughput_point_estimate_is_exact():
    durations = [2_000_000] * 50  # 2 ms per batch of 4
    est = throughput_estimate(durations, 4)
    assert est.samples_per_s == pytest.approx(2000.0)
    assert est.ci_low == pytest.approx(2000.0) and est.ci_high == pytest.approx(2000.0)
    assert est.blocks == 20 and est.window_s == pytest.approx(0.1)


def test_throughput_interval_batch_means():
    # 20 iterations, one per block: alternating 1 ms and 3 ms, batch 1.
    durations = [1e6, 3e6] * 10
    est = throughput_estimate(durations, 1)
    assert est.samples_per_s == pytest.approx(500.0)  # 20 samples in 40 ms
    per_sample_ms = np.array(durations) / 1e6
    half = t_quantile(0.975, 19) * per_sample_ms.std(ddof=1) / math.sqrt(20)
    assert est.ci_low == pytest.approx(1000.0 / (2.0 + half))
    assert est.ci_high == pytest.approx(1000.0 / (2.0 - half))
    assert est.ci_low < est.samples_per_s < est.ci_high


def test_throughput_single_iteration_has_no_interval():
    est = throughput_estimate([1e6], 8)
    assert est.samples_per_s == pytest.approx(8000.0)
    assert est.ci_low is None and est.rel_half_width == math.inf
