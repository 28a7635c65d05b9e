"""The ONNX Runtime backend: parity with PyTorch, settings read back from the session, the CPU
fallback of a GPU provider turned into an error, the GPU providers' unavailable path on a CPU-only
machine, the conversion cache, and one real workload end to end through a worker."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import numpy as np  # noqa: E402

from bench.backends import onnxruntime_backend as ob  # noqa: E402
from bench.backends.base import PARITY_TOLERANCE, PrepareContext  # noqa: E402
from bench.backends.onnxruntime_backend import OrtBackend, OrtSession, ProviderFallbackError  # noqa: E402
from bench.config.schema import OrtBackendConfig  # noqa: E402

pytestmark = pytest.mark.slow

GPU_PROVIDERS = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
# What each GPU provider runs by default (conf/backend/): the TensorRT provider cannot run IEEE fp32.
GPU_PRECISION = {"cuda": "fp32", "tensorrt": "tf32"}


class TinyNet(torch.nn.Module):
    """Two convolutions; an anomaly map and an image score, like the suite's models."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, x):
        amap = self.c2(torch.relu(self.c1(x)))
        return amap, amap.flatten(1).amax(1)


def settings(**kw) -> OrtBackendConfig:
    return OrtBackendConfig(name="onnxruntime", impl="bench.backends.onnxruntime_backend:OrtBackend", **kw)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = TinyNet().eval()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference = [t.numpy() for t in model(x)]
    return model, (x,), reference


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """One cache for the module: the tiny model is exported once."""
    return PrepareContext(batch_size=2, max_batch_size=2, cache_dir=str(tmp_path_factory.mktemp("cache")),
                          model_key="tiny-net-2x3x16x16")


def rel_error(out, ref) -> float:
    return float(np.abs(out.astype(np.float64) - ref).max() / np.abs(ref).max())


def run_once(session, inputs):
    loaded = session.load_inputs(inputs)
    outputs = session.run(loaded)
    session.synchronize()
    return session.to_numpy(outputs)


def test_tiny_model_matches_torch(tiny, context):
    model, inputs, reference = tiny
    session = OrtBackend(settings()).prepare(model, inputs, context)
    outputs = run_once(session, inputs)
    assert [o.dtype for o in outputs] == [np.float32, np.float32]
    assert [o.shape for o in outputs] == [r.shape for r in reference]
    for out, ref in zip(outputs, reference):
        assert rel_error(out, ref) <= PARITY_TOLERANCE["fp32"]


@pytest.mark.parametrize("level, expected", [("disable", "ORT_DISABLE_ALL"), ("basic", "ORT_ENABLE_BASIC"),
                                             ("extended", "ORT_ENABLE_EXTENDED"), ("all", "ORT_ENABLE_ALL")])
def test_graph_optimisation_and_threads_are_read_back(tiny, context, level, expected):
    model, inputs, reference = tiny
    s = settings(graph_optimization=level, intra_op_threads=1, inter_op_threads=2)
    session = OrtBackend(s).prepare(model, inputs, context)
    eff = session.effective_settings()
    assert eff["graph_optimization_level"] == expected
    assert (eff["intra_op_threads"], eff["inter_op_threads"]) == (1, 2)
    assert eff["threads_requested"] == {"intra_op": 1, "inter_op": 2}
    assert eff["providers"] == ["CPUExecutionProvider"] and "CPUExecutionProvider" in eff["provider_options"]
    assert eff["io_binding"] is False and eff["onnxruntime_version"] == ort.__version__
    assert set(eff["conversion"]["stages"]) == {"onnx"}
    assert rel_error(run_once(session, inputs)[0], reference[0]) <= PARITY_TOLERANCE["fp32"]


