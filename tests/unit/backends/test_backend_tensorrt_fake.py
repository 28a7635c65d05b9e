"""Native TensorRT on a fake of its Python API and of torch.cuda (tests/fake_tensorrt.py): the build,
the engine cache, the session, the CUDA graph and its fallback, both int8 methods, and the Q/DQ file
made for real by ONNX Runtime's quantizer. The fake engine runs the parsed ONNX graph on the CPU, so
outputs are checked against the model. None of this has run on a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow  # imports torch, exports and quantizes a model

from bench.backends.base import PrepareContext  # noqa: E402
from bench.backends.tensorrt_backend import (  # noqa: E402
    CALIBRATOR_DEPRECATED, TensorRTBackend, engine_key_parts, profile_shapes, tensorrt_distribution,
)
from bench.backends.tensorrt_int8 import (  # noqa: E402
    CALIBRATION_BATCHES, calibration_batch_count, quantize_qdq, workload_calibration,
)
from bench.config.schema import TensorRTBackendConfig  # noqa: E402
from bench.results.diagnostics import Code, diagnose  # noqa: E402
from tests import fake_tensorrt  # noqa: E402


def settings(**kw) -> TensorRTBackendConfig:
    kw.setdefault("device", "cuda")
    return TensorRTBackendConfig(name="tensorrt", impl="bench.backends.tensorrt_backend:TensorRTBackend", **kw)


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 4, 3, padding=1)).eval()


def inputs(batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    return (torch.rand(batch, 3, 12, 12, generator=torch.Generator().manual_seed(seed)),)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory) -> Path:
    """The tiny model exported once (dynamic batch axis), used as a user's ONNX file by most tests."""
    from bench.backends.onnx_export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(tiny_model(), [inputs(2)[0]], path)
    return path


@pytest.fixture
def trt(monkeypatch):
    return fake_tensorrt.install(monkeypatch)


def context(tmp_path, onnx_file, batch=2, **kw) -> PrepareContext:
    return PrepareContext(batch_size=batch, max_batch_size=kw.pop("max_batch_size", batch),
                          cache_dir=str(tmp_path / "cache"), model_key="tiny", onnx_path=str(onnx_file), **kw)


def prepare(s, tmp_path, onnx_file, batch=2, **kw):
    return TensorRTBackend(s).prepare(None, inputs(batch), context(tmp_path, onnx_file, batch, **kw))


def reference(x: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return tiny_model()(x).numpy()


# ---------------------------------------------------------------- the fake is strict where TensorRT is


def test_the_fake_refuses_what_tensorrt_refuses(trt, onnx_file):
    """What would make the backend's tests fail if it called the API wrongly."""
    gpu = trt.gpu

    class Log(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.messages = []

        def log(self, severity, msg):
            self.messages.append(msg)

    logger = Log()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    with pytest.raises(TypeError):
        parser.parse_from_file(onnx_file)  # a Path: the binding takes str
    assert parser.parse_from_file(str(onnx_file)) and network.get_input(0).shape[0] == -1
    assert not trt.OnnxParser(builder.create_network(0), logger).parse_from_file("/no/such.onnx")
    config = builder.create_builder_config()
    assert config.get_flag(trt.BuilderFlag.TF32)  # TensorRT's default
    with pytest.raises(TypeError):
        config.set_memory_pool_limit(1 << 20, trt.MemoryPoolType.WORKSPACE)  # arguments swapped
    bad = builder.create_optimization_profile()
    bad.set_shape("input", (4, 3, 12, 12), (2, 3, 12, 12), (8, 3, 12, 12))  # min > opt
    assert config.add_optimization_profile(bad) == -1
    assert builder.build_serialized_network(network, config) is None  # no profile for the dynamic input
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 3, 12, 12), (2, 3, 12, 12), (4, 3, 12, 12))
    assert config.add_optimization_profile(profile) == 0
    typed = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    trt.OnnxParser(typed, logger).parse_from_file(str(onnx_file))
    fp16 = builder.create_builder_config()
    fp16.set_flag(trt.BuilderFlag.FP16)
    fp16.add_optimization_profile(profile)
    assert builder.build_serialized_network(typed, fp16) is None  # precision flags on a strongly typed network
    engine = trt.Runtime(logger).deserialize_cuda_engine(builder.build_serialized_network(network, config))
    context = engine.create_execution_context()
    assert context.get_tensor_shape(engine.get_tensor_name(1))[0] == -1  # unknown before set_input_shape
    assert not context.set_input_shape("input", (9, 3, 12, 12))  # outside the profile
    assert context.set_input_shape("input", (2, 3, 12, 12))
    assert tuple(context.get_tensor_shape(engine.get_tensor_name(1))) == (2, 4, 12, 12)
    assert not context.execute_async_v3(0)  # no addresses set
    with pytest.raises(TypeError):
        context.set_tensor_address("input", torch.zeros(1))  # a tensor, not its data_ptr()
    # Both tensors kept alive: a host tensor freed at once could lend its address to the "device" one.
    host = torch.zeros(2, 3, 12, 12)
    device_out = gpu.register(torch.empty(2, 4, 12, 12))
    context.set_tensor_address("input", host.data_ptr())  # host memory
    context.set_tensor_address(engine.get_tensor_name(1), device_out.data_ptr())
    assert not context.execute_async_v3(0) and "not device memory" in logger.messages[-1]
    other = fake_tensorrt.make_module(fake_tensorrt.FakeGpu(), "10.8.0.43")
    assert other.Runtime(logger).deserialize_cuda_engine(builder.build_serialized_network(network, config)) is None


