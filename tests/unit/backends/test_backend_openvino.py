"""The OpenVINO backend on the CPU: parity of the latency (InferRequest) and throughput
(AsyncInferQueue) sessions, the precision hint read back (f32 by default, never the CPU's bf16),
requests recorded, the IR cache, convert_model, the unavailable paths, and one worker end to end."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from bench.backends.base import PARITY_TOLERANCE, PrepareContext
from bench.config.schema import OpenVinoBackendConfig

ov = pytest.importorskip("openvino")

from bench.backends.openvino_backend import OpenVinoBackend, OpenVinoQueueSession, OpenVinoSession  # noqa: E402

pytestmark = pytest.mark.slow


class TinyNet(torch.nn.Module):
    """Two convolutions returning (map, score), like the suite's models."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        amap = self.conv2(torch.relu(self.conv1(x)))
        return amap, amap.amax(dim=(1, 2, 3))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = TinyNet().eval()
    x = torch.randn(2, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = [t.numpy() for t in model(x)]
    return model, x, reference


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("ov-cache"))


def settings(**kw) -> OpenVinoBackendConfig:
    return OpenVinoBackendConfig(name="openvino", impl="bench.backends.openvino_backend:OpenVinoBackend",
                                 **{"device": "CPU", **kw})


def prepare(tiny, cache, scenario="latency", key="tiny", **kw):
    model, x, _ = tiny
    context = PrepareContext(scenario=scenario, batch_size=x.shape[0], max_batch_size=x.shape[0],
                             cache_dir=cache, model_key=key)
    return OpenVinoBackend(settings(**kw)).prepare(model, [x], context)


def assert_parity(outputs, reference, precision="fp32"):
    assert len(outputs) == len(reference)
    for out, ref in zip(outputs, reference):
        assert out.dtype == np.float32 and out.shape == ref.shape
        assert np.abs(out - ref).max() <= PARITY_TOLERANCE[precision] * np.abs(ref).max()


def cpu_capabilities() -> list[str]:
    return list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def test_latency_session_matches_torch_and_reads_back_f32(tiny, cache):
    session = prepare(tiny, cache, scenario="latency")
    assert type(session) is OpenVinoSession
    loaded = session.load_inputs([tiny[1]])
    outputs = session.run(loaded)
    session.synchronize()
    assert_parity(session.to_numpy(outputs), tiny[2])
    eff = session.effective_settings()
    assert eff["inference_precision"] == "f32" and eff["requested"]["inference_precision"] == "f32"
    assert eff["ran_precision"] == "fp32"  # INFERENCE_PRECISION_HINT read back from the compiled model
    assert eff["performance_hint"] == "LATENCY" and eff["infer_requests"] == 1
    assert eff["execution_devices"] == ["CPU"] and eff["openvino_version"] == ov.get_version()
    assert eff["optimal_number_of_infer_requests"] >= 1 and eff["num_streams"] >= 1


def test_default_precision_is_f32_not_the_cpus_bf16(tiny, cache):
    """On a CPU with BF16 the plugin's own default is bf16; the backend must not leave it there."""
    default = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
    if "BF16" in cpu_capabilities():
        assert default == ov.Type.bf16  # what an unset hint would have run
    eff = prepare(tiny, cache).effective_settings()
    assert eff["inference_precision"] == "f32"


def test_bf16_is_read_back_when_the_cpu_has_it(tiny, cache):
    if "BF16" not in cpu_capabilities():
        pytest.skip("this CPU has no BF16")
    session = prepare(tiny, cache, precision="bf16")
    assert session.effective_settings()["inference_precision"] == "bf16"
    assert session.effective_settings()["ran_precision"] == "bf16"
    assert_parity(session.to_numpy(session.run(session.load_inputs([tiny[1]]))), tiny[2], "bf16")


def test_a_precision_the_device_would_swap_is_refused(tiny, cache):
    """The CPU plugin turns an f16 hint into bf16 without a word: available() refuses fp16, and
    prepare() refuses a compiled model whose read-back precision is not the one asked."""
    if "FP16" in cpu_capabilities():
        pytest.skip("this CPU runs FP16")
    availability = OpenVinoBackend.available(settings(precision="fp16"))
    assert not availability.ok and "cannot run fp16" in availability.reason
    assert "backend.precision=fp32" in availability.install
    with pytest.raises(RuntimeError, match="refusing to measure another precision"):
        prepare(tiny, cache, precision="fp16")


