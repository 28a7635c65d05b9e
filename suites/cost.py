"""Computed cost of a workload's model: parameter count and FLOPs of one forward pass.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``, which counts convolutions
and matrix multiplications (and attention kernels) at two FLOPs per multiply-accumulate. It does
not count elementwise operations, normalisations, pooling, reductions or interpolation, so for a
model like EfficientAD (convolutions, then elementwise map arithmetic and a bilinear upsampling)
the figure is the convolutions' share, which is almost all of the arithmetic.

Nothing here imports torch at module level: the catalog can import this module without an ML
runtime. Counting needs only shapes, so a model and inputs on the ``meta`` device give the same
figure as on the CPU without computing anything.
"""

from __future__ import annotations

from typing import Any

__all__ = ["model_cost"]


def model_cost(model: Any, example_inputs: tuple) -> dict[str, int]:
    """``{"params": ..., "flops": ...}`` of ``model`` on ``example_inputs``.

    ``params`` is the number of elements of all parameters (buffers excluded); ``flops`` the
    FLOPs ``FlopCounterMode`` counts for one ``model(*example_inputs)`` under ``torch.no_grad()``
    (FLOPs of the whole batch, so they scale with the batch size).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in model.parameters())
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*example_inputs)
    return {"params": int(params), "flops": int(counter.get_total_flops())}


def weight_bytes(model: Any) -> int:
    """Bytes of the model's parameters and buffers at their own dtypes (each tensor once, tied weights
    once): what an ONNX export stores as initializers. Works on the ``meta`` device (sizes only)."""
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return int(sum(t.numel() * t.element_size() for t in tensors.values()))


def _input_specs(workload: Any, seed: int) -> list[tuple[tuple[int, ...], Any]]:
    """(shape of one sample without the batch, dtype) of each of the workload's inputs. A workload
    with its own input maker (several inputs, non-image inputs, a state) is asked for one sample on
    the CPU, which costs a few small tensors; the others are one float32 tensor of input_shape."""
    import torch

    if not workload.inputs:
        return [(tuple(workload.input_shape), torch.float32)]
    return [(tuple(t.shape[1:]), t.dtype) for t in workload.make_inputs(1, seed)]


def workload_cost(workload: Any, seed: int = 0) -> dict[str, Any]:
    """Parameters, FLOPs, weight bytes and input shapes of one model run of a workload (batch 1),
    counted on the ``meta`` device: the model is built without memory and nothing is computed, so
    even a model with gigabytes of buffers costs a fraction of a second. Falls back to a real build
    on the CPU for a builder that cannot run on ``meta``.

    ``onnx_bytes`` estimates the size of the ONNX export (model file plus external data): the
    weights' bytes, which an export stores as initializers, plus a graph allowance (GRAPH_BYTES). It is
    not a real export: exporting the largest models takes minutes and gigabytes (PaDiM WRN-50-2),
    which `bench list` cannot spend; tests/unit/suites/test_catalog.py checks the estimate against
    real exports."""
    import torch

    specs = _input_specs(workload, seed)
    try:
        with torch.device("meta"):
            torch.manual_seed(seed)
            from bench.suites.base import resolve

            model = resolve(workload.builder)(seed=seed, **dict(workload.builder_args)).eval()
            inputs = tuple(torch.empty((1, *shape), dtype=dtype) for shape, dtype in specs)
        cost = model_cost(model, inputs)
        counted_on = "meta"
    except Exception:  # noqa: BLE001 - any op without a meta kernel: count on the real model
        model = workload.build(seed)
        cost = model_cost(model, workload.make_inputs(1, seed))
        counted_on = "cpu"
    return {"params": cost["params"], "flops_per_sample": cost["flops"], "counted_on": counted_on,
            "weight_bytes": weight_bytes(model), "onnx_bytes": weight_bytes(model) + GRAPH_BYTES,
            "input_shapes": [list(shape) for shape, _ in specs],
            "input_dtypes": [str(dtype).replace("torch.", "") for _, dtype in specs]}


# What an ONNX file holds besides its initializers (the graph's nodes, names, shapes): 44-620 kB for
# the anomaly models (measured 2026-12-03: the estimate is within 2% of their real exports).
GRAPH_BYTES = 256 * 1024

__all__ += ["workload_cost", "weight_bytes", "GRAPH_BYTES"]
