"""scenario=continual end to end, continued (a second file, so that pytest-xdist's workers share the
slow timelines): OpenVINO with a time-series model, and camera streams with a scenario=training record
as the training reference. The checks are test_continual.py's."""

from __future__ import annotations

import pytest

from tests.integration.test_cli import _bench
from tests.integration.test_continual import SHORT, TINY, _check_timeline, _records


@pytest.mark.slow
def test_continual_on_openvino_with_a_series_model(in_tmp):
    pytest.importorskip("openvino")
    series = ["suite=custom", "model.target=tests.fakes:build_tiny_series", "model.input_shape=[20,4]",
              "model.loss=tests.fakes:forecast_loss"]
    proc = _bench(["run", *series, *SHORT, "backend=openvino"], in_tmp)
    assert proc.returncode == 0, proc.stderr
    (record,) = _records(in_tmp)
    m, adaptation = _check_timeline(record)
    stages = adaptation["trainer_reply"]["conversion"]["stages"]
    assert set(stages) == {"onnx", "openvino_model"}  # the IR built in the trainer, compiled here
    assert record["raw"]["continual"]["drift"]["kind"] == "series"


@pytest.mark.slow
def test_camera_streams_and_the_training_record_as_reference(in_tmp):
    training = _bench(["run", *TINY, "scenario=training", "batch_size=4", "scenario.min_duration_s=0.3",
                       "scenario.max_duration_s=1", "scenario.min_iterations=5", "sensors.enabled=false"], in_tmp)
    assert training.returncode == 0, training.stderr
    proc = _bench(["run", *TINY, *SHORT, "backend=cpu", "scenario.arrival=streams", "scenario.streams=3",
                   "scenario.fps=10"], in_tmp)
    assert proc.returncode == 0, proc.stderr
    first, record = sorted(_records(in_tmp), key=lambda r: r["created_at"])
    assert first["scenario"]["name"] == "training"
    m = record["metrics"]
    _check_timeline(record)
    assert m["streams"] == 3 and m["fps"] == 10.0 and m["colocated"] is True
    assert m["train_reference_record"] == first["id"]
    assert m["train_sps_reference"] == first["metrics"]["throughput_sps"]
    assert m["train_slowdown_vs_reference"] == pytest.approx(m["train_sps_reference"] / m["train_sps_colocated"])