def test_the_cpu_session_records_its_nodes_and_that_it_ran_fp32(tiny, context):
    model, inputs, _ = tiny
    eff = OrtBackend(settings()).prepare(model, inputs, context).effective_settings()
    # Node placement comes from ONNX Runtime's graph assignment report (1.23 and later).
    assert eff["nodes_per_provider"]["CPUExecutionProvider"] >= 2
    assert eff["ran_precision"] == "fp32" and eff["precision_by_provider"] == {"CPUExecutionProvider": "fp32"}


def test_default_threads_are_recorded_as_the_runtime_default(tiny, context):
    model, inputs, _ = tiny
    eff = OrtBackend(settings()).prepare(model, inputs, context).effective_settings()
    assert eff["threads_requested"] == {"intra_op": None, "inter_op": None}
    assert eff["intra_op_threads"] == 0  # 0: ONNX Runtime picks (one per physical core)


def test_a_session_that_fell_back_to_the_cpu_is_an_error(tiny, context, monkeypatch):
    """Monkeypatched: the session is created but reports only the CPU provider."""
    model, inputs, _ = tiny
    created = []

    class FallenBack:
        def __init__(self, path, options, providers, **kw):
            created.append(providers)

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(ort, "InferenceSession", FallenBack)
    backend = OrtBackend(settings(provider="cuda", device="cuda:1"))
    with pytest.raises(ProviderFallbackError, match="fell back to the CPU") as info:
        backend.prepare(model, inputs, context)
    assert "CUDAExecutionProvider on cuda:1" in str(info.value) and "Likely cause" in str(info.value)
    assert created[0][0] == ("CUDAExecutionProvider", {"device_id": "1", "use_tf32": "0"})  # fp32: no TF32


