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


def workload_cost(workload: Any, seed: int = 0) -> dict[str, Any]:
    """Parameters and FLOPs of one model run of a workload (batch 1), counted on the ``meta``
    device: the model is built without memory and nothing is computed, so even a model with
    gigabytes of buffers costs a fraction of a second. Falls back to a real build on the CPU for a
    builder that cannot run on ``meta``."""
    import torch

    try:
        with torch.device("meta"):
            torch.manual_seed(seed)
            from bench.suites.base import resolve

            model = resolve(workload.builder)(seed=seed, **dict(workload.builder_args)).eval()
            inputs = tuple(torch.empty((1, *workload.input_shape)) for _ in range(1))
        cost = model_cost(model, inputs)
        counted_on = "meta"
    except Exception:  # noqa: BLE001 - any op without a meta kernel: count on the real model
        model = workload.build(seed)
        cost = model_cost(model, workload.make_inputs(1, seed))
        counted_on = "cpu"
    return {"params": cost["params"], "flops_per_sample": cost["flops"], "counted_on": counted_on}


__all__ += ["workload_cost"]