# ---------------------------------------------------------------- build, run, cache


def test_fp32_builds_an_ieee_engine_that_runs_the_model(trt, tmp_path, onnx_file):
    session = prepare(settings(precision="fp32", workspace_mib=512, optimization_level=4, max_batch=8),
                      tmp_path, onnx_file)
    build = trt.gpu.builds[-1]
    assert "TF32" not in build["flags"] and not build["strongly_typed"]  # fp32: IEEE products
    assert build["pools"] == {"WORKSPACE": 512 * 1024 * 1024} and build["optimization_level"] == 4
    assert build["profiling_verbosity"] == "DETAILED"
    assert build["profiles"] == [{"input": ((1, 3, 12, 12), (2, 3, 12, 12), (8, 3, 12, 12))}]
    x = inputs(2, seed=5)
    loaded = session.load_inputs(x)
    out = session.to_numpy(session.run(loaded))
    np.testing.assert_allclose(out[0], reference(x[0]), rtol=1e-5, atol=1e-5)
    assert all(kind == "run" and handle == session.stream.cuda_stream for handle, kind in trt.gpu.launches)
    effective = session.effective_settings()
    assert effective["cuda_graph"] is False and "cuda_graph_error" not in effective
    assert effective["ran_precision"] == "fp32" and effective["layer_precisions"] == {"fp32": 3}
    assert effective["io"]["input"] == {"mode": "input", "dtype": "FLOAT", "shape": [2, 3, 12, 12]}
    assert effective["profile_min_opt_max"] == {"input": [[1, 3, 12, 12], [2, 3, 12, 12], [8, 3, 12, 12]]}
    assert effective["tensorrt_version"] == "10.13.0.35" and effective["tensorrt_package"] == "unknown"
    assert effective["builder_flag"] is None and effective["int8"] is None
    memory = session.device_memory()
    assert memory["tensorrt_context_mib"] == 3.0 and memory["torch_max_allocated_mib"] > 0
    # Another batch within the profile: shapes set again, outputs follow.
    y = inputs(4, seed=6)
    np.testing.assert_allclose(session.to_numpy(session.run(session.load_inputs(y)))[0], reference(y[0]),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="outside the engine's profile"):
        session.load_inputs(inputs(9))


def test_fp16_sets_its_flag_and_the_record_reads_the_half_layers(trt, tmp_path, onnx_file):
    session = prepare(settings(precision="fp16"), tmp_path, onnx_file)
    assert {"FP16", "TF32"} <= set(trt.gpu.builds[-1]["flags"])
    session.load_inputs(inputs(2))
    assert session.effective_settings()["ran_precision"] == "fp16"


