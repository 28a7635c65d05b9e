"""The harness's per-iteration overhead against a bare loop around the same function.

Run with:  python -m pytest benchmarks/ -n 0 --benchmark-only
Both loops call the same ~20 us function; they are measured side by side, interleaved in one run,
and two ratios are printed and stored in the benchmark's extra_info: what the harness reports per
iteration over the bare loop's time per iteration (the bias the harness adds to a measurement; goal
under 1.01), and the harness's wall time per iteration, stopping-rule checks included, over the bare
loop's (its cost in time; goal under 1.05).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from bench.measurement.loop import LoopSettings, measure

N = 3000
DATA = np.random.default_rng(0).random(2000)


def work() -> None:
    np.sort(DATA)


def sync() -> None:
    pass


def settings(scenario: str) -> LoopSettings:
    return LoopSettings(scenario=scenario, batch_size=1, warmup_iterations=0, warmup_s=0.001, warmup_max_s=1.0,
                        min_iterations=N, min_duration_s=1e-6, max_duration_s=60.0, target_rel_ci=1e-12,
                        confidence=0.95, max_iterations=N)


def bare() -> float:
    t0 = time.perf_counter_ns()
    for _ in range(N):
        work()
        sync()
    return (time.perf_counter_ns() - t0) / N


def harness(scenario: str) -> tuple[float, float]:
    """(what the harness reports per iteration, its wall time per iteration with checks included)."""
    t0 = time.perf_counter_ns()
    loop = measure(work, sync, settings(scenario), ([20_000] * 4, "iterations_and_time"))
    wall = (time.perf_counter_ns() - t0) / loop.iterations
    # Latency: the mean of the per-request times; throughput: the window over the iterations
    # (1 / throughput). Both are sum(samples) / iterations.
    return sum(loop.samples_ns) / loop.iterations, wall


def interleaved(scenario: str, rounds: int = 15) -> dict[str, float]:
    bare_t, reported_t, wall_t = [], [], []
    for _ in range(rounds):
        bare_t.append(bare())
        reported, wall = harness(scenario)
        reported_t.append(reported)
        wall_t.append(wall)
    b = statistics.median(bare_t)
    return {"bare_ns_per_iteration": b, "reported_ns_per_iteration": statistics.median(reported_t),
            "wall_ns_per_iteration": statistics.median(wall_t),
            "reported_over_bare": statistics.median(reported_t) / b, "wall_over_bare": statistics.median(wall_t) / b}


@pytest.mark.parametrize("scenario", ["latency", "throughput"])
def test_harness_overhead_ratio(benchmark, scenario):
    r = interleaved(scenario)
    benchmark.extra_info.update(r)
    print(f"\n{scenario}: bare {r['bare_ns_per_iteration']:.0f} ns/it; harness reports "
          f"{r['reported_ns_per_iteration']:.0f} ns/it (x{r['reported_over_bare']:.4f}) and spends "
          f"{r['wall_ns_per_iteration']:.0f} ns/it of wall time (x{r['wall_over_bare']:.4f})")
    benchmark.group = f"overhead-{scenario}"
    benchmark.pedantic(harness, args=(scenario,), rounds=5, iterations=1)


def test_bare_loop(benchmark):
    benchmark.group = "overhead-bare"
    benchmark.pedantic(bare, rounds=5, iterations=1)
