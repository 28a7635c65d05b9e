"""Precision labels that are true: a precision a backend cannot run is refused before anything runs
(fp32 on ONNX Runtime's TensorRT provider, which always runs TF32), the provider options carry the
precision to every CUDA provider, and what each runtime reports it ran (``ran_precision``) is read
from its own report; a mismatch with the request is a warning.

No GPU library is needed: the GPU paths are checked through their pure parts and fakes of the
runtimes' documented objects (ONNX Runtime's provider list, OpenVINO's compiled model, TensorRT's
engine inspector). Those paths have not yet run on a GPU."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.backends import onnxruntime_backend as ob
from bench.backends import openvino_backend as vb
from bench.backends import tensorrt_backend as tb
from bench.backends.base import PARITY_TOLERANCE, lowest_precision
from bench.config.compose import compose, to_config
from bench.config.schema import OrtBackendConfig
from bench.config.validate import validate
from bench.results.diagnostics import Code, diagnose
from bench.errors import ConfigError
from bench.worker.process import parity_check

# ---------------------------------------------------------------- fp32 refused on onnxruntime-tensorrt


@pytest.mark.parametrize("overrides", [
    ["backend=onnxruntime-tensorrt", "backend.precision=fp32"],
    # the provider field says TensorRT, whatever the backend's name
    ["backend=onnxruntime", "backend.provider=tensorrt", "backend.device=cuda", "backend.precision=fp32"],
])
def test_fp32_on_the_tensorrt_provider_is_refused_with_key_value_and_fix(overrides, tmp_path):
    with pytest.raises(ConfigError) as info:
        validate(to_config(compose([*overrides, f"results.dir={tmp_path}"])))
    error = info.value
    assert (error.key, error.value) == ("backend.precision", "fp32")
    assert "backend.precision=tf32" in error.fix
    assert "backend=onnxruntime-cuda" in error.fix and "backend=tensorrt" in error.fix
    text = str(error)
    assert text.startswith("backend.precision='fp32' is not supported by this backend")
    assert "always runs TF32" in text and "no option to turn TF32 off" in text and "\n" not in text


@pytest.mark.parametrize("precision", [None, "tf32", "fp16"])
def test_tf32_is_the_tensorrt_providers_default_and_fp16_stays(precision, tmp_path):
    extra = [f"backend.precision={precision}"] if precision else []
    cfg = validate(to_config(compose(["backend=onnxruntime-tensorrt", *extra, f"results.dir={tmp_path}"])))
    assert cfg.backend.precision == (precision or "tf32")


def test_the_cuda_provider_still_runs_ieee_fp32(tmp_path):
    cfg = validate(to_config(compose(["backend=onnxruntime-cuda", f"results.dir={tmp_path}"])))
    assert cfg.backend.precision == "fp32"


def test_the_backend_agrees_with_the_config_on_the_tensorrt_providers_precisions():
    assert ob.PROVIDER_PRECISIONS["tensorrt"] == ("tf32", "fp16")

    def settings(precision: str) -> OrtBackendConfig:
        return OrtBackendConfig(name="onnxruntime-tensorrt", impl="bench.backends.onnxruntime_backend:OrtBackend",
                                device="cuda", provider="tensorrt", precision=precision)

    refused = ob.OrtBackend.available(settings("fp32"))
    assert not refused.ok and "does not run fp32" in refused.reason and "tf32" in refused.install
    accepted = ob.OrtBackend.available(settings("tf32"))
    # Here (no onnxruntime-gpu) it is unavailable for want of the provider, never for the precision.
    assert "does not run" not in accepted.reason


def test_tf32_results_are_held_to_the_tf32_tolerance():
    """7.6e-4 from the reference is what TF32 gave on an H200: invalid as fp32, valid as tf32."""
    reference = [np.linspace(-1.0, 1.0, 101, dtype=np.float32)]
    outputs = [reference[0] + np.float32(7.6e-4)]
    as_tf32 = parity_check(outputs, reference, "tf32")
    assert as_tf32["ok"] and as_tf32["tolerance"] == PARITY_TOLERANCE["tf32"] == 5e-3
    assert not parity_check(outputs, reference, "fp32")["ok"]


# ---------------------------------------------------------------- ONNX Runtime: the provider list


def test_the_cuda_provider_gets_use_tf32_from_the_precision():
    assert ob.provider_list("cuda", "fp32", 1, None) == [
        ("CUDAExecutionProvider", {"device_id": "1", "use_tf32": "0"}), "CPUExecutionProvider"]
    assert ob.provider_list("cuda", "tf32", 0, None)[0] == ("CUDAExecutionProvider",
                                                            {"device_id": "0", "use_tf32": "1"})
    assert ob.provider_list("cpu", "fp32", 0, None) == ["CPUExecutionProvider"]


@pytest.mark.parametrize("precision, use_tf32", [("tf32", "1"), ("fp16", "0")])
def test_the_tensorrt_providers_cuda_fallback_gets_use_tf32_too(precision, use_tf32):
    trt_options = {"device_id": "2", "trt_fp16_enable": str(precision == "fp16")}
    providers = ob.provider_list("tensorrt", precision, 2, trt_options)
    assert providers == [("TensorrtExecutionProvider", trt_options),
                         ("CUDAExecutionProvider", {"device_id": "2", "use_tf32": use_tf32}),
                         "CPUExecutionProvider"]
    assert providers[0][1] is not trt_options  # a copy: the session never shares the caller's dict


# ---------------------------------------------------------------- ran_precision, runtime by runtime


def test_the_least_precise_part_is_what_ran():
    assert lowest_precision(["fp32", "fp16", "fp32"]) == "fp16"
    assert lowest_precision(["fp32", "tf32"]) == "tf32"
    assert lowest_precision(["int32", "bool"]) is None  # index tensors say nothing of arithmetic
    assert lowest_precision([]) is None


def test_onnxruntime_ran_precision_from_the_nodes_each_provider_ran():
    cpu = ob.ran_precision({"CPUExecutionProvider": 7}, ["CPUExecutionProvider"], {}, "fp32")
    assert cpu["ran_precision"] == "fp32" and cpu["precision_by_provider"] == {"CPUExecutionProvider": "fp32"}
    assert "graph assignment" in cpu["ran_precision_basis"]
    cuda_options = {"CUDAExecutionProvider": {"use_tf32": "0"}}
    ieee = ob.ran_precision({"CUDAExecutionProvider": 5, "CPUExecutionProvider": 1},
                            ["CUDAExecutionProvider", "CPUExecutionProvider"], cuda_options, "fp32")
    assert ieee["ran_precision"] == "fp32"
    tf32 = ob.ran_precision({"CUDAExecutionProvider": 5}, ["CUDAExecutionProvider"],
                            {"CUDAExecutionProvider": {"use_tf32": "1"}}, "fp32")
    assert tf32["ran_precision"] == "tf32"
    # The read-back options are what counts: ONNX Runtime's default for use_tf32 is on.
    assert ob.ran_precision({"CUDAExecutionProvider": 5}, ["CUDAExecutionProvider"], {}, "fp32")[
        "ran_precision"] == "tf32"
    # A provider listed but given no node (the CPU behind the CUDA provider) does not count.
    only_cuda = ob.ran_precision({"CUDAExecutionProvider": 5, "CPUExecutionProvider": 0},
                                 ["CUDAExecutionProvider", "CPUExecutionProvider"], cuda_options, "fp32")
    assert only_cuda["precision_by_provider"] == {"CUDAExecutionProvider": "fp32"}
    assert ob.ran_precision({"CUDAExecutionProvider": 5}, ["CUDAExecutionProvider"], cuda_options,
                            "fp16")["ran_precision"] == "fp16"


def test_onnxruntime_tensorrt_provider_runs_tf32_or_fp16_and_says_it_cannot_check_further():
    providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    options = {"TensorrtExecutionProvider": {"trt_fp16_enable": "False"},
               "CUDAExecutionProvider": {"use_tf32": "1"}}
    tf32 = ob.ran_precision({"TensorrtExecutionProvider": 40, "CUDAExecutionProvider": 2}, providers, options,
                            "fp32")
    assert tf32["ran_precision"] == "tf32" and "not verifiable" in tf32["ran_precision_note"]
    options["TensorrtExecutionProvider"]["trt_fp16_enable"] = "True"
    assert ob.ran_precision({"TensorrtExecutionProvider": 40}, providers, options, "fp32")["ran_precision"] == "fp16"


def test_onnxruntime_without_node_placement_counts_the_leading_provider_and_says_so():
    out = ob.ran_precision({}, ["CUDAExecutionProvider", "CPUExecutionProvider"],
                           {"CUDAExecutionProvider": {"use_tf32": "0"}}, "fp32")
    assert out["precision_by_provider"] == {"CUDAExecutionProvider": "fp32"}
    assert "does not report which provider ran each node" in out["ran_precision_basis"]


@pytest.mark.parametrize("read_back, expected", [
    ("f32", {"ran_precision": "fp32"}),
    ("f16", {"ran_precision": "fp16"}),
    ("bf16", {"ran_precision": "bf16"}),
    ({"GPU.0": "f16", "CPU": "f32"}, {"ran_precision": "fp16",
                                      "ran_precision_by_device": {"GPU.0": "fp16", "CPU": "fp32"}}),
    ("dynamic", {}),  # not one of ours: nothing claimed
    (None, {}),
])
def test_openvino_maps_its_inference_precision(read_back, expected):
    assert vb.ran_precision(read_back) == expected


class FakeCompiledModel:
    """OpenVINO's CompiledModel as far as the latency session reads it back."""

    def __init__(self, precision: str) -> None:
        self.properties = {"INFERENCE_PRECISION_HINT": precision, "EXECUTION_DEVICES": ["GPU.0"]}

    def create_infer_request(self) -> object:
        return object()

    def get_property(self, key: str) -> object:
        return self.properties[key]


