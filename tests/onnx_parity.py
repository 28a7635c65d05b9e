"""The check every model's test makes: exported with a dynamic batch axis on every input and output,
the ONNX file runs in ONNX Runtime at batch sizes other than the exported one and matches PyTorch.
A model with several inputs (a state among them) gives them as a tuple; its outputs are compared
in the order the model returns them."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import pytest
import torch

from bench.backends.base import PARITY_TOLERANCE
from bench.backends.onnx_export import export_onnx

Inputs = Union[torch.Tensor, tuple[torch.Tensor, ...]]


def _tuple(inputs: Inputs) -> tuple[torch.Tensor, ...]:
    return inputs if isinstance(inputs, tuple) else (inputs,)


def assert_onnx_matches(model: torch.nn.Module, make_input: Callable[[int], Inputs], path: Path,
                        export_batch: int = 2, batches: tuple[int, ...] = (1, 3),
                        output_names: Optional[Sequence[str]] = ("anomaly_map", "score")) -> None:
    """Export at ``export_batch``, run at each of ``batches``; every output within the harness's
    own fp32 parity tolerance: max |onnx - torch| / max |torch| <= 1e-4 (bench.backends.base).
    ``make_input(n)`` returns a batch of n: one tensor, or a tuple of tensors for several inputs.
    ``output_names`` names the outputs (None: the exporter's names)."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from bench.backends.torch_eager import flatten_outputs

    export_onnx(model, _tuple(make_input(export_batch)), path, output_names=output_names)
    graph = onnx.load(str(path), load_external_data=False).graph
    for value in [*graph.input, *graph.output]:  # export_onnx checks it too; said here as the contract
        assert value.type.tensor_type.shape.dim[0].dim_param, f"{value.name}: the batch axis must be symbolic"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    for n in batches:
        x = _tuple(make_input(n))
        with torch.no_grad():
            expected = flatten_outputs(model(*x))
        got = session.run(None, {name: t.numpy() for name, t in zip(names, x)})
        assert len(got) == len(expected)
        labels = list(output_names or [o.name for o in session.get_outputs()])
        for name, ref, out in zip(labels, expected, got):
            assert out.shape == tuple(ref.shape), (name, n)
            error = float((torch.from_numpy(out).double() - ref.double()).abs().max())
            scale = float(ref.double().abs().max())
            assert error <= PARITY_TOLERANCE["fp32"] * scale, f"{name} at batch {n}: {error:.3g} vs scale {scale:.3g}"
