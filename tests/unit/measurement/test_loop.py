"""The measurement loop and its stopping rule, with a fake clock and a fake backend."""

from __future__ import annotations

import itertools
import random

import pytest

from bench.measurement.loop import LoopSettings, block_size_for, measure, measure_timing_overhead, warm_up
from bench.results.metrics import loop_metrics


class FakeClock:
    """Nanoseconds that move only when the fake backend works (or a read is given a cost)."""

    def __init__(self, read_cost_ns: int = 0) -> None:
        self.now = 0
        self.read_cost_ns = read_cost_ns
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        self.now += self.read_cost_ns
        return self.now


class FakeBackend:
    def __init__(self, clock: FakeClock, service_ns) -> None:
        self.clock = clock
        self.service = iter(service_ns) if not callable(service_ns) else None
        self.service_fn = service_ns if callable(service_ns) else None
        self.runs = 0
        self.syncs = 0

    def run(self) -> None:
        self.runs += 1
        self.clock.now += self.service_fn() if self.service_fn else next(self.service)

    def synchronize(self) -> None:
        self.syncs += 1


def drifting(rng: random.Random, mean_ns: int, sd_ns: int, step: float):
    """Service times whose level wanders as a bounded random walk (a neighbour's load, a frequency
    governor): more samples do not average it out."""
    level = [1.0]

    def service() -> int:
        level[0] = min(2.0, max(0.5, level[0] * (1 + rng.gauss(0, step))))
        return int(level[0] * rng.gauss(mean_ns, sd_ns))

    return service


def settings(**kw) -> LoopSettings:
    base = dict(scenario="latency", batch_size=1, warmup_iterations=5, warmup_s=0.01, warmup_max_s=1.0,
                min_iterations=10, min_duration_s=1.0, max_duration_s=10.0, target_rel_ci=0.01, confidence=0.95,
                max_iterations=1_000_000)
    base.update(kw)
    return LoopSettings(**base)


def run_loop(s: LoopSettings, service, read_cost_ns: int = 0):
    clock = FakeClock(read_cost_ns)
    backend = FakeBackend(clock, service)
    warm = warm_up(backend.run, backend.synchronize, s, clock)
    return measure(backend.run, backend.synchronize, s, warm, clock), backend


def test_constant_latency_converges_at_min_duration():
    s = settings()
    loop, backend = run_loop(s, itertools.repeat(1_000_000))  # 1 ms per request
    # Warm-up: 5 iterations reach 5 ms >= 10 ms? no: it runs until 10 ms and 5 iterations.
    assert len(loop.warmup_ns) == 10 and loop.warmup_stop == "iterations_and_time"
    assert loop.block == 1
    # Checks at 200, 400, ... ms of measurement; the first with >= 1 s converges (zero-width interval).
    assert loop.stop_reason == "converged" and loop.converged
    assert len(loop.samples_ns) == 1000 and set(loop.samples_ns) == {1_000_000}
    assert loop.elapsed_ns == 1_000_000_000
    assert loop.checks == 5
    assert backend.runs == backend.syncs == 10 + 1000
    m = loop_metrics(loop, 0.95)
    assert m["latency_p50_ms"] == m["latency_p99_ms"] == 1.0
    assert m["throughput_sps"] == pytest.approx(1000.0)
    assert m["iterations"] == 1000 and m["converged"] is True


def test_min_iterations_holds_even_after_min_duration():
    s = settings(min_iterations=3000, min_duration_s=0.1, max_duration_s=100.0)
    loop, _ = run_loop(s, itertools.repeat(1_000_000))
    assert loop.stop_reason == "converged"
    assert len(loop.samples_ns) >= 3000


def test_noisy_samples_that_cannot_converge_stop_at_max_duration():
    rng = random.Random(3)
    s = settings(target_rel_ci=1e-9, max_duration_s=2.0, stop_when_noise_limited=False)
    loop, _ = run_loop(s, lambda: rng.choice([1_000_000, 5_000_000]))
    assert loop.stop_reason == "max_duration" and not loop.converged
    assert loop.elapsed_ns >= 2_000_000_000
    # The overshoot is bounded by one check interval (10% of elapsed, at least 200 ms) plus one request.
    assert loop.elapsed_ns <= 2_000_000_000 + 200_000_000 + 5_000_000