def test_a_second_prepare_reuses_the_engine_and_a_changed_key_rebuilds(trt, tmp_path, onnx_file, monkeypatch):
    from bench.backends import tensorrt_backend

    first = prepare(settings(), tmp_path, onnx_file)
    again = prepare(settings(), tmp_path, onnx_file)
    assert len(trt.gpu.builds) == 1
    stages = again.effective_settings()["conversion"]["stages"]
    assert stages["engine"]["cache_hit"] and not first.effective_settings()["conversion"]["cache_hit"]
    prepare(settings(workspace_mib=1024), tmp_path, onnx_file)
    assert len(trt.gpu.builds) == 2
    monkeypatch.setattr(tensorrt_backend, "tensorrt_distribution", lambda module: "tensorrt-cu13==10.13.0.35")
    cu13 = prepare(settings(), tmp_path, onnx_file)
    assert len(trt.gpu.builds) == 3 and cu13.effective_settings()["tensorrt_package"] == "tensorrt-cu13==10.13.0.35"
    trt.__version__ = "10.14.1.48"  # another TensorRT: the old engine would not deserialize
    prepare(settings(), tmp_path, onnx_file)
    assert len(trt.gpu.builds) == 4


def test_an_engine_tensorrt_refuses_to_load_is_an_error_that_says_so(trt, tmp_path, onnx_file):
    prepare(settings(), tmp_path, onnx_file)
    engine_file = next((tmp_path / "cache" / "tensorrt").glob("*/model.engine"))
    engine_file.write_bytes(b"not an engine")
    with pytest.raises(RuntimeError, match="could not deserialize the cached engine.*magic"):
        prepare(settings(), tmp_path, onnx_file)


def test_the_export_path_builds_from_the_torch_model(monkeypatch, tmp_path):
    """Without a user's file: the model's export (cached_onnx) is what TensorRT parses. Exported
    before the fake is installed (the exporter asks torch.cuda, which the fake answers), so prepare
    finds it in the cache, as every point of a sweep after the first does."""
    from bench.backends.artifacts import cached_onnx

    model, x = tiny_model(), inputs(2, seed=3)
    ctx = PrepareContext(batch_size=2, max_batch_size=2, cache_dir=str(tmp_path), model_key="tiny-export")
    cached_onnx(model, x, ctx)
    trt = fake_tensorrt.install(monkeypatch)
    session = TensorRTBackend(settings()).prepare(model, x, ctx)
    out = session.to_numpy(session.run(session.load_inputs(x)))
    np.testing.assert_allclose(out[0], reference(x[0]), rtol=1e-4, atol=1e-5)
    stages = session.effective_settings()["conversion"]["stages"]
    assert stages["onnx"]["cache_hit"] and not stages["engine"]["cache_hit"] and len(trt.gpu.builds) == 1


# ---------------------------------------------------------------- CUDA graph


def test_the_cuda_graph_is_captured_thread_local_and_replayed(trt, tmp_path, onnx_file):
    session = prepare(settings(cuda_graph=True), tmp_path, onnx_file)
    x = inputs(2, seed=8)
    loaded = session.load_inputs(x)
    assert trt.gpu.capture_modes == ["thread_local"] and trt.gpu.capture is None
    assert trt.gpu.current_stream.cuda_stream == 0  # the default stream is current again
    kinds = [kind for _, kind in trt.gpu.launches]
    assert kinds == ["run", "captured"]  # the plain run before the capture, then the captured launch
    for output in loaded.outputs:
        output.zero_()  # only the replay can write them now
    out = session.to_numpy(session.run(loaded))
    np.testing.assert_allclose(out[0], reference(x[0]), rtol=1e-5, atol=1e-5)
    assert [kind for _, kind in trt.gpu.launches][2:] == ["replay"]
    assert trt.gpu.launches[-1][0] == session.stream.cuda_stream  # replayed on the session's stream
    assert session.effective_settings()["cuda_graph"] is True


