"""`bench plan` on the command line: its options, its one-line errors (exit 2) and its outputs."""

from __future__ import annotations

import json

import pytest

from bench.cli.main import main
from bench.results.store import ResultsStore
from tests.unit.reporting.test_plan import server_record, sweep_record


@pytest.fixture
def store_dir(tmp_path):
    store = ResultsStore(tmp_path / "results")
    store.write(sweep_record(hardware="Box A", backend="cpu", metrics={"energy_per_sample_mj": 10.0}))
    store.write(server_record(hardware="Box B", backend="onnxruntime", qps=50.0, slo=50.0))
    store.write(sweep_record(hardware="Box B", backend="cpu", warnings=["high_variation"], seed=5))
    store.close()
    return tmp_path / "results"


@pytest.fixture
def prices(tmp_path):
    folder = tmp_path / "prices"
    folder.mkdir()
    (folder / "a.yaml").write_text('hardware: "Box A"\nprice_per_hour: 1.0\ncurrency: USD\n')
    (folder / "b.yaml").write_text('hardware: "Box B"\npurchase_price: 900\nlifetime_months: 36\ncurrency: USD\n'
                                   'power_price_per_kwh: 0.2\nidle_power_w: 5\ntdp_w: 40\n')
    return folder


def test_plan_terminal(store_dir, prices, capsys):
    code = main(["plan", "workload=tiny", "demand.rate_qps=400", "slo.p99_ms=50", f"prices={prices}",
                 f"results.dir={store_dir}"])
    out = capsys.readouterr().out
    assert code == 0
    assert "demand: 400 requests/s = 400.0 samples/s; sized for 480.0 samples/s (headroom 20%)" in out
    # Box B: 480 / 50 = 9.6, 10 units at 25 USD/month each plus the TDP estimate of their energy.
    assert "chosen: Box B / onnxruntime / fp32 / tiny, 10 unit(s)" in out
    assert "(estimated, TDP)" in out and "high_variation" in out
    assert f"results.dir={store_dir}" in out and "not measured under load" in out


def test_plan_json_markdown_and_html_files(store_dir, prices, tmp_path, capsys):
    base = ["plan", "suite=fake", "demand.streams=12", "demand.fps=30", "slo.p99_ms=50", "headroom=0",
            f"prices={prices}", f"results.dir={store_dir}"]
    assert main([*base, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["demand"]["samples_per_s"] == 360.0 and data["options"][0]["rank"] == 1
    assert main([*base, "pareto=units,latency", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["pareto"]["x"] == "units"
    for fmt in ("markdown", "html"):
        path = tmp_path / f"plan.{fmt}"
        assert main([*base, "--format", fmt, "--output", str(path)]) == 0
        assert "bench plan" in path.read_text()


@pytest.mark.parametrize("args, message", [
    (["demand.rate_qps=0", "slo.p99_ms=50"], "demand.rate_qps=0.0 is not a positive number"),
    (["demand.rate_qps=ten", "slo.p99_ms=50"], "demand.rate_qps='ten' is not a number"),
    (["demand.rate_qps=10"], "slo names no latency requirement"),
    (["demand.rate_qps=10", "slo.p97_ms=5"], "slo.p97_ms='5' is not a key of `bench plan`"),
    (["demand.rate_qps=10", "slo.p99_ms=5", "objective=speed"], "objective='speed' is not an objective"),
    (["demand.rate_qps=10", "slo.p99_ms=5", "precisions=[fp7]"], "names no precision bench knows"),
    (["demand.rate_qps=10", "slo.p99_ms=5", "hardware=Nothing"], "matches no record"),
    (["demand.rate_qps=10", "slo.p99_ms=5", "pareto=cost"], "pareto='cost' is not a pair of objectives"),
    (["demand.rate_qps=10", "slo.p99_ms=5", "--format", "pdf"], "--format='pdf' is not a plan format"),
])
def test_bad_input_is_one_line_with_exit_2(store_dir, capsys, args, message):
    assert main(["plan", "workload=tiny", *args, f"results.dir={store_dir}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: ") and message in err and err.count("\n") == 1


def test_a_price_file_without_the_hardware_is_one_line(store_dir, tmp_path, capsys):
    other = tmp_path / "other.yaml"
    other.write_text('hardware: "Elsewhere"\nprice_per_hour: 1.0\ncurrency: USD\n')
    assert main(["plan", "workload=tiny", "demand.rate_qps=10", "slo.p99_ms=50", f"prices={other}",
                 f"results.dir={store_dir}"]) == 2
    assert "prices none of the selected records' hardware" in capsys.readouterr().err


def test_no_workload_and_a_requirement_below_every_latency(store_dir, capsys):
    assert main(["plan", "demand.rate_qps=10", "slo.p99_ms=50", f"results.dir={store_dir}"]) == 2
    assert "workload is missing" in capsys.readouterr().err
    assert main(["plan", "workload=tiny", "demand.rate_qps=10", "slo.p99_ms=0.5", f"results.dir={store_dir}"]) == 1
    assert "empty plan: no option can serve 10 requests/s within p99 <= 0.5 ms" in capsys.readouterr().out


def test_plan_help(capsys):
    assert main(["plan", "--help"]) == 0
    assert "demand.streams=N demand.fps=F" in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "bench plan workload=NAME" in capsys.readouterr().out


def test_a_task_lets_the_plan_choose_among_the_catalogs_models(tmp_path, capsys):
    """suite=anomaly task=...: the measured models of that task are planned, and every other catalog model
    of the task is listed as not measured yet, with the `bench run` line that measures it under load."""
    store = ResultsStore(tmp_path / "results")
    record = server_record(hardware="Box B", backend="onnxruntime", qps=50.0, slo=50.0, workload="stfpm",
                           suite="anomaly")
    record.workload["task"] = "anomaly detection"
    store.write(record)
    store.close()
    code = main(["plan", "suite=anomaly", "task=anomaly detection", "demand.rate_qps=40", "slo.p99_ms=50",
                 f"results.dir={tmp_path / 'results'}"])
    out = capsys.readouterr().out
    assert code == 0 and "stfpm" in out
    assert "not measured yet (anomaly detection): bench run suite=anomaly 'suite.only=[patchcore]' backend=cpu " \
           "scenario=server scenario.find_peak=true scenario.slo_ms=50 scenario.percentile=0.99" in out
    assert "'suite.only=[stfpm]'" not in out  # measured: planned, not listed as missing
    assert main(["plan", "suite=anomaly", "task=segmentation", "demand.rate_qps=40", "slo.p99_ms=50",
                 f"results.dir={tmp_path / 'results'}"]) == 2
    err = capsys.readouterr().err
    assert "task='segmentation' is not a task of suite anomaly: use one of anomaly detection" in err
