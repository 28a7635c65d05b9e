"""The sweep summary says which points converted the model and which the conversion cache served,
from each record's setup.conversion (bench.backends.artifacts.describe_conversion's shape)."""

from __future__ import annotations

import io
from types import SimpleNamespace

from bench.orchestration.sweep import SweepResult, point_from_record
from bench.reporting.summary import conversion_line, sweep_summary


def record(batch: int, stages: dict | None, status: str = "ok"):
    setup = {}
    if stages is not None:
        setup["conversion"] = {"cache_hit": all(stages.values()), "build_s": 0.0,
                               "stages": {name: {"cache_hit": hit} for name, hit in stages.items()}}
    return SimpleNamespace(id=f"r{batch}", status=status, valid=True, workload={"batch_size": batch},
                           metrics={"throughput_sps": 10.0 * batch, "latency_p99_ms": 1.0}, setup=setup)


def test_points_know_what_they_converted():
    assert point_from_record(record(1, {"onnx": False})).converted == ("onnx",)
    assert point_from_record(record(2, {"onnx": True})).converted == ()
    assert point_from_record(record(2, {"onnx": True, "openvino_model": False})).converted == ("openvino_model",)
    assert point_from_record(record(4, None)).converted is None  # torch eager: no conversion
    assert point_from_record(record(8, None, status="oom")).converted is None


def test_the_sweep_summary_says_one_point_converted_and_the_others_were_served():
    points = [point_from_record(record(1, {"onnx": False}))] + \
        [point_from_record(record(b, {"onnx": True})) for b in (2, 4, 8, 16)]
    assert conversion_line(points) == "batch 1 converted (onnx); batch 2, 4, 8, 16 served from the cache"
    out = io.StringIO()
    sweep_summary("s1", {"tiny": SweepResult(points, "reached the cap of batch 16", 16)}, out)
    assert "    conversions: batch 1 converted (onnx); batch 2, 4, 8, 16 served from the cache\n" in out.getvalue()


def test_no_conversion_line_without_conversions_or_for_points_kept_from_before_a_resume():
    assert conversion_line([point_from_record(record(b, None)) for b in (1, 2)]) == ""
    kept = point_from_record(record(1, {"onnx": False}), reused=True)
    assert conversion_line([kept, point_from_record(record(2, {"onnx": True}))]) == "batch 2 served from the cache"
    out = io.StringIO()
    sweep_summary("s1", {"w": SweepResult([point_from_record(record(1, None))], "cap", 1)}, out)
    assert "conversions" not in out.getvalue()
