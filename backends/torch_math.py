"""PyTorch's fp32 math mode on CUDA (IEEE or TF32), set and read back: shared by the eager and
compiled backends' inference sessions and their training sessions (backends/torch_training.py).
"""

from __future__ import annotations

from typing import Any

__all__ = ["set_fp32_math"]


def set_fp32_math(torch: Any, tf32: bool) -> dict[str, Any]:
    """Whether fp32 matrix products and cuDNN convolutions may use TF32 tensor cores (Ampere and newer
    NVIDIA GPUs), set for this process and read back. PyTorch's own default lets cuDNN convolutions
    use TF32, so an 'fp32' run left at the default is partly TF32: precision=fp32 turns it off,
    precision=tf32 turns it on for both. Set through torch.set_float32_matmul_precision and cuDNN's
    allow_tf32 flag, which PyTorch's own code reads: the newer per-operator ``fp32_precision``
    settings, once set, make those reads raise (seen with torch.export in PyTorch 2.13)."""
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = tf32
    return {"matmul": "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee",
            "cudnn_conv": "tf32" if torch.backends.cudnn.allow_tf32 else "ieee",
            "float32_matmul_precision": torch.get_float32_matmul_precision()}
