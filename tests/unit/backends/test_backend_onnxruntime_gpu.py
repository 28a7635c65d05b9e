"""ONNX Runtime's GPU providers on a machine without onnxruntime-gpu: fakes of its failure modes (the
provider listed but its libraries failing to load, at session creation or by a silent CPU-only
session), the CUDA version of the wheel in the advice, TensorRT's and CUDA's libraries preloaded
before the first session, and nodes placed on the CPU provider (the cpu_nodes record and warning,
backend.allow_cpu_nodes=false an error). Where a session is needed it is a real CPU session, its
providers relabelled: its placement report is ONNX Runtime's own. Not yet run on a GPU."""

from __future__ import annotations

import io
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

ort = pytest.importorskip("onnxruntime")

from bench.backends import onnxruntime_backend as ob  # noqa: E402
from bench.backends import onnxruntime_gpu as og  # noqa: E402
from bench.backends.onnxruntime_backend import CpuNodesError, ProviderFallbackError  # noqa: E402
from bench.config.schema import OrtBackendConfig  # noqa: E402
from bench.results.diagnostics import Code, diagnose  # noqa: E402

TRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
# What ONNX Runtime raises when the TensorRT provider's library cannot find TensorRT (its own words).
TRT_LOAD_ERROR = ("[ONNXRuntimeError] : 1 : FAIL : Failed to load library libonnxruntime_providers_tensorrt.so "
                  "with error: libnvinfer.so.10: cannot open shared object file: No such file or directory")


def settings(**kw) -> OrtBackendConfig:
    return OrtBackendConfig(name="onnxruntime", impl="bench.backends.onnxruntime_backend:OrtBackend", **kw)


