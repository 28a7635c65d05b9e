"""The batch sweep: its stopping rules on known curves, failures recorded as they are, resume after
kill -9, and the scaling analysis."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from bench.config.compose import compose, to_config
from bench.reporting.progress import ProgressDisplay
from bench.orchestration.runner import Runner
from bench.reporting.scaling import CurvePoint, best_within, curves, render_markdown, saturation_batch
from bench.results.store import ResultsStore
from bench.orchestration.sweep import SweepPoint, batch_sweep
from tests.conftest import ROOT

TEST_CONF = str(ROOT / "tests" / "conf")
# These sweeps test failures, resume and Ctrl-C: a point that does not converge in 0.3 s (a loaded
# machine) must not stop them before the point under test.
FAST = ["scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=3",
        "scenario.min_duration_s=0.05", "scenario.max_duration_s=0.3", "sensors.enabled=false",
        "sweep.require_converged=false"]


def curve(throughputs: dict[int, float], p99: dict[int, float] | None = None, oom_from: int | None = None,
          failed: set[int] = frozenset()):
    calls = []

    def measure(batch: int) -> SweepPoint:
        calls.append(batch)
        if oom_from is not None and batch >= oom_from:
            return SweepPoint(batch, "oom")
        if batch in failed:
            return SweepPoint(batch, "failed")
        return SweepPoint(batch, "ok", throughputs[batch], (p99 or {}).get(batch, 1.0))

    return measure, calls


def test_sweep_stops_at_out_of_memory_with_the_last_size_that_fit():
    measure, calls = curve({1: 10, 2: 20, 4: 40}, oom_from=8)
    result = batch_sweep(measure, 1, 2, 256, 0.02, 2, None)
    assert calls == [1, 2, 4, 8]
    assert result.last_fitting_batch == 4 and "out of memory at batch 8" in result.stop_reason


def test_a_point_that_does_not_converge_is_measured_again_then_the_sweep_stops_with_the_reason():
    calls = []

    def measure(batch: int) -> SweepPoint:
        calls.append(("measure", batch))
        # batch 2 never converges; its noisy p99 would break the 50 ms requirement
        return SweepPoint(batch, "ok", 10.0 * batch, 80.0 if batch == 2 else 5.0, converged=batch != 2)

    def remeasure(batch: int) -> SweepPoint:
        calls.append(("remeasure", batch))
        return SweepPoint(batch, "ok", 10.0 * batch, 70.0, converged=False, remeasured=True)

    result = batch_sweep(measure, 1, 2, 256, 0.02, 2, 50.0, remeasure)
    assert calls == [("measure", 1), ("measure", 2), ("remeasure", 2)]
    assert "batch 2 did not converge even measured again with a longer window" in result.stop_reason
    assert "p99" not in result.stop_reason  # never the latency requirement, on a point that is noise
    assert result.last_fitting_batch == 1
    assert [p.remeasured for p in result.points] == [False, False, True]


def test_a_point_that_converges_when_measured_again_decides_and_the_sweep_goes_on():
    calls = []

    def measure(batch: int) -> SweepPoint:
        calls.append(("measure", batch))
        return SweepPoint(batch, "ok", 10.0 * min(batch, 8), 80.0 if batch == 2 else 5.0, converged=batch != 2)

    def remeasure(batch: int) -> SweepPoint:
        calls.append(("remeasure", batch))
        return SweepPoint(batch, "ok", 20.0, 6.0, converged=True, remeasured=True)

    result = batch_sweep(measure, 1, 2, 256, 0.02, 2, 50.0, remeasure)
    assert calls[:3] == [("measure", 1), ("measure", 2), ("remeasure", 2)]
    assert ("measure", 4) in calls and "less than 2%" in result.stop_reason


def test_an_unconverged_point_without_a_second_chance_stops_the_sweep():
    measure = lambda batch: SweepPoint(batch, "ok", 10.0 * batch, 5.0, converged=False)  # noqa: E731
    result = batch_sweep(measure, 1, 2, 256, 0.02, 2, None)
    assert len(result.points) == 1 and "batch 1 did not converge" in result.stop_reason
    # sweep.require_converged=false decides on whatever was measured, as before.
    result = batch_sweep(measure, 1, 2, 4, 0.02, 2, None, require_converged=False)
    assert [p.batch_size for p in result.points] == [1, 2, 4] and "cap" in result.stop_reason


def test_sweep_stops_when_throughput_stops_growing_twice():
    measure, calls = curve({1: 10, 2: 20, 4: 30, 8: 30.3, 16: 30.5, 32: 50})
    result = batch_sweep(measure, 1, 2, 256, 0.02, 2, None)
    assert calls == [1, 2, 4, 8, 16]  # +1% then +0.7%: two small gains in a row
    assert "less than 2%" in result.stop_reason


def test_one_small_gain_does_not_stop_the_sweep():
    measure, calls = curve({1: 10, 2: 10.1, 4: 20, 8: 20.1, 16: 40, 32: 80})
    result = batch_sweep(measure, 1, 2, 32, 0.02, 2, None)
    assert calls == [1, 2, 4, 8, 16, 32] and "cap" in result.stop_reason


def test_sweep_stops_at_the_latency_requirement():
    measure, calls = curve({1: 10, 2: 19, 4: 35, 8: 60}, p99={1: 5, 2: 9, 4: 18, 8: 30})
    result = batch_sweep(measure, 1, 2, 256, 0.02, 2, 20.0)
    assert calls == [1, 2, 4, 8] and "breaks the 20 ms requirement" in result.stop_reason
    assert result.last_fitting_batch == 8


def test_a_failed_size_does_not_stop_the_others():
    measure, calls = curve({1: 10, 4: 40, 8: 80}, failed={2})
    result = batch_sweep(measure, 1, 2, 8, 0.02, 2, None)
    assert calls == [1, 2, 4, 8] and result.last_fitting_batch == 8


def test_saturation_and_best_within_budget_on_a_known_curve():
    points = [CurvePoint(b, t, None, p99, None) for b, t, p99 in
              [(1, 100, 2), (2, 180, 3), (4, 300, 5), (8, 380, 9), (16, 395, 17), (32, 400, 33)]]
    assert saturation_batch(points) == 8  # 380 >= 0.95 * 400
    assert best_within(points, 10.0).batch_size == 8
    assert best_within(points, 20.0).batch_size == 16
    assert best_within(points, 1.0) is None
    assert best_within(points, None).batch_size == 32


def fake_record(batch, tput, status="ok", p99=1.0, created="2026-01-01T00:00:00+00:00", hw="hw"):
    return SimpleNamespace(
        id=f"id{batch}{status}{created}", created_at=created, status=status, valid=status == "ok",
        system={"hardware": hw}, backend={"name": "cpu", "precision": "fp32"},
        workload={"name": "w", "batch_size": batch, "latency_tier_ms": 20},
        scenario={"name": "throughput"},
        metrics={"throughput_sps": tput, "latency_p50_ms": p99 / 2, "latency_p99_ms": p99, "peak_rss_mib": 100.0},
    )


def test_curves_group_records_and_keep_the_newest_point():
    records = [fake_record(1, 10), fake_record(2, 18), fake_record(2, 19, created="2026-02-01T00:00:00+00:00"),
               fake_record(4, 0, status="oom")]
    (c,) = curves(records)
    assert [(p.batch_size, p.throughput_sps) for p in c.points] == [(1, 10), (2, 19)]
    assert c.failures == [(4, "oom")]
    text = render_markdown([c])
    assert "| w | cpu fp32 | hw | throughput | 2 |" in text and "4: oom" in text


def test_plot_writes_png_and_svg(tmp_path):
    pytest.importorskip("matplotlib")
    from bench.reporting.scaling import plot

    (c,) = curves([fake_record(1, 10), fake_record(2, 18), fake_record(4, 30)])
    for name in ("s.png", "s.svg"):
        path = plot([c], tmp_path / name)
        assert path.stat().st_size > 1000
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "s.svg").read_bytes()[:500]


def sweep_config(tmp_path, backend: str, *extra: str):
    return to_config(compose(["suite=fake", "suite.only=[tiny]", f"backend={backend}", "sweep=batch",
                              "scenario=throughput", f"results.dir={tmp_path / 'results'}", "worker.timeout_s=12",
                              *FAST, *extra], config_dirs=[TEST_CONF]))


@pytest.mark.slow
@pytest.mark.parametrize("backend, expected", [
    ("fake_oom", [(1, "ok"), (2, "ok"), (4, "ok"), (8, "oom")]),
    ("fake_segfault", [(1, "ok"), (2, "failed"), (4, "ok")]),
    ("fake_hang", [(1, "ok"), (2, "ok"), (4, "failed")]),
])
def test_fake_backends_in_a_real_sweep(in_tmp, backend, expected):
    cap = {"fake_oom": 16, "fake_segfault": 4, "fake_hang": 4}[backend]
    cfg = sweep_config(in_tmp, backend, f"sweep.max_batch={cap}", "sweep.respect_latency_requirement=false",
                       "sweep.min_gain=-1")
    store = ResultsStore(cfg.results.dir)
    runner = Runner(cfg, store, {"hardware": "test"}, ProgressDisplay(io.StringIO(), plain=True), sweep_id="s1")
    done, results = runner.run_sweep(["tiny"], {}, {})
    got = [(r.workload["batch_size"], r.status) for r, _ in done]
    assert got == expected
    kinds = {r.workload["batch_size"]: (r.error or {}).get("kind") for r, _ in done}
    if backend == "fake_oom":
        assert kinds[8] == "oom" and results["tiny"].last_fitting_batch == 4
    if backend == "fake_segfault":
        assert kinds[2] == "crash"
    if backend == "fake_hang":
        assert kinds[4] == "timeout"
    assert all(r.sweep_id == "s1" for r, _ in done)
    assert store.count() == len(expected)


@pytest.mark.slow
def test_an_onnxruntime_sweep_converts_once_and_the_summary_says_so(in_tmp):
    """A real sweep 1..16 in spawned workers: the first point exports the model, the other four are
    served from the conversion cache, each record says which, and so does the sweep summary."""
    pytest.importorskip("onnxruntime")
    from bench.reporting.summary import sweep_summary

    cfg = sweep_config(in_tmp, "onnxruntime", "sweep.max_batch=16", "sweep.respect_latency_requirement=false",
                       "sweep.min_gain=-1", f"cache.dir={in_tmp / 'artifacts'}", "worker.timeout_s=120")
    runner = Runner(cfg, ResultsStore(cfg.results.dir), {"hardware": "test"},
                    ProgressDisplay(io.StringIO(), plain=True), sweep_id="s1")
    done, results = runner.run_sweep(["tiny"], {}, {})
    assert [(r.workload["batch_size"], r.status) for r, _ in done] == [(b, "ok") for b in (1, 2, 4, 8, 16)]
    hits = [r.setup["conversion"]["cache_hit"] for r, _ in done]
    assert hits == [False, True, True, True, True]
    assert len({r.setup["conversion"]["stages"]["onnx"]["artifact_key"] for r, _ in done}) == 1
    assert all(r.parity["ok"] for r, _ in done)
    out = io.StringIO()
    sweep_summary("s1", results, out)
    assert "conversions: batch 1 converted (onnx); batch 2, 4, 8, 16 served from the cache" in out.getvalue()


def test_sweep_config_errors(in_tmp, capsys):
    from bench.cli.main import main

    assert main(["run", "sweep=batch", "batch_size=4"]) == 2
    assert "batch_size=4 conflicts with sweep=batch" in capsys.readouterr().err
    assert main(["run", "resume=abc"]) == 2
    assert "resume='abc' needs a sweep" in capsys.readouterr().err
    assert main(["run", "sweep=batch", "sweep.factor=1"]) == 2
    assert list(in_tmp.iterdir()) == []
