"""The check every model's test makes: exported with a dynamic batch axis, the ONNX file runs in
ONNX Runtime at batch sizes other than the exported one and matches PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import pytest
import torch

from bench.backends.base import PARITY_TOLERANCE
from bench.backends.onnx_export import export_onnx


def assert_onnx_matches(model: torch.nn.Module, make_input: Callable[[int], torch.Tensor], path: Path,
                        export_batch: int = 2, batches: tuple[int, ...] = (1, 3),
                        output_names: Sequence[str] = ("anomaly_map", "score")) -> None:
    """Export at ``export_batch``, run at each of ``batches``; every output within the harness's
    own fp32 parity tolerance: max |onnx - torch| / max |torch| <= 1e-4 (bench.backends.base).
    ``output_names`` names the model's outputs (a model returning one tensor has one)."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    export_onnx(model, (make_input(export_batch),), path, output_names=list(output_names))
    graph = onnx.load(str(path), load_external_data=False).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param, "batch axis must be symbolic"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in batches:
        x = make_input(n)
        with torch.no_grad():
            expected = model(x)
        expected = (expected,) if isinstance(expected, torch.Tensor) else tuple(expected)
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        assert len(got) == len(expected)
        for name, ref, out in zip(output_names, expected, got, strict=True):
            assert out.shape == tuple(ref.shape), (name, n)
            error = float((torch.from_numpy(out).double() - ref.double()).abs().max())
            scale = float(ref.double().abs().max())
            assert error <= PARITY_TOLERANCE["fp32"] * scale, f"{name} at batch {n}: {error:.3g} vs scale {scale:.3g}"
