"""precision=fp32 means IEEE fp32 on NVIDIA GPUs, tf32 asks for TF32 products: the switch is set and
read back through PyTorch's API (which a CPU build carries too), and each backend maps it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from bench.backends.base import PARITY_TOLERANCE  # noqa: E402
from bench.backends.torch_eager import TorchBackend, TorchSession, ran_precision, set_fp32_math  # noqa: E402


def test_set_fp32_math_sets_and_reads_back_both_products():
    try:
        on = set_fp32_math(torch, True)
        assert on["matmul"] == "tf32" and on["cudnn_conv"] == "tf32"
        off = set_fp32_math(torch, False)
        assert off["matmul"] == "ieee" and off["cudnn_conv"] == "ieee"
        assert off["float32_matmul_precision"] == "highest"
    finally:
        set_fp32_math(torch, False)


def test_tf32_has_its_own_parity_tolerance_between_fp32_and_fp16():
    assert PARITY_TOLERANCE["fp32"] < PARITY_TOLERANCE["tf32"] < PARITY_TOLERANCE["fp16"]


def test_tf32_is_refused_on_the_cpu_with_the_fix():
    class Settings:
        device, precision = "cpu", "tf32"

    verdict = TorchBackend.available(Settings())
    assert not verdict.ok and "backend.precision=fp32" in verdict.install


def test_tensorrt_and_onnxruntime_map_tf32():
    from bench.backends.onnxruntime_backend import PROVIDER_PRECISIONS
    from bench.backends.tensorrt_backend import PRECISION_FLAGS, TensorRTBackend

    assert PRECISION_FLAGS["tf32"] == "TF32" and "fp32" not in PRECISION_FLAGS
    assert "tf32" in TensorRTBackend.precisions
    assert "tf32" in PROVIDER_PRECISIONS["cuda"] and "tf32" not in PROVIDER_PRECISIONS["cpu"]
    # TensorRT under ONNX Runtime always runs TF32: its fp32 is refused (bench.config.validate.validate).
    assert PROVIDER_PRECISIONS["tensorrt"] == ("tf32", "fp16")


def test_legacy_flag_readers_still_work_after_setting():
    """PyTorch's own code reads the legacy flags (torch.export does); they must stay readable."""
    try:
        for tf32 in (True, False):
            set_fp32_math(torch, tf32)
            assert torch.backends.cudnn.allow_tf32 is tf32
            assert torch.backends.cuda.matmul.allow_tf32 is tf32
    finally:
        set_fp32_math(torch, False)


def test_ran_precision_is_the_models_dtype_and_tf32_as_read_back():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    assert ran_precision(model, torch.float32, None)["ran_precision"] == "fp32"
    ieee = {"matmul": "ieee", "cudnn_conv": "ieee"}
    assert ran_precision(model, torch.float32, ieee)["ran_precision"] == "fp32"
    # Either product on TF32 makes the results TF32's.
    assert ran_precision(model, torch.float32, {"matmul": "ieee", "cudnn_conv": "tf32"})["ran_precision"] == "tf32"
    half = ran_precision(model.to(torch.float16), torch.float16, ieee)
    assert half == {"ran_precision": "fp16", "model_dtypes": ["float16"]}
    assert ran_precision(torch.nn.ReLU(), torch.bfloat16, None)["ran_precision"] == "bf16"  # no weights


def test_the_cpu_session_records_what_it_ran():
    model = torch.nn.Linear(4, 2).eval()
    session = TorchSession(model, torch.device("cpu"), torch.float32, False)
    assert session.effective_settings()["ran_precision"] == "fp32"
