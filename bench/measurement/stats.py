"""Statistics of timing samples: percentiles with distribution-free confidence intervals, and the
batch-means interval of a throughput.

Timing distributions are skewed, multi-modal and heavy-tailed, so nothing here assumes normality of
the raw samples: the interval of a percentile comes from order statistics (the number of samples below
the true q-quantile is Binomial(n, q)), exactly, for any continuous distribution. Only the throughput
interval uses a t-interval, over means of blocks of consecutive iterations, which are close to normal
by the central limit theorem when blocks hold enough work (the classic batch-means method).

Raw values in, one cached property per statistic out; numpy only, no ML runtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from statistics import NormalDist
from typing import Sequence

import numpy as np

__all__ = [
    "PERCENTILES",
    "percentiles",
    "quantile",
    "order_statistic_bounds",
    "quantile_ci",
    "min_samples_to_bound",
    "t_quantile",
    "Sample",
    "ThroughputEstimate",
    "throughput_estimate",
    "OUTLIER_MODIFIED_Z",
]

# The latency percentiles bench reports, by their names in metric keys (latency_p99_ms). One table: a
# kind of record that reports fewer names its own with ``percentiles`` (the load scenarios: no p95).
PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def percentiles(*names: str) -> dict[str, float]:
    """The named rows of PERCENTILES, in its order."""
    unknown = set(names) - set(PERCENTILES)
    if unknown:
        raise KeyError(f"no percentile {', '.join(sorted(unknown))}: use {', '.join(PERCENTILES)}")
    return {name: q for name, q in PERCENTILES.items() if name in names}


# hyperfine's threshold: a modified z-score (median and MAD based) this large is an outlier that a
# person should look at, not the ordinary tail of a timing distribution.
OUTLIER_MODIFIED_Z = 14.0


def quantile(sorted_values: Sequence[float] | np.ndarray, q: float) -> float:
    """The q-quantile by linear interpolation between order statistics (numpy's default, type 7)."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("quantile of an empty sample")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q={q} must be in [0, 1]")
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    return float(sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo]))


def _binomial_cdf(n: int, p: float) -> np.ndarray:
    """P(B <= k) for k = 0..n, B ~ Binomial(n, p), computed in log space so that large n and extreme
    p (0.99 of a million samples) neither underflow nor lose precision."""
    k = np.arange(n + 1, dtype=np.float64)
    if p <= 0.0 or p >= 1.0:
        cdf = np.zeros(n + 1) if p >= 1.0 else np.ones(n + 1)
        if p >= 1.0:
            cdf[-1] = 1.0
        return cdf
    # log C(n, k) through the ratio C(n, k+1) / C(n, k) = (n - k) / (k + 1), accumulated.
    log_ratio = np.log(np.arange(n, 0, -1, dtype=np.float64)) - np.log(np.arange(1, n + 1, dtype=np.float64))
    log_comb = np.concatenate(([0.0], np.cumsum(log_ratio)))
    log_pmf = log_comb + k * math.log(p) + (n - k) * math.log1p(-p)
    pmf = np.exp(log_pmf - log_pmf.max())
    cdf = np.cumsum(pmf)
    return cdf / cdf[-1]


def order_statistic_bounds(n: int, q: float, confidence: float = 0.95) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) with P(x_(l) <= true q-quantile < x_(u)) >= confidence.

    The count B of samples below the true quantile is Binomial(n, q). l is the largest rank with
    P(B < l) <= alpha/2 and u the smallest with P(B >= u) <= alpha/2, so each tail holds at most
    alpha/2. A side that would need a rank outside 1..n is None: the sample is too small to bound it.
    """
    if n < 1:
        return None, None
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must be in (0, 1)")
    alpha = 1.0 - confidence
    cdf = _binomial_cdf(n, q)  # cdf[k] = P(B <= k)
    # P(B < l) = cdf[l - 1] <= alpha/2; a tiny tolerance keeps exact ties (n=10 median) stable.
    eps = 1e-12
    below = np.nonzero(cdf <= alpha / 2 + eps)[0]
    lower = int(below[-1]) + 1 if below.size else None  # rank l = k + 1 for the largest such k
    # P(B >= u) = 1 - cdf[u - 1] <= alpha/2  <=>  cdf[u - 1] >= 1 - alpha/2
    above = np.nonzero(cdf >= 1.0 - alpha / 2 - eps)[0]
    upper = int(above[0]) + 1 if above.size else None
    if upper is not None and upper > n:
        upper = None
    if lower is not None and lower < 1:
        lower = None
    return lower, upper


def quantile_ci(
    sorted_values: Sequence[float] | np.ndarray, q: float, confidence: float = 0.95
) -> tuple[float | None, float | None]:
    """Distribution-free confidence interval of the q-quantile from order statistics."""
    lower, upper = order_statistic_bounds(len(sorted_values), q, confidence)
    lo = float(sorted_values[lower - 1]) if lower is not None else None
    hi = float(sorted_values[upper - 1]) if upper is not None else None
    return lo, hi


@lru_cache(maxsize=64)  # a report asks it per unbounded figure, for the same few quantiles
def min_samples_to_bound(q: float, confidence: float = 0.95) -> int:
    """The fewest samples whose order statistics bound the q-quantile on both sides at ``confidence``.

    The upper side is the binding one for a tail percentile: the largest sample is an upper bound of
    the true q-quantile with probability 1 - q^n, so n must satisfy q^n <= alpha/2 (367 for p99 at
    95%); the lower side likewise needs (1 - q)^n <= alpha/2."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q={q} must be in (0, 1)")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must be in (0, 1)")
    half = (1.0 - confidence) / 2.0
    n = max(math.ceil(math.log(half) / math.log(q)), math.ceil(math.log(half) / math.log1p(-q)))
    # The closed form is exact up to rounding; confirm with the exact ranks and step if needed.
    n = max(1, n - 1)
    while None in order_statistic_bounds(n, q, confidence):
        n += 1
    return n


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(prob: float, df: float) -> float:
    """Quantile of Student's t distribution (bisection on the exact CDF; no scipy needed)."""
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob={prob} must be in (0, 1)")
    if df <= 0:
        raise ValueError(f"df={df} must be > 0")
    if prob < 0.5:
        return -t_quantile(1.0 - prob, df)
    lo, hi = 0.0, max(10.0, NormalDist().inv_cdf(prob) * 4)
    while _t_cdf(hi, df) < prob:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_cdf(mid, df) < prob:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


