"""The suite contract for models that are not one image in, map and score out: several inputs, inputs
that are not images, and state carried between calls (an extra input, returned updated as an extra
output, as a streaming ONNX model does), so that backends stay unaware of suites. The fake of
tests/fakes.py (a frame and a state in, a score and the new state out) is exported, compared and
measured end to end as any suite's workload."""

from __future__ import annotations

import json

import pytest

from tests.faults.harness import TEST_CONF, bench, env_for
from tests.onnx_parity import assert_onnx_matches

SHORT = ["scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=3",
         "scenario.min_duration_s=0.05", "scenario.max_duration_s=0.3", "sensors.enabled=false"]


@pytest.mark.slow
def test_a_stateful_two_input_model_exports_with_a_batch_axis_everywhere_and_matches(tmp_path):
    from tests.fakes import build_stateful, stateful_inputs

    model = build_stateful(0).eval()
    assert_onnx_matches(model, lambda n: stateful_inputs(n, seed=n), tmp_path / "stateful.onnx",
                        output_names=("score", "state"))


@pytest.mark.slow
def test_an_output_without_the_batch_axis_is_refused_at_export(tmp_path):
    pytest.importorskip("onnxscript")
    import torch

    from bench.backends.onnx_export import export_onnx

    class Pooled(torch.nn.Module):  # the state of the whole batch, not one per sample
        def forward(self, x, state):
            return x.mean(dim=1), state.mean(dim=0)

    with pytest.raises(ValueError, match="output 'state' has a fixed first axis of 8, not the batch"):
        export_onnx(Pooled(), (torch.randn(2, 4), torch.randn(2, 8)), tmp_path / "m.onnx",
                    output_names=["score", "state"])


@pytest.mark.slow
def test_a_stateful_two_input_workload_runs_end_to_end_on_cpu_and_onnxruntime(tmp_path):
    proc = bench(["run", "-m", "--config-dir", TEST_CONF, "suite=fake_stateful", "backend=cpu,onnxruntime",
                  "scenario=latency,throughput", "batch_size=3", *SHORT], tmp_path, env=env_for(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "records").rglob("*.json")]
    assert sorted((r["backend"]["name"], r["scenario"]["name"]) for r in records) == [
        ("cpu", "latency"), ("cpu", "throughput"), ("onnxruntime", "latency"), ("onnxruntime", "throughput")]
    for r in records:
        assert r["status"] == "ok", r.get("error")
        # Both outputs compared with the PyTorch reference, the state as closely as the score.
        assert r["parity"]["ok"] and len(r["parity"]["per_output"]) == 2
        w = r["workload"]
        assert w["input_shapes"] == [[3, 3, 16, 16], [3, 8]] and w["input_dtypes"] == ["float32", "float32"]
        assert w["outputs"] == ["score", "state"] and w["params"] == 457 and w["flops_per_sample"] > 0
        assert r["metrics"]["throughput_sps"] > 0
    onnx_run = next(r for r in records if r["backend"]["name"] == "onnxruntime")
    assert list(onnx_run["backend"]["effective"]["input_types"]) == ["input0", "input1"]