def test_max_iterations_caps_the_raw_samples():
    rng = random.Random(4)
    s = settings(min_iterations=10, target_rel_ci=1e-9, max_iterations=500, max_duration_s=1000.0)
    loop, _ = run_loop(s, lambda: rng.randint(900_000, 1_100_000))
    assert loop.stop_reason == "max_iterations"
    assert len(loop.samples_ns) == 500


def test_noisy_but_stable_samples_converge_on_the_median_interval():
    rng = random.Random(5)
    s = settings(target_rel_ci=0.01, max_duration_s=600.0)
    loop, _ = run_loop(s, lambda: int(rng.gauss(10_000_000, 1_000_000)))  # 10 ms ± 10%
    assert loop.stop_reason == "converged"
    m = loop_metrics(loop, 0.95)
    lo, hi = m["latency_p50_ci_low_ms"], m["latency_p50_ci_high_ms"]
    assert lo <= m["latency_p50_ms"] <= hi
    assert max(m["latency_p50_ms"] - lo, hi - m["latency_p50_ms"]) / m["latency_p50_ms"] <= 0.01


@pytest.mark.parametrize("scenario", ["latency", "throughput"])
def test_fast_requests_are_timed_in_blocks_so_the_loop_costs_under_one_percent(scenario):
    # A clock read costs 1 us and a request 10 us: a sample per request would carry 10% of overhead.
    s = settings(scenario=scenario, min_duration_s=0.5)
    loop, backend = run_loop(s, itertools.repeat(10_000), read_cost_ns=1_000)
    assert loop.timing_overhead_ns == pytest.approx(1_000)
    assert loop.block == 10
    assert set(loop.samples_ns) == {10 * 10_000 + 1_000}  # one clock read inside each sample: 1%
    m = loop_metrics(loop, 0.95)
    assert m["latency_p50_ms"] == pytest.approx(0.0101)
    assert m["iterations"] == 10 * len(loop.samples_ns)


def test_block_size_for():
    assert block_size_for(10_000_000, 50) == 1
    assert block_size_for(10_000, 1_000) == 10
    assert block_size_for(10_000, 1_001) == 11
    assert block_size_for(1, 1_000) == 10_000  # capped
    assert block_size_for(0, 0) == 1


def test_timing_overhead_counts_one_clock_read_per_sample():
    assert measure_timing_overhead(FakeClock()) == 0
    assert measure_timing_overhead(FakeClock(read_cost_ns=250)) == 250


def test_warm_up_is_bounded_by_max_time():
    clock = FakeClock()
    backend = FakeBackend(clock, itertools.repeat(300_000_000))  # 300 ms per request
    warm, stop = warm_up(backend.run, backend.synchronize, settings(warmup_iterations=100, warmup_max_s=1.0), clock)
    assert stop == "max_time" and len(warm) == 4  # 4 x 300 ms crosses 1 s


def test_throughput_scenario_tiles_the_window_and_syncs_once_per_block():
    s = settings(scenario="throughput", batch_size=4, min_duration_s=0.5)
    loop, backend = run_loop(s, itertools.repeat(2_000_000))  # 2 ms per batch of 4
    assert loop.block == 1 and loop.stop_reason == "converged"
    m = loop_metrics(loop, 0.95)
    assert m["throughput_sps"] == pytest.approx(2000.0)
    assert m["throughput_ci_low_sps"] == pytest.approx(2000.0)
    assert m["latency_p50_ms"] == pytest.approx(2.0)


def test_loop_result_round_trips_through_a_dict():
    from bench.measurement.loop import LoopResult

    loop, _ = run_loop(settings(min_duration_s=0.2), itertools.repeat(1_000_000))
    again = LoopResult.from_dict(loop.to_dict())
    assert again == loop