def test_throughput_queue_returns_each_runs_outputs_and_waits_for_all(tiny, cache):
    session = prepare(tiny, cache, scenario="throughput")
    assert isinstance(session, OpenVinoQueueSession)
    eff = session.effective_settings()
    assert eff["performance_hint"] == "THROUGHPUT"
    assert eff["infer_requests"] == eff["optimal_number_of_infer_requests"] == session.jobs
    loaded = session.load_inputs([tiny[1]])
    tokens = [session.run(loaded) for _ in range(3 * session.jobs + 1)]
    session.synchronize()
    assert session._queue.is_ready()  # wait_all left no request running
    assert_parity(session.to_numpy(tokens[-1]), tiny[2])
    held = [t for t in tokens if t in session._queue.userdata]  # the last run of each job
    assert tokens[-1] in held and len(held) <= session.jobs
    for token in held:
        assert_parity(session.to_numpy(token), tiny[2])
    with pytest.raises(RuntimeError, match="overwritten"):
        session.to_numpy(tokens[0])


def test_num_requests_and_threads_are_applied_and_recorded(tiny, cache):
    session = prepare(tiny, cache, scenario="throughput", num_requests=3, threads=1)
    eff = session.effective_settings()
    assert session.jobs == eff["infer_requests"] == 3 and eff["requested"]["num_requests"] == 3
    assert eff["inference_num_threads"] == 1 and eff["requested"]["inference_num_threads"] == 1
    loaded = session.load_inputs([tiny[1]])
    last = [session.run(loaded) for _ in range(7)][-1]
    session.synchronize()
    assert_parity(session.to_numpy(last), tiny[2])


def test_hint_can_be_set_apart_from_the_scenario(tiny, cache):
    eff = prepare(tiny, cache, scenario="latency", hint="throughput").effective_settings()
    assert eff["performance_hint"] == "THROUGHPUT" and eff["infer_requests"] == 1


def test_convert_model_source_works(tiny, cache):
    session = prepare(tiny, cache, source="convert_model")
    assert session.effective_settings()["source"] == "convert_model"
    assert_parity(session.to_numpy(session.run(session.load_inputs([tiny[1]]))), tiny[2])


def test_second_prepare_hits_the_ir_cache(tiny, tmp_path):
    first = prepare(tiny, str(tmp_path), key="cached").effective_settings()["conversion"]
    second = prepare(tiny, str(tmp_path), key="cached").effective_settings()["conversion"]
    assert not first["cache_hit"] and "onnx" in first["stages"] and first["build_s"] > 0
    # A hit on the OpenVINO model skips the ONNX export altogether.
    assert second["cache_hit"] and "onnx" not in second["stages"] and second["build_s"] == 0
    key = first["stages"]["openvino_model"]["artifact_key"]
    assert second["stages"]["openvino_model"]["artifact_key"] == key
    other = prepare(tiny, str(tmp_path), key="cached", precision="bf16") if "BF16" in cpu_capabilities() else None
    if other is not None:
        assert other.effective_settings()["conversion"]["stages"]["openvino_model"]["artifact_key"] != key


def test_inputs_of_another_shape_are_refused(tiny, cache):
    session = prepare(tiny, cache)
    with pytest.raises(ValueError, match="compiled for shape"):
        session.load_inputs([torch.zeros(1, 3, 24, 24)])


@pytest.mark.parametrize("device", ["GPU", "NPU", "AUTO:GPU"])
def test_devices_not_present_are_unavailable_with_the_devices_found(device):
    found = ov.Core().available_devices
    if any(d.split(".")[0] in device for d in found):
        pytest.skip(f"{device} is present here")
    availability = OpenVinoBackend.available(settings(device=device))
    assert not availability.ok
    assert "GPU" in availability.reason or "NPU" in availability.reason
    assert "devices found" in availability.reason and all(d in availability.reason for d in found)
    assert "backend.device=" in availability.install


