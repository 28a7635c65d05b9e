"""A cluster job whose node cannot reach the shared store (bench.cli.run._cluster_job): it measures into
its node's results.dir and its outcome names the store it could not reach, why, and the `bench import`
line that brings the records in."""

from __future__ import annotations

from types import SimpleNamespace

from bench.cli import run as run_module
from bench.cluster.launchers import JobFailed
from bench.config.compose import compose, to_config
from tests.conftest import ROOT

UNREACHABLE = "postgresql://bench@127.0.0.1:1/bench"  # port 1: nothing listens


def test_a_job_that_cannot_reach_the_store_measures_locally_and_says_how_to_import(tmp_path, monkeypatch, capsys):
    overrides = ["suite=fake", f"results.dir={tmp_path / 'node'}", f"results.url={UNREACHABLE}"]
    cfg = to_config(compose(overrides, "config", [str(ROOT / "tests" / "conf")]))
    ctx = run_module.RunContext(args=None, jobs={tuple(overrides): cfg}, launcher="submitit_local")
    hydra = SimpleNamespace(job=SimpleNamespace(num=3), overrides=SimpleNamespace(task=overrides))
    monkeypatch.setattr("hydra.core.hydra_config.HydraConfig.get", staticmethod(lambda: hydra))
    measured_into = []
    monkeypatch.setattr(run_module, "_task", lambda ctx_, cfg_: measured_into.append(ctx_.jobs[tuple(overrides)]))
    outcome = run_module._cluster_job(ctx, None)
    assert isinstance(outcome, JobFailed) and outcome.job == 3
    (local,) = measured_into
    assert local.results.url is None and local.results.dir == str(tmp_path / "node")  # the node's SQLite
    said = capsys.readouterr().err
    assert f"results.url='{UNREACHABLE}' cannot be reached from" in said
    assert f"bench import {tmp_path / 'node' / 'records'} results.url={UNREACHABLE}" in said
    assert "connect" in outcome.reason.lower() or "refused" in outcome.reason.lower()
