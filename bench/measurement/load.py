"""Load scenarios: requests arrive on their own schedule, wait in a queue and are served by the
backend; latency runs from a request's arrival to its completion, queueing included.

- ``server``: arrivals are a Poisson process at ``rate_qps`` (exponential inter-arrival times), one
  sample per request, as in MLPerf's Server scenario.
- ``multistream``: N camera streams, each periodic at ``fps`` with a random phase; one frame per
  request.

The schedule is drawn before the run, so a request's arrival time is known exactly, not observed:
the server loop sleeps until the next arrival, takes what has arrived (up to ``batch_size``, waiting
at most ``max_wait`` after the oldest one for the batch to fill: dynamic batching), runs it to
completion, and stamps each request with the completion time. The session runs one batch at a time
(the worker-thread model; a synchronous session's run + synchronize). A dynamic batch of k < batch_size
requests runs as a full batch: sessions are built for one shape (TensorRT profiles, compiled graphs),
so the k requests pay for batch_size samples, as they would on such an engine.

Every probe is bounded in time: arrivals stop after ``duration``; serving stops ``drain`` later,
and what is still queued then is *dropped* (counted late, its latency censored at the stop time: a
lower bound). In a search, a probe also stops as soon as more requests are late than its
percentile allows, since its verdict is then certain.

Searches (``find_peak`` for the server rate, the stream count for multistream) bisect between a
rate that meets the latency requirement and one that does not, with the same unit-rate random
arrival sequence at every rate (common random numbers: a probe's verdict differs between rates
because of the rate, not the draw).
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from bench.measurement.stats import quantile, quantile_ci, t_quantile

__all__ = ["Clock", "RealClock", "LoadSettings", "ServeResult", "poisson_arrivals", "PoissonSource",
           "stream_arrivals",
           "serve", "serve_async", "latency_summary", "find_peak", "find_streams", "PERCENTILES"]

PERCENTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99}
# Batch-means intervals need this many contiguous blocks, each with 10 / (1 - q) requests at least.
BLOCKS = 10


class Clock:
    """Monotonic nanoseconds and a sleep until a given time. RealClock sleeps, then spins the last
    stretch (sleep overshoots by tens of microseconds); tests use a fake clock that jumps."""

    def now(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def sleep_until(self, t_ns: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class RealClock(Clock):
    SPIN_NS = 200_000

    def now(self) -> int:
        return time.perf_counter_ns()

    def sleep_until(self, t_ns: int) -> None:
        while True:
            left = t_ns - time.perf_counter_ns()
            if left <= 0:
                return
            if left > self.SPIN_NS:
                time.sleep((left - self.SPIN_NS) / 1e9)


@dataclass(frozen=True)
class LoadSettings:
    batch_size: int  # the largest dynamic batch: the session's batch
    max_wait_ns: int  # wait at most this long after the oldest queued request for a batch to fill
    slo_ns: int  # the latency requirement: a request slower than this is late
    drain_ns: int  # serve at most this long after the last arrival; the rest is dropped
    percentile: float = 0.99  # the percentile the requirement applies to (searches, early stop)
    stop_when_failed: bool = False  # stop once more requests are late than the percentile allows


@dataclass
class ServeResult:
    """Raw outcome of one probe: every request's arrival and latency (ns), every batch's size and
    service time, and the window. Statistics derive from these."""

    offered_qps: float  # requests scheduled per second of the arrival window
    arrivals_ns: list[int]  # offsets from the window's start
    latencies_ns: list[int]  # completion - arrival; dropped requests: censored at the stop
    dropped: int  # requests never served (queued at the stop)
    batch_sizes: list[int]
    service_ns: list[int]  # run + synchronize of each batch
    duration_ns: int  # the arrival window
    elapsed_ns: int  # from the window's start to the last completion (or the stop)
    stop_reason: str  # "served", "drain_limit", "failed_early"
    late: int  # requests with latency > slo (dropped included)
    slo_ns: int
    start_monotonic_ns: int = 0
    end_monotonic_ns: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ServeResult":
        return cls(**data)


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


def _allowed_late(n: int, percentile: float) -> int:
    """The most late requests out of n for which the nearest-rank percentile can still be on time."""
    return n - math.ceil(percentile * n)


def _next_batch(times: list[int], i: int, now: int, batch: int, max_wait: int) -> tuple[int, Optional[int]]:
    """The dynamic batch to start at ``now`` from the queue that begins at request ``i``: (its size,
    None), or (0, when to look again): at the next arrival while nothing is queued, and while the
    batch is not full, at the earlier of its filling and ``max_wait`` after its oldest request."""
    first = times[i]
    if first > now:
        return 0, first
    k = min(batch, bisect.bisect_right(times, now, i) - i)
    if k < batch and max_wait > 0 and now < first + max_wait:
        fill = times[i + batch - 1] if i + batch - 1 < len(times) else None
        wake = first + max_wait if fill is None else min(first + max_wait, fill)
        if wake > now:
            return 0, wake
    return k, None


def serve(arrivals_ns: np.ndarray, run_batch: Callable[[int], None], settings: LoadSettings,
          duration_ns: int, clock: Optional[Clock] = None, offered_qps: Optional[float] = None) -> ServeResult:
    """Serve the scheduled arrivals in real (or fake) time; see the module's docstring."""
    clock = clock or RealClock()
    arrivals = np.asarray(arrivals_ns, dtype=np.int64)
    n = int(arrivals.size)
    batch, max_wait = int(settings.batch_size), int(settings.max_wait_ns)
    latencies = np.zeros(n, dtype=np.int64)
    sizes: list[int] = []
    service: list[int] = []
    allowed = _allowed_late(n, settings.percentile)
    late = 0
    start_mono = time.monotonic_ns()
    origin = clock.now()
    absolute = arrivals + origin
    times = absolute.tolist()  # the dispatch path uses Python ints and bisect: no numpy call before a run
    stop_at = origin + duration_ns + settings.drain_ns
    i = 0
    reason = "served"
    last_done = origin
    lags: list[int] = []
    while i < n:
        now = clock.now()
        if now >= stop_at:
            reason = "drain_limit"
            break
        k, wake = _next_batch(times, i, now, batch, max_wait)
        if wake is not None:
            clock.sleep_until(min(wake, stop_at))
            continue
        first = times[i]
        t0 = clock.now()
        if max_wait == 0:  # the engine's own delay: from when the batch could start to when it did
            lags.append(t0 - max(last_done, first))
        run_batch(k)
        done = clock.now()
        sizes.append(k)
        service.append(done - t0)
        waited = done - absolute[i:i + k]
        latencies[i:i + k] = waited
        late += int(np.count_nonzero(waited > settings.slo_ns))
        last_done = done
        i += k
        if settings.stop_when_failed and late > allowed:
            reason = "failed_early"
            break
    dropped = n - i
    if dropped:
        stop = clock.now()
        latencies[i:] = np.maximum(stop - absolute[i:], 0)  # censored: a lower bound
        late += dropped
        last_done = max(last_done, stop)
    rate = offered_qps if offered_qps is not None else (n / (duration_ns / 1e9) if duration_ns else 0.0)
    return ServeResult(
        offered_qps=rate, arrivals_ns=arrivals.tolist(), latencies_ns=latencies.tolist(), dropped=dropped,
        batch_sizes=sizes, service_ns=service, duration_ns=int(duration_ns), elapsed_ns=int(last_done - origin),
        stop_reason=reason, late=late, slo_ns=int(settings.slo_ns),
        start_monotonic_ns=start_mono, end_monotonic_ns=time.monotonic_ns(), extra=_lag_summary(lags),
    )