def backend_record(precision: str, effective: dict) -> dict:
    return {"name": "x", "device": "x", "precision": precision, "effective": effective}


def precision_codes(backend: dict) -> list:
    return [w.code for w in diagnose({}, {}, {}, None, backend=backend)]


def test_openvino_reporting_f16_under_fp32_gives_the_mismatch_warning():
    """AUTO moved to a GPU that runs f16 after prepare checked the CPU: the session reads the
    precision back again when the record is made."""
    session = vb.OpenVinoSession(FakeCompiledModel("f16"), {"inference_precision": "f32"})
    effective = session.effective_settings()
    assert effective["ran_precision"] == "fp16"
    (warning,) = diagnose({}, {}, {}, None, backend=backend_record("fp32", effective))
    assert warning.code is Code.PRECISION_MISMATCH
    assert "asked for fp32" in warning.message and "fp16" in warning.message and warning.hint
    agreeing = vb.OpenVinoSession(FakeCompiledModel("f32"), {}).effective_settings()
    assert agreeing["ran_precision"] == "fp32"
    assert precision_codes(backend_record("fp32", agreeing)) == []


# ---------------------------------------------------------------- TensorRT: the engine inspector


def inspector_json(*types: str) -> str:
    """What get_engine_information(JSON) gives for an engine built with DETAILED verbosity."""
    return json.dumps({"Layers": [
        {"Name": f"layer{i}", "LayerType": "CaskConvolution",
         "Inputs": [{"Name": f"in{i}", "Format/Datatype": "Row major linear FP32"}],
         "Outputs": [{"Name": f"out{i}", "Location": "Device", "Format/Datatype": t}]}
        for i, t in enumerate(types)], "Bindings": ["input", "output"]})


