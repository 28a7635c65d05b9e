"""The server, multistream and LoadGen scenarios end to end: `bench run` on a fake model with a
fixed 4 ms service time (tests/fakes.py: sleepy), records and summary lines."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT
from tests.integration.test_cli import _bench

FAKE = ["--config-dir", str(ROOT / "tests" / "conf"), "suite=fake", "suite.only=[sleepy]",
        "scenario.warmup_iterations=2", "scenario.warmup_s=0.05"]


def _records(root):
    return [json.loads(p.read_text()) for p in sorted((root / "results" / "records").rglob("*.json"))]


@pytest.mark.slow
def test_server_at_a_fixed_rate(in_tmp):
    proc = _bench(["run", *FAKE, "scenario=server", "scenario.rate_qps=40", "scenario.min_duration_s=1",
                   "scenario.slo_ms=200"], in_tmp)
    assert proc.returncode == 0, proc.stderr
    (record,) = _records(in_tmp)
    m = record["metrics"]
    assert record["status"] == "ok" and record["scenario"]["name"] == "server"
    # At least 100 requests (a p99 of fewer is their maximum): 2.5 s of arrivals at 40/s.
    assert m["queries"] >= 60 and record["raw"]["load"]["info"]["probe_min_requests"] == 100
    assert m["offered_qps"] == pytest.approx(40, rel=0.35)
    assert m["latency_p50_ms"] >= 4.0  # the service time, queueing on top
    assert m["latency_p50_ci_low_ms"] <= m["latency_p50_ms"] <= m["latency_p50_ci_high_ms"]
    assert m["late_queries"] <= m["queries"] and m["slo_ms"] == 200.0
    assert len(record["raw"]["load"]["result"]["latencies_ns"]) == m["queries"]
    assert "requests late (> 200.0 ms)" in proc.stdout


@pytest.mark.slow
def test_server_find_peak_reports_max_qps_at_slo(in_tmp):
    proc = _bench(["run", *FAKE, "scenario=server", "scenario.find_peak=true", "scenario.min_duration_s=0.5",
                   "scenario.slo_ms=40", "scenario.max_probes=6", "scenario.peak_tolerance=0.1"], in_tmp)
    assert proc.returncode == 0, proc.stderr
    (record,) = _records(in_tmp)
    m, search = record["metrics"], record["raw"]["load"]["info"]["search"]
    assert 1 <= len(search["probes"]) <= 6
    # 4 ms per request: never more than 250/s, whatever the machine's load.
    assert 0 < m["max_qps_at_slo"] < 250
    assert m["max_qps_target"] == max(p["value"] for p in search["probes"] if p["meets"])
    # The rate that arrived in that probe: its requests over its window.
    assert m["max_qps_at_slo"] == pytest.approx(m["offered_qps"]) and m["queries"] >= 100
    assert "max_qps_at_slo" in proc.stdout


@pytest.mark.slow
def test_multistream_with_a_fixed_stream_count(in_tmp):
    proc = _bench(["run", *FAKE, "scenario=multistream", "scenario.streams=2", "scenario.fps=25",
                   "scenario.min_duration_s=1", "scenario.slo_ms=200"], in_tmp)
    assert proc.returncode == 0, proc.stderr
    (record,) = _records(in_tmp)
    m = record["metrics"]
    # 100 requests at least: 2 s of 2 x 25 frames per second.
    assert m["queries"] == pytest.approx(100, abs=2) and m["streams"] == 2 and m["fps"] == 25.0
    assert m["latency_p50_ms"] >= 4.0


@pytest.mark.slow
def test_loadgen_engine_on_a_tiny_run(in_tmp):
    pytest.importorskip("mlperf_loadgen")
    proc = _bench(["run", *FAKE, "scenario=latency", "scenario.engine=loadgen", "scenario.loadgen.min_duration_s=0.5",
                   "scenario.loadgen.min_query_count=20"], in_tmp)
    assert proc.returncode == 0, proc.stderr
    (record,) = _records(in_tmp)
    m, lg = record["metrics"], record["raw"]["loadgen"]
    assert lg["scenario"] == "SingleStream" and "Result is" in lg["summary_text"]
    assert isinstance(m["loadgen_valid"], bool) and ("VALID" in proc.stdout)
    assert m["latency_p90_ms"] >= 4.0 and m["samples"] >= 20
    assert (in_tmp / "results" / "loadgen").is_dir()
    assert list((in_tmp / "results" / "loadgen").rglob("mlperf_log_summary.txt"))


@pytest.mark.slow
def test_server_on_openvino_serves_through_its_request_queue(in_tmp):
    pytest.importorskip("openvino")
    proc = _bench(["run", "--config-dir", str(ROOT / "tests" / "conf"), "suite=fake", "suite.only=[tiny]",
                   "backend=openvino", "backend.hint=throughput", "backend.num_requests=2", "scenario=server",
                   "scenario.rate_qps=200", "scenario.min_duration_s=0.5", "scenario.slo_ms=100",
                   "scenario.warmup_iterations=2", "scenario.warmup_s=0.05"], in_tmp)
    assert proc.returncode == 0, proc.stderr
    (record,) = _records(in_tmp)
    info = record["raw"]["load"]["info"]
    assert info["serving"] == "asynchronous, up to 2 batches in flight"
    assert record["raw"]["load"]["result"]["extra"]["in_flight_limit"] == 2
    m = record["metrics"]
    assert m["queries"] >= 60 and m["dropped_queries"] == 0  # Poisson: about 100 in 0.5 s
    assert 0 < m["latency_p50_ms"] < 100


@pytest.mark.slow
def test_training_scenario_end_to_end(in_tmp):
    """Timed training steps of a backprop method and the fit of PaDiM, through `bench run`."""
    proc = _bench(["run", "scenario=training", "suite.only=[autoencoder,padim_resnet18]", "batch_size=2",
                   "backend.precision=bf16", "scenario.warmup_iterations=1", "scenario.warmup_s=0.01",
                   "scenario.min_iterations=4", "scenario.min_duration_s=0.2", "scenario.max_duration_s=20",
                   "scenario.target_rel_ci=0.5", "scenario.fit_images=2", "scenario.fit_repeats=1"], in_tmp)
    assert proc.returncode == 0, proc.stderr
    records = {r["workload"]["name"]: r for r in _records(in_tmp)}
    train, fit = records["autoencoder"], records["padim_resnet18"]
    assert train["status"] == "ok" and train["parity"]["ok"] and train["backend"]["precision"] == "bf16"
    m = train["metrics"]
    assert m["iterations"] >= 4 and m["throughput_sps"] > 0 and m["train_steps"] >= m["iterations"]
    assert m["train_loss_last"] < m["train_loss_first"]  # the same batch every step: the loss must fall
    effective = train["backend"]["effective"]
    assert effective["amp_dtype"] == "bfloat16" and effective["master_weights"] == "float32"
    assert fit["backend"]["precision"] == "fp32" and fit["backend"]["requested_precision"] == "bf16"
    assert fit["metrics"]["fit_s_per_image"] > 0 and fit["metrics"]["fit_images"] == 2
    assert "loss " in proc.stdout and "ms per training image (in fp32; bf16 was asked" in proc.stdout
