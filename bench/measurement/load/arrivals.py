"""When the requests of a load scenario arrive, drawn before the run: Poisson arrivals at a rate
(``server``) from one seeded sequence of unit-rate gaps shared by every rate, and periodic camera
streams with random phases (``multistream``). Offsets in nanoseconds from the window's start."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["poisson_arrivals", "PoissonSource", "stream_arrivals"]


def poisson_arrivals(rate_qps: float, duration_s: float, unit_gaps: np.ndarray) -> np.ndarray:
    """Arrival offsets (ns) of a Poisson process at ``rate_qps`` within ``duration_s``, from
    unit-rate exponential gaps (draw them once: the same gaps serve every rate)."""
    if rate_qps <= 0:
        raise ValueError(f"rate_qps={rate_qps} must be > 0")
    times = np.cumsum(unit_gaps) / rate_qps
    times = times[times < duration_s]
    return np.round(times * 1e9).astype(np.int64)


class PoissonSource:
    """Poisson arrivals at any rate from one seeded sequence of unit-rate exponential gaps, extended
    as needed: every rate sees the same draw, scaled (common random numbers)."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._gaps = np.empty(0)

    def arrivals(self, rate_qps: float, duration_s: float) -> np.ndarray:
        mean = rate_qps * duration_s
        needed = int(mean + 10 * math.sqrt(mean) + 20)  # the expected count plus ten deviations
        if self._gaps.size < needed:
            self._gaps = np.concatenate([self._gaps, self._rng.exponential(1.0, needed - self._gaps.size)])
        return poisson_arrivals(rate_qps, duration_s, self._gaps)

    def probe(self, rate_qps: float, min_s: float, max_s: float, min_count: int) -> tuple[np.ndarray, float]:
        """Arrivals for one probe and its window (s): at least ``min_s`` and ``min_count`` arrivals,
        at most ``max_s``. The window ends at the ``min_count``-th arrival when that comes after
        ``min_s``, so a slow draw does not leave a probe short of requests."""
        times = self.arrivals(rate_qps, max_s)
        end = max_s if times.size < min_count else min(max(min_s, times[min_count - 1] / 1e9 + 1e-9), max_s)
        return times[times < end * 1e9], end


def stream_arrivals(streams: int, fps: float, duration_s: float, seed: int) -> np.ndarray:
    """Frame arrival offsets (ns) of ``streams`` cameras at ``fps``, each with a uniformly random
    phase within the first frame period, merged in time order."""
    if streams < 1 or fps <= 0:
        raise ValueError(f"streams={streams} and fps={fps} must be >= 1 and > 0")
    period = 1.0 / fps
    phases = np.random.default_rng(seed).uniform(0.0, period, size=streams)
    frames = np.arange(int(math.ceil(duration_s * fps)) + 1) * period
    times = (phases[:, None] + frames[None, :]).ravel()
    times = np.sort(times[times < duration_s])
    return np.round(times * 1e9).astype(np.int64)