def test_cpu_and_auto_are_available():
    assert OpenVinoBackend.available(settings(device="CPU")).ok
    assert OpenVinoBackend.available(settings(device="cpu")).ok
    assert OpenVinoBackend.available(settings(device="AUTO")).ok


def test_bad_settings_and_a_missing_library_are_reported(monkeypatch):
    bad = OpenVinoBackend.available(settings(hint="fastest"))
    assert not bad.ok and "backend.hint" in bad.reason
    assert not OpenVinoBackend.available(settings(source="tflite")).ok
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    missing = OpenVinoBackend.available(settings())
    assert not missing.ok and "not installed" in missing.reason and ".[openvino]" in missing.install


@pytest.mark.parametrize("scenario", ["latency", "throughput"])
def test_worker_end_to_end_on_the_autoencoder(in_tmp, scenario):
    import io

    from bench.config.compose import compose, to_config
    from bench.reporting.progress import ProgressDisplay
    from bench.orchestration.runner import Runner, WorkItem, run_worker
    from bench.results.store import ResultsStore

    cfg = to_config(compose([
        "suite=anomaly", "suite.only=[autoencoder]", "backend=openvino", f"scenario={scenario}",
        f"results.dir={in_tmp / 'results'}", "scenario.warmup_iterations=1", "scenario.warmup_s=0.01",
        "scenario.min_iterations=3", "scenario.min_duration_s=0.05", "scenario.max_duration_s=0.5",
    ]))
    runner = Runner(cfg, ResultsStore(cfg.results.dir), {}, ProgressDisplay(io.StringIO(), plain=True))
    outcome = run_worker(runner.item_request(WorkItem("autoencoder", 1, scenario)), 600.0)
    assert outcome.error is None, outcome.error
    result = outcome.result
    assert result["parity"]["ok"] and result["parity"]["max_rel_error"] <= PARITY_TOLERANCE["fp32"]
    eff = result["backend"]["effective"]
    assert eff["inference_precision"] == "f32" and eff["input_shapes"] == [[1, 3, 256, 256]]
    assert eff["performance_hint"] == scenario.upper()
    assert eff["api"].startswith("AsyncInferQueue" if scenario == "throughput" else "InferRequest")
    assert len(result["loop"]["samples_ns"]) >= 1
    # What ran is stored, and the record made from it (runner.make_record -> diagnose) agrees.
    assert eff["ran_precision"] == "fp32" and result["backend"]["precision"] == "fp32"
    record = runner.make_record(WorkItem("autoencoder", 1, scenario), outcome, {})
    assert "precision_mismatch" not in [w["code"] for w in record.warnings]


def test_a_sweep_converts_the_onnx_ir_once_and_compiles_each_batch_static(tiny, tmp_path):
    """source=onnx: the IR keeps the export's dynamic batch axis, so batches 1, 2 and 4 of a sweep share
    one IR (served from the cache after the first) and each compiles static at its own batch;
    convert_model traces static shapes, so its IR is one per batch."""
    model, _, _ = tiny

    def run(batch: int, source: str = "onnx"):
        x = torch.randn(batch, 3, 24, 24, generator=torch.Generator().manual_seed(batch))
        context = PrepareContext(scenario="latency", batch_size=batch, max_batch_size=4, cache_dir=str(tmp_path),
                                 model_key="sweep")
        session = OpenVinoBackend(settings(source=source)).prepare(model, [x], context)
        with torch.no_grad():
            reference = [t.numpy() for t in model(x)]
        assert_parity(session.to_numpy(session.run(session.load_inputs([x]))), reference)
        assert [list(p.get_partial_shape().to_shape()) for p in session.compiled.inputs] == [[batch, 3, 24, 24]]
        return session.effective_settings()["conversion"]["stages"]["openvino_model"]

    stages = [run(batch) for batch in (1, 2, 4)]
    assert [s["cache_hit"] for s in stages] == [False, True, True]
    assert len({s["artifact_key"] for s in stages}) == 1
    traced = [run(batch, "convert_model") for batch in (1, 2)]
    assert [s["cache_hit"] for s in traced] == [False, False] and traced[0]["artifact_key"] != traced[1]["artifact_key"]
