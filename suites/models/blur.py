"""The fixed Gaussian blur that anomalib applies to the anomaly maps of several models
(``GaussianBlur2d``, sigma 4): one depthwise convolution with reflect padding, so that it exports
to ONNX as a single Conv and costs no Python loop. Shared by every model that blurs its map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["gaussian_kernel2d", "GaussianBlur"]


def gaussian_kernel2d(sigma: float) -> Tensor:
    """Normalised 2-D Gaussian kernel of side ``2 * int(4 * sigma + 0.5) + 1`` (33 for sigma 4),
    the size anomalib derives from sigma: the outer product of a sampled 1-D Gaussian with itself."""
    size = 2 * int(4.0 * sigma + 0.5) + 1
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).to(torch.float32)


class GaussianBlur(nn.Module):
    """Blur of a ``[B, C, H, W]`` map; reflect padding keeps the size (``H`` and ``W`` must exceed
    half the kernel, 16 pixels for sigma 4). The kernel is part of the method, not fitted state, so
    it stays out of the state dict."""

    def __init__(self, sigma: float = 4.0, channels: int = 1) -> None:
        super().__init__()
        kernel = gaussian_kernel2d(sigma)
        self.channels = channels
        self.pad = kernel.shape[-1] // 2
        self.register_buffer("kernel", kernel.expand(channels, 1, *kernel.shape).contiguous(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (self.pad, self.pad, self.pad, self.pad), mode="reflect")
        return F.conv2d(x, self.kernel, groups=self.channels)