def test_tensorrt_tf32_sessions_give_the_cuda_fallback_use_tf32(tiny, tmp_path, monkeypatch):
    """Monkeypatched (no onnxruntime-gpu here): the throwaway session that builds the engine and the
    measured one both get the TensorRT provider first and the CUDA provider with use_tf32=1 behind it.
    Not yet run on a GPU."""
    model, inputs, _ = tiny
    created = []

    class Named:
        def __init__(self, name, type_):
            self.name, self.type = name, type_

    class TensorrtSession:
        def __init__(self, path, options, providers, **kw):
            created.append(providers)

        def get_providers(self):
            return ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]

        def get_inputs(self):
            return [Named("input", "tensor(float)")]

        def get_outputs(self):
            return [Named("map", "tensor(float)"), Named("score", "tensor(float)")]

        def run(self, names, feeds):
            return []

    monkeypatch.setattr(ort, "InferenceSession", TensorrtSession)
    monkeypatch.setattr(ob, "_gpu_name", lambda device_id: None)
    ctx = PrepareContext(batch_size=2, max_batch_size=2, cache_dir=str(tmp_path), model_key="tiny-trt-tf32")
    session = OrtBackend(settings(provider="tensorrt", device="cuda:1", precision="tf32")).prepare(model, inputs, ctx)
    assert len(created) == 2  # the engine's build, then the measured session
    for providers in created:
        assert [p if isinstance(p, str) else p[0] for p in providers] == [
            "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
        assert providers[0][1]["trt_fp16_enable"] == "False"
        assert providers[1][1] == {"device_id": "1", "use_tf32": "1"}
    assert session.requested["providers"][0] == "TensorrtExecutionProvider"


@pytest.mark.filterwarnings("ignore:Specified provider")  # ONNX Runtime's own warning, then it goes on
@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_the_real_runtime_falling_back_is_caught(tiny, context, provider, monkeypatch):
    """The real InferenceSession, asked for a provider this wheel lacks, quietly runs on the CPU."""
    if GPU_PROVIDERS[provider] in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has the GPU providers")
    model, inputs, _ = tiny
    monkeypatch.setattr(ob, "_gpu_name", lambda device_id: None)  # no nvidia-smi call
    with pytest.raises(ProviderFallbackError, match="fell back to the CPU") as info:
        OrtBackend(settings(provider=provider, device="cuda", precision=GPU_PRECISION[provider])).prepare(
            model, inputs, context)
    assert "onnxruntime-gpu" in str(info.value)


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_gpu_providers_unavailable_here_say_why_and_how(provider):
    if GPU_PROVIDERS[provider] in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has the GPU providers")
    availability = OrtBackend.available(settings(provider=provider, device="cuda", precision=GPU_PRECISION[provider]))
    assert not availability.ok
    assert GPU_PROVIDERS[provider] in availability.reason
    assert ".[gpu-cu" in availability.install and "onnxruntime-gpu" in availability.install


def test_the_cpu_provider_is_available_and_refuses_fp16():
    assert OrtBackend.available(settings()).ok
    assert set(OrtBackend.precisions) == {"fp32", "tf32", "fp16"}
    refused = OrtBackend.available(settings(precision="fp16"))
    assert not refused.ok and "fp32" in refused.reason and "onnxruntime-cuda" in refused.install


@pytest.mark.parametrize("kw, reason", [
    ({"provider": "cuda", "device": "gpu0"}, "is not cuda or cuda:N"),
    ({"provider": "cuda", "device": "cuda:x"}, "is not cuda or cuda:N"),
    ({"provider": "cpu", "device": "cuda"}, "runs on device cpu"),
    ({"provider": "rocm"}, "is not a provider"),
    ({"graph_optimization": "max"}, "is not a level"),
    ({"intra_op_threads": 0}, "must be >= 1"),
    ({"precision": "int8"}, "does not run int8"),
])
def test_bad_settings_are_unavailable_with_a_reason(kw, reason):
    availability = OrtBackend.available(settings(**kw))
    assert not availability.ok and reason in availability.reason and availability.install


def test_missing_library_names_the_extra(monkeypatch):
    real = ob.importlib.util.find_spec
    monkeypatch.setattr(ob.importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else real(name))
    availability = OrtBackend.available(settings())
    assert not availability.ok and "not installed" in availability.reason and ".[onnx]" in availability.install
    gpu = OrtBackend.available(settings(provider="cuda", device="cuda"))
    assert ".[gpu-cu" in gpu.install and gpu.install.startswith(("pip uninstall -y onnxruntime", "install a CUDA"))


def test_available_never_raises():
    assert not OrtBackend.available(object()).ok


def test_second_prepare_hits_the_cache_and_a_disabled_cache_rebuilds(tiny, tmp_path):
    model, inputs, _ = tiny
    ctx = PrepareContext(batch_size=2, cache_dir=str(tmp_path), model_key="tiny-cache-test")
    backend = OrtBackend(settings())
    first = backend.prepare(model, inputs, ctx).effective_settings()["conversion"]
    second = backend.prepare(model, inputs, ctx).effective_settings()["conversion"]
    assert first["cache_hit"] is False and first["build_s"] > 0
    assert second["cache_hit"] is True and second["build_s"] == 0.0
    assert second["stages"]["onnx"]["artifact_key"] == first["stages"]["onnx"]["artifact_key"]
    off = replace(ctx, cache_enabled=False)
    assert backend.prepare(model, inputs, off).effective_settings()["conversion"]["cache_hit"] is False


def test_fp16_conversion_of_the_cuda_path_matches_within_fp16_tolerance(tiny, context):
    """The CUDA provider's fp16 file, run here on the CPU provider: fp16 inputs and outputs, cast by
    the session, within the fp16 parity tolerance, and cached."""
    from bench.backends.artifacts import cached_onnx

    model, inputs, reference = tiny
    source_path, source = cached_onnx(model, inputs, context)
    path, artifact = ob._fp16_onnx(source_path, source, context)
    again = ob._fp16_onnx(source_path, source, context)[1]
    assert again.cache_hit and again.key == artifact.key
    raw = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert raw.get_inputs()[0].type == "tensor(float16)"
    s = settings(provider="cuda", device="cuda", precision="fp16", io_binding=False)
    session = OrtSession(raw, s, {}, {"onnx": source, "onnx_fp16": artifact})
    loaded = session.load_inputs(inputs)
    assert loaded["input"].dtype == np.float16
    for out, ref in zip(run_once(session, inputs), reference):
        assert out.dtype == np.float32 and rel_error(out, ref) <= PARITY_TOLERANCE["fp16"]


def test_io_binding_path_runs_bound_to_the_host(tiny, context, monkeypatch):
    """The GPU providers' IO-binding code, bound to "cpu" so that it runs here."""
    model, inputs, reference = tiny
    plain = OrtBackend(settings()).prepare(model, inputs, context)
    monkeypatch.setattr(OrtSession, "binding_device", "cpu")
    s = settings(provider="cuda", device="cuda:0", io_binding=True)
    session = OrtSession(plain.session, s, {}, plain.conversions)
    loaded = session.load_inputs(inputs)
    assert session.run(loaded) is loaded
    session.synchronize()
    for out, ref in zip(session.to_numpy(loaded), reference):
        assert rel_error(out, ref) <= PARITY_TOLERANCE["fp32"]
    assert session.effective_settings()["io_binding"] is True


def test_tensorrt_profile_covers_batch_one_to_the_largest(tiny, context):
    from bench.backends.artifacts import cached_onnx

    model, inputs, _ = tiny
    path, _ = cached_onnx(model, inputs, context)
    profile = ob._profile_shapes(path, inputs, replace(context, batch_size=2, max_batch_size=8))
    # Tuned for the sweep's largest batch: the same profile (one engine, one cache key) at every point.
    assert profile == {"trt_profile_min_shapes": "input:1x3x16x16", "trt_profile_opt_shapes": "input:8x3x16x16",
                       "trt_profile_max_shapes": "input:8x3x16x16"}
    for batch in (1, 4, 8):
        assert ob._profile_shapes(path, inputs, replace(context, batch_size=batch, max_batch_size=8)) == profile
    # Outside a sweep (max_batch_size = the batch), opt and max are the batch measured.
    single = ob._profile_shapes(path, inputs, replace(context, batch_size=2, max_batch_size=2))
    assert single["trt_profile_opt_shapes"] == single["trt_profile_max_shapes"] == "input:2x3x16x16"


def test_autoencoder_end_to_end_through_a_worker(in_tmp):
    """The real autoencoder (256x256) on backend=onnxruntime, in a spawned worker as `bench run` does."""
    from bench.config.compose import compose, to_config
    from bench.reporting.progress import ProgressDisplay
    from bench.orchestration.runner import Runner, WorkItem, run_worker
    from bench.results.store import ResultsStore

    cfg = to_config(compose([
        "backend=onnxruntime", "suite.only=[autoencoder]", f"results.dir={in_tmp / 'results'}",
        f"cache.dir={in_tmp / 'artifacts'}", "scenario.warmup_iterations=1", "scenario.warmup_s=0.01",
        "scenario.min_iterations=3", "scenario.min_duration_s=0.05", "scenario.max_duration_s=1",
    ]))
    runner = Runner(cfg, ResultsStore(cfg.results.dir), {"hardware": "test"},
                    ProgressDisplay(io.StringIO(), plain=True))
    item = WorkItem("autoencoder", 1, "latency")
    outcome = run_worker(runner.item_request(item), 600.0)
    assert outcome.error is None, outcome.error
    record = runner.make_record(item, outcome, {})
    assert record.status == "ok" and record.valid
    parity = outcome.result["parity"]
    assert parity["ok"] and parity["max_rel_error"] <= 1e-4
    effective = outcome.result["backend"]["effective"]
    assert effective["providers"] == ["CPUExecutionProvider"]
    assert effective["conversion"]["cache_hit"] is False
