"""Export a torch model to ONNX with a dynamic batch axis: the file every ONNX-based backend runs.

The dynamo exporter (``torch.onnx.export(..., dynamo=True)``) with the batch as a symbolic
dimension, so that one file serves every batch size of a sweep; weights go to an external data file
beside the model when ``external_data`` is on, which models above protobuf's 2 GB limit need (PaDiM
with a Wide ResNet-50-2 holds about 5 GB of inverse covariance). onnx and onnxscript are imported
only here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

__all__ = ["export_onnx", "check_batch_axes", "MAX_BATCH"]

# The largest batch the exported graph promises to accept; a sweep beyond it needs a new export.
MAX_BATCH = 4096


def export_onnx(
    model: Any,
    example_inputs: Sequence[Any],
    path: str | Path,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    external_data: bool = True,
) -> Path:
    """Write ``model`` to ``path`` with axis 0 of every input dynamic; returns the path. Raises
    ValueError when an input or output of the export has no symbolic batch axis (check_batch_axes).

    The example batch should be at least 2: exporters specialise a dimension whose example size is 1.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    names = list(input_names or [f"input{i}" if len(example_inputs) > 1 else "input"
                                 for i in range(len(example_inputs))])
    with warnings.catch_warnings():
        # The exporter warns about its own internals (deprecated pytree APIs); nothing to act on.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, tuple(example_inputs), str(path), dynamo=True, external_data=external_data,
            input_names=names, output_names=list(output_names) if output_names else None,
            dynamic_shapes=tuple({0: batch} for _ in example_inputs),
        )
    check_batch_axes(path)
    return path


def check_batch_axes(path: str | Path) -> None:
    """Every input and output of the file has a symbolic first axis (the batch). A workload's outputs
    keep the batch first, a state output too (one state per sample, as the state input): an output
    whose first axis the exporter fixed would serve only the exported batch, and fail or mislead at
    the others. Raises ValueError naming the tensor and what to change."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    for kind, values in (("input", graph.input), ("output", graph.output)):
        for value in values:
            if value.name in initializers:
                continue
            dims = value.type.tensor_type.shape.dim
            if not dims or not dims[0].dim_param:
                first = "no axes" if not dims else f"a fixed first axis of {dims[0].dim_value}"
                raise ValueError(f"the ONNX export's {kind} {value.name!r} has {first}, not the batch: a workload's "
                                 "model must take and return the batch as the first axis of every tensor (a state "
                                 "too, one per sample)")