@pytest.mark.parametrize("fault, words", [("execute", "execute_async_v3 failed"),
                                          ("end", "previous error during capture"),
                                          # capture_end's error raised over the body's: both are kept
                                          ("both", "execute_async_v3 failed: 1: enqueue: operation not permitted "
                                                   "when stream is capturing; then RuntimeError: CUDA error")])
def test_a_failed_capture_falls_back_to_plain_launches_and_says_why(trt, tmp_path, onnx_file, fault, words):
    trt.gpu.capture_fault = fault
    session = prepare(settings(cuda_graph=True), tmp_path, onnx_file)
    x = inputs(2, seed=9)
    loaded = session.load_inputs(x)
    assert trt.gpu.capture is None  # the capture was ended
    assert trt.gpu.current_stream.cuda_stream == 0  # and the stream made current for it is not current any more
    assert session.graph is None
    launches = len(trt.gpu.launches)
    out = session.to_numpy(session.run(loaded))
    np.testing.assert_allclose(out[0], reference(x[0]), rtol=1e-5, atol=1e-5)
    assert trt.gpu.launches[launches:] == [(session.stream.cuda_stream, "run")]
    effective = session.effective_settings()
    assert effective["cuda_graph"] is False and words in effective["cuda_graph_error"]
    record = {"name": "tensorrt", "device": "cuda", "precision": "fp32", "effective": effective}
    warnings = [w for w in diagnose({}, {}, {}, None, backend=record) if w.code is Code.CUDA_GRAPH_FALLBACK]
    assert len(warnings) == 1 and words in warnings[0].message and "backend.cuda_graph=false" in warnings[0].hint
    assert Code.CUDA_GRAPH_FALLBACK.value == "cuda_graph_fallback"
    # A capture that works next time clears the error.
    trt.gpu.capture_fault = None
    session.load_inputs(x)
    assert session.graph is not None and "cuda_graph_error" not in session.effective_settings()


def test_no_fallback_warning_without_a_failed_capture():
    effective = {"cuda_graph": True}
    record = {"name": "tensorrt", "device": "cuda", "precision": "fp32", "effective": effective}
    assert not [w for w in diagnose({}, {}, {}, None, backend=record) if w.code is Code.CUDA_GRAPH_FALLBACK]


# ---------------------------------------------------------------- int8