@pytest.fixture
def gpu_wheel(monkeypatch):
    """This ONNX Runtime as onnxruntime-gpu would present itself: the GPU providers listed and a CUDA
    version recorded; returns a setter for that version."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TRT, CUDA, CPU])

    def built_for(version: str) -> None:
        monkeypatch.setattr(ort, "cuda_version", version, raising=False)

    built_for("12.8")
    return built_for


@pytest.fixture
def no_tensorrt(monkeypatch):
    """No TensorRT anywhere: no tensorrt_libs package, no libnvinfer on the library path."""
    monkeypatch.setattr(og, "_tensorrt_libs_folder", lambda: None)

    def refuse(path):
        raise OSError(f"{path}: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(og, "_dlopen", refuse)


# ------------------------------------------------------------------ the wheel's CUDA version


def test_the_wheels_cuda_version_is_read_from_onnxruntime(monkeypatch):
    if getattr(ort, "cuda_version", ""):
        pytest.skip("this ONNX Runtime is a GPU wheel")
    assert og.wheel_cuda_version(ort) is None  # the CPU wheel here records "" (no CUDA)
    monkeypatch.setattr(ort, "cuda_version", "13.0", raising=False)
    assert og.wheel_cuda_version(ort) == "13.0"
    # Without the module attribute, the build record it comes from.
    from onnxruntime.capi import build_and_package_info

    monkeypatch.delattr(ort, "cuda_version")
    monkeypatch.setattr(build_and_package_info, "cuda_version", "12.6", raising=False)
    assert og.wheel_cuda_version(ort) == "12.6"


@pytest.mark.parametrize("version, package", [("12.8", "tensorrt-cu12"), ("13.0", "tensorrt-cu13"),
                                              ("13", "tensorrt-cu13"), ("", None), (None, None), ("x.y", None)])
def test_the_tensorrt_package_follows_the_cuda_major(version, package):
    assert og.tensorrt_package(version) == package


@pytest.mark.parametrize("cuda, package, other", [("12.8", "tensorrt-cu12", "tensorrt-cu13"),
                                                  ("13.0", "tensorrt-cu13", "tensorrt-cu12")])
def test_the_advice_names_the_wheels_cuda_and_its_tensorrt(gpu_wheel, cuda, package, other):
    gpu_wheel(cuda)
    major = cuda.split(".")[0]
    trt = ob._fallback_cause(ort, TRT)
    assert f"pip install '{package}>=10,<11'" in trt and other not in trt
    assert f"built for CUDA {cuda}" in trt and f"CUDA {major} runtime" in trt
    gpu = ob._fallback_cause(ort, CUDA)
    assert f"CUDA {major} runtime" in gpu and f"built for CUDA {cuda}" in gpu
    assert f"CUDA {other[-2:]}" not in trt + gpu  # the hard-coded CUDA 12 is gone


def test_the_advice_without_a_recorded_cuda_version_names_both_packages(gpu_wheel):
    gpu_wheel("")
    trt = ob._fallback_cause(ort, TRT)
    assert "tensorrt-cu12 for CUDA 12, tensorrt-cu13 for CUDA 13" in trt and "print_debug_info" in trt
    assert "built for CUDA" not in ob._fallback_cause(ort, CUDA)


def test_a_wheel_without_the_provider_gets_the_gpu_install(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])
    assert ob._fallback_cause(ort, TRT).endswith(ob._INSTALL_GPU)


# ------------------------------------------------------------------ preloading


def trt_folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "tensorrt_libs"
    folder.mkdir()
    (folder / "__init__.py").write_text("raise RuntimeError('imported')\n")
    for name in names:
        (folder / name).write_bytes(b"not an ELF file")
    return folder


def test_tensorrt_libs_is_found_without_importing_it(tmp_path, monkeypatch):
    folder = trt_folder(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert og._tensorrt_libs_folder() == folder and "tensorrt_libs" not in sys.modules


def test_tensorrt_10_is_opened_global_from_tensorrt_libs_in_dependency_order(tmp_path, monkeypatch):
    folder = trt_folder(tmp_path, *og.TENSORRT_LIBRARIES)
    opened = []
    monkeypatch.setattr(og, "_tensorrt_libs_folder", lambda: folder)
    monkeypatch.setattr(og, "_dlopen", opened.append)
    result = og._preload_tensorrt()
    assert opened == [str(folder / name) for name in ("libnvinfer.so.10", "libnvinfer_plugin.so.10",
                                                      "libnvonnxparser.so.10")]
    assert result["loaded"] == dict(zip(og.TENSORRT_LIBRARIES, opened)) and result["failed"] == {}


def test_the_real_loader_failing_is_recorded_not_raised(tmp_path, monkeypatch):
    """The real ctypes loader on files that are not libraries: each failure is kept with its message."""
    folder = trt_folder(tmp_path, *og.TENSORRT_LIBRARIES)
    monkeypatch.setattr(og, "_tensorrt_libs_folder", lambda: folder)
    result = og._preload_tensorrt()
    assert result["loaded"] == {} and list(result["failed"]) == list(og.TENSORRT_LIBRARIES)
    assert all(str(folder) in message for message in result["failed"].values())
    assert "could not be preloaded" in og.preload_note({"tensorrt": result})


def test_another_tensorrt_in_tensorrt_libs_is_named(tmp_path, monkeypatch, no_tensorrt):
    folder = trt_folder(tmp_path, "libnvinfer.so.11")
    monkeypatch.setattr(og, "_tensorrt_libs_folder", lambda: folder)
    result = og._preload_tensorrt()
    assert list(result["failed"]) == list(og.TENSORRT_LIBRARIES)  # tried by soname after the folder
    note = og.preload_note({"tensorrt": result})
    assert "libnvinfer.so.11, another TensorRT than 10" in note and str(folder) in note


def test_preload_dlls_is_called_and_what_it_prints_is_kept(monkeypatch, capsys, no_tensorrt):
    calls = []

    def preload_dlls():
        calls.append("preload_dlls")
        print("Failed to load libcudnn.so.9: libcudnn.so.9: cannot open shared object file")
        print("\033[33mWARNING: Unable to parse CUDA version 'x'.\033[0m")

    monkeypatch.setattr(ort, "preload_dlls", preload_dlls, raising=False)
    result = og.preload_libraries(ort, "cuda")
    assert calls == ["preload_dlls"] and result["preload_dlls"] == "called"
    assert result["preload_dlls_messages"] == ["Failed to load libcudnn.so.9: libcudnn.so.9: cannot open shared "
                                               "object file", "WARNING: Unable to parse CUDA version 'x'."]
    assert "tensorrt" not in result and capsys.readouterr().out == ""
    trt = og.preload_libraries(ort, "tensorrt")
    assert list(trt["tensorrt"]["failed"]) == list(og.TENSORRT_LIBRARIES)
    assert og.preload_libraries(ort, "cpu") == {} and calls == ["preload_dlls"] * 2


def test_tensorrt_loaded_but_no_session_points_at_cuda_and_cudnn(gpu_wheel, tmp_path, monkeypatch):
    folder = trt_folder(tmp_path, *og.TENSORRT_LIBRARIES)
    monkeypatch.setattr(og, "_tensorrt_libs_folder", lambda: folder)
    monkeypatch.setattr(og, "_dlopen", lambda path: None)
    cause = ob._fallback_cause(ort, TRT, {"tensorrt": og._preload_tensorrt()})
    assert cause.startswith(f"TensorRT 10 was loaded ({folder / 'libnvinfer.so.10'}")
    assert "CUDA 12 runtime or cuDNN 9" in cause and "tensorrt-cu" not in cause


def test_an_onnxruntime_without_preload_dlls_says_so():
    assert "not in this ONNX Runtime" in og.preload_libraries(SimpleNamespace(), "cuda")["preload_dlls"]


# ------------------------------------------------------------------ node placement (no session needed)


class Node(SimpleNamespace):
    pass


def report(**ops_by_provider: list[str]):
    """A graph assignment report as ONNX Runtime returns it: subgraphs with ep_name and get_nodes()."""
    return [SimpleNamespace(ep_name=ep, get_nodes=lambda ops=ops: [Node(op_type=op, name="", domain="")
                                                                  for op in ops])
            for ep, ops in ops_by_provider.items()]


class Placed:
    def __init__(self, subgraphs=None, error: Exception | None = None):
        self.subgraphs, self.error = subgraphs, error

    def get_provider_graph_assignment_info(self):
        if self.error:
            raise self.error
        return self.subgraphs


MIXED = Placed(report(CUDAExecutionProvider=["Conv", "Conv", "Relu"], CPUExecutionProvider=["Shape", "Gather"]))


def test_partial_placement_is_counted_with_its_op_types():
    assert og.node_placement(MIXED) == {CUDA: {"Conv": 2, "Relu": 1}, CPU: {"Shape": 1, "Gather": 1}}
    assert og.cpu_nodes(og.node_placement(MIXED), "1.32.0") == {
        "reported": True, "count": 2, "op_types": {"Gather": 1, "Shape": 1}, "total": 5}
    og.check_cpu_nodes(MIXED, CUDA, True, "1.32.0")  # backend.allow_cpu_nodes=true (the default)
    with pytest.raises(CpuNodesError) as info:
        og.check_cpu_nodes(MIXED, CUDA, False, "1.32.0")
    message = str(info.value)
    assert "2 of 5 nodes run on the CPU provider, not CUDAExecutionProvider (Gather, Shape)" in message
    assert "backend.allow_cpu_nodes=true" in message


def test_all_nodes_on_the_gpu_pass_even_when_cpu_nodes_are_refused():
    only_gpu = Placed(report(TensorrtExecutionProvider=["Conv", "Relu"], CUDAExecutionProvider=["TopK"]))
    og.check_cpu_nodes(only_gpu, TRT, False, "1.32.0")
    assert og.cpu_nodes(og.node_placement(only_gpu), "1.32.0")["count"] == 0


@pytest.mark.parametrize("session", [Placed(error=AttributeError("no such method")), Placed([]), object()])
def test_placement_this_runtime_cannot_report_is_unknown_not_none(session):
    assert og.node_placement(session) is None
    placed = og.cpu_nodes(None, "1.20.1")
    assert placed["reported"] is False and "1.20.1 does not report" in placed["why"] and "count" not in placed
    og.check_cpu_nodes(session, CUDA, True, "1.20.1")
    with pytest.raises(CpuNodesError, match="allow_cpu_nodes=false cannot be checked.*onnxruntime-gpu>=1.23"):
        og.check_cpu_nodes(session, CUDA, False, "1.20.1")


def test_the_cpu_provider_is_never_refused_its_own_nodes():
    og.check_cpu_nodes(Placed(report(CPUExecutionProvider=["Conv"])), CPU, False, "1.32.0")


def warnings_for(effective: dict):
    return diagnose({}, {}, {}, None, backend={"name": "onnxruntime-cuda", "precision": "fp32",
                                               "effective": effective})


def test_cpu_nodes_are_a_typed_warning_with_count_and_op_types():
    effective = {"providers": [CUDA, CPU], "cpu_nodes": og.cpu_nodes(og.node_placement(MIXED), "1.32.0")}
    (warning,) = warnings_for(effective)
    assert warning.code is Code.CPU_NODES and warning.to_dict()["code"] == "cpu_nodes"
    assert "2 of 5 graph nodes ran on the CPU provider, not CUDAExecutionProvider (Gather, Shape)" in warning.message
    assert "backend.allow_cpu_nodes=false" in warning.hint
    # None on the CPU, placement unknown, or no cpu_nodes record (the CPU provider): nothing claimed.
    assert warnings_for({"providers": [CUDA], "cpu_nodes": {"reported": True, "count": 0, "op_types": {}}}) == []
    assert warnings_for({"providers": [CUDA], "cpu_nodes": og.cpu_nodes(None, "1.20.1")}) == []
    assert warnings_for({"providers": [CPU]}) == []


def test_the_summary_shows_the_cpu_nodes_warning():
    from bench.reporting.summary import summary
    from tests.recordfactory import make_record

    (warning,) = warnings_for({"providers": [CUDA], "cpu_nodes": og.cpu_nodes(og.node_placement(MIXED), "1.32.0")})
    record = replace(make_record(backend="onnxruntime-cuda", device="cuda"), warnings=[warning.to_dict()])
    out = io.StringIO()
    summary([(record, Path("results/records/x.json"))], "sqlite:///x", stream=out)
    assert "warning [1] cpu_nodes: 2 of 5 graph nodes ran on the CPU provider" in out.getvalue()


# ------------------------------------------------------------------ settings


def test_allow_cpu_nodes_is_a_setting_of_every_onnxruntime_backend(tmp_path):
    from bench.config.compose import compose, to_config
    from bench.config.explain import explain

    assert OrtBackendConfig.__dataclass_fields__["allow_cpu_nodes"].default is True
    for name in ("onnxruntime", "onnxruntime-cuda", "onnxruntime-tensorrt"):
        assert to_config(compose([f"backend={name}", f"results.dir={tmp_path}"])).backend.allow_cpu_nodes is True
    off = to_config(compose(["backend=onnxruntime-cuda", "backend.allow_cpu_nodes=false", f"results.dir={tmp_path}"]))
    assert off.backend.allow_cpu_nodes is False
    bad = ["backend=onnxruntime-cuda", "backend.allow_cpu_nodes=maybe", f"results.dir={tmp_path}"]
    with pytest.raises(Exception) as info:
        compose(bad)
    error = explain(info.value, bad)  # what the CLI prints: one line, exit code 2
    assert (error.key, error.value) == ("backend.allow_cpu_nodes", "maybe") and "wrong type" in str(error)


# ------------------------------------------------------------------ through prepare (torch exports the model)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The ONNX backend tests' two-convolution model, exported once into a module-wide cache."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from bench.backends.base import PrepareContext

    from tests.unit.backends.test_backend_onnxruntime import TinyNet

    torch.manual_seed(0)
    model = TinyNet().eval()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference = [t.numpy() for t in model(x)]
    context = PrepareContext(batch_size=2, max_batch_size=2, cache_dir=str(tmp_path_factory.mktemp("cache")),
                             model_key="tiny-gpu-fakes-2x3x16x16")
    return model, (x,), reference, context


@pytest.fixture
def sessions(monkeypatch):
    """ort.InferenceSession replaced by a real CPU session that reports the providers a GPU session
    would (its placement report stays ONNX Runtime's own: every node on the CPU provider). Returns the
    log of calls, shared with the preloading fakes, and the list of providers each session was asked for."""
    real = ort.InferenceSession
    log: list[str] = []
    asked: list[list] = []
    state = {"providers": [CUDA, CPU]}

    class Relabelled(real):
        def __init__(self, path, options=None, providers=None, **kw):
            log.append("session")
            asked.append(providers)
            super().__init__(path, options, providers=[CPU])

        def get_providers(self):
            return list(state["providers"])

    monkeypatch.setattr(ort, "InferenceSession", Relabelled)
    monkeypatch.setattr(ob, "_gpu_name", lambda device_id: None)  # no nvidia-smi
    return SimpleNamespace(log=log, asked=asked, state=state)



@pytest.fixture
def preload_log(monkeypatch, tmp_path, sessions):
    """preload_dlls and the TensorRT loader recording into the sessions' log."""
    monkeypatch.setattr(ort, "preload_dlls", lambda: sessions.log.append("preload_dlls"), raising=False)
    folder = trt_folder(tmp_path, *og.TENSORRT_LIBRARIES)
    monkeypatch.setattr(og, "_tensorrt_libs_folder", lambda: folder)
    monkeypatch.setattr(og, "_dlopen", lambda path: sessions.log.append(Path(path).name))
    return sessions.log


@pytest.mark.slow
def test_libraries_are_preloaded_before_the_first_tensorrt_session(tiny, gpu_wheel, sessions, preload_log, tmp_path):
    model, inputs, _, context = tiny
    sessions.state["providers"] = [TRT, CUDA, CPU]
    ctx = replace(context, cache_dir=str(tmp_path / "cache"))  # the engine is built here, not served
    session = ob.OrtBackend(settings(provider="tensorrt", device="cuda", precision="tf32")).prepare(model, inputs, ctx)
    # preload_dlls, TensorRT 10 in dependency order, then the engine's build and the measured session.
    assert preload_log == ["preload_dlls", *og.TENSORRT_LIBRARIES, "session", "session"]
    preloaded = session.effective_settings()["library_preload"]
    assert preloaded["preload_dlls"] == "called" and list(preloaded["tensorrt"]["loaded"]) == list(og.TENSORRT_LIBRARIES)


@pytest.mark.slow
@pytest.mark.parametrize("provider, expected", [("cuda", ["preload_dlls", "session"]), ("cpu", ["session"])])
def test_the_cuda_provider_preloads_cuda_only_and_the_cpu_provider_nothing(tiny, gpu_wheel, sessions, preload_log,
                                                                           provider, expected):
    model, inputs, _, context = tiny
    sessions.state["providers"] = [CUDA, CPU] if provider == "cuda" else [CPU]
    device = "cuda" if provider == "cuda" else "cpu"
    session = ob.OrtBackend(settings(provider=provider, device=device)).prepare(model, inputs, context)
    assert preload_log == expected
    assert ("library_preload" in session.effective_settings()) is (provider == "cuda")


@pytest.mark.slow
def test_a_provider_whose_libraries_fail_to_load_raises_with_the_advice(tiny, gpu_wheel, monkeypatch, no_tensorrt,
                                                                        tmp_path):
    """Listed by get_available_providers(), but InferenceSession raises: TensorRT missing."""
    model, inputs, _, context = tiny
    gpu_wheel("13.0")

    def fails(path, options=None, providers=None, **kw):
        raise RuntimeError(TRT_LOAD_ERROR)

    monkeypatch.setattr(ort, "InferenceSession", fails)
    monkeypatch.setattr(ob, "_gpu_name", lambda device_id: None)
    backend = ob.OrtBackend(settings(provider="tensorrt", device="cuda:1", precision="tf32"))
    with pytest.raises(ProviderFallbackError) as info:
        backend.prepare(model, inputs, replace(context, cache_dir=str(tmp_path)))
    message = str(info.value)
    assert "could not create a session on TensorrtExecutionProvider (cuda:1)" in message
    assert "libnvinfer.so.10: cannot open shared object file" in message  # ONNX Runtime's own words
    assert "libnvinfer.so.10, libnvinfer_plugin.so.10, libnvonnxparser.so.10 could not be preloaded" in message
    assert "pip install 'tensorrt-cu13>=10,<11' (onnxruntime-gpu here is built for CUDA 13.0)" in message


@pytest.mark.slow
def test_a_gpu_provider_that_builds_on_the_cpu_only_is_refused_with_the_advice(tiny, gpu_wheel, sessions):
    """Listed, but the session comes up on the CPU provider alone (the CUDA libraries did not load)."""
    model, inputs, _, context = tiny
    sessions.state["providers"] = [CPU]
    with pytest.raises(ProviderFallbackError) as info:
        ob.OrtBackend(settings(provider="cuda", device="cuda")).prepare(model, inputs, context)
    message = str(info.value)
    assert "fell back to the CPU" in message and "CUDA 12 runtime or cuDNN 9" in message
    assert "built for CUDA 12.8" in message and sessions.asked[0][0][0] == CUDA


@pytest.mark.slow
def test_a_real_sessions_cpu_nodes_are_recorded_warned_and_run(tiny, gpu_wheel, sessions, monkeypatch):
    """A real CPU session reported as a CUDA one: ONNX Runtime's own placement report puts every node
    on the CPU provider; the IO-binding path (bound to the host) still matches PyTorch."""
    from bench.backends.base import PARITY_TOLERANCE

    model, inputs, reference, context = tiny
    monkeypatch.setattr(ob.OrtSession, "binding_device", "cpu")
    session = ob.OrtBackend(settings(provider="cuda", device="cuda")).prepare(model, inputs, context)
    effective = session.effective_settings()
    placed = effective["cpu_nodes"]
    assert placed["reported"] is True and placed["count"] == placed["total"] >= 3
    assert placed["op_types"]["Conv"] == 2 and placed["op_types"]["Relu"] == 1
    assert effective["node_placement"] == {CPU: placed["op_types"]} and effective["allow_cpu_nodes"] is True
    assert effective["onnxruntime_cuda_version"] == "12.8"
    (warning,) = diagnose({}, {}, {}, None, backend={"precision": "fp32", "effective": effective})
    assert warning.code is Code.CPU_NODES and "Conv x2" in warning.message and CUDA in warning.message
    loaded = session.load_inputs(inputs)
    session.run(loaded)
    session.synchronize()
    for out, ref in zip(session.to_numpy(loaded), reference):
        assert abs(out - ref).max() / abs(ref).max() <= PARITY_TOLERANCE["fp32"]


@pytest.mark.slow
def test_allow_cpu_nodes_false_fails_the_item_at_prepare(tiny, gpu_wheel, sessions):
    model, inputs, _, context = tiny
    with pytest.raises(CpuNodesError) as info:
        ob.OrtBackend(settings(provider="cuda", device="cuda", allow_cpu_nodes=False)).prepare(model, inputs, context)
    message = str(info.value)
    assert "nodes run on the CPU provider, not CUDAExecutionProvider" in message and "Conv x2" in message
    assert "Fix: set backend.allow_cpu_nodes=true" in message


@pytest.mark.slow
def test_allow_cpu_nodes_false_fails_before_the_tensorrt_engine_is_built(tiny, gpu_wheel, sessions, tmp_path,
                                                                         no_tensorrt):
    model, inputs, _, context = tiny
    sessions.state["providers"] = [TRT, CUDA, CPU]
    backend = ob.OrtBackend(settings(provider="tensorrt", device="cuda", precision="tf32", allow_cpu_nodes=False))
    with pytest.raises(CpuNodesError, match="not TensorrtExecutionProvider"):
        backend.prepare(model, inputs, replace(context, cache_dir=str(tmp_path)))
    assert sessions.log == ["session"]  # the engine's throwaway session only: nothing was run or cached
    assert not list(Path(tmp_path).glob("ort-tensorrt-engine*/**/meta.json"))