class Sample:
    """Statistics of one set of timings (any unit; the caller names it). Raw values are kept."""

    def __init__(self, values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> None:
        self.values = np.asarray(values, dtype=np.float64)
        if self.values.ndim != 1 or self.values.size == 0:
            raise ValueError("a Sample needs a non-empty 1-D sequence of values")
        self.confidence = confidence

    @cached_property
    def sorted(self) -> np.ndarray:
        return np.sort(self.values)

    @cached_property
    def n(self) -> int:
        return int(self.values.size)

    @cached_property
    def mean(self) -> float:
        return float(self.values.mean())

    @cached_property
    def std(self) -> float:
        """Sample standard deviation (n - 1); 0 for a single value."""
        return float(self.values.std(ddof=1)) if self.n > 1 else 0.0

    @cached_property
    def min(self) -> float:
        return float(self.sorted[0])

    @cached_property
    def max(self) -> float:
        return float(self.sorted[-1])

    @cached_property
    def median(self) -> float:
        return quantile(self.sorted, 0.5)

    @cached_property
    def cv(self) -> float:
        """Coefficient of variation, std / mean."""
        return self.std / self.mean if self.mean else math.inf

    def percentile(self, q: float) -> float:
        return quantile(self.sorted, q)

    def percentile_ci(self, q: float) -> tuple[float | None, float | None]:
        return quantile_ci(self.sorted, q, self.confidence)

    @cached_property
    def median_ci(self) -> tuple[float | None, float | None]:
        return self.percentile_ci(0.5)

    @cached_property
    def median_rel_half_width(self) -> float:
        """The larger distance from the median to an end of its interval, relative to the median;
        infinite while the sample is too small to bound it."""
        lo, hi = self.median_ci
        if lo is None or hi is None or self.median <= 0:
            return math.inf
        return max(self.median - lo, hi - self.median) / self.median

    @cached_property
    def mad(self) -> float:
        return float(np.median(np.abs(self.values - self.median)))

    @cached_property
    def robust_cv(self) -> float:
        """MAD scaled to a normal's sigma, over the median: the spread of the bulk, blind to outliers."""
        return 1.4826 * self.mad / self.median if self.median else math.inf

    @cached_property
    def outlier_count(self) -> int:
        """Values whose modified z-score exceeds OUTLIER_MODIFIED_Z."""
        if self.mad == 0:
            return 0
        z = 0.6745 * np.abs(self.values - self.median) / self.mad
        return int((z > OUTLIER_MODIFIED_Z).sum())


@dataclass(frozen=True)
class ThroughputEstimate:
    """Samples per second over a measured window, with the batch-means confidence interval."""

    samples_per_s: float
    ci_low: float | None
    ci_high: float | None
    blocks: int
    window_s: float

    @property
    def rel_half_width(self) -> float:
        if self.ci_low is None or self.ci_high is None:
            return math.inf
        return max(self.samples_per_s - self.ci_low, self.ci_high - self.samples_per_s) / self.samples_per_s


def throughput_estimate(
    durations_ns: Sequence[float] | np.ndarray,
    samples_per_iteration: int,
    confidence: float = 0.95,
    max_blocks: int = 20,
) -> ThroughputEstimate:
    """Throughput of back-to-back iterations and its interval.

    The point estimate is exact: all samples processed over the whole measured window. The interval
    splits the iterations into at most ``max_blocks`` blocks of consecutive iterations, takes each
    block's time per sample, and forms a t-interval of their mean; the throughput interval is the
    reciprocal of that interval's ends.
    """
    d = np.asarray(durations_ns, dtype=np.float64)
    if d.size == 0:
        raise ValueError("no iterations")
    window_ns = float(d.sum())
    total_samples = samples_per_iteration * d.size
    rate = total_samples / (window_ns / 1e9)
    blocks = min(max_blocks, d.size)
    if blocks < 2:
        return ThroughputEstimate(rate, None, None, blocks, window_ns / 1e9)
    parts = np.array_split(d, blocks)
    per_sample = np.array([p.sum() / (p.size * samples_per_iteration) for p in parts])
    weights = np.array([p.size for p in parts], dtype=np.float64)
    centre = float((per_sample * weights).sum() / weights.sum())  # equals window / total samples
    half = t_quantile(0.5 + confidence / 2, blocks - 1) * float(per_sample.std(ddof=1)) / math.sqrt(blocks)
    hi = 1e9 / (centre - half) if centre - half > 0 else None
    lo = 1e9 / (centre + half)
    return ThroughputEstimate(rate, lo, hi, blocks, window_ns / 1e9)
