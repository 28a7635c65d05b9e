"""Drift for the continual-learning scenario: the shift a seeded input generator undergoes at a set
time, the features a detector watches, and the detector itself. numpy only.

- ``DriftSpec`` / ``apply_drift``: images (N, C, H, W) get a brightness shift (a fraction of the
  steady inputs' value range), a contrast factor about their mean and a seeded fixed texture (a
  grating plus noise, a fraction of the range), clipped to the steady range; series (N, T, C) get a
  level shift (in each channel's steady standard deviations) and a variance factor about each
  channel's steady mean. Scales come from the steady inputs (``InputStats``), so one spec means the
  same shift for inputs in [0, 1], ImageNet-normalised tensors or sensor units.
- ``features``: what the detector compares, per sample, computed on the served inputs in the serving
  path (its cost is part of each request's latency): images, each channel's mean and standard
  deviation and the mean absolute horizontal gradient (texture); series, each channel's mean and
  standard deviation over the window; anything else, the mean and standard deviation. Input
  statistics, not the model's embeddings: the served model's outputs are scores and maps, and a
  second model pass per request would double the serving cost the scenario measures.
- ``DriftDetector``: a two-sample test between a reference (the first ``reference`` samples served)
  and a sliding window of the last ``window`` samples, every ``check_every`` samples once the window
  holds only samples after the reference: Kolmogorov-Smirnov per feature with a Bonferroni
  correction (``ks``, the asymptotic p-value), or the maximum mean discrepancy with a Gaussian kernel
  on the reference-standardised features and a permutation p-value (``mmd``). It fires at the first
  check whose p-value is below ``alpha``; each check is a test at level ``alpha`` (Bonferroni is
  conservative), so without drift a check raises a false alarm with probability at most ``alpha``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np

__all__ = ["DriftSpec", "InputStats", "apply_drift", "features", "ks_statistic", "ks_pvalue", "mmd_pvalue",
           "DriftDetector", "DETECTORS", "min_permutations"]

DETECTORS = ("ks", "mmd")


@dataclass(frozen=True)
class DriftSpec:
    """The shift; a value of 0 (1 for the factors) leaves that part out."""

    brightness: float = 0.15  # images: added, as a fraction of the steady value range
    contrast: float = 1.0  # images: factor about the steady mean
    texture: float = 0.05  # images: amplitude of a fixed seeded pattern, as a fraction of the range
    level: float = 1.0  # series: added, in steady standard deviations of each channel
    scale: float = 2.0  # series: factor of the deviation from each channel's steady mean
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InputStats:
    """The steady inputs' scales that a DriftSpec is measured in."""

    low: float
    high: float
    mean: np.ndarray  # per channel (images: axis 1; series: the last axis)
    std: np.ndarray

    @classmethod
    def of(cls, steady: np.ndarray) -> "InputStats":
        x = np.asarray(steady, dtype=np.float64)
        if x.ndim == 4:
            axes: tuple[int, ...] = (0, 2, 3)
        elif x.ndim == 3:
            axes = (0, 1)
        else:
            axes = tuple(range(x.ndim))
        return cls(float(x.min()), float(x.max()), x.mean(axis=axes), x.std(axis=axes))