def _lag_summary(lags: list[int]) -> dict[str, Any]:
    """The engine's dispatch delay (sleep wake-up, bookkeeping, a preempted thread): part of every
    latency it measures, so it is recorded with them."""
    if not lags:
        return {}
    ordered = np.sort(np.asarray(lags, dtype=np.float64))
    return {"engine_lag_p50_us": quantile(ordered, 0.5) / 1e3, "engine_lag_p99_us": quantile(ordered, 0.99) / 1e3,
            "engine_lag_max_us": float(ordered[-1]) / 1e3}


def serve_async(arrivals_ns: np.ndarray, submit: Callable[[int, Callable[[], None]], None], capacity: int,
                settings: LoadSettings, duration_ns: int, clock: Optional[Clock] = None) -> ServeResult:
    """``serve`` for a session with an asynchronous API (OpenVINO's infer-request queue): up to
    ``capacity`` batches in flight at once. ``submit(k, on_done)`` starts a batch of k requests and
    returns; the runtime calls ``on_done()`` from its own thread when the batch completes, which
    stamps its requests. The dispatcher (this thread) forms batches exactly as ``serve`` does, once
    a slot is free."""
    import threading

    clock = clock or RealClock()
    arrivals = np.asarray(arrivals_ns, dtype=np.int64)
    n = int(arrivals.size)
    batch, max_wait = int(settings.batch_size), int(settings.max_wait_ns)
    latencies = np.zeros(n, dtype=np.int64)
    served = np.zeros(n, dtype=bool)
    sizes: list[int] = []
    service: list[int] = []
    allowed = _allowed_late(n, settings.percentile)
    state = {"in_flight": 0, "late": 0, "last_done": 0}
    cond = threading.Condition()
    start_mono = time.monotonic_ns()
    origin = clock.now()
    state["last_done"] = origin
    absolute = arrivals + origin
    times = absolute.tolist()
    stop_at = origin + duration_ns + settings.drain_ns

    def completion(first: int, k: int, started: int) -> Callable[[], None]:
        def on_done() -> None:
            done = clock.now()
            with cond:
                waited = done - absolute[first:first + k]
                latencies[first:first + k] = waited
                served[first:first + k] = True
                state["late"] += int(np.count_nonzero(waited > settings.slo_ns))
                state["last_done"] = max(state["last_done"], done)
                service.append(done - started)
                state["in_flight"] -= 1
                cond.notify_all()
        return on_done

    i = 0
    reason = "served"
    lags: list[int] = []
    slot_free_at = origin
    while i < n:
        with cond:
            if state["in_flight"] >= capacity:
                while state["in_flight"] >= capacity and clock.now() < stop_at:
                    cond.wait(timeout=0.001)
                slot_free_at = clock.now()
            failed = settings.stop_when_failed and state["late"] > allowed
        now = clock.now()
        if failed:
            reason = "failed_early"
            break
        if now >= stop_at:
            reason = "drain_limit"
            break
        k, wake = _next_batch(times, i, now, batch, max_wait)
        if wake is not None:
            clock.sleep_until(min(wake, stop_at))
            continue
        first = times[i]
        with cond:
            state["in_flight"] += 1
        sizes.append(k)
        t0 = clock.now()
        if max_wait == 0:
            lags.append(t0 - max(slot_free_at, first))
        submit(k, completion(i, k, t0))
        i += k
    with cond:  # the batches in flight complete (or the drain limit passes)
        while state["in_flight"] > 0 and clock.now() < stop_at:
            cond.wait(timeout=0.001)
        unserved = np.flatnonzero(~served)
        stop = clock.now()
        if unserved.size:
            latencies[unserved] = np.maximum(stop - absolute[unserved], 0)  # censored: a lower bound
            state["last_done"] = max(state["last_done"], stop)
        late = state["late"] + int(unserved.size)
        last_done = state["last_done"]
    rate = n / (duration_ns / 1e9) if duration_ns else 0.0
    return ServeResult(
        offered_qps=rate, arrivals_ns=arrivals.tolist(), latencies_ns=latencies.tolist(), dropped=int(unserved.size),
        batch_sizes=sizes, service_ns=list(service), duration_ns=int(duration_ns),
        elapsed_ns=int(last_done - origin), stop_reason=reason, late=late, slo_ns=int(settings.slo_ns),
        start_monotonic_ns=start_mono, end_monotonic_ns=time.monotonic_ns(),
        extra={"in_flight_limit": capacity, **_lag_summary(lags)},
    )


