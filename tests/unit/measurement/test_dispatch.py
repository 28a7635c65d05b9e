"""The one load dispatcher: a synchronous session (serve) and an asynchronous one (serve_async)
go through it and get the same schedule and results on the same arrivals. Deterministic: a
simulated clock whose time jumps to the next arrival or completion, no threads, no sleeping."""

from __future__ import annotations

import heapq
from dataclasses import asdict

import numpy as np
import pytest

from bench.measurement.clock import Clock
from bench.measurement.load import LoadSettings, PoissonSource, dispatch, latency_summary, serve, serve_async

MS = 1_000_000
S = 1_000_000_000


class SimClock(Clock):
    """Simulated time: sleeping or waiting jumps to the next scheduled event (an asynchronous
    batch's completion) or to the time asked for, whichever comes first."""

    def __init__(self) -> None:
        self.t = 10 * S
        self._events: list[tuple[int, int, object]] = []
        self._seq = 0

    def now(self) -> int:
        return self.t

    def at(self, t_ns: int, fn) -> None:
        heapq.heappush(self._events, (t_ns, self._seq, fn))
        self._seq += 1

    def _fire_next(self) -> None:
        when, _, fn = heapq.heappop(self._events)
        self.t = max(self.t, when)
        fn()

    def sleep_until(self, t_ns: int) -> None:
        while self._events and self._events[0][0] <= t_ns:
            self._fire_next()
        self.t = max(self.t, int(t_ns))

    def wait_until(self, cond, t_ns: int) -> None:
        if self._events and self._events[0][0] <= t_ns:
            self._fire_next()  # a completion: the dispatcher looks again
        else:
            self.t = max(self.t, int(t_ns))


class SyncSession:
    """run_batch(k): the batch takes service_ns of simulated time, then returns."""

    def __init__(self, clock: SimClock, service_ns: int) -> None:
        self.clock, self.service_ns = clock, service_ns
        self.started: list[tuple[int, int]] = []  # (time, k) of every batch

    def run_batch(self, k: int) -> None:
        self.started.append((self.clock.t, k))
        self.clock.t += self.service_ns


class AsyncSession:
    """submit(k, on_done): returns at once; the batch completes service_ns later on one of ``slots``
    servers (the dispatcher never submits more than its capacity, so one is always free)."""

    def __init__(self, clock: SimClock, service_ns: int) -> None:
        self.clock, self.service_ns = clock, service_ns
        self.started: list[tuple[int, int]] = []
        self.running = 0
        self.peak = 0

    def submit(self, k: int, on_done) -> None:
        self.started.append((self.clock.t, k))
        self.running += 1
        self.peak = max(self.peak, self.running)

        def done() -> None:
            self.running -= 1
            on_done()
        self.clock.at(self.clock.t + self.service_ns, done)


def settings(batch=1, max_wait_ms=0.0, slo_ms=100.0, drain_s=1000.0, stop=False) -> LoadSettings:
    return LoadSettings(batch_size=batch, max_wait_ns=int(max_wait_ms * MS), slo_ns=int(slo_ms * MS),
                        drain_ns=int(drain_s * S), stop_when_failed=stop)


def fields(result) -> dict:
    data = asdict(result)
    del data["start_monotonic_ns"], data["end_monotonic_ns"]  # the host's clock, not the simulated one
    return data


def both(rate, service_ms, window_s, probe: LoadSettings, offered_qps=None):
    arrivals = PoissonSource(seed=21).arrivals(rate, window_s)
    sync_clock, async_clock = SimClock(), SimClock()
    sync, asyn = SyncSession(sync_clock, int(service_ms * MS)), AsyncSession(async_clock, int(service_ms * MS))
    a = serve(arrivals, sync.run_batch, probe, int(window_s * S), clock=sync_clock, offered_qps=offered_qps)
    b = serve_async(arrivals, asyn.submit, 1, probe, int(window_s * S), clock=async_clock, offered_qps=offered_qps)
    return a, b, sync, asyn


@pytest.mark.parametrize("rate, service_ms, probe, reason", [
    (50.0, 10.0, settings(), "served"),  # light load: most requests find the server idle
    (95.0, 10.0, settings(slo_ms=1e6), "served"),  # heavy load: long queues
    (100.0, 5.0, settings(batch=4, max_wait_ms=20.0), "served"),  # dynamic batching, partial batches
    (300.0, 10.0, settings(batch=4), "served"),  # batches filled from the queue without waiting
    (150.0, 10.0, settings(slo_ms=50.0, stop=True), "failed_early"),  # stops once the verdict is certain
])
def test_sync_and_async_paths_give_the_same_schedule_and_results(rate, service_ms, probe, reason):
    a, b, sync, asyn = both(rate, service_ms, 20.0, probe)
    assert a.stop_reason == reason
    assert sync.started == asyn.started  # every batch submitted at the same time with the same size
    assert fields(a) == fields(b)
    assert a.extra["in_flight_limit"] == b.extra["in_flight_limit"] == 1
    assert latency_summary(a) == latency_summary(b)
    assert asyn.peak == 1


def test_offered_qps_is_taken_by_both_paths():
    a, b, _, _ = both(50.0, 10.0, 20.0, settings(), offered_qps=48.0)
    assert a.offered_qps == b.offered_qps == 48.0
    a, b, _, _ = both(50.0, 10.0, 20.0, settings())
    assert a.offered_qps == b.offered_qps == len(a.arrivals_ns) / 20.0  # what arrived, by default