def _texture(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """A fixed pattern in [-1, 1] of one sample's shape (C, H, W): a diagonal grating of period 8
    pixels plus seeded noise, the same for every image (a new surface finish, a lens smudge)."""
    c, h, w = shape
    rng = np.random.default_rng(seed + 7919)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    grating = np.sin(2 * np.pi * (xx + yy) / 8.0)
    noise = rng.uniform(-1.0, 1.0, size=(c, h, w))
    return (0.5 * grating[None] + 0.5 * noise).astype(np.float32)


def apply_drift(batch: np.ndarray, spec: DriftSpec, stats: InputStats) -> np.ndarray:
    """``batch`` as the drifted generator makes it (see the module docstring); float32."""
    x = np.asarray(batch, dtype=np.float32)
    if x.ndim == 4:
        span = stats.high - stats.low
        mean = stats.mean.astype(np.float32).reshape(1, -1, 1, 1)
        out = mean + (x - mean) * spec.contrast + spec.brightness * span
        if spec.texture:
            out = out + spec.texture * span * _texture(x.shape[1:], spec.seed)[None]
        return np.clip(out, stats.low, stats.high).astype(np.float32)
    if x.ndim == 3:
        mean = stats.mean.astype(np.float32).reshape(1, 1, -1)
        std = stats.std.astype(np.float32).reshape(1, 1, -1)
        return (mean + (x - mean) * spec.scale + spec.level * std).astype(np.float32)
    raise ValueError(f"inputs of shape {list(x.shape)} have no drift defined: images (N, C, H, W) or series "
                     "(N, T, C)")


def features(batch: np.ndarray) -> np.ndarray:
    """Per-sample features (N, F) of ``batch``; see the module docstring."""
    x = np.asarray(batch, dtype=np.float32)
    n = x.shape[0]
    if x.ndim == 4:
        flat = x.reshape(n, x.shape[1], -1)
        gradient = np.abs(np.diff(x, axis=3)).reshape(n, -1).mean(axis=1, keepdims=True)
        return np.concatenate([flat.mean(axis=2), flat.std(axis=2), gradient], axis=1)
    if x.ndim == 3:
        return np.concatenate([x.mean(axis=1), x.std(axis=1)], axis=1)
    flat = x.reshape(n, -1)
    return np.stack([flat.mean(axis=1), flat.std(axis=1)], axis=1)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def ks_pvalue(d: float, n: int, m: int) -> float:
    """The asymptotic p-value of a two-sample KS statistic ``d`` (samples of n and m): the Kolmogorov
    distribution's tail at (sqrt(e) + 0.12 + 0.11 / sqrt(e)) d, e = n m / (n + m) (Stephens' correction
    for small samples)."""
    en = math.sqrt(n * m / (n + m))
    lam = (en + 0.12 + 0.11 / en) * d
    if lam < 1e-3:
        return 1.0
    total = 0.0
    for j in range(1, 101):
        term = 2.0 * (-1) ** (j - 1) * math.exp(-2.0 * j * j * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
    return float(min(1.0, max(0.0, total)))


def min_permutations(alpha: float) -> int:
    """The fewest permutations whose smallest p-value, 1 / (1 + permutations), is below ``alpha``."""
    return math.floor(1.0 / alpha)


def mmd_pvalue(reference: np.ndarray, window: np.ndarray, permutations: int, rng: np.random.Generator
               ) -> tuple[float, float]:
    """(MMD^2, permutation p-value) of two samples of feature vectors: features standardised by the
    reference's mean and standard deviation, a Gaussian kernel whose bandwidth is the median pairwise
    distance of the pooled samples, the biased MMD^2 estimate, and its rank among ``permutations``
    random relabellings (p = (1 + #{permuted >= observed}) / (1 + permutations))."""
    mean, std = reference.mean(axis=0), reference.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    pooled = (np.concatenate([reference, window]) - mean) / std
    sq = np.sum(pooled * pooled, axis=1)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    upper = dist2[np.triu_indices(len(pooled), k=1)]
    bandwidth2 = float(np.median(upper)) or 1.0
    kernel = np.exp(-dist2 / bandwidth2)
    n = len(reference)

    def mmd(order: np.ndarray) -> float:
        x, y = order[:n], order[n:]
        return float(kernel[np.ix_(x, x)].mean() + kernel[np.ix_(y, y)].mean() - 2.0 * kernel[np.ix_(x, y)].mean())

    index = np.arange(len(pooled))
    observed = mmd(index)
    exceed = sum(mmd(rng.permutation(index)) >= observed for _ in range(permutations))
    return observed, (1.0 + exceed) / (1.0 + permutations)


@dataclass
class DriftDetector:
    """A streaming two-sample test on per-sample features; see the module docstring. ``update`` takes
    each served batch's features and returns the detection (a dict) at the check that fires, else
    None; after it has fired it only counts samples."""

    method: str = "ks"
    reference: int = 64
    window: int = 32
    check_every: int = 16
    alpha: float = 0.001
    permutations: int = 1000
    seed: int = 0
    seen: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)
    detection: Optional[dict[str, Any]] = None
    _reference: list[np.ndarray] = field(default_factory=list, repr=False)
    _recent: deque = field(default_factory=deque, repr=False)
    _since_check: int = 0
    _after_reference: int = 0
    _check_ns: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.method not in DETECTORS:
            raise ValueError(f"detector method {self.method!r} is not one of {', '.join(DETECTORS)}")
        if self.reference < 2 or self.window < 2 or self.check_every < 1:
            raise ValueError(f"reference ({self.reference}) and window ({self.window}) must be >= 2 and "
                             f"check_every ({self.check_every}) >= 1")
        if not 0.0 < self.alpha < 1.0 or self.permutations < 1:
            raise ValueError(f"alpha ({self.alpha}) must be in (0, 1) and permutations ({self.permutations}) >= 1")
        if self.method == "mmd" and 1.0 / (1.0 + self.permutations) >= self.alpha:
            raise ValueError(f"{self.permutations} permutations cannot give a p-value below alpha={self.alpha} (the "
                             f"smallest is 1/(1 + permutations)): use at least {min_permutations(self.alpha)}")
        self._recent = deque(maxlen=self.window)
        self._rng = np.random.default_rng(self.seed)

    def update(self, feats: np.ndarray) -> Optional[dict[str, Any]]:
        detection = None
        for row in np.asarray(feats, dtype=np.float64):
            self.seen += 1
            if self.detection is not None:
                continue
            if len(self._reference) < self.reference:
                self._reference.append(row)
                continue
            self._recent.append(row)
            self._after_reference += 1
            self._since_check += 1
            if self._after_reference >= self.window and self._since_check >= self.check_every:
                self._since_check = 0
                found = self._check()
                if found is not None:
                    detection = found
        return detection

    def _check(self) -> Optional[dict[str, Any]]:
        t0 = time.perf_counter_ns()
        ref, win = np.stack(self._reference), np.stack(self._recent)
        if self.method == "ks":
            p_each = [ks_pvalue(ks_statistic(ref[:, j], win[:, j]), len(ref), len(win)) for j in range(ref.shape[1])]
            worst = int(np.argmin(p_each))
            # Bonferroni over the features: the check's p-value is at most alpha when no feature moved.
            p_value = min(1.0, p_each[worst] * len(p_each))
            statistic = ks_statistic(ref[:, worst], win[:, worst])
            check = {"sample": self.seen, "statistic": statistic, "p_value": p_value, "feature": worst}
        else:
            statistic, p_value = mmd_pvalue(ref, win, self.permutations, self._rng)
            check = {"sample": self.seen, "statistic": statistic, "p_value": p_value}
        check["cost_ms"] = (time.perf_counter_ns() - t0) / 1e6
        self.checks.append(check)
        if p_value < self.alpha:
            self.detection = check
            return check
        return None

    def summary(self) -> dict[str, Any]:
        costs = [c["cost_ms"] for c in self.checks]
        return {"method": self.method, "reference": self.reference, "window": self.window,
                "check_every": self.check_every, "alpha": self.alpha,
                "permutations": self.permutations if self.method == "mmd" else None, "samples_seen": self.seen,
                "checks": len(self.checks), "detection": self.detection,
                "check_cost_ms_median": float(np.median(costs)) if costs else None,
                "check_cost_ms_max": max(costs) if costs else None,
                "checks_tail": self.checks[-50:]}
