"""The load dispatcher, one for every session: scheduled arrivals, the queue, dynamic batching and
the completions that stamp each request's latency (arrival to completion, queueing included).

The dispatcher (the caller's thread) sleeps until the next arrival, takes what has arrived (up to
``batch_size``, waiting at most ``max_wait`` after the oldest one for the batch to fill: dynamic
batching) and hands it to ``submit(k, on_done)`` once one of ``capacity`` slots is free; ``on_done()``
stamps the batch's requests with the completion time. Two kinds of session go through it:

- ``serve``: a synchronous session (``run_batch(k)``: run + synchronize), one batch at a time: its
  ``submit`` runs the batch and completes it before returning (capacity 1).
- ``serve_async``: a session with an asynchronous API (OpenVINO's infer-request queue, CUDA streams),
  up to ``capacity`` batches in flight: ``submit`` starts the batch and returns, and the runtime calls
  ``on_done()`` from its own thread.

A dynamic batch of k < batch_size requests runs as a full batch: sessions are built for one shape
(TensorRT profiles, compiled graphs), so the k requests pay for batch_size samples. Every probe is
bounded in time: arrivals stop after ``duration``; serving stops ``drain`` later, and what is still
queued or in flight then is *dropped* (counted late, its latency censored at the stop: a lower
bound; a synchronous batch cannot be interrupted, so the one running at the stop completes). With ``stop_when_failed`` a probe also stops as soon as more requests are late than its
percentile allows, since its verdict is then certain.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from bench.measurement.clock import REAL_CLOCK, Clock
from bench.measurement.stats import quantile

__all__ = ["LoadSettings", "ServeResult", "Submit", "dispatch", "serve", "serve_async", "allowed_late"]

# submit(k, on_done): start a batch of k requests; on_done() once it has completed.
Submit = Callable[[int, Callable[[], None]], None]


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
    dropped: int  # requests never served (queued or in flight at the stop)
    batch_sizes: list[int]  # every batch submitted, in order
    service_ns: list[int]  # submission to completion of each completed batch, in completion order
    duration_ns: int  # the arrival window
    elapsed_ns: int  # from the window's start to the last completion (or the stop)
    stop_reason: str  # "served", "drain_limit", "failed_early"
    late: int  # requests with latency > slo (dropped included)
    slo_ns: int
    start_monotonic_ns: int = 0
    end_monotonic_ns: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # in_flight_limit, engine_lag_*_us, unserved (indices)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ServeResult":
        return cls(**data)


def allowed_late(n: int, percentile: float) -> int:
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


class _Slots:
    """What the completions share with the dispatcher, under its condition."""

    def __init__(self, origin: int) -> None:
        self.in_flight = 0
        self.late = 0  # served requests over the requirement
        self.failed = False  # more late than the percentile allows (stop_when_failed only)
        self.last_done = origin
        self.free_at = origin  # when a slot last opened while all were busy
        self.closed = False  # past the stop: a completion now is counted dropped


class _Batch:
    __slots__ = ("first", "k", "started")

    def __init__(self, first: int, k: int) -> None:
        self.first, self.k, self.started = first, k, 0


def dispatch(arrivals_ns: np.ndarray, submit: Submit, capacity: int, settings: LoadSettings, duration_ns: int,
             clock: Optional[Clock] = None, offered_qps: Optional[float] = None,
             origin_ns: Optional[int] = None, end_at: Optional[Callable[[], Optional[int]]] = None) -> ServeResult:
    """Serve the scheduled arrivals in real (or fake) time through ``submit``, at most ``capacity``
    batches in flight; see the module's docstring. ``offered_qps`` (default: the arrivals over the
    window) is recorded as the rate the probe was meant to offer. ``origin_ns`` (default: now) is the
    clock time the arrival offsets count from, for a caller that times other events on that clock.
    ``end_at()``, asked before each batch, may name a clock time at which the arrival window ends
    early: the requests scheduled from then on are never offered (they are not in the result), those
    already in arrive and are served or drained as usual."""
    clock = clock or REAL_CLOCK
    arrivals = np.asarray(arrivals_ns, dtype=np.int64)
    n = int(arrivals.size)
    batch, max_wait, slo = int(settings.batch_size), int(settings.max_wait_ns), settings.slo_ns
    latencies = np.zeros(n, dtype=np.int64)
    served = np.zeros(n, dtype=bool)
    sizes: list[int] = []
    service: list[int] = []
    lags: list[int] = []
    allowed = allowed_late(n, settings.percentile)
    cond = threading.Condition()
    start_mono = time.monotonic_ns()
    origin = clock.now() if origin_ns is None else int(origin_ns)
    absolute = arrivals + origin
    times = absolute.tolist()  # the dispatch path uses Python ints and bisect: no numpy call before a run
    stop_at = origin + duration_ns + settings.drain_ns
    slots = _Slots(origin)

    def completion(b: _Batch) -> Callable[[], None]:
        def on_done() -> None:
            done = clock.now()
            with cond:
                if slots.closed:
                    return
                waited = done - absolute[b.first:b.first + b.k]
                latencies[b.first:b.first + b.k] = waited
                served[b.first:b.first + b.k] = True
                slots.late += int(np.count_nonzero(waited > slo))
                slots.failed = slots.failed or (settings.stop_when_failed and slots.late > allowed)
                slots.last_done = max(slots.last_done, done)
                if slots.in_flight == capacity:
                    slots.free_at = done
                slots.in_flight -= 1
                service.append(done - b.started)
                cond.notify_all()
        return on_done

    i = 0
    reason = "served"
    while i < n:
        cut = end_at() if end_at is not None else None
        if cut is not None and cut < origin + duration_ns:
            n = max(i, bisect.bisect_left(times, cut))
            times = times[:n]
            duration_ns = max(int(cut) - origin, (times[-1] - origin + 1) if times else 0)
            stop_at = origin + duration_ns + settings.drain_ns
            end_at = None
            if i >= n:
                break
        with cond:
            while slots.in_flight >= capacity and not slots.failed and clock.now() < stop_at:
                clock.wait_until(cond, stop_at)
            failed, free_at = slots.failed, slots.free_at
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
        b = _Batch(i, k)
        on_done = completion(b)
        with cond:
            slots.in_flight += 1
        sizes.append(k)
        b.started = t0 = clock.now()
        if max_wait == 0:  # the engine's own delay: from when the batch could start to when it did
            lags.append(t0 - max(free_at, first))
        submit(k, on_done)
        i += k
    with cond:  # the batches in flight complete (or the drain limit passes)
        while slots.in_flight > 0 and clock.now() < stop_at:
            clock.wait_until(cond, stop_at)
        slots.closed = True
        if reason == "served" and slots.failed:  # the last batches made the verdict certain
            reason = "failed_early"
        elif reason == "served" and slots.in_flight:
            reason = "drain_limit"
        if n < arrivals.size:  # the window ended early: the rest was never offered
            arrivals, latencies, served, absolute = arrivals[:n], latencies[:n], served[:n], absolute[:n]
        unserved = np.flatnonzero(~served)
        late, last_done, service_ns = slots.late + int(unserved.size), slots.last_done, list(service)
    if unserved.size:
        stop = clock.now()
        latencies[unserved] = np.maximum(stop - absolute[unserved], 0)  # censored: a lower bound
        last_done = max(last_done, stop)
    rate = offered_qps if offered_qps is not None else (n / (duration_ns / 1e9) if duration_ns else 0.0)
    return ServeResult(
        offered_qps=rate, arrivals_ns=arrivals.tolist(), latencies_ns=latencies.tolist(), dropped=int(unserved.size),
        batch_sizes=sizes, service_ns=service_ns, duration_ns=int(duration_ns), elapsed_ns=int(last_done - origin),
        stop_reason=reason, late=late, slo_ns=int(slo), start_monotonic_ns=start_mono,
        end_monotonic_ns=time.monotonic_ns(),
        extra={"in_flight_limit": capacity, **_lag_summary(lags), "unserved": unserved.tolist()},
    )


def serve(arrivals_ns: np.ndarray, run_batch: Callable[[int], None], settings: LoadSettings, duration_ns: int,
          clock: Optional[Clock] = None, offered_qps: Optional[float] = None) -> ServeResult:
    """``dispatch`` for a synchronous session: ``run_batch(k)`` runs a batch to completion (run +
    synchronize), one batch at a time."""
    def submit(k: int, on_done: Callable[[], None]) -> None:
        run_batch(k)
        on_done()

    return dispatch(arrivals_ns, submit, 1, settings, duration_ns, clock, offered_qps)


def serve_async(arrivals_ns: np.ndarray, submit: Submit, capacity: int, settings: LoadSettings, duration_ns: int,
                clock: Optional[Clock] = None, offered_qps: Optional[float] = None) -> ServeResult:
    """``dispatch`` for a session with an asynchronous API: ``submit(k, on_done)`` starts a batch and
    returns, and the runtime calls ``on_done()`` from its own thread; up to ``capacity`` in flight."""
    if capacity < 1:
        raise ValueError(f"capacity={capacity} must be >= 1")
    return dispatch(arrivals_ns, submit, capacity, settings, duration_ns, clock, offered_qps)


def _lag_summary(lags: list[int]) -> dict[str, Any]:
    """The engine's dispatch delay (sleep wake-up, bookkeeping, a preempted thread): part of every
    latency it measures, so it is recorded with them. A batch could start at the later of its oldest
    request's arrival and the moment a slot opened."""
    if not lags:
        return {}
    ordered = np.sort(np.asarray(lags, dtype=np.float64))
    return {"engine_lag_p50_us": quantile(ordered, 0.5) / 1e3, "engine_lag_p99_us": quantile(ordered, 0.99) / 1e3,
            "engine_lag_max_us": float(ordered[-1]) / 1e3}
