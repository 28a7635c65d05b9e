"""The continual-learning timeline with a fake backend of known service times on a simulated clock:
the phases, their latencies and the degradation ratio are exact; a swap takes effect between batches,
never inside one; a real-threaded swap storm never serves a request on a half-prepared model."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from bench.measurement.clock import REAL_CLOCK
from bench.measurement.continual import (Marks, ModelSlot, degradation, phase_bounds, phase_summaries,
                                         run_timeline)
from bench.measurement.load import LoadSettings
from tests.unit.measurement.test_dispatch import MS, S, SimClock


class Model:
    def __init__(self, version: int) -> None:
        self.version = version
        self.ready = False


class FakeDetector:
    """Fires after ``delay`` drifted samples."""

    def __init__(self, delay: int) -> None:
        self.delay, self.drifted, self.fired = delay, 0, False

    def update(self, feats: np.ndarray):
        self.drifted += int(feats.sum())
        if not self.fired and self.drifted >= self.delay:
            self.fired = True
            return {"sample": self.drifted}
        return None

    def summary(self):
        return {"fired": self.fired}


def _timeline(service_ns: int, slow_ns: int, adapt_ns: int, detect_after: int = 10, period_ns: int = 50 * MS,
              duration_ns: int = 20 * S, drift_ns: int = 5 * S, after_swap_ns=None):
    clock = SimClock()
    marks = Marks(clock)
    slot = ModelSlot(Model(0), marks)
    adapting = {"on": False}
    served = []  # (version at start, version at end) of every batch

    def run_batch(model, first, k, drifted):
        start_version = slot.current()[0]
        clock.t += slow_ns if adapting["on"] else service_ns
        served.append((model.version, start_version, slot.current()[0]))

    def on_detect(found):
        adapting["on"] = True

        def swap():
            adapting["on"] = False
            slot.swap(Model(1))

        clock.at(clock.now() + adapt_ns, swap)

    arrivals = np.arange(0, duration_ns, period_ns, dtype=np.int64)
    settings = LoadSettings(batch_size=1, max_wait_ns=0, slo_ns=20 * MS, drain_ns=2 * S)
    result = run_timeline(arrivals, settings, duration_ns, drift_ns, slot, run_batch,
                          lambda first, k, drifted: np.full((k, 1), float(drifted)), FakeDetector(detect_after),
                          on_detect, after_swap_ns=after_swap_ns)
    return result, served


def test_phases_latencies_and_degradation_are_exact():
    result, served = _timeline(service_ns=10 * MS, slow_ns=25 * MS, adapt_ns=3 * S)
    # Drift at 5 s; the 10th drifted request (arrival 5.45 s) fires the detector; the swap 3 s later.
    assert result.marks_ns["drift"] == 5 * S
    assert result.marks_ns["detected"] == 5 * S + 450 * MS
    assert result.marks_ns["swapped"] == 8 * S + 450 * MS
    bounds = phase_bounds(result.marks_ns, 20 * S)
    assert bounds == {"steady": (0, 5 * S), "drifted": (5 * S, 5450 * MS), "adapting": (5450 * MS, 8450 * MS),
                      "adapted": (8450 * MS, 20 * S)}
    phases = phase_summaries(result, 0.95)
    assert phases["steady"]["queries"] == 100 and phases["drifted"]["queries"] == 9
    assert phases["adapting"]["queries"] == 60 and phases["adapted"]["queries"] == 231
    assert phases["steady"]["latency_p99_ms"] == pytest.approx(10.0)
    assert phases["adapting"]["latency_p50_ms"] == pytest.approx(25.0)
    assert phases["adapting"]["late_queries"] == 60  # every one over the 20 ms requirement
    assert phases["adapted"]["latency_p99_ms"] == pytest.approx(10.0) and phases["adapted"]["late_queries"] == 0
    assert phases["steady"]["versions"] == [0] and phases["adapted"]["versions"] == [1]
    ratio = degradation(phases["steady"], phases["adapting"], "p99")
    assert ratio["ratio"] == pytest.approx(2.5)
    # 60 requests cannot bound a 99th percentile: the ratio's interval says so instead of guessing.
    assert ratio["ci_low"] is None and ratio["ci_high"] is None
    median = degradation(phases["steady"], phases["adapting"], "p50")
    assert median["ratio"] == pytest.approx(2.5) and median["ci_low"] <= 2.5 <= median["ci_high"]
    # Each batch ran on the version current when it started, which did not change under it.
    assert all(model == before == after for model, before, after in served)
    arrivals = np.asarray(result.serve.arrivals_ns)
    versions = np.asarray(result.versions)
    assert (versions[arrivals < 8450 * MS] == 0).all() and (versions[arrivals >= 8450 * MS] == 1).all()
    assert result.drifted == (arrivals >= 5 * S).tolist()


def test_queueing_during_adaptation_shows_as_late_and_dropped():
    # 60 ms batches against arrivals every 50 ms while adapting: the queue grows for 3 s, then drains.
    result, _ = _timeline(service_ns=10 * MS, slow_ns=60 * MS, adapt_ns=3 * S)
    phases = phase_summaries(result, 0.95)
    assert phases["adapting"]["latency_p99_ms"] > 60.0
    assert phases["steady"]["late_queries"] == 0
    assert phases["adapting"]["late_queries"] == phases["adapting"]["queries"]
    assert degradation(phases["steady"], phases["adapting"], "p99")["ratio"] > 6.0


def test_no_detection_leaves_steady_and_drifted_only():
    result, _ = _timeline(service_ns=10 * MS, slow_ns=10 * MS, adapt_ns=S, detect_after=10_000)
    assert "detected" not in result.marks_ns
    assert set(phase_bounds(result.marks_ns, 20 * S)) == {"steady", "drifted"}
    assert set(result.versions) == {0}


def test_false_alarm_has_no_drifted_phase():
    bounds = phase_bounds({"drift": 5 * S, "detected": 2 * S, "swapped": 3 * S}, 20 * S)
    assert bounds == {"steady": (0, 2 * S), "adapting": (2 * S, 3 * S), "adapted": (3 * S, 20 * S)}


def test_a_swap_storm_never_serves_a_half_prepared_model():
    """Real threads: a swapper prepares models (ready only at the end of a slow preparation) and swaps
    them in as fast as it can while batches run; every batch runs on a ready model, one version from
    its start to its end, and versions never go back."""
    marks = Marks(REAL_CLOCK)
    first = Model(0)
    first.ready = True
    slot = ModelSlot(first, marks)
    seen: list[int] = []
    problems: list[str] = []

    def run_batch(model, first_index, k, drifted):
        if not model.ready:
            problems.append(f"batch {first_index} on unready version {model.version}")
        version = model.version
        time.sleep(0.0005)
        if model.version != version:
            problems.append(f"batch {first_index} saw its model change")
        seen.append(version)

    stop = threading.Event()

    def swapper():
        version = 0
        while not stop.is_set():
            version += 1
            model = Model(version)
            time.sleep(0.0003)  # preparing: conversion, parity
            model.ready = True
            slot.swap(model)

    thread = threading.Thread(target=swapper)
    thread.start()
    try:
        arrivals = np.arange(0, 300 * MS, MS // 2, dtype=np.int64)
        settings = LoadSettings(batch_size=1, max_wait_ns=0, slo_ns=S, drain_ns=5 * S)
        run_timeline(arrivals, settings, 300 * MS, 100 * MS, slot, run_batch,
                     lambda first, k, drifted: np.zeros((k, 1)), None, lambda found: None)
    finally:
        stop.set()
        thread.join()
    assert not problems
    assert seen == sorted(seen) and len(set(seen)) > 10


def test_the_timeline_ends_a_set_time_after_the_swap():
    result, _ = _timeline(service_ns=10 * MS, slow_ns=25 * MS, adapt_ns=3 * S, after_swap_ns=2 * S)
    # Swap at 8.45 s: arrivals end at 10.45 s, the ones scheduled later never offered.
    assert result.serve.duration_ns == 10450 * MS
    arrivals = np.asarray(result.serve.arrivals_ns)
    assert arrivals.max() < 10450 * MS and len(arrivals) == 209 == len(result.versions) == len(result.drifted)
    assert result.serve.dropped == 0
    bounds = phase_bounds(result.marks_ns, result.serve.duration_ns)
    assert bounds["adapted"] == (8450 * MS, 10450 * MS)
    assert phase_summaries(result, 0.95)["adapted"]["queries"] == 40


def test_without_a_swap_the_timeline_runs_to_its_longest():
    result, _ = _timeline(service_ns=10 * MS, slow_ns=10 * MS, adapt_ns=S, detect_after=10_000, after_swap_ns=2 * S)
    assert result.serve.duration_ns == 20 * S and len(result.serve.arrivals_ns) == 400
