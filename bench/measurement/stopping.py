"""When the measurement loop stops: the stopping rule, evaluated between timed regions only.

It stops when the median (latency) or throughput interval is within ``target_rel_ci`` and, in the
latency scenario, the ranked tail percentile has a bounded interval within ``target_rel_ci_tail``,
after ``min_duration_s`` and enough samples ("converged"); else at the caps ("max_duration",
"max_iterations"); early and flagged where waiting cannot help: the tail cannot get the samples
that bound it before the cap ("tail_unreachable"), or an interval no longer narrows with more
samples ("noise_limited"). ``settings`` is the loop's LoopSettings.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from bench.measurement.stats import Sample, min_samples_to_bound, throughput_estimate

__all__ = ["StoppingRule", "NOISE_LIMIT_GROWTH", "NOISE_LIMIT_RATIO", "NOISE_LIMIT_CHECKS", "NOISE_LIMIT_RATIO_TAIL",
           "NOISE_LIMIT_CHECKS_TAIL"]


def _rel_ci(settings: Any, sample: Sample, block: int) -> float:
    if settings.scenario == "latency":
        return sample.median_rel_half_width
    return throughput_estimate(sample.values, settings.batch_size * block, settings.confidence).rel_half_width


# The noise-limited rule: when the samples have grown NOISE_LIMIT_GROWTH-fold since an earlier check,
# an interval that shrinks as 1/sqrt(n) would be half as wide; one still wider than NOISE_LIMIT_RATIO of
# what it was, at two checks in a row, no longer narrows with more samples (drift, a neighbour's
# bursts, frequency changes): more time would buy little, so stop and say so.
NOISE_LIMIT_GROWTH = 4.0
NOISE_LIMIT_RATIO = 0.8
NOISE_LIMIT_CHECKS = 2
# The tail's interval (order statistics near the extreme) is a noisier estimate of its own width than
# the median's: it must stay at this fraction or more before it counts.
NOISE_LIMIT_RATIO_TAIL = 0.9
NOISE_LIMIT_CHECKS_TAIL = 3


class StoppingRule:
    """The stopping rule, evaluated between timed regions only."""

    def __init__(self, settings: Any, block: int, min_samples: int, max_samples: int) -> None:
        self.s = settings
        self.block = block
        self.min_samples = min_samples
        self.max_samples = max_samples
        self.min_ns = int(settings.min_duration_s * 1e9)
        self.max_ns = int(settings.max_duration_s * 1e9)
        self.tail = settings.tail_quantile if settings.scenario == "latency" else None
        self.tail_min_samples = min_samples_to_bound(self.tail, settings.confidence) if self.tail else None
        self.rel_ci = math.inf
        self.rel_ci_tail = math.inf if self.tail else 0.0
        # (elapsed ns, samples, rel_ci, rel_ci_tail) at each check
        self.history: list[tuple[int, int, float, float]] = []
        self.limited_checks = [0, 0]  # consecutive checks at which the main / the tail interval was stuck

    def check(self, samples: list[int], elapsed: int) -> Optional[str]:
        """Why to stop now, or None to go on."""
        n = len(samples)
        sample = Sample(samples, self.s.confidence) if n >= 2 else None
        self.rel_ci = _rel_ci(self.s, sample, self.block) if sample is not None else math.inf
        if self.tail:
            self.rel_ci_tail = _tail_rel_ci(sample, self.tail) if sample is not None else math.inf
        self.history.append((elapsed, n, self.rel_ci, self.rel_ci_tail))
        enough = n >= self.min_samples and elapsed >= self.min_ns
        main_ok = self.rel_ci <= self.s.target_rel_ci
        tail_ok = self.rel_ci_tail <= self.s.target_rel_ci_tail
        if enough and main_ok and tail_ok:
            return "converged"
        if elapsed >= self.max_ns:
            return "max_duration"
        if n >= self.max_samples:
            return "max_iterations"
        short = bool(self.tail_min_samples) and n < self.tail_min_samples  # type: ignore[operator]
        # The tail cannot be bounded before max_duration_s at this pace.
        unreachable = short and n + (self.max_ns - elapsed) / (elapsed / n) < self.tail_min_samples  # type: ignore[operator]
        if enough and main_ok and unreachable:
            # Stop now (flagged) rather than spend the whole cap on a percentile that stays unbounded.
            return "tail_unreachable"
        # A tail still short of the samples that bound it, and able to get them, is not noise-limited:
        # it needs samples, and the cap decides when to give up on them.
        if enough and self.s.stop_when_noise_limited and self._noise_limited() and (unreachable or not short):
            return "noise_limited"
        return None

    def _noise_limited(self) -> bool:
        """An interval still above its target (the median's or throughput's, or the tail's) at least
        a ratio of its width when the samples were NOISE_LIMIT_GROWTH times fewer, at consecutive
        checks: the run cannot converge by waiting. Intervals that are unbounded, or already on
        target, do not count. The tail's interval (order statistics near the extreme) estimates its
        own width more noisily than the median's: it must hold a higher ratio at more checks."""
        now = self.history[-1]
        earlier = [h for h in self.history[:-1] if h[1] * NOISE_LIMIT_GROWTH <= now[1]]
        then = earlier[-1] if earlier else None
        stuck = []
        for index, target, ratio in ((2, self.s.target_rel_ci, NOISE_LIMIT_RATIO),
                                     (3, self.s.target_rel_ci_tail, NOISE_LIMIT_RATIO_TAIL)):
            rel_now = now[index]
            rel_then = then[index] if then is not None else math.inf
            stuck.append(math.isfinite(rel_now) and rel_now > target and math.isfinite(rel_then)
                         and rel_now >= ratio * rel_then)
        self.limited_checks = [count + 1 if s else 0 for count, s in zip(self.limited_checks, stuck)]
        return self.limited_checks[0] >= NOISE_LIMIT_CHECKS or self.limited_checks[1] >= NOISE_LIMIT_CHECKS_TAIL


def _tail_rel_ci(sample: Sample, q: float) -> float:
    """The relative half-width of the q-percentile's interval; inf while a side is unbounded."""
    lo, hi = sample.percentile_ci(q)
    value = sample.percentile(q)
    if lo is None or hi is None or value <= 0:
        return math.inf
    return max(value - lo, hi - value) / value