def test_at_the_drain_limit_only_the_batch_in_flight_differs():
    """Overload cut at the drain limit: a synchronous batch cannot be interrupted, so the one
    running at the stop completes (served late); an asynchronous one still in flight is dropped,
    its latency censored at the stop. Everything else is the same."""
    a, b, sync, asyn = both(200.0, 10.0, 10.0, settings(slo_ms=50.0, drain_s=0.5))
    assert a.stop_reason == b.stop_reason == "drain_limit"
    assert sync.started == asyn.started
    assert b.dropped == a.dropped + 1 and b.late == a.late
    assert a.batch_sizes == b.batch_sizes and a.service_ns[:-1] == b.service_ns
    last = len(a.batch_sizes) - 1  # one request per batch: the last batch is request `last`
    assert a.latencies_ns[:last] == b.latencies_ns[:last]
    assert b.latencies_ns[last] < a.latencies_ns[last]  # censored at the stop: a lower bound
    # Still queued: censored in both, at each path's stop (the synchronous one when its batch ended).
    shift = a.elapsed_ns - b.elapsed_ns
    assert shift > 0 and [x - y for x, y in zip(a.latencies_ns[last + 1:], b.latencies_ns[last + 1:])] == \
        [shift] * (len(a.latencies_ns) - last - 1)


def test_a_batch_still_in_flight_at_the_stop_is_dropped_and_says_why():
    clock = SimClock()
    result = serve_async([0], AsyncSession(clock, 2 * S).submit, 1, settings(drain_s=0.5), 1 * S, clock=clock)
    assert result.stop_reason == "drain_limit" and result.dropped == 1 and result.late == 1
    assert result.latencies_ns == [int(1.5 * S)] and result.service_ns == []  # censored at the stop
    clock = SimClock()
    result = serve([0], SyncSession(clock, 2 * S).run_batch, settings(drain_s=0.5), 1 * S, clock=clock)
    assert result.stop_reason == "served" and result.latencies_ns == [2 * S]  # a synchronous batch completes


def test_async_capacity_keeps_that_many_batches_in_flight_and_never_more():
    """Two slots of 10 ms at 120 requests/s (60% of their capacity, 120% of one slot's): two in
    flight, every request served, and with a simulated clock no dispatch delay at all."""
    arrivals = PoissonSource(seed=9).arrivals(120.0, 30.0)
    clock = SimClock()
    session = AsyncSession(clock, 10 * MS)
    result = serve_async(arrivals, session.submit, 2, settings(slo_ms=1e6), 30 * S, clock=clock)
    assert session.peak == 2
    assert result.stop_reason == "served" and result.dropped == 0
    assert min(result.latencies_ns) == 10 * MS  # a request that finds a slot free waits for nothing
    assert result.extra["in_flight_limit"] == 2
    assert result.extra["engine_lag_max_us"] == 0.0  # each batch started the moment it could
    alone = SimClock()
    one_slot = serve(arrivals, SyncSession(alone, 10 * MS).run_batch, settings(slo_ms=1e6, drain_s=1.0), 30 * S,
                     clock=alone)
    assert one_slot.stop_reason == "drain_limit"  # one slot alone cannot keep up


def test_serve_is_the_dispatcher_with_a_submit_that_completes_inline():
    arrivals = PoissonSource(seed=4).arrivals(80.0, 5.0)
    clock, other = SimClock(), SimClock()
    session = SyncSession(clock, 8 * MS)

    def submit(k, on_done):
        session.run_batch(k)
        on_done()

    direct = dispatch(arrivals, submit, 1, settings(), 5 * S, clock=clock)
    via_serve = serve(arrivals, SyncSession(other, 8 * MS).run_batch, settings(), 5 * S, clock=other)
    assert fields(direct) == fields(via_serve)


def test_async_capacity_must_be_at_least_one():
    with pytest.raises(ValueError, match="capacity"):
        serve_async([0], lambda k, on_done: on_done(), 0, settings(), S, clock=SimClock())


def test_end_at_ends_the_arrival_window_early_without_dropping_what_arrived():
    """scenario=continual ends its arrivals a set time after the swap: the requests scheduled after
    the cut are not offered (not counted, not dropped); those before it are served as usual."""
    clock = SimClock()
    session = SyncSession(clock, 30 * MS)
    arrivals = np.arange(0, 10 * S, 100 * MS, dtype=np.int64)  # 100 requests over 10 s
    origin = clock.now()
    cut = origin + 2 * S + 50 * MS  # after the 21st arrival (at 2.0 s)
    def submit(k, on_done):
        session.run_batch(k)
        on_done()

    result = dispatch(arrivals, submit, 1, settings(), 10 * S, clock=clock, origin_ns=origin, end_at=lambda: cut)
    assert len(result.arrivals_ns) == len(result.latencies_ns) == 21 and result.dropped == 0
    assert result.duration_ns == 2 * S + 50 * MS and result.extra["unserved"] == []
    assert all(lat == 30 * MS for lat in result.latencies_ns)
    untouched = dispatch(arrivals, submit, 1, settings(), 10 * S, clock=SimClock(), end_at=lambda: None)
    assert len(untouched.arrivals_ns) == 100 and untouched.duration_ns == 10 * S
