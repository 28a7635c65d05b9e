"""Native TensorRT: what can be tested without a GPU. The unavailable paths (no tensorrt, tensorrt
but no CUDA, a TensorRT without the precision's builder flag, int8 without calibration data), the
profile shapes, the engine cache key and the calibration data. The engine build and the CUDA run
have not yet run on a GPU."""

from __future__ import annotations

import sys
import types
from dataclasses import replace

import numpy as np
import pytest

from bench.backends.artifacts import cached_artifact
from bench.backends.base import PrepareContext
from bench.backends.tensorrt_backend import (
    INSTALL_TENSORRT, TensorRTBackend, calibration_batches, calibration_digest, calibration_files,
    engine_key_parts, profile_shapes,
)
from bench.config.schema import TensorRTBackendConfig

# available() imports torch once past the settings checks.
pytestmark = pytest.mark.slow


def settings(**kw) -> TensorRTBackendConfig:
    kw.setdefault("device", "cuda")
    return TensorRTBackendConfig(name="tensorrt", impl="bench.backends.tensorrt_backend:TensorRTBackend", **kw)


def fake_tensorrt(monkeypatch, version: str = "10.13.0.35", flags=("FP16", "BF16", "INT8"), calibrators=True):
    """An importable stand-in for the tensorrt module: enough for available(), nothing more."""
    module = types.ModuleType("tensorrt")
    module.__version__ = version
    module.BuilderFlag = types.SimpleNamespace(**{flag: i for i, flag in enumerate(flags)})
    if calibrators:
        module.IInt8EntropyCalibrator2 = object
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    return module


def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import raises ImportError, installed or not


# ---------------------------------------------------------------- available()


def test_without_tensorrt_the_reason_names_the_install(monkeypatch):
    no_tensorrt(monkeypatch)
    answer = TensorRTBackend.available(settings())
    assert not answer.ok and "TensorRT" in answer.reason and "not installed" in answer.reason
    assert answer.install == INSTALL_TENSORRT and ".[gpu-cu" in answer.install


def test_tensorrt_importable_but_no_cuda(monkeypatch):
    torch = pytest.importorskip("torch")
    fake_tensorrt(monkeypatch)
    monkeypatch.setattr(torch.version, "cuda", None)
    answer = TensorRTBackend.available(settings())
    assert not answer.ok and "without CUDA" in answer.reason and "CUDA build of PyTorch" in answer.install
    # A CUDA build of PyTorch, but no device visible.
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    answer = TensorRTBackend.available(settings())
    assert not answer.ok and "no CUDA device" in answer.reason
    # A device, but not the one asked for.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    answer = TensorRTBackend.available(settings(device="cuda:2"))
    assert not answer.ok and "cuda:2" in answer.reason and "cuda:0" in answer.install
    assert TensorRTBackend.available(settings(device="cuda:0")).ok


def test_tensorrt_11_refuses_reduced_precision_but_not_fp32(monkeypatch):
    torch = pytest.importorskip("torch")
    fake_tensorrt(monkeypatch, version="11.4.0.106", flags=(), calibrators=False)
    monkeypatch.setattr(torch.version, "cuda", None)
    for precision in ("fp16", "bf16"):
        answer = TensorRTBackend.available(settings(precision=precision))
        assert not answer.ok and "removed weak typing" in answer.reason and "tensorrt>=10,<11" in answer.install
    fp32 = TensorRTBackend.available(settings(precision="fp32"))
    assert not fp32.ok and "without CUDA" in fp32.reason  # past the version check, stopped by the device


def test_tensorrt_older_than_10_is_refused(monkeypatch):
    fake_tensorrt(monkeypatch, version="8.6.1")
    answer = TensorRTBackend.available(settings())
    assert not answer.ok and "older than 10" in answer.reason


def test_int8_calibrator_without_calibration_is_refused_with_the_fix(monkeypatch, tmp_path):
    """The calibrator needs a folder; Q/DQ (the default) calibrates on the workload's inputs without one."""
    no_tensorrt(monkeypatch)  # refused for the settings, before looking for the library
    answer = TensorRTBackend.available(settings(precision="int8", int8_method="calibrator"))
    assert not answer.ok and "int8_calibration is null" in answer.reason
    assert "backend.int8_calibration=" in answer.install and "precision=fp16" in answer.install
    for method in ("calibrator", "qdq"):
        empty = TensorRTBackend.available(settings(precision="int8", int8_method=method, int8_calibration=str(tmp_path)))
        assert not empty.ok and "no .npy files" in empty.reason
    np.save(tmp_path / "a.npy", np.zeros((3, 8, 8), np.float32))
    with_data = TensorRTBackend.available(settings(precision="int8", int8_method="calibrator",
                                                   int8_calibration=str(tmp_path)))
    assert not with_data.ok and "not installed" in with_data.reason  # the settings are fine now
    qdq = TensorRTBackend.available(settings(precision="int8"))
    assert not qdq.ok and "not installed" in qdq.reason


@pytest.mark.parametrize("kw, words", [
    ({"device": "cpu"}, "not cuda"), ({"optimization_level": 7}, "0..5"), ({"workspace_mib": 0}, ">= 1"),
    ({"max_batch": 0}, "max_batch"), ({"workspace_mib": "lots"}, "checking TensorRT failed"),
])
def test_bad_settings_are_refused_and_available_never_raises(kw, words):
    answer = TensorRTBackend.available(settings(**kw))
    assert not answer.ok and words in answer.reason