def _batch_means_half_width(latencies: np.ndarray, q: float, confidence: float) -> Optional[float]:
    """Half-width of a batch-means interval of the q-quantile: the quantile in each of BLOCKS
    contiguous blocks (in arrival order), t-interval over them. Queueing correlates neighbouring
    requests' latencies, which order-statistics intervals ignore; contiguous blocks carry it."""
    per_block = latencies.size // BLOCKS
    if per_block < 10 / (1 - q):
        return None
    values = [quantile(np.sort(latencies[b * per_block:(b + 1) * per_block]), q) for b in range(BLOCKS)]
    sd = float(np.std(values, ddof=1))
    return t_quantile(0.5 + confidence / 2, BLOCKS - 1) * sd / math.sqrt(BLOCKS)


def latency_summary(result: ServeResult, confidence: float = 0.95) -> dict[str, Any]:
    """Latency percentiles (ms) with intervals, achieved and offered rate, late and dropped requests.

    Each interval is the wider of the distribution-free order-statistics interval (which assumes
    independent latencies) and, where the probe is long enough, a batch-means interval over
    contiguous blocks (which carries the correlation that queueing brings)."""
    lat = np.asarray(result.latencies_ns, dtype=np.float64)
    n = int(lat.size)
    m: dict[str, Any] = {"queries": n, "offered_qps": result.offered_qps, "late_queries": result.late,
                         "late_fraction": result.late / n if n else None, "dropped_queries": result.dropped,
                         "slo_ms": result.slo_ns / 1e6}
    served = n - result.dropped
    m["achieved_qps"] = served / (result.elapsed_ns / 1e9) if result.elapsed_ns > 0 else None
    m["throughput_sps"] = m["achieved_qps"]
    if n == 0:
        return m
    ordered = np.sort(lat)
    for name, q in PERCENTILES.items():
        point = quantile(ordered, q)
        lo, hi = quantile_ci(ordered, q, confidence)
        half = _batch_means_half_width(lat, q, confidence)
        if half is not None:
            lo = min(lo, point - half) if lo is not None else point - half
            hi = max(hi, point + half) if hi is not None else point + half
        m[f"latency_{name}_ms"] = point / 1e6
        m[f"latency_{name}_ci_low_ms"] = None if lo is None else max(lo, 0.0) / 1e6
        m[f"latency_{name}_ci_high_ms"] = None if hi is None else hi / 1e6
    m["latency_mean_ms"] = float(lat.mean()) / 1e6
    m["latency_max_ms"] = float(ordered[-1]) / 1e6
    if result.service_ns:
        m["service_p50_ms"] = quantile(np.sort(np.asarray(result.service_ns, dtype=np.float64)), 0.5) / 1e6
        m["mean_batch_fill"] = float(np.mean(result.batch_sizes))
    m["censored_latencies"] = result.dropped  # their latency is a lower bound
    for key in ("engine_lag_p50_us", "engine_lag_p99_us", "engine_lag_max_us"):
        if key in result.extra:
            m[key] = result.extra[key]
    return m


