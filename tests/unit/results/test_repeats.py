"""repeats=N: fresh processes pooled into one record whose intervals hold the between-process variation."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from bench.results.repeats import pool, prediction_interval
from bench.measurement.stats import t_quantile

from tests.recordfactory import make_record


def processes(medians_ms, scenario="latency", n=400, spread=0.01):
    return [make_record(scenario=scenario, batch_size=1, median_ms=m, n=n, spread=spread, seed=i)
            for i, m in enumerate(medians_ms)]


def test_prediction_interval_is_students_t_for_one_more_process():
    values = [10.0, 11.0, 12.0]
    lo, hi = prediction_interval(values)
    half = t_quantile(0.975, 2) * 1.0 * math.sqrt(1 + 1 / 3)  # s = 1
    assert lo == pytest.approx(11.0 - half) and hi == pytest.approx(11.0 + half)
    assert prediction_interval(values, centre=20.0) == pytest.approx((20.0 - half, 20.0 + half))
    with pytest.raises(ValueError):
        prediction_interval([1.0])


def test_prediction_interval_covers_a_fresh_process_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = 0
    trials = 4000
    for _ in range(trials):
        values = rng.normal(100.0, 5.0, size=5)
        lo, hi = prediction_interval(values)
        hits += lo <= rng.normal(100.0, 5.0) <= hi
    assert 0.94 <= hits / trials <= 0.96


def test_processes_whose_means_differ_widen_the_interval_beyond_each_process():
    # Each process alone claims a tight interval around its own median (1% spread, 400 samples), but
    # the three medians are 10, 11 and 12 ms: the pooled interval must reach across them.
    records = processes([10.0, 11.0, 12.0])
    for r in records:
        lo, hi = r.metrics["latency_p50_ci_low_ms"], r.metrics["latency_p50_ci_high_ms"]
        assert (hi - lo) / r.metrics["latency_p50_ms"] < 0.01
    pooled = pool(records)
    m = pooled.metrics
    assert m["repeats"] == 3 and m["ci_scope"] == "repeats"
    lo, hi = m["latency_p50_ci_low_ms"], m["latency_p50_ci_high_ms"]
    assert lo < 10.0 and hi > 12.0
    # Every process's own median lies inside the pooled interval.
    assert all(lo <= r.metrics["latency_p50_ms"] <= hi for r in records)
    assert m["process_cv_latency_p50"] == pytest.approx(np.std([r.metrics["latency_p50_ms"] for r in records],
                                                                ddof=1) / 11.0, rel=0.05)
    # Throughput: the mean of the processes', with their spread in the interval.
    tps = [r.metrics["throughput_sps"] for r in records]
    assert m["throughput_sps"] == pytest.approx(np.mean(tps))
    assert m["throughput_ci_low_sps"] < min(tps) and m["throughput_ci_high_sps"] > max(tps)
    assert m["samples"] == sum(r.metrics["samples"] for r in records)
    assert [p["metrics"]["latency_p50_ms"] for p in pooled.raw["repeats"]] == \
        [r.metrics["latency_p50_ms"] for r in records]
    assert pooled.raw["loop"] == records[0].raw["loop"]


def test_identical_processes_keep_the_within_process_interval():
    # The between-process spread is ~0: the pooled interval is never narrower than the processes' own.
    records = [make_record(scenario="latency", batch_size=1, median_ms=5.0, n=400, spread=0.05, seed=7)
               for _ in range(3)]
    m = pool(records).metrics
    own = records[0].metrics
    assert m["latency_p50_ci_low_ms"] <= own["latency_p50_ci_low_ms"]
    assert m["latency_p50_ci_high_ms"] >= own["latency_p50_ci_high_ms"]


def test_a_tail_is_bounded_by_the_pooled_samples_or_not_at_all():
    # 100 samples per process: no process bounds p99 alone; 4 processes (400 samples) do.
    four = pool(processes([5.0, 5.1, 5.0, 4.9], n=100))
    assert four.metrics["latency_p99_ci_high_ms"] is not None
    two = pool(processes([5.0, 5.1], n=100))
    assert two.metrics["latency_p99_ci_high_ms"] is None


def test_a_tail_the_pooled_samples_bound_drops_the_processes_tail_warning():
    unbounded = {"code": "tail_unbounded", "message": "p99 latency has no upper bound", "hint": "longer"}
    records = processes([5.0, 5.1, 5.0, 4.9], n=100)
    for r in records:
        object.__setattr__(r, "metrics", {**r.metrics, "tail_percentile": 0.99, "tail_bounded": False})
        object.__setattr__(r, "warnings", [unbounded])
    pooled = pool(records)
    assert pooled.metrics["tail_bounded"] is True and pooled.warnings == []
    two = pool(records[:2])
    assert two.metrics["tail_bounded"] is False
    assert [w["code"] for w in two.warnings] == ["tail_unbounded"]


def test_converged_only_when_every_process_converged_and_warnings_say_where():
    records = processes([10.0, 10.2, 10.1])
    bad = records[1]
    object.__setattr__(bad, "metrics", {**bad.metrics, "converged": False, "stop_reason": "max_duration"})
    object.__setattr__(bad, "warnings", [{"code": "not_converged", "message": "stopped by max_duration",
                                          "hint": "longer"}])
    pooled = pool(records)
    assert pooled.metrics["converged"] is False
    assert "max_duration" in pooled.metrics["stop_reason"]
    assert {"code": "not_converged", "message": "stopped by max_duration (in process 2 of 3)",
            "hint": "longer"} in pooled.warnings
    assert len({w["code"] for w in pooled.warnings}) == len(pooled.warnings)  # each code once


def test_pooling_refuses_failed_records_and_single_ones():
    with pytest.raises(ValueError):
        pool(processes([1.0]))
    with pytest.raises(ValueError):
        pool([*processes([1.0]), make_record(status="failed")])


def test_calibration_of_pooled_records_against_each_other():
    # Simulated fresh processes whose true medians vary by 5% between processes (as measured on
    # this project's machine) while each process claims ±0.2%: single-process intervals almost never
    # hold another run, pooled records (5 processes each) hold at least 95% of other records.
    rng = random.Random(1)

    def one_process(seed: int):
        return make_record(scenario="latency", batch_size=1, median_ms=rng.gauss(10.0, 0.5), n=400,
                           spread=0.02, seed=seed)

    singles = [one_process(i) for i in range(12)]
    pooled = [pool([one_process(100 + 5 * i + k) for k in range(5)]) for i in range(12)]

    def fraction_inside(records):
        hits = total = 0
        for a in records:
            for b in records:
                if a is b:
                    continue
                lo, hi = a.metrics["latency_p50_ci_low_ms"], a.metrics["latency_p50_ci_high_ms"]
                hits += lo <= b.metrics["latency_p50_ms"] <= hi
                total += 1
        return hits / total

    assert fraction_inside(singles) < 0.3
    assert fraction_inside(pooled) >= 0.95


@pytest.mark.slow
def test_runner_pools_fresh_worker_processes_into_one_stored_record(in_tmp):
    from tests.integration.test_runner import fake_config, run_items

    cfg = fake_config(in_tmp, "repeats=3", "worker.timeout_s=60")
    records, store = run_items(cfg, ["tiny"], in_tmp)
    (record,) = records
    assert record.status == "ok" and record.metrics["repeats"] == 3 and record.metrics["ci_scope"] == "repeats"
    assert len(record.raw["repeats"]) == 3
    # Three processes, three sets of samples, each its own.
    loops = [p["loop"]["samples_ns"] for p in record.raw["repeats"]]
    assert len({tuple(x) for x in loops}) == 3
    assert [r.id for r in store.select({})] == [record.id]  # one record, not three


@pytest.mark.slow
def test_a_failing_process_fails_the_item_and_says_which(in_tmp):
    from tests.integration.test_runner import fake_config, run_items

    cfg = fake_config(in_tmp, "repeats=2", "worker.timeout_s=60")
    records, _ = run_items(cfg, ["raises"], in_tmp)
    assert records[0].status == "failed" and records[0].error["message"].startswith("process 1 of 2: ")


def test_repeats_and_the_rigorous_preset_are_validated(tmp_path):
    from bench.config.compose import compose, to_config
    from bench.config.validate import validate
    from bench.errors import ConfigError

    cfg = to_config(compose(["preset=rigorous", f"results.dir={tmp_path}"]))
    assert cfg.repeats == 5 and cfg.scenario.min_duration_s == 10.0 and cfg.scenario.max_duration_s == 60.0
    cfg = to_config(compose(["preset=rigorous", "repeats=8", "scenario=throughput", f"results.dir={tmp_path}"]))
    assert cfg.repeats == 8 and cfg.scenario.name == "throughput" and cfg.scenario.min_duration_s == 10.0
    with pytest.raises(ConfigError) as err:
        validate(to_config(compose(["repeats=0", f"results.dir={tmp_path}"])))
    assert err.value.key == "repeats"
