"""The runner: work items expanded from a config, jobs composed before anything runs, and a parent that
blocks on its worker instead of polling. (Each worker fault becoming a record while the run goes on is
tested end to end in tests/faults/test_faults_survived.py.)"""

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