def meets(result: ServeResult, percentile: float) -> bool:
    """Whether the nearest-rank ``percentile`` of the latencies is within the requirement."""
    n = len(result.latencies_ns)
    return n > 0 and result.late <= _allowed_late(n, percentile)


@dataclass
class SearchResult:
    best: Optional[float]  # the highest rate (or stream count) that met the requirement
    probes: list[dict[str, Any]]  # every probe: value, verdict, p99, late, stop reason
    best_result: Optional[ServeResult]
    stop_reason: str  # "converged", "max_probes", "none_meets", "upper_limit"

    def to_dict(self) -> dict[str, Any]:
        return {"best": self.best, "probes": self.probes, "stop_reason": self.stop_reason}


def _probe_record(value: float, result: ServeResult, ok: bool, percentile: float) -> dict[str, Any]:
    """One probe as the search saw it: its verdict, and the nearest-rank percentile the verdict is
    about (the value at rank ceil(q n): with 100 requests the 99th percentile is the 99th slowest)."""
    lat = sorted(result.latencies_ns)
    at = lat[max(0, math.ceil(percentile * len(lat)) - 1)] / 1e6 if lat else None
    return {"value": value, "meets": ok, "queries": len(lat), "late": result.late, "dropped": result.dropped,
            "percentile": percentile, "latency_at_percentile_ms": at, "stop_reason": result.stop_reason}


