"""Training through the backend contract: a backend class says whether it can train (``can_train``),
``prepare_training`` turns a suite's training task into a TrainingSession (the PyTorch backends) or
refuses in one line (every other backend), and config validation asks the class, not a list of names."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from bench.backends.base import Backend, CannotTrain, TrainingContext, TrainingSession  # noqa: E402
from bench.backends.onnxruntime_backend import OrtBackend  # noqa: E402
from bench.backends.openvino_backend import OpenVinoBackend  # noqa: E402
from bench.backends.tensorrt_backend import TensorRTBackend  # noqa: E402
from bench.backends.torch_compiled import CompiledBackend  # noqa: E402
from bench.backends.torch_eager import TorchBackend  # noqa: E402
from bench.backends.torch_training import TorchFitSession, TorchTrainingSession  # noqa: E402
from bench.config.schema import CompiledBackendConfig, OrtBackendConfig, TorchBackendConfig  # noqa: E402
from bench.suites.training import training_task  # noqa: E402

SEED = 0
CUSTOM = {"model": {"target": "tests.fakes:build_tiny", "input_shape": [16],
                    "loss": "tests.unit.suites.test_training:regression_loss"}}


def cpu(**overrides):
    return TorchBackend(TorchBackendConfig(name="cpu", impl="bench.backends.torch_eager:TorchBackend", **overrides))


def test_the_pytorch_backends_can_train_and_the_others_cannot():
    assert TorchBackend.can_train and CompiledBackend.can_train
    assert not any(cls.can_train for cls in (OrtBackend, OpenVinoBackend, TensorRTBackend))
    assert Backend.can_train is False  # the contract's default


def test_a_backend_that_cannot_train_refuses_in_one_line_naming_itself():
    backend = OrtBackend(OrtBackendConfig(name="onnxruntime", impl="bench.backends.onnxruntime_backend:OrtBackend"))
    task = training_task("custom", 2, SEED, CUSTOM)
    with pytest.raises(CannotTrain) as info:
        backend.prepare_training(task, TrainingContext("fp32"))
    message = str(info.value)
    assert "\n" not in message and "'onnxruntime'" in message and "cannot train" in message


def test_the_eager_backend_prepares_a_backprop_task_that_trains():
    task = training_task("custom", 8, SEED, CUSTOM)
    session = cpu().prepare_training(task, TrainingContext("bf16"))
    assert isinstance(session, TorchTrainingSession) and isinstance(session, TrainingSession)
    assert session.kind == "backprop" and session.fp32_math is None  # no TF32 switch on the CPU
    for _ in range(6):
        session.step()
    session.synchronize()
    losses = session.losses
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    settings = session.effective_settings()
    assert settings["amp_dtype"] == "bfloat16" and settings["compiled"] is False and settings["device"] == "cpu"
    assert session.device_memory() == {}
    with pytest.raises(ValueError, match="no fit"):
        session.fit_cost(2, 1)


def test_the_backend_applies_its_threads_and_trains_tf32_as_fp32_off_nvidia():
    before = torch.get_num_threads()
    try:
        session = cpu(threads=1).prepare_training(training_task("custom", 4, SEED, CUSTOM), TrainingContext("tf32"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert session.precision == "fp32" and session.amp_dtype is None


def test_record_losses_travels_in_the_context():
    session = cpu().prepare_training(training_task("custom", 4, SEED, CUSTOM),
                                     TrainingContext("fp32", record_losses=False))
    session.step()
    assert session.losses == []


def test_the_compiled_backend_compiles_the_training_step():
    backend = CompiledBackend(CompiledBackendConfig(name="cpu-compiled",
                                                    impl="bench.backends.torch_compiled:CompiledBackend"))
    session = backend.prepare_training(training_task("custom", 8, SEED, CUSTOM), TrainingContext("fp32"))
    assert session.effective_settings()["compiled"] is True


@pytest.mark.slow
def test_a_fit_task_becomes_a_fit_session_timed_per_image():
    task = training_task("padim_resnet18", 2, SEED, {"input_size": 64})
    session = cpu().prepare_training(task, TrainingContext("bf16"))
    assert isinstance(session, TorchFitSession) and session.kind == "fit"
    cost = session.fit_cost(3, 1)
    assert cost["images"] == 3 and cost["precision"] == "fp32" and cost["device"] == "cpu"
    assert cost["per_image_s"] > 0 and cost["method"] == "PaDiM"
    with pytest.raises(ValueError, match="fit task"):
        session.step()


# --- config validation asks the backend class -------------------------------------------------


def test_validation_lists_the_backends_whose_class_can_train():
    from bench.config.validate import training_backends

    assert training_backends() == ["cpu", "cuda", "cpu-compiled", "cuda-compiled"]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "tensorrt"])
def test_training_on_a_backend_that_cannot_train_is_a_config_error(backend, tmp_path):
    from bench.config.compose import compose, to_config
    from bench.config.validate import validate
    from bench.errors import ConfigError

    cfg = to_config(compose(["scenario=training", f"backend={backend}", f"results.dir={tmp_path}"]))
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    message = str(info.value)
    assert info.value.key == "backend" and "cannot train" in message and "\n" not in message
    assert "cpu, cuda, cpu-compiled, cuda-compiled" in message


def test_training_on_a_backend_class_that_can_train_passes_validation(tmp_path):
    """A backend config of any name whose impl can train (here the eager backend's subclass that the
    sweep's tests use) is accepted: validation reads the class, not the name."""
    from bench.config.compose import compose, to_config
    from bench.config.validate import validate

    cfg = to_config(compose(["scenario=training", f"results.dir={tmp_path}", "backend.name=my-torch",
                             "backend.impl=tests.fakes:OomFromEightBackend"]))
    assert validate(cfg).backend.impl == "tests.fakes:OomFromEightBackend"
