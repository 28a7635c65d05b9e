"""Worker isolation: an exception, a segfault, an out-of-memory, an exit and a hang each become a
failed record with the reason, and the run goes on."""

from __future__ import annotations

import io
import os

import pytest

from bench.config.compose import compose, compose_jobs, parse_hydra_args, to_config
from bench.reporting.progress import ProgressDisplay
from bench.orchestration.runner import Runner, WorkItem, expand, run_worker
from bench.results.store import ResultsStore

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

FAST = [
    "scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=5",
    "scenario.min_duration_s=0.05", "scenario.max_duration_s=0.5",
]


def fake_config(tmp_path, *extra: str):
    cfg = to_config(compose(["suite=fake", f"results.dir={tmp_path / 'results'}", *FAST, *extra],
                            config_dirs=[str(ROOT / "tests" / "conf")]))
    return cfg


def run_items(cfg, names, tmp_path):
    store = ResultsStore(cfg.results.dir)
    display = ProgressDisplay(io.StringIO(), plain=True)
    runner = Runner(cfg, store, {"hardware": "test"}, display)
    items = [WorkItem(name, 1, "latency") for name in names]
    done = runner.run(items, {})
    return [record for record, _ in done], store


def test_each_failure_is_recorded_and_the_run_goes_on(in_tmp):
    cfg = fake_config(in_tmp, "worker.timeout_s=20")
    records, store = run_items(cfg, ["raises", "segfault", "oom", "exit", "tiny"], in_tmp)
    by_name = {r.workload["name"]: r for r in records}
    raised = by_name["raises"]
    assert raised.status == "failed" and raised.error["kind"] == "exception"
    assert "ValueError: boom from the model builder" in raised.error["message"]
    assert "build_raises" in raised.error["traceback"]
    crashed = by_name["segfault"]
    assert crashed.status == "failed" and crashed.error["kind"] == "crash"
    assert "SIGSEGV" in crashed.error["message"]
    assert "Segmentation fault" in crashed.error["log_tail"]  # faulthandler's last words
    oom = by_name["oom"]
    assert oom.status == "oom" and oom.error["kind"] == "oom"
    assert "MemoryError" in oom.error["message"]
    exited = by_name["exit"]
    assert exited.error["kind"] == "crash" and "code 3" in exited.error["message"]
    ok = by_name["tiny"]
    assert ok.status == "ok" and ok.valid and ok.error is None
    assert ok.metrics["latency_p50_ms"] > 0 and ok.metrics["throughput_sps"] > 0
    assert ok.workload["params"] == 16 * 32 + 32 + 32 * 4 + 4
    assert len(ok.raw["loop"]["samples_ns"]) == ok.metrics["samples"]
    assert store.count() == 5
    assert {r.id for r in store.records()} == {r.id for r in records}


def test_a_hanging_worker_is_killed_at_its_timeout(in_tmp):
    # The timeout must leave the healthy item room to start torch on a loaded machine.
    cfg = fake_config(in_tmp, "worker.timeout_s=12", "sensors.enabled=false")
    records, _ = run_items(cfg, ["hang", "tiny"], in_tmp)
    hang, ok = records
    assert hang.status == "failed" and hang.error["kind"] == "timeout"
    assert "worker.timeout_s=12" in hang.error["message"]
    assert ok.status == "ok", ok.error


def test_the_parent_blocks_instead_of_polling(in_tmp):
    """Without a terminal to refresh, the parent wakes only when the worker writes or times out."""
    ticks = []
    cfg = fake_config(in_tmp)
    runner = Runner(cfg, ResultsStore(cfg.results.dir), {}, ProgressDisplay(io.StringIO(), plain=True))
    before = os.times()
    outcome = run_worker(runner.item_request(WorkItem("hang", 1, "latency")), 2.0, on_tick=lambda: ticks.append(1))
    after = os.times()
    assert outcome.error["kind"] == "timeout" and ticks == []
    # A busy-waiting parent would burn about the whole 2 s of the wait on the CPU.
    assert (after.user - before.user) + (after.system - before.system) < 1.0


def test_expand_selects_workloads_and_batch():
    cfg = to_config(compose(["suite=fake", "suite.only=[tiny,oom]", "batch_size=4"],
                            config_dirs=[str(ROOT / "tests" / "conf")]))
    items = expand(cfg, ["tiny", "raises", "oom"])
    assert [(i.workload, i.batch_size, i.scenario) for i in items] == [("tiny", 4, "latency"), ("oom", 4, "latency")]
    cfg = to_config(compose(["scenario=throughput"]))
    assert expand(cfg, ["efficientad_s"])[0].batch_size == cfg.scenario.default_batch_size


def test_multirun_jobs_are_composed_before_anything_runs(in_tmp):
    args = parse_hydra_args(["-m", "batch_size=1,2,4", "scenario=latency,throughput"])
    jobs = compose_jobs(args)
    assert sorted((j.batch_size, j.scenario.name) for j in jobs) == sorted(
        (b, s) for b in (1, 2, 4) for s in ("latency", "throughput"))