def test_qdq_file_is_symmetric_int8_and_runs_on_onnx_runtime_near_fp32(tmp_path, onnx_file):
    """For real, on the CPU: ONNX Runtime's quantizer writes the Q/DQ graph TensorRT takes."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    batches = [(rng.random((2, 3, 12, 12), dtype=np.float32),) for _ in range(4)]
    nodes = quantize_qdq(onnx_file, tmp_path / "q.onnx", batches)
    model = onnx.load(str(tmp_path / "q.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert nodes == {"quantize_nodes": ops.count("QuantizeLinear"), "dequantize_nodes": ops.count("DequantizeLinear")}
    assert nodes["quantize_nodes"] >= 2 and nodes["dequantize_nodes"] >= 4  # activations and both weights
    zero_points = [numpy_helper.to_array(t) for t in model.graph.initializer if t.name.endswith("zero_point")]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)  # symmetric int8
    assert any(z.size == 8 for z in zero_points)  # per-channel weights of the first conv (8 output channels)
    assert not any(t.data_type == onnx.TensorProto.INT32 for t in model.graph.initializer)  # bias stays float
    session = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
    x = inputs(3, seed=4)[0]
    out, ref = session.run(None, {"input": x.numpy()})[0], reference(x)
    error = np.abs(out - ref).max() / np.abs(ref).max()
    assert 0 < error < 0.05  # quantized (not identical), and near fp32


def test_workload_calibration_is_bounded_and_drawn_only_when_built():
    drawn = []

    def more(i):
        drawn.append(i)
        return inputs(4, seed=100 + i)

    info, produce = workload_calibration(inputs(4), more)
    assert drawn == [] and info["batches"] == calibration_batch_count(4) == 8 and info["samples"] == 32
    batches = produce()
    assert drawn == list(range(7)) and len(batches) == 8 and batches[1][0].shape == (4, 3, 12, 12)
    assert calibration_batch_count(1) == CALIBRATION_BATCHES and calibration_batch_count(64) == 1
    alone, produce_alone = workload_calibration(inputs(4), None)
    assert alone["batches"] == 1 and "note" in alone and len(produce_alone()) == 1
    assert alone["digest"] == info["digest"]  # the digest is the measured batch's


def test_int8_qdq_builds_a_strongly_typed_network_without_precision_flags(trt, tmp_path, onnx_file):
    drawn = []

    def more(i):
        drawn.append(i)
        return inputs(2, seed=50 + i)

    session = prepare(settings(precision="int8"), tmp_path, onnx_file, calibration_inputs=more)
    build = trt.gpu.builds[-1]
    assert build["strongly_typed"] and build["qdq"]
    assert not {"INT8", "FP16", "BF16"} & set(build["flags"])  # strong typing: no precision flag
    x = inputs(2, seed=7)
    out = session.to_numpy(session.run(session.load_inputs(x)))[0]
    ref = reference(x[0])
    # The Q/DQ graph's own error (the fake engine runs it with ONNX Runtime): int8, not fp32 ...
    assert 0 < np.abs(out - ref).max() / np.abs(ref).max() < 0.1  # ... and near it on this toy model
    effective = session.effective_settings()
    assert effective["ran_precision"] == "int8" and effective["strongly_typed"] is True
    assert effective["builder_flag"] is None
    int8 = effective["int8"]
    assert int8["method"] == "qdq" and int8["source"] == "workload inputs" and int8["batches"] == 8
    assert int8["quantizer"].startswith("onnxruntime==") and int8["quantizer_settings"]["ActivationSymmetric"]
    assert int8["quantize_nodes"] >= 2 and drawn == list(range(7))
    assert set(effective["conversion"]["stages"]) == {"onnx", "qdq", "engine"}
    # Served from the cache: nothing drawn, quantized or built again.
    again = prepare(settings(precision="int8"), tmp_path, onnx_file, calibration_inputs=more)
    assert len(trt.gpu.builds) == 1 and drawn == list(range(7))
    assert again.effective_settings()["conversion"]["cache_hit"]


def test_a_quantized_onnx_file_is_built_as_it_is(trt, tmp_path, onnx_file):
    rng = np.random.default_rng(3)
    quantize_qdq(onnx_file, tmp_path / "q.onnx", [(rng.random((2, 3, 12, 12), dtype=np.float32),)])
    session = prepare(settings(precision="int8"), tmp_path, tmp_path / "q.onnx")
    int8 = session.effective_settings()["int8"]
    assert int8["source"] == "the ONNX file's own Q/DQ nodes" and int8["quantize_nodes"] >= 2
    assert not (tmp_path / "cache" / "onnx-qdq").exists() and trt.gpu.builds[-1]["strongly_typed"]


def test_int8_qdq_from_a_folder_keys_on_its_content(trt, tmp_path, onnx_file):
    folder = tmp_path / "calibration"
    folder.mkdir()
    rng = np.random.default_rng(1)
    np.save(folder / "a.npy", rng.random((6, 3, 12, 12), dtype=np.float32))
    session = prepare(settings(precision="int8", int8_calibration=str(folder)), tmp_path, onnx_file)
    int8 = session.effective_settings()["int8"]
    assert int8["source"] == "folder" and int8["files"] == 1 and trt.gpu.builds[-1]["strongly_typed"]
    prepare(settings(precision="int8", int8_calibration=str(folder)), tmp_path, onnx_file)
    assert len(trt.gpu.builds) == 1
    np.save(folder / "a.npy", rng.random((6, 3, 12, 12), dtype=np.float32))  # new data: new Q/DQ file, new engine
    changed = prepare(settings(precision="int8", int8_calibration=str(folder)), tmp_path, onnx_file)
    assert len(trt.gpu.builds) == 2 and changed.effective_settings()["int8"]["digest"] != int8["digest"]
    qdq = list((tmp_path / "cache" / "onnx-qdq").iterdir())
    assert len(qdq) == 2


def test_int8_calibrator_sets_the_flag_feeds_device_batches_and_is_labelled_deprecated(trt, tmp_path, onnx_file):
    folder = tmp_path / "calibration"
    folder.mkdir()
    np.save(folder / "a.npy", np.random.default_rng(2).random((5, 3, 12, 12), dtype=np.float32))
    s = settings(precision="int8", int8_method="calibrator", int8_calibration=str(folder))
    assert TensorRTBackend.available(s).ok
    session = prepare(s, tmp_path, onnx_file)
    build = trt.gpu.builds[-1]
    assert "INT8" in build["flags"] and not build["strongly_typed"] and build["calibrated_batches"] == 2
    effective = session.effective_settings()
    assert effective["int8"]["method"] == "calibrator" and effective["int8"]["deprecated"] == CALIBRATOR_DEPRECATED
    assert effective["builder_flag"] == "INT8"
    assert engine_key_parts(s, [], "k", "10", "g", (9, 0))["int8_method"] == "calibrator"


def test_tensorrt_11_refuses_the_calibrator_but_builds_qdq(monkeypatch, tmp_path, onnx_file):
    trt = fake_tensorrt.install(monkeypatch, version="11.4.0.106")
    folder = tmp_path / "calibration"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((2, 3, 12, 12), np.float32))
    refused = TensorRTBackend.available(settings(precision="int8", int8_method="calibrator",
                                                 int8_calibration=str(folder)))
    assert not refused.ok and "int8_method=calibrator" in refused.reason and "11" in refused.reason
    assert "backend.int8_method=qdq" in refused.install
    assert TensorRTBackend.available(settings(precision="int8")).ok
    fp16 = TensorRTBackend.available(settings(precision="fp16"))
    assert not fp16.ok and "removed weak typing" in fp16.reason
    prepare(settings(precision="int8"), tmp_path, onnx_file)
    assert trt.gpu.builds[-1]["strongly_typed"] and "INT8" not in trt.gpu.builds[-1]["flags"]


def test_int8_settings_refused_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)
    calibrator = TensorRTBackend.available(settings(precision="int8", int8_method="calibrator"))
    assert not calibrator.ok and "int8_calibration is null" in calibrator.reason
    assert "backend.int8_method=qdq" in calibrator.install
    qdq = TensorRTBackend.available(settings(precision="int8"))  # null calibration: the workload's inputs
    assert not qdq.ok and "not installed" in qdq.reason  # refused for the library only
    bad = TensorRTBackend.available(settings(precision="int8", int8_method="minmax"))
    assert not bad.ok and "int8_method='minmax'" in bad.reason


def test_int8_method_is_validated_as_a_config_error(tmp_path):
    from bench.config.compose import compose, to_config
    from bench.config.validate import validate
    from bench.errors import ConfigError

    cfg = to_config(compose(["backend=tensorrt", f"results.dir={tmp_path}"]))
    assert cfg.backend.int8_method == "qdq"
    with pytest.raises(ConfigError) as caught:
        validate(to_config(compose(["backend=tensorrt", "backend.int8_method=entropy", f"results.dir={tmp_path}"])))
    assert caught.value.key == "backend.int8_method" and "qdq" in caught.value.fix


# ---------------------------------------------------------------- the package in the key


def test_the_distribution_of_the_imported_module_is_named():
    import numpy

    from importlib.metadata import version

    assert tensorrt_distribution(numpy) == f"numpy=={version('numpy')}"
    fake = fake_tensorrt.make_module(fake_tensorrt.FakeGpu())
    assert tensorrt_distribution(fake) == "unknown"  # no file, no installed distribution
    shapes = [profile_shapes((3, 8, 8), 2, 2, None)]
    cu12 = engine_key_parts(settings(), shapes, "k", "10.13.0.35", "g", (9, 0), package="tensorrt-cu12==10.13.0.35")
    cu13 = engine_key_parts(settings(), shapes, "k", "10.13.0.35", "g", (9, 0), package="tensorrt-cu13==10.13.0.35")
    assert cu12 != cu13 and cu12["tensorrt_package"] == "tensorrt-cu12==10.13.0.35"
