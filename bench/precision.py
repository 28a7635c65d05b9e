"""The vocabulary of numeric precision shared by the layers: the order of the precisions (most precise
first), the least precise of those a model ran in, and the parity tolerance each is held to against
the PyTorch fp32 reference. The backends label what they ran with it; the diagnostics compare labels
with it; it imports nothing.
"""

from __future__ import annotations

from typing import Iterable, Optional

__all__ = ["PARITY_TOLERANCE", "PRECISION_ORDER", "lowest_precision"]

# Largest relative error (max |out - ref| / max |ref|, per output) accepted against the PyTorch fp32
# reference; beyond it the result is invalid and never ranked. tf32 is fp32 storage with the matrix and
# convolution products on TF32 tensor cores (10-bit mantissa, as fp16's): on an H200, cuDNN's TF32
# convolutions put EfficientAD-S 7.6e-4 away from the CPU reference, where true fp32 stays near 1e-5.
PARITY_TOLERANCE = {"fp32": 1e-4, "tf32": 5e-3, "fp16": 1e-2, "bf16": 1e-2, "int8": 5e-2}

# Most precise first, by the bits of significand a product keeps (fp32 24, tf32 and fp16 11, bf16 8).
PRECISION_ORDER = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8")


def lowest_precision(precisions: Iterable[str]) -> Optional[str]:
    """The least precise of the precisions some part of a model ran in (names outside PRECISION_ORDER,
    such as int32 index tensors, say nothing of arithmetic precision and are ignored); None for none.
    A session's ``ran_precision`` is this: one fp16 layer makes an "fp32" label untrue."""
    known = [p for p in precisions if p in PRECISION_ORDER]
    return max(known, key=PRECISION_ORDER.index) if known else None