def test_bench_run_refuses_tensorrt_before_any_work(in_tmp, monkeypatch):
    pytest.importorskip("torch")
    from bench.config.compose import check_runnable, compose, to_config
    from bench.errors import BackendUnavailable

    no_tensorrt(monkeypatch)
    cfg = to_config(compose(["backend=tensorrt", f"results.dir={in_tmp / 'results'}"]))
    assert cfg.backend.precision in TensorRTBackend.precisions
    with pytest.raises(BackendUnavailable, match="TensorRT"):
        check_runnable(cfg)


# ---------------------------------------------------------------- profile and cache key


def test_profile_covers_batch_one_to_the_largest_and_tunes_for_the_measured_batch():
    assert profile_shapes((3, 256, 256), 4, 4, None) == ((1, 3, 256, 256), (4, 3, 256, 256), (4, 3, 256, 256))
    assert profile_shapes((3, 256, 256), 4, 4, 16) == ((1, 3, 256, 256), (4, 3, 256, 256), (16, 3, 256, 256))
    assert profile_shapes((3, 256, 256), 4, 32, 16)[2] == (32, 3, 256, 256)  # the sweep's largest batch
    assert profile_shapes((3, 256, 256), 8, 1, 2)[1:] == ((8, 3, 256, 256), (8, 3, 256, 256))  # never below opt


def test_a_sweep_builds_one_engine_whose_profile_covers_every_point(tmp_path):
    """Every point of a sweep 1..16 asks for the same profile (min 1, opt = max = 16), hence the same
    engine key: the first point builds the engine, the others are served from the cache."""
    from bench.orchestration.sweep import sweep_batches

    batches = sweep_batches(1, 2, 16)
    assert batches == [1, 2, 4, 8, 16]
    profiles = {b: profile_shapes((3, 64, 64), b, batches[-1], None) for b in batches}
    assert set(profiles.values()) == {((1, 3, 64, 64), (16, 3, 64, 64), (16, 3, 64, 64))}
    context = PrepareContext(cache_dir=str(tmp_path), model_key="model", max_batch_size=16)
    builds = []

    def build(folder):
        builds.append(folder)
        (folder / "model.engine").write_bytes(b"engine")

    hits = []
    for batch in batches:
        parts = engine_key_parts(settings(), [profiles[batch]], "onnxkey", "10.13.0.35", "NVIDIA H200", (9, 0))
        artifact = cached_artifact("tensorrt", replace(context, batch_size=batch), parts, build)
        low, _, high = profiles[batch]
        assert low[0] <= batch <= high[0]  # the engine's profile takes the batch measured
        hits.append(artifact.cache_hit)
    assert len(builds) == 1 and hits == [False, True, True, True, True]


def test_engine_key_names_everything_an_engine_depends_on(tmp_path):
    shapes = [profile_shapes((3, 64, 64), 2, 2, None)]
    h100 = ("NVIDIA H100 80GB HBM3", (9, 0))

    def parts(s=None, shapes=shapes, onnx="onnxkey", version="10.13.0.35", gpu=h100, calibration=None):
        return engine_key_parts(s or settings(), shapes, onnx, version, gpu[0], gpu[1], calibration)

    base = parts()
    assert base["compute_capability"] == "9.0" and base["profile"][0][1] == [2, 3, 64, 64]
    variants = [
        parts(settings(precision="fp16")), parts(shapes=[profile_shapes((3, 64, 64), 4, 4, None)]),
        parts(settings(workspace_mib=1024)), parts(settings(optimization_level=5)), parts(onnx="other-export"),
        parts(version="10.8.0.43"), parts(gpu=("NVIDIA L4", (8, 9))), parts(calibration="digest"),
    ]
    context = PrepareContext(cache_dir=str(tmp_path), model_key="model")
    builds = []

    def build(folder):
        builds.append(folder)
        (folder / "model.engine").write_bytes(b"engine")

    keys = {cached_artifact("tensorrt", context, parts, build).key for parts in [base, *variants]}
    assert len(keys) == 1 + len(variants) and len(builds) == len(keys)
    again = cached_artifact("tensorrt", context, dict(base), build)
    assert again.cache_hit and len(builds) == len(keys)


# ---------------------------------------------------------------- calibration data


def test_calibration_batches_from_samples_and_stacks(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "b_stack.npy", rng.random((5, 3, 8, 8), dtype=np.float32))
    np.save(tmp_path / "a_one.npy", rng.random((3, 8, 8), dtype=np.float32))
    (tmp_path / "notes.txt").write_text("ignored")
    files = calibration_files(tmp_path)
    assert [f.name for f in files] == ["a_one.npy", "b_stack.npy"]
    batches = calibration_batches(files, (3, 8, 8), 4)
    assert [b.shape for b in batches] == [(4, 3, 8, 8)]  # 6 samples: the last 2 make no full batch
    assert batches[0].dtype == np.float32 and batches[0].flags["C_CONTIGUOUS"]
    assert len(calibration_batches(files, (3, 8, 8), 2)) == 3
    with pytest.raises(ValueError, match="at least one batch of 8"):
        calibration_batches(files, (3, 8, 8), 8)
    with pytest.raises(ValueError, match=r"expected one input \[3, 16, 16\]"):
        calibration_batches(files, (3, 16, 16), 1)


def test_calibration_digest_follows_the_content(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 4, 4), np.float32))
    first = calibration_digest(calibration_files(tmp_path))
    assert first == calibration_digest(calibration_files(tmp_path))
    np.save(tmp_path / "a.npy", np.ones((3, 4, 4), np.float32))
    assert calibration_digest(calibration_files(tmp_path)) != first