def test_tensorrt_layer_precisions_read_both_spellings_of_the_inspector():
    counts = tb.layer_precisions(inspector_json(
        "Row major linear FP32", "Channel major FP16 format where channel % 8 == 0", "Half", "Float",
        "Row major linear BFloat16", "Int8", "Row major linear Int32"))
    assert counts == {"fp32": 2, "fp16": 2, "bf16": 1, "int8": 1, "int32": 1}
    names_only = tb.layer_precisions(json.dumps({"Layers": ["conv1", "relu1"]}))
    assert names_only == {"unknown": 2}
    assert tb.ran_precision(names_only, tf32_allowed=False) == {}


def test_tensorrt_ran_precision_is_the_least_precise_layer_and_tf32_when_its_flag_is_set():
    assert tb.ran_precision({"fp32": 30}, tf32_allowed=False) == {"ran_precision": "fp32"}
    tf32 = tb.ran_precision({"fp32": 30}, tf32_allowed=True)
    assert tf32["ran_precision"] == "tf32" and "not reported" in tf32["ran_precision_note"]
    assert tb.ran_precision({"fp32": 3, "fp16": 27, "int32": 1}, tf32_allowed=True) == {"ran_precision": "fp16"}


class FakeInspector:
    def __init__(self, text: str) -> None:
        self.text = text
        self.execution_context = None
        self.formats: list = []

    def get_engine_information(self, fmt: object) -> str:
        self.formats.append(fmt)
        # Without the context the inspector leaves dynamic shapes' formats out; the fake shows it.
        return self.text if self.execution_context is not None else json.dumps({"Layers": ["a"]})


