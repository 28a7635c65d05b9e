"""The cost of sampling power and memory during a measurement.

Run with:  python -m pytest benchmarks/test_sampler_overhead.py -n 0 --benchmark-only -s
On a workload of about 1 ms, the median latency measured with the sampler process running (20 Hz
power, 50 Hz memory) and without it, side by side, interleaved in one run; the goal is a difference
under 1%. The sampler reads what this machine has (the process's memory; powercap and NVML where
present).
"""

from __future__ import annotations

import os
import statistics

import numpy as np
import pytest

from bench.measurement.loop import LoopSettings, measure, warm_up
from bench.system.sensors.sampler import Sampler

A = np.random.default_rng(0).random((160, 160))


def work() -> None:
    # About 1 ms on one core here: a fixed chain of small matrix products.
    x = A
    for _ in range(8):
        x = x @ A
        x /= x.max()


def sync() -> None:
    pass


SETTINGS = LoopSettings(scenario="latency", batch_size=1, warmup_iterations=20, warmup_s=0.1, warmup_max_s=5.0,
                        min_iterations=500, min_duration_s=1.0, max_duration_s=3.0, target_rel_ci=0.005,
                        confidence=0.95, max_iterations=100_000)


def median_ms(with_sampler: bool) -> float:
    sampler = Sampler({"pid": os.getpid(), "nvml": True}) if with_sampler else None
    if sampler:
        sampler.start()
    try:
        loop = measure(work, sync, SETTINGS, warm_up(work, sync, SETTINGS))
    finally:
        if sampler:
            sampler.stop()
    return statistics.median(loop.samples_ns) / loop.block / 1e6


@pytest.mark.benchmark(group="sampler")
def test_sampler_overhead(benchmark):
    on, off = [], []
    for _ in range(6):
        off.append(median_ms(False))
        on.append(median_ms(True))
    ratio = statistics.median(on) / statistics.median(off)
    benchmark.extra_info.update(median_on_ms=statistics.median(on), median_off_ms=statistics.median(off),
                                on_over_off=ratio, load=os.getloadavg()[0])
    print(f"\nsampler on {statistics.median(on):.4f} ms, off {statistics.median(off):.4f} ms, "
          f"ratio {ratio:.4f} (load {os.getloadavg()[0]:.2f})")
    benchmark.pedantic(median_ms, args=(True,), rounds=1, iterations=1)
