"""scenario=continual's settings are checked before any work: each bad value is one ConfigError that
names the key, the value and the fix."""

from __future__ import annotations

import pytest

from bench.config.compose import compose, to_config
from bench.config.validate import validate
from bench.errors import ConfigError

TINY = ["suite=custom", "model.target=tests.fakes:build_tiny_conv", "model.input_shape=[3,16,16]",
        "model.loss=tests.fakes:reconstruction_loss"]


def config(tmp_path, *overrides):
    return validate(to_config(compose(["scenario=continual", f"results.dir={tmp_path}", *overrides])))


def test_the_defaults_validate_on_the_anomaly_suite(tmp_path):
    cfg = config(tmp_path, "suite.only=[efficientad_s,patchcore]")
    sc = cfg.scenario
    assert sc.name == "continual" and sc.drift.at_s < sc.duration_s and sc.adapt.steps >= 1
    assert sc.rate_qps * sc.drift.at_s >= sc.detector.reference  # the reference is served before the drift


@pytest.mark.parametrize("overrides, key, words", [
    (["scenario.drift.at_s=400"], "scenario.drift.at_s", "not within the timeline"),
    (["scenario.drift.at_s=0"], "scenario.drift.at_s", "must be > 0"),
    (["scenario.drift.at_s=5"], "scenario.drift.at_s", "before the detector's reference"),
    (["scenario.adapt.steps=0"], "scenario.adapt.steps", "must be >= 1"),
    (["scenario.adapt.replay_ratio=1.0"], "scenario.adapt.replay_ratio", "learn nothing new"),
    (["scenario.adapt.fit_images=1"], "scenario.adapt.fit_images", ">= 2"),
    (["scenario.adapt.recent=500"], "scenario.pool", "smaller than what one adaptation learns from"),
    (["scenario.detector.method=cusum"], "scenario.detector.method", "not a drift detector"),
    (["scenario.detector.method=mmd", "scenario.detector.permutations=100"], "scenario.detector.permutations",
     "cannot give a p-value below"),
    (["scenario.detector.alpha=0"], "scenario.detector.alpha", "must be in (0, 1)"),
    (["scenario.arrival=bursty"], "scenario.arrival", "not an arrival process"),
    (["scenario.rate_qps=0"], "scenario.rate_qps", "must be > 0"),
    (["scenario.train.device=tpu"], "scenario.train.device", "not a training device"),
    (["scenario.train.precision=int8"], "scenario.train.precision", "not a training precision"),
    (["scenario.train.nice=30"], "scenario.train.nice", "out of range"),
    (["scenario.train.cuda_stream_priority=1"], "scenario.train.cuda_stream_priority", "0 or negative"),
    (["scenario.train.cpus=[4096]"], "scenario.train.cpus", "not one of them"),
    (["scenario.serve_cpus=[-1]"], "scenario.serve_cpus", "not one of them"),
    (["scenario.engine=loadgen"], "scenario.engine", "does not drive scenario=continual"),
    (["sweep=batch"], "sweep", "not run with scenario=continual"),
    (["suite.boundary=pipeline"], "suite.boundary", "not adapted"),
    (["suite=video"], "suite.only", "no adaptation method"),
])
def test_bad_continual_settings_are_refused(tmp_path, overrides, key, words):
    with pytest.raises(ConfigError) as info:
        config(tmp_path, *overrides)
    assert info.value.key == key and words in str(info.value)
    assert "\n" not in str(info.value)


def test_a_users_onnx_file_cannot_adapt(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    with pytest.raises(ConfigError) as info:
        config(tmp_path, "suite=custom", f"model.path={model}")
    assert info.value.key == "model.path" and "cannot be adapted" in str(info.value)


def test_a_users_module_with_a_loss_adapts(tmp_path):
    cfg = config(tmp_path, *TINY)
    assert cfg.model.loss == "tests.fakes:reconstruction_loss"
