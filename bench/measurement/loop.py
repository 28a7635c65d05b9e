"""The measurement loop, written once for every backend.

Inside a timed region there is nothing but the clock, ``run`` and ``synchronize``. Everything else
(the stopping rule, bench.measurement.stopping; progress) happens between timed regions, on a schedule that thins out as the run
grows, so that its cost never lands inside a sample.

Latency scenario: one request at a time; each sample is one clock pair around ``block`` requests
(block = 1 unless a request is so short that the loop's own cost would exceed 1% of it).
Throughput scenario: back-to-back blocks of requests with one synchronize per block; each sample is
the time of one block, and consecutive samples tile the measured window.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from bench.measurement.clock import REAL_CLOCK, Clock, reader
from bench.measurement.stopping import StoppingRule
from bench.measurement.timing import timed_runs

__all__ = ["LoopSettings", "LoopResult", "warm_up", "measure", "measure_timing_overhead", "block_size_for"]

Progress = Callable[[str, dict[str, Any]], None]

# The loop's own cost (a clock read and bookkeeping) may be at most this fraction of a sample.
CLOCK_COST_FRACTION = 0.01
MAX_BLOCK = 10_000
# The stopping rule is evaluated at most this often, and at least every 10% of the elapsed time.
MIN_CHECK_INTERVAL_NS = 200_000_000


@dataclass(frozen=True)
class LoopSettings:
    scenario: str
    batch_size: int
    warmup_iterations: int
    warmup_s: float
    warmup_max_s: float
    min_iterations: int
    min_duration_s: float
    max_duration_s: float
    target_rel_ci: float
    confidence: float
    max_iterations: int
    # The latency scenario also bounds this percentile (the one rankings use); None: the median alone.
    tail_quantile: Optional[float] = None
    target_rel_ci_tail: float = 0.05
    # Stop, flagged, once the interval no longer shrinks with more samples (see _noise_limited).
    stop_when_noise_limited: bool = True


@dataclass
class LoopResult:
    """Raw timings of one measurement, as the worker sends them back. Statistics derive from these."""

    scenario: str
    batch_size: int
    block: int  # requests per sample
    samples_ns: list[int]  # one per clock pair: the time of ``block`` requests
    warmup_ns: list[int]  # each warm-up request, timed alone
    warmup_stop: str  # "iterations_and_time" or "max_time"
    timing_overhead_ns: float
    clock_resolution_ns: float
    converged: bool
    # "converged", "max_duration", "max_iterations", "tail_unreachable" (the tail percentile cannot be
    # bounded before max_duration_s), "noise_limited" (the interval stopped shrinking)
    stop_reason: str
    elapsed_ns: int  # wall time from the first to the last clock read of the measurement
    checks: int
    final_rel_ci: float
    start_monotonic_ns: int = 0
    end_monotonic_ns: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # The tail rule (latency scenario): the percentile it bounds, its interval's relative half-width
    # at the stop (inf: unbounded), the samples that bound it, and the (elapsed s, rel_ci) of each check.
    tail_quantile: Optional[float] = None
    final_rel_ci_tail: float = math.inf
    tail_min_samples: Optional[int] = None
    check_history: list[list[float]] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return self.block * len(self.samples_ns)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["final_rel_ci"] = _finite_or_none(self.final_rel_ci)
        data["final_rel_ci_tail"] = _finite_or_none(self.final_rel_ci_tail)
        data["check_history"] = [[e, _finite_or_none(r)] for e, r in self.check_history]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LoopResult":
        data = dict(data)
        for key in ("final_rel_ci", "final_rel_ci_tail"):
            if data.get(key) is None:
                data[key] = math.inf
        data["check_history"] = [[e, math.inf if r is None else r] for e, r in data.get("check_history") or []]
        return cls(**data)


def _finite_or_none(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None


def measure_timing_overhead(clock: Clock, samples: int = 1000) -> float:
    """What one sample costs the loop itself: a clock read plus the bookkeeping around it, from
    the throughput loop run on no-ops (the latency loop has the same inside its timed region)."""
    times: list[int] = []
    _throughput_chunk(_noop, _noop, reader(clock), 1, times, until=2**62, cap=samples)
    return sum(times) / len(times)


def _noop() -> None:
    return None


def block_size_for(request_ns: float, overhead_ns: float) -> int:
    """Requests per sample so that the loop's own cost stays within 1% of what a sample measures."""
    if overhead_ns <= 0:
        return 1
    if request_ns <= 0:
        return MAX_BLOCK
    needed = math.ceil(overhead_ns / (CLOCK_COST_FRACTION * request_ns))
    return max(1, min(MAX_BLOCK, needed))


