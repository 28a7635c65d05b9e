"""One table of reported percentiles (bench.measurement.stats.PERCENTILES): every record kind takes
its rows from it, and lists the same percentiles it always has."""

from __future__ import annotations

import pytest

from bench.measurement import stats
from bench.measurement.load import LOAD_PERCENTILES, LoadSettings, latency_summary, serve


def test_one_table_shared_by_metrics_and_the_leaderboard():
    from bench.reporting import leaderboard
    from bench.results import metrics

    assert stats.PERCENTILES == {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
    assert metrics.PERCENTILES is stats.PERCENTILES
    assert not hasattr(leaderboard, "PERCENTILES")  # read from stats where it is needed, not copied


def test_load_records_list_p50_p90_p99_selected_from_the_table():
    assert LOAD_PERCENTILES == {"p50": 0.50, "p90": 0.90, "p99": 0.99}
    assert all(stats.PERCENTILES[name] == q for name, q in LOAD_PERCENTILES.items())

    class Clock:
        t = 0

        def now(self):
            return self.t

        def sleep_until(self, t):
            self.t = max(self.t, t)

    clock = Clock()

    def run_batch(k):
        clock.t += 1_000_000

    result = serve(list(range(0, 10**9, 10**7)), run_batch, LoadSettings(1, 0, 10**8, 10**9), 10**9, clock=clock)
    names = {key[len("latency_"):-len("_ms")] for key in latency_summary(result)
             if key.startswith("latency_p") and key.endswith("_ms") and "_ci_" not in key}
    assert names == {"p50", "p90", "p99"}


def test_loop_records_list_every_row_of_the_table():
    from bench.measurement.loop import LoopResult
    from bench.results.metrics import loop_metrics

    loop = LoopResult(scenario="latency", batch_size=1, block=1, samples_ns=list(range(1000, 2000)), warmup_ns=[1],
                      warmup_stop="iterations_and_time", timing_overhead_ns=0.0, clock_resolution_ns=1.0,
                      converged=True, stop_reason="converged", elapsed_ns=10**6, checks=1, final_rel_ci=0.01)
    names = {key[len("latency_"):-len("_ms")] for key in loop_metrics(loop, 0.95)
             if key.startswith("latency_p") and key.endswith("_ms") and "_ci_" not in key}
    assert names == set(stats.PERCENTILES)


def test_selecting_rows_keeps_the_table_order_and_refuses_unknown_names():
    assert list(stats.percentiles("p99", "p50")) == ["p50", "p99"]
    with pytest.raises(KeyError, match="p42"):
        stats.percentiles("p50", "p42")
