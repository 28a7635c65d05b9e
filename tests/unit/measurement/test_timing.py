"""The bounded timing helper under a fake clock: min_runs, min_s and max_s, the synchronize inside
the clock pair, and the four loops that time through it keep their bounds."""

from __future__ import annotations

import itertools

import pytest

from bench.measurement.clock import REAL_CLOCK, Clock, reader
from bench.measurement.timing import timed_runs

MS = 1_000_000
S = 1_000_000_000


class TickingClock:
    """A plain callable clock whose time moves only when the timed call adds to it."""

    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        return self.t


def worker(clock: TickingClock, costs):
    costs = iter(costs)
    calls = []

    def fn() -> None:
        calls.append(clock.t)
        clock.t += next(costs)
    return fn, calls


def test_min_runs_holds_after_min_s():
    clock = TickingClock()
    fn, calls = worker(clock, itertools.repeat(300 * MS))
    runs = timed_runs(fn, min_runs=10, min_s=1.0, max_s=60.0, clock=clock)
    assert len(calls) == 10 and runs.durations_ns == [300 * MS] * 10  # 1 s passed after 4 calls
    assert runs.stop == "runs_and_time" and runs.elapsed_ns == 3 * S


def test_min_s_holds_after_min_runs():
    clock = TickingClock()
    fn, calls = worker(clock, itertools.repeat(300 * MS))
    runs = timed_runs(fn, min_runs=2, min_s=1.0, max_s=60.0, clock=clock)
    assert len(calls) == 4 and runs.stop == "runs_and_time"  # 4 x 300 ms is the first to reach 1 s


def test_max_s_stops_before_min_runs_and_min_s():
    clock = TickingClock()
    fn, calls = worker(clock, itertools.repeat(300 * MS))
    runs = timed_runs(fn, min_runs=100, min_s=10.0, max_s=1.0, clock=clock)
    assert len(calls) == 4 and runs.stop == "max_time"  # the call that crosses 1 s is the last


def test_at_least_one_call_and_no_time_bound_by_default():
    clock = TickingClock()
    fn, calls = worker(clock, itertools.repeat(5 * S))
    assert timed_runs(fn, min_runs=1, max_s=0.0, clock=clock).durations_ns == [5 * S]
    fn, calls = worker(clock, itertools.repeat(5 * S))
    runs = timed_runs(fn, min_runs=7, clock=clock)  # no max_s: exactly min_runs, however long
    assert len(calls) == 7 and runs.stop == "runs_and_time"


def test_the_synchronize_is_inside_each_timed_call():
    clock = TickingClock()
    fn, calls = worker(clock, [1 * MS, 2 * MS, 3 * MS])
    syncs = []

    def sync() -> None:
        syncs.append(clock.t)
        clock.t += 10 * MS

    runs = timed_runs(fn, sync, min_runs=3, clock=clock)
    assert runs.durations_ns == [11 * MS, 12 * MS, 13 * MS] and len(syncs) == 3


def test_a_clock_object_and_a_plain_callable_are_read_the_same_way():
    class Fake(Clock):
        def __init__(self) -> None:
            self.t = 0

        def now(self) -> int:
            return self.t

    clock = Fake()
    fn, _ = worker(clock, itertools.repeat(2 * MS))
    assert timed_runs(fn, min_runs=3, clock=clock).durations_ns == [2 * MS] * 3
    assert reader(REAL_CLOCK) is REAL_CLOCK.now  # the builtin itself inside timed regions
    assert reader(clock) == clock.now and reader(len) is len
    assert isinstance(REAL_CLOCK(), int)


def test_warm_up_keeps_its_bounds_and_stop_names():
    from bench.measurement.loop import LoopSettings, warm_up

    def loop_settings(**kw) -> LoopSettings:
        base = dict(scenario="latency", batch_size=1, warmup_iterations=5, warmup_s=1.0, warmup_max_s=2.0,
                    min_iterations=1, min_duration_s=0.0, max_duration_s=1.0, target_rel_ci=0.1, confidence=0.95,
                    max_iterations=10)
        return LoopSettings(**{**base, **kw})

    clock = TickingClock()
    fn, _ = worker(clock, itertools.repeat(100 * MS))
    warm, stop = warm_up(fn, lambda: None, loop_settings(), clock)
    assert stop == "iterations_and_time" and len(warm) == 10  # 1 s takes 10 calls of 100 ms
    fn, _ = worker(clock, itertools.repeat(700 * MS))
    warm, stop = warm_up(fn, lambda: None, loop_settings(), clock)
    assert stop == "max_time" and len(warm) == 3  # 3 x 700 ms crosses 2 s before 5 calls


@pytest.mark.parametrize("cost_ms, calls", [(1.0, 5), (900.0, 3)])
def test_loadgen_calibration_keeps_its_bounds(cost_ms, calls):
    """One untimed call, then up to 5 timed calls or 2 s, whichever comes first; the fastest counts."""
    from bench.measurement.loadgen.run import _calibrate

    clock = TickingClock()
    seen = []

    def run_batch(n: int) -> None:
        seen.append(n)
        clock.t += int(cost_ms * MS)

    out = _calibrate(run_batch, 4, clock)
    assert len(seen) == 1 + calls and set(seen) == {4}
    assert out["times_ns"] == [int(cost_ms * MS)] * calls and out["best_ns"] == int(cost_ms * MS)
    assert out["batch"] == 4


def test_loadgen_calibration_never_reports_a_zero_time():
    from bench.measurement.loadgen.run import _calibrate

    out = _calibrate(lambda n: None, 1, TickingClock())  # a clock that never moves
    assert out["times_ns"] == [1] * 5 and out["best_ns"] == 1