def warm_up(
    run: Callable[[], Any],
    synchronize: Callable[[], None],
    settings: LoopSettings,
    clock: Clock = REAL_CLOCK,
) -> tuple[list[int], str]:
    """Bounded warm-up: at least warmup_iterations and warmup_s, never longer than warmup_max_s.
    Returns each request's time and why it stopped."""
    runs = timed_runs(run, synchronize, settings.warmup_iterations, settings.warmup_s, settings.warmup_max_s, clock)
    return runs.durations_ns, "iterations_and_time" if runs.stop == "runs_and_time" else "max_time"


def measure(
    run: Callable[[], Any],
    synchronize: Callable[[], None],
    settings: LoopSettings,
    warmup: tuple[list[int], str],
    clock: Clock = REAL_CLOCK,
    on_progress: Optional[Progress] = None,
    in_flight: int = 1,
) -> LoopResult:
    """Calibrate the block from the warm-up, then measure until the stopping rule holds.

    ``in_flight`` > 1 (a session that keeps several requests running, such as OpenVINO's async
    queue) makes the throughput loop pipelined: no synchronize between blocks, which would drain
    the queue and idle all but one stream; samples tile the window across checks, and the one
    synchronize at the end is added to the last sample."""
    progress = on_progress or (lambda phase, info: None)
    clock = reader(clock)
    warmup_ns, warm_stop = warmup
    cost = measure_timing_overhead(clock)
    tail = sorted(warmup_ns[-max(1, len(warmup_ns) // 2):])
    # A warm-up sample holds the loop's own cost besides the request: take it out before sizing blocks.
    block = block_size_for(max(0.0, tail[len(tail) // 2] - cost), cost)
    resolution_ns = time.get_clock_info("perf_counter").resolution * 1e9

    samples: list[int] = []
    min_samples = math.ceil(settings.min_iterations / block)
    max_samples = max(min_samples, settings.max_iterations // block)
    rule = StoppingRule(settings, block, min_samples, max_samples)
    checks = 0
    progress("measure", {"block": block})

    latency = settings.scenario == "latency"
    pipelined = not latency and in_flight > 1
    timed = _latency_chunk if latency else _throughput_chunk
    if pipelined:
        carried: dict[str, Optional[int]] = {"prev": None}

        def timed(run, synchronize, clock, block, samples, until, cap):  # type: ignore[no-redef]
            return _pipelined_chunk(run, clock, block, samples, until, cap, carried)
    start_mono = time.monotonic_ns()
    start = clock()
    next_check = start + MIN_CHECK_INTERVAL_NS
    while True:
        now = timed(run, synchronize, clock, block, samples, next_check, max_samples)
        # Between timed regions: the stopping rule.
        elapsed = now - start
        checks += 1
        stop_reason = rule.check(samples, elapsed)
        if stop_reason is not None:
            break
        progress("measure", _estimate(samples, block, elapsed, rule.rel_ci, settings.target_rel_ci,
                                      rule.min_ns, rule.max_ns))
        next_check = now + max(MIN_CHECK_INTERVAL_NS, elapsed // 10)
    if pipelined:
        # The requests still in flight belong to the window: wait for them, charge the last sample.
        synchronize()
        end = clock()
        samples[-1] += end - now
        now = end
    end_mono = time.monotonic_ns()
    return LoopResult(
        scenario=settings.scenario,
        batch_size=settings.batch_size,
        block=block,
        samples_ns=samples,
        warmup_ns=warmup_ns,
        warmup_stop=warm_stop,
        timing_overhead_ns=cost,
        clock_resolution_ns=resolution_ns,
        converged=stop_reason == "converged",
        stop_reason=stop_reason,
        elapsed_ns=now - start,
        checks=checks,
        final_rel_ci=rule.rel_ci,
        start_monotonic_ns=start_mono,
        end_monotonic_ns=end_mono,
        extra={"in_flight": in_flight, "pipelined": pipelined},
        tail_quantile=rule.tail,
        final_rel_ci_tail=rule.rel_ci_tail if rule.tail else math.inf,
        tail_min_samples=rule.tail_min_samples,
        check_history=[[e / 1e9, r] for e, _, r, _ in rule.history],
    )


def _latency_chunk(run: Callable[[], Any], synchronize: Callable[[], None], clock: Callable[[], int], block: int,
                   samples: list[int], until: int, cap: int) -> int:
    """Timed requests, one clock pair around each block, until the clock passes ``until``."""
    append = samples.append
    if block == 1:
        # The usual case, without the inner loop: nothing between the clock reads but the request.
        while True:
            t0 = clock()
            run()
            synchronize()
            now = clock()
            append(now - t0)
            if now >= until or len(samples) >= cap:
                return now
    while True:
        t0 = clock()
        for _ in itertools.repeat(None, block):
            run()
            synchronize()
        now = clock()
        append(now - t0)
        if now >= until or len(samples) >= cap:
            return now


def _throughput_chunk(run: Callable[[], Any], synchronize: Callable[[], None], clock: Callable[[], int], block: int,
                      samples: list[int], until: int, cap: int) -> int:
    """Back-to-back blocks, one synchronize and one clock read per block; consecutive samples tile
    the chunk's window. A chunk starts with its own clock read, so the stopping rule's time between
    chunks is never part of the window."""
    append = samples.append
    prev = clock()
    while True:
        for _ in itertools.repeat(None, block):
            run()
        synchronize()
        now = clock()
        append(now - prev)
        prev = now
        if now >= until or len(samples) >= cap:
            return now


def _pipelined_chunk(run: Callable[[], Any], clock: Callable[[], int], block: int, samples: list[int], until: int,
                     cap: int, carried: dict[str, Optional[int]]) -> int:
    """Blocks submitted back to back with no synchronize: ``run`` returns when a request slot is
    free. Each sample runs from the previous clock read, across chunks, so the stopping rule's time
    stays inside the window (the device keeps working meanwhile)."""
    append = samples.append
    prev = carried["prev"] if carried["prev"] is not None else clock()
    while True:
        for _ in itertools.repeat(None, block):
            run()
        now = clock()
        append(now - prev)
        prev = now
        if now >= until or len(samples) >= cap:
            carried["prev"] = now
            return now


def _estimate(samples: list[int], block: int, elapsed: int, rel_ci: float, target: float,
              min_ns: int, max_ns: int) -> dict[str, Any]:
    """A live estimate of the time left: an interval's width shrinks as 1/sqrt(n)."""
    n = len(samples)
    per_sample = elapsed / n
    if math.isfinite(rel_ci) and rel_ci > 0:
        needed = n * (rel_ci / target) ** 2
        left = max(0.0, needed - n) * per_sample
    else:
        left = float(max_ns - elapsed)
    left = max(left, min_ns - elapsed)
    left = min(left, max_ns - elapsed)
    return {
        "iterations": n * block,
        "elapsed_s": elapsed / 1e9,
        "rel_ci": _finite_or_none(rel_ci),
        "left_s": max(0.0, left / 1e9),
        "median_ms": sorted(samples)[n // 2] / block / 1e6,
    }