def find_peak(probe: Callable[[float], ServeResult], capacity_qps: float, percentile: float,
              rel_tolerance: float = 0.05, max_probes: int = 10,
              out_of_time: Optional[Callable[[], bool]] = None) -> SearchResult:
    """The highest arrival rate whose ``percentile`` latency meets the requirement, by bisection.

    ``capacity_qps`` (batch_size / service time) seeds the bracket: the first probe is at 90% of it;
    the bracket grows by doubling upward while probes pass and halves downward while they fail.
    Stops when the bracket is within ``rel_tolerance`` of its upper end, after ``max_probes``, or
    when ``out_of_time()`` says so (checked between probes)."""
    probes: list[dict[str, Any]] = []
    good: Optional[float] = None
    good_result: Optional[ServeResult] = None
    bad: Optional[float] = None
    rate = 0.9 * capacity_qps
    stop = "max_probes"
    for _ in range(max_probes):
        if probes and out_of_time is not None and out_of_time():
            stop = "time_limit"
            break
        result = probe(rate)
        ok = meets(result, percentile)
        probes.append(_probe_record(rate, result, ok, percentile))
        if ok:
            good, good_result = rate, result
        else:
            bad = rate
        if good is not None and bad is not None:
            if bad - good <= rel_tolerance * bad:
                return SearchResult(good, probes, good_result, "converged")
            rate = 0.5 * (good + bad)
        elif good is None:
            rate = rate / 2  # nothing passed yet: halve
        else:
            rate = rate * 2  # nothing failed yet: double
    if good is None:
        return SearchResult(None, probes, None, "none_meets")
    return SearchResult(good, probes, good_result, stop)


def find_streams(probe: Callable[[int], ServeResult], capacity_streams: float, percentile: float,
                 max_streams: int = 4096, max_probes: int = 16,
                 out_of_time: Optional[Callable[[], bool]] = None) -> SearchResult:
    """The most streams whose ``percentile`` latency meets the requirement: integers, bisection
    seeded at the capacity estimate, the bracket widened until it holds a pass and a fail."""
    probes: list[dict[str, Any]] = []
    good, bad = 0, max_streams + 1
    good_result: Optional[ServeResult] = None
    n = max(1, min(max_streams, int(capacity_streams * 0.9)))
    tried: set[int] = set()
    timed_out = False
    while len(probes) < max_probes:
        if probes and out_of_time is not None and out_of_time():
            timed_out = True
            break
        tried.add(n)
        result = probe(n)
        ok = meets(result, percentile)
        probes.append(_probe_record(float(n), result, ok, percentile))
        if ok:
            good, good_result = n, result
        else:
            bad = n
        if bad - good <= 1:
            break
        if bad > max_streams:
            n = min(max_streams, good * 2)
            if n in tried:  # max_streams itself passed
                return SearchResult(float(good), probes, good_result, "upper_limit")
        elif good == 0:
            n = max(1, bad // 2)
            if n in tried:
                break
        else:
            n = (good + bad) // 2
    if good == 0:
        return SearchResult(None, probes, None, "none_meets")
    reason = "converged" if bad - good <= 1 else ("time_limit" if timed_out else "max_probes")
    return SearchResult(float(good), probes, good_result, reason)