class FakeEngine:
    def __init__(self, inspector: FakeInspector) -> None:
        self.inspector = inspector

    def create_engine_inspector(self) -> FakeInspector:
        return self.inspector

    def get_tensor_dtype(self, name: str) -> str:
        return "DataType.FLOAT"

    def get_tensor_profile_shape(self, name: str, profile: int) -> list:
        return [(1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8)]


class FakeContext:
    def get_tensor_shape(self, name: str) -> tuple:
        return (2, 3, 8, 8)


class FakeLogger:
    messages: list = []


def tensorrt_session(precision: str, *types: str) -> tuple:
    """A TensorRTSession on fakes, as load_inputs leaves it (no GPU: __init__ needs a CUDA stream)."""
    fake_trt = type("trt", (), {"LayerInformationFormat": type("F", (), {"JSON": "JSON"})})
    inspector = FakeInspector(inspector_json(*types))
    session = tb.TensorRTSession.__new__(tb.TensorRTSession)
    session._trt, session.engine, session.logger = fake_trt, FakeEngine(inspector), FakeLogger()
    session.context = FakeContext()
    session.input_names, session.output_names, session.graph = ["input"], ["output"], None
    session.bound = tb._Bound((), ())
    session.info = {"precision": precision, "builder_flag": tb.PRECISION_FLAGS.get(precision)}
    return session, inspector


def test_tensorrt_fp16_layers_under_fp32_give_the_mismatch_warning():
    session, inspector = tensorrt_session("fp32", "Row major linear FP32", "Row major linear FP16", "Half")
    effective = session.effective_settings()
    assert inspector.execution_context is session.context and inspector.formats == ["JSON"]
    assert effective["layer_precisions"] == {"fp32": 1, "fp16": 2} and effective["ran_precision"] == "fp16"
    (warning,) = diagnose({}, {}, {}, None, backend=backend_record("fp32", effective))
    assert warning.code is Code.PRECISION_MISMATCH and "fp32: 1, fp16: 2" in warning.message


def test_tensorrt_fp16_with_some_fp32_layers_is_no_mismatch_but_fp16_with_none_is():
    mixed, _ = tensorrt_session("fp16", "Row major linear FP32", "Half", "Half")
    assert mixed.effective_settings()["ran_precision"] == "fp16"
    assert precision_codes(backend_record("fp16", mixed.effective_settings())) == []
    none, _ = tensorrt_session("fp16", "Float", "Float")
    effective = none.effective_settings()
    assert effective["ran_precision"] == "tf32"  # fp32 layers with TF32 on (not cleared under fp16)
    (warning,) = diagnose({}, {}, {}, None, backend=backend_record("fp16", effective))
    assert warning.code is Code.PRECISION_MISMATCH and "nothing ran in it" in warning.message


def test_tensorrt_fp32_engine_agrees_and_a_failing_inspector_claims_nothing():
    session, _ = tensorrt_session("fp32", "Float", "Row major linear FP32")
    effective = session.effective_settings()
    assert effective["ran_precision"] == "fp32" and precision_codes(backend_record("fp32", effective)) == []
    broken, inspector = tensorrt_session("fp32")
    inspector.text = "not json"
    effective = broken.effective_settings()
    assert "ran_precision" not in effective and "error" in effective["layer_precisions"]
    assert precision_codes(backend_record("fp32", effective)) == []