class FakeAsyncDevice:
    """Two streams; each request takes 10 ms; run() returns at once while a stream is free, else
    when the earliest request finishes (OpenVINO's AsyncInferQueue.start_async)."""

    def __init__(self, clock: FakeClock, streams: int = 2, service_ns: int = 10_000_000) -> None:
        self.clock, self.streams, self.service = clock, streams, service_ns
        self.busy: list[int] = []  # completion times

    def run(self) -> None:
        if len(self.busy) == self.streams:
            first = min(self.busy)
            self.clock.now = max(self.clock.now, first)
            self.busy.remove(first)
        self.busy.append(self.clock.now + self.service)

    def synchronize(self) -> None:
        if self.busy:
            self.clock.now = max(self.clock.now, max(self.busy))
        self.busy.clear()


@pytest.mark.parametrize("in_flight, expected_sps", [(1, 100.0), (2, 200.0)])
def test_async_queue_throughput_needs_the_pipelined_loop(in_flight, expected_sps):
    clock = FakeClock()
    device = FakeAsyncDevice(clock)
    s = settings(scenario="throughput", min_duration_s=1.0, target_rel_ci=0.01)
    warm = warm_up(device.run, device.synchronize, s, clock)
    loop = measure(device.run, device.synchronize, s, warm, clock, in_flight=in_flight)
    m = loop_metrics(loop, 0.95)
    # Synchronizing every block drains the queue: one stream of two works (100/s); pipelined, 200/s.
    assert m["throughput_sps"] == pytest.approx(expected_sps, rel=0.01)
    assert loop.extra["pipelined"] is (in_flight > 1)
    assert ("latency_p50_ms" in m) is (in_flight == 1)
    assert not device.busy  # everything submitted was waited for inside the window


@pytest.mark.parametrize("scenario", ["latency", "throughput"])
@pytest.mark.parametrize("seed", range(6))
def test_independent_noise_converges_and_is_never_called_noise_limited(scenario, seed):
    # Independent noise: the interval shrinks as 1/sqrt(n), so the noise-limited rule must not fire
    # even with a target that takes many checks to reach.
    rng = random.Random(seed)
    s = settings(scenario=scenario, target_rel_ci=0.003, max_duration_s=600.0)
    loop, _ = run_loop(s, lambda: int(rng.lognormvariate(0, 0.2) * 10_000_000))
    assert loop.stop_reason == "converged", loop.check_history[-6:]
    assert loop.checks > 20


@pytest.mark.parametrize("scenario", ["latency", "throughput"])
def test_drifting_speed_stops_as_noise_limited_long_before_the_cap(scenario):
    # The machine's speed wanders slowly (a random walk of the service time, as a neighbour's load or
    # a frequency governor does): more samples do not narrow the interval, so the loop says so.
    rng = random.Random(11)
    service = drifting(rng, 10_000_000, 300_000, 0.01)

    s = settings(scenario=scenario, target_rel_ci=0.002, min_duration_s=1.0, max_duration_s=300.0)
    loop, _ = run_loop(s, service)
    assert loop.stop_reason == "noise_limited" and not loop.converged
    assert loop.elapsed_ns < 60e9
    m = loop_metrics(loop, 0.95)
    assert m["converged"] is False and m["stop_reason"] == "noise_limited"


def test_latency_keeps_measuring_until_the_tail_percentile_is_bounded():
    # 10 ms per request: the median is exact after 1 s (100 samples), but p99 needs 368 samples.
    s = settings(tail_quantile=0.99, target_rel_ci_tail=0.05, min_duration_s=1.0, max_duration_s=30.0)
    loop, _ = run_loop(s, itertools.repeat(10_000_000))
    assert loop.stop_reason == "converged"
    assert 368 <= len(loop.samples_ns) < 368 * 1.25  # the next check after the bound, not the cap
    assert loop.tail_min_samples == 368 and loop.final_rel_ci_tail == 0.0
    m = loop_metrics(loop, 0.95)
    assert m["latency_p99_ci_high_ms"] == 10.0
    assert m["tail_percentile"] == 0.99 and m["tail_bounded"] is True


def test_latency_tail_that_stays_wide_runs_to_the_cap_and_is_not_converged():
    rng = random.Random(2)
    # A heavy tail: 2% of requests are 3-10x slower, so p99's interval stays wide for a 1% target.
    s = settings(tail_quantile=0.99, target_rel_ci_tail=0.01, target_rel_ci=0.05, min_duration_s=1.0,
                 max_duration_s=5.0, stop_when_noise_limited=False)
    loop, _ = run_loop(s, lambda: 1_000_000 * (rng.uniform(3, 10) if rng.random() < 0.02 else 1))
    assert loop.stop_reason == "max_duration" and not loop.converged
    assert loop.final_rel_ci <= 0.05 and loop.final_rel_ci_tail > 0.01


