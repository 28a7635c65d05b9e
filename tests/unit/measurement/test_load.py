"""Load scenarios under a fake clock: Poisson arrivals, M/D/1 queueing, dynamic batching, dropped
requests, the peak and stream searches on a backend of known capacity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.measurement import load
from bench.measurement.load import LoadSettings, PoissonSource, serve

MS = 1_000_000
S = 1_000_000_000


class FakeClock(load.Clock):
    def __init__(self) -> None:
        self.t = 10 * S
        self.issued: list[int] = []

    def now(self) -> int:
        return self.t

    def sleep_until(self, t_ns: int) -> None:
        self.t = max(self.t, int(t_ns))


def fixed_service(clock: FakeClock, service_ns: int):
    def run_batch(k: int) -> None:
        clock.issued.append(clock.t)
        clock.t += service_ns
    return run_batch


def settings(batch=1, max_wait_ms=0.0, slo_ms=100.0, drain_s=1000.0, stop=False) -> LoadSettings:
    return LoadSettings(batch_size=batch, max_wait_ns=int(max_wait_ms * MS), slo_ns=int(slo_ms * MS),
                        drain_ns=int(drain_s * S), stop_when_failed=stop)


def test_poisson_arrivals_have_the_rate_and_exponential_gaps():
    arrivals = PoissonSource(seed=3).arrivals(200.0, 500.0)
    gaps = np.diff(arrivals) / S
    assert arrivals.size / 500.0 == pytest.approx(200.0, rel=0.01)
    assert gaps.mean() == pytest.approx(1 / 200.0, rel=0.01)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.02)  # exponential: cv = 1
    assert np.mean(gaps > 1 / 200.0) == pytest.approx(math.exp(-1), abs=0.01)
    stats = pytest.importorskip("scipy.stats")
    assert stats.kstest(gaps, "expon", args=(0, 1 / 200.0)).pvalue > 0.001


def test_the_same_draw_serves_every_rate():
    source = PoissonSource(seed=1)
    slow, fast = source.arrivals(10.0, 100.0), source.arrivals(20.0, 100.0)
    # Twice the rate: the same gaps at half the length, so the first arrivals are exactly halved.
    assert np.allclose(fast[: slow.size // 2] * 2, slow[: slow.size // 2], atol=2)


def test_requests_are_issued_at_their_arrival_under_a_fake_clock():
    clock = FakeClock()
    arrivals = PoissonSource(seed=2).arrivals(50.0, 20.0)
    result = serve(arrivals, fixed_service(clock, 0), settings(), 20 * S, clock=clock)
    assert [t - 10 * S for t in clock.issued] == arrivals.tolist()
    assert set(result.latencies_ns) == {0} and result.dropped == 0 and result.stop_reason == "served"
    assert result.extra["engine_lag_max_us"] == 0.0  # a fake clock has no wake-up delay


@pytest.mark.slow
def test_the_real_clock_issues_requests_close_to_their_arrival():
    """The engine's own delay on the real clock is recorded; it is sleep's wake-up plus bookkeeping
    (tens of microseconds on a quiet host; asserted loosely: this machine is shared)."""
    arrivals = PoissonSource(seed=2).arrivals(500.0, 1.0)
    result = serve(arrivals, lambda k: None, settings(), 1 * S)
    assert 0 <= result.extra["engine_lag_p50_us"] <= result.extra["engine_lag_p99_us"] <= result.extra["engine_lag_max_us"]
    summary = load.latency_summary(result)
    assert summary["engine_lag_p99_us"] == result.extra["engine_lag_p99_us"]
    assert summary["latency_p50_ms"] * 1e3 == pytest.approx(result.extra["engine_lag_p50_us"], rel=0.5, abs=50)


@pytest.mark.parametrize("rho", [0.5, 0.7])
def test_queueing_latency_matches_md1(rho):
    """M/D/1: mean wait in queue rho*D / (2(1 - rho)); an arrival finds the server idle with
    probability 1 - rho (PASTA), and then its latency is exactly D."""
    service = 10 * MS
    rate = rho / (service / S)
    clock = FakeClock()
    arrivals = PoissonSource(seed=7).arrivals(rate, 4000.0)
    result = serve(arrivals, fixed_service(clock, service), settings(slo_ms=1e6), 4000 * S, clock=clock)
    lat = np.asarray(result.latencies_ns, dtype=float)
    expected_wait = rho * service / (2 * (1 - rho))
    assert lat.mean() - service == pytest.approx(expected_wait, rel=0.06)
    assert np.mean(lat == service) == pytest.approx(1 - rho, abs=0.02)
    summary = load.latency_summary(result)
    assert summary["latency_mean_ms"] == pytest.approx((expected_wait + service) / MS, rel=0.03)
    assert summary["achieved_qps"] == pytest.approx(rate, rel=0.02)
    assert summary["latency_p50_ci_low_ms"] <= summary["latency_p50_ms"] <= summary["latency_p50_ci_high_ms"]


def test_dynamic_batching_waits_at_most_max_wait_and_fills_batches():
    clock = FakeClock()
    arrivals = PoissonSource(seed=4).arrivals(100.0, 60.0)  # light load for batches of 4 at 5 ms
    result = serve(arrivals, fixed_service(clock, 5 * MS), settings(batch=4, max_wait_ms=20.0), 60 * S, clock=clock)
    assert max(result.batch_sizes) == 4 and np.mean(result.batch_sizes) > 1.5
    assert sum(result.batch_sizes) == arrivals.size
    # Lightly loaded: no request waits longer than max_wait plus one service time (plus one batch ahead).
    assert max(result.latencies_ns) <= 20 * MS + 2 * 5 * MS


def test_overload_drops_what_is_queued_at_the_drain_limit():
    clock = FakeClock()
    arrivals = PoissonSource(seed=5).arrivals(200.0, 10.0)  # twice the capacity of 100/s
    result = serve(arrivals, fixed_service(clock, 10 * MS), settings(slo_ms=50.0, drain_s=0.5), 10 * S, clock=clock)
    assert result.stop_reason == "drain_limit" and result.dropped > 0
    served = arrivals.size - result.dropped
    assert served == len(result.batch_sizes)
    assert result.late >= result.dropped
    summary = load.latency_summary(result)
    assert summary["achieved_qps"] == pytest.approx(100.0, rel=0.1)
    assert summary["censored_latencies"] == result.dropped


def test_a_probe_stops_once_its_percentile_cannot_be_met():
    clock = FakeClock()
    arrivals = PoissonSource(seed=5).arrivals(200.0, 10.0)
    result = serve(arrivals, fixed_service(clock, 10 * MS), settings(slo_ms=50.0, stop=True), 10 * S, clock=clock)
    assert result.stop_reason == "failed_early"
    assert not load.meets(result, 0.99)


def test_peak_search_finds_the_rate_just_below_capacity():
    """Capacity 100/s (10 ms per request); p99 within 100 ms is met well below 100/s and missed above."""
    service = 10 * MS
    source = PoissonSource(seed=11)

    def probe(rate):
        clock = FakeClock()
        return serve(source.arrivals(rate, 60.0), fixed_service(clock, service),
                     settings(slo_ms=100.0, drain_s=2.0, stop=True), 60 * S, clock=clock)

    search = load.find_peak(probe, capacity_qps=100.0, percentile=0.99, rel_tolerance=0.02, max_probes=20)
    assert search.stop_reason == "converged"
    assert 70.0 < search.best < 100.0
    passing = [p["value"] for p in search.probes if p["meets"]]
    failing = [p["value"] for p in search.probes if not p["meets"]]
    assert max(passing) < min(failing)
    assert not probe(search.best * 1.05).late <= 0  # just above the peak, some requests are late


def test_peak_search_reports_none_when_nothing_meets():
    def probe(rate):
        clock = FakeClock()
        return serve(PoissonSource(1).arrivals(rate, 5.0), fixed_service(clock, 200 * MS),
                     settings(slo_ms=100.0, drain_s=1.0, stop=True), 5 * S, clock=clock)

    search = load.find_peak(probe, capacity_qps=5.0, percentile=0.99, max_probes=4)
    assert search.best is None and search.stop_reason == "none_meets" and len(search.probes) == 4


def test_peak_search_stops_when_out_of_time():
    calls = []

    def probe(rate):
        calls.append(rate)
        clock = FakeClock()
        return serve(PoissonSource(1).arrivals(rate, 5.0), fixed_service(clock, 10 * MS),
                     settings(slo_ms=100.0, stop=True), 5 * S, clock=clock)

    search = load.find_peak(probe, 100.0, 0.99, max_probes=10, out_of_time=lambda: len(calls) >= 2)
    assert len(calls) == 2 and search.stop_reason in ("time_limit", "none_meets")


def test_stream_arrivals_are_periodic_per_stream():
    arrivals = load.stream_arrivals(4, 30.0, 10.0, seed=0)
    assert arrivals.size == pytest.approx(4 * 300, abs=4)
    assert np.all(np.diff(arrivals) >= 0)


def test_stream_search_on_a_backend_of_known_capacity():
    """10 ms per frame: 100 frames/s, so at most 10 streams at 10 fps; with a 50 ms requirement the
    search lands at or just below that."""
    def probe(n):
        clock = FakeClock()
        return serve(load.stream_arrivals(n, 10.0, 20.0, seed=3), fixed_service(clock, 10 * MS),
                     settings(slo_ms=50.0, drain_s=1.0, stop=True), 20 * S, clock=clock)

    search = load.find_streams(probe, capacity_streams=10.0, percentile=0.99, max_streams=64)
    assert search.stop_reason == "converged"
    assert 6 <= search.best <= 10
    assert not load.meets(probe(int(search.best) + 1), 0.99)


def test_bad_rates_are_refused():
    with pytest.raises(ValueError, match="rate_qps"):
        load.poisson_arrivals(0.0, 1.0, np.ones(3))
    with pytest.raises(ValueError, match="streams"):
        load.stream_arrivals(0, 30.0, 1.0, seed=0)


class ThreadedFake:
    """An asynchronous runtime of ``slots`` workers, each taking ``service_s`` per batch (a sleep):
    submit() hands the batch to a worker and returns; the worker calls on_done() when finished."""

    def __init__(self, slots: int, service_s: float) -> None:
        import queue
        import threading

        self.service_s = service_s
        self.jobs: "queue.Queue" = queue.Queue()
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.workers = [threading.Thread(target=self._work, daemon=True) for _ in range(slots)]
        for worker in self.workers:
            worker.start()

    def _work(self) -> None:
        import time

        while True:
            on_done = self.jobs.get()
            if on_done is None:
                return
            with self.lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
            time.sleep(self.service_s)
            with self.lock:
                self.running -= 1
            on_done()

    def submit(self, k, on_done) -> None:
        self.jobs.put(on_done)

    def close(self) -> None:
        for _ in self.workers:
            self.jobs.put(None)


@pytest.mark.slow
def test_async_serving_keeps_several_batches_in_flight():
    """Two slots of 10 ms serve 120 requests/s (60% of their capacity, 120% of one slot's): with two
    in flight every request is served, at latencies near the service time; the real clock."""
    fake = ThreadedFake(slots=2, service_s=0.010)
    try:
        arrivals = PoissonSource(seed=9).arrivals(120.0, 2.5)
        result = load.serve_async(arrivals, fake.submit, 2, settings(slo_ms=1000.0, drain_s=2.0), int(2.5 * S))
    finally:
        fake.close()
    assert result.dropped == 0 and result.stop_reason == "served"
    assert fake.peak == 2  # both slots were used, never more
    lat = np.asarray(result.latencies_ns) / MS
    assert lat.min() >= 10.0  # no request completes faster than its service
    assert np.median(lat) < 60.0  # one slot alone would queue without bound at this rate
    summary = load.latency_summary(result)
    assert summary["achieved_qps"] == pytest.approx(arrivals.size / 2.5, rel=0.25)


@pytest.mark.slow
def test_async_serving_counts_what_is_still_in_flight_at_the_drain_limit_as_dropped():
    fake = ThreadedFake(slots=1, service_s=0.050)
    try:
        arrivals = PoissonSource(seed=9).arrivals(100.0, 0.5)  # 5x what one 50 ms slot serves
        result = load.serve_async(arrivals, fake.submit, 1, settings(slo_ms=100.0, drain_s=0.2), int(0.5 * S))
    finally:
        fake.close()
    assert result.stop_reason == "drain_limit" and result.dropped > 0
    assert result.late >= result.dropped


def test_a_probe_holds_at_least_its_minimum_of_requests_whatever_the_draw():
    source = PoissonSource(seed=11)
    for rate in (3.0, 8.8, 50.0):
        arrivals, seconds = source.probe(rate, min_s=2.0, max_s=1000.0, min_count=100)
        assert arrivals.size >= 100 and seconds >= 2.0
        assert arrivals.size == 100 or seconds == 2.0  # the window ends at the 100th arrival or at min_s
    capped, seconds = source.probe(1.0, min_s=2.0, max_s=10.0, min_count=100)
    assert seconds == 10.0 and capped.size < 100  # max_s bounds the probe


def test_the_search_reports_the_nearest_rank_percentile_its_verdict_is_about():
    def probe(rate):
        clock = FakeClock()
        return serve(PoissonSource(3).arrivals(rate, 30.0), fixed_service(clock, 10 * MS),
                     settings(slo_ms=60.0, stop=True), 30 * S, clock=clock)

    search = load.find_peak(probe, capacity_qps=100.0, percentile=0.99, max_probes=8)
    for p in search.probes:
        if p["stop_reason"] == "served":
            assert p["meets"] == (p["latency_at_percentile_ms"] <= 60.0)
