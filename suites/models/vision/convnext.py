"""ConvNeXt-T (Liu et al.: "A ConvNet for the 2020s", CVPR 2022, arXiv:2201.03545).

Layer shapes from the paper (Section 2) and facebookresearch/ConvNeXt (MIT) and
torchvision's ``convnext_tiny`` (BSD-3-Clause), read for their facts, no code copied: a 4x4/4 "patchify"
stem to 96 channels with a LayerNorm; four stages of 3, 3, 9, 3 blocks at 96, 192, 384, 768 channels,
separated by a LayerNorm and a 2x2/2 convolution; a block is a 7x7 depthwise convolution, LayerNorm
(over the channels), a 4x linear expansion, GELU, the linear projection back, a learned per-channel
layer scale (initialised to 1e-6 in the reference; here 1e-6 too), and the residual (stochastic
depth is the identity at inference); global average pooling, LayerNorm, the 1000-way head. LayerNorm
eps 1e-6 everywhere.

Counts: 28,589,128 parameters (the reference's; the paper's 28 M / 28.6 M) and 4.5 GFLOPs at
224x224, which the paper counts with fvcore as multiply-adds.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.suites.models.vision.common import NUM_CLASSES, separate_top_classes

__all__ = ["ConvNeXt", "build_convnext_tiny", "TINY_DEPTHS", "TINY_DIMS"]

TINY_DEPTHS = (3, 3, 9, 3)
TINY_DIMS = (96, 192, 384, 768)


class ChannelsFirstLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an (n, c, h, w) tensor (the stem's and the down-samplers')."""

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, 4 * dim)
        self.pw2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # channels last for the norm and the linear layers
        y = self.pw2(F.gelu(self.pw1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(self, depths: Sequence[int] = TINY_DEPTHS, dims: Sequence[int] = TINY_DIMS,
                 num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        stages: list[nn.Module] = []
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            if i == 0:
                entry = nn.Sequential(nn.Conv2d(3, dim, 4, 4), ChannelsFirstLayerNorm(dim, eps=1e-6))
            else:
                entry = nn.Sequential(ChannelsFirstLayerNorm(dims[i - 1], eps=1e-6), nn.Conv2d(dims[i - 1], dim, 2, 2))
            stages.append(nn.Sequential(entry, *(Block(dim) for _ in range(depth))))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.norm(self.stages(x).mean(dim=(2, 3))))


def build_convnext_tiny(seed: int = 0, depths: Sequence[int] = TINY_DEPTHS,
                        dims: Sequence[int] = TINY_DIMS) -> ConvNeXt:
    """ConvNeXt-T; ``depths`` and ``dims`` scale it down for tests."""
    torch.manual_seed(seed)
    model = ConvNeXt(depths, dims)
    separate_top_classes(model.head, seed)
    return model.eval()