def test_a_tail_that_cannot_be_bounded_before_the_cap_stops_early_and_says_so():
    # 100 ms per request and a 10 s cap: at most 100 samples, and p99 needs 368.
    s = settings(tail_quantile=0.99, min_duration_s=1.0, max_duration_s=10.0)
    loop, _ = run_loop(s, itertools.repeat(100_000_000))
    assert loop.stop_reason == "tail_unreachable" and not loop.converged
    assert loop.elapsed_ns < 2e9
    m = loop_metrics(loop, 0.95)
    assert m["latency_p99_ci_high_ms"] is None and m["tail_bounded"] is False
    assert m["tail_min_samples"] == 368 and m["samples"] < 368


def test_throughput_ignores_the_tail_rule():
    s = settings(scenario="throughput", tail_quantile=0.99, min_duration_s=1.0, max_duration_s=10.0)
    loop, _ = run_loop(s, itertools.repeat(100_000_000))
    assert loop.stop_reason == "converged" and loop.tail_quantile is None


def test_noise_limited_waits_for_the_samples_that_bound_the_tail():
    # Drift makes the median's interval stop narrowing early, but p99 still needs 368 samples, which
    # the cap allows (30 ms per request, 60 s): the loop collects them before it gives up on noise.
    rng = random.Random(11)
    service = drifting(rng, 30_000_000, 900_000, 0.01)

    s = settings(tail_quantile=0.99, target_rel_ci=0.002, min_duration_s=1.0, max_duration_s=60.0)
    loop, _ = run_loop(s, service)
    assert loop.stop_reason == "noise_limited"
    assert len(loop.samples_ns) >= 368
    assert loop_metrics(loop, 0.95)["tail_bounded"] is True


def test_a_tail_whose_interval_stops_narrowing_stops_as_noise_limited():
    # The median converges at once, but 2% of requests land on a slow level that drifts (a neighbour
    # whose load wanders): p99's interval stays wide however many samples come.
    rng = random.Random(5)
    slow = [5.0]

    def service() -> int:
        slow[0] = min(9.0, max(2.0, slow[0] + rng.gauss(0, 0.05)))
        return int(1_000_000 * (slow[0] if rng.random() < 0.02 else 1.0))

    s = settings(tail_quantile=0.99, target_rel_ci_tail=0.01, target_rel_ci=0.05, min_duration_s=1.0,
                 max_duration_s=300.0)
    loop, _ = run_loop(s, service)
    assert loop.stop_reason == "noise_limited" and loop.elapsed_ns < 100e9
    assert loop.final_rel_ci <= 0.05 and loop.final_rel_ci_tail > 0.01


@pytest.mark.parametrize("seed", range(6))
def test_independent_noise_with_the_tail_rule_converges(seed):
    rng = random.Random(seed)
    s = settings(tail_quantile=0.99, target_rel_ci_tail=0.02, target_rel_ci=0.01, max_duration_s=3000.0)
    loop, _ = run_loop(s, lambda: int(rng.lognormvariate(0, 0.2) * 10_000_000))
    assert loop.stop_reason == "converged" and loop.final_rel_ci_tail <= 0.02


def test_a_slow_noisy_model_whose_tail_cannot_be_bounded_may_still_stop_as_noise_limited():
    # 300 ms per request with a drifting speed and a 60 s cap: p99 can never get 368 samples, and the
    # median's interval stops narrowing: the loop need not spend the cap.
    rng = random.Random(3)
    service = drifting(rng, 300_000_000, 3_000_000, 0.03)

    s = settings(tail_quantile=0.99, target_rel_ci=0.002, min_duration_s=1.0, max_duration_s=60.0)
    loop, _ = run_loop(s, service)
    assert loop.stop_reason == "noise_limited" and loop.elapsed_ns < 50e9
    assert len(loop.samples_ns) < 368
