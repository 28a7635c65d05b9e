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
