"""EfficientNet-B0 (Tan & Le: "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019, arXiv:1905.11946).

Layer shapes from the paper's Table 1 (and the reference ``efficientnet_builder.py`` in
tensorflow/tpu, Apache-2.0, and torchvision's ``efficientnet_b0``, BSD-3-Clause, read for their
facts; no code copied): a 3x3/2 stem of 32 channels; seven stages of MBConv blocks (expansion 1 then
6; kernels 3, 3, 5, 3, 5, 5, 3; strides 1, 2, 2, 2, 1, 2, 1; 16, 24, 40, 80, 112, 192, 320 channels;
1, 2, 2, 3, 3, 4, 1 blocks); a 1x1 convolution to 1280; global average pooling; the 1000-way
classifier. Activation SiLU (swish) throughout. An MBConv block: 1x1 expansion (absent at
expansion 1), depthwise kxk, squeeze-and-excitation to a quarter of the block's *input* channels
(SiLU, then sigmoid), 1x1 projection without activation, residual when stride 1 and the channels
match (stochastic depth and dropout are the identity at inference).

Counts: the paper gives 5.3 M parameters and 0.39 B "FLOPs", which are multiply-adds (0.386 G here;
twice them would be 0.77 G); torchvision counts 5,288,548 parameters.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from bench.suites.models.vision.common import NUM_CLASSES, separate_top_classes

__all__ = ["EfficientNet", "build_efficientnet_b0", "B0_STAGES"]

# (expansion, kernel, stride, output channels, blocks): Table 1 of the paper.
B0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


def conv_bn_silu(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(out_ch, eps=1e-3)]
    if act:
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, expansion: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = in_ch * expansion
        self.expand = conv_bn_silu(in_ch, mid, 1) if expansion != 1 else nn.Identity()
        self.depthwise = conv_bn_silu(mid, mid, kernel, stride, groups=mid)
        squeezed = max(1, in_ch // 4)  # a quarter of the block's input channels, not of the expansion
        self.se_reduce = nn.Conv2d(mid, squeezed, 1)
        self.se_expand = nn.Conv2d(squeezed, mid, 1)
        self.project = conv_bn_silu(mid, out_ch, 1, act=False)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        out = self.depthwise(self.expand(x))
        scale = torch.sigmoid(self.se_expand(nn.functional.silu(self.se_reduce(out.mean(dim=(2, 3), keepdim=True)))))
        out = self.project(out * scale)
        return out + x if self.residual else out


class EfficientNet(nn.Module):
    def __init__(self, stages: Sequence[tuple[int, int, int, int, int]] = B0_STAGES, head_channels: int = 1280,
                 num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_silu(3, 32, 3, 2)]
        in_ch = 32
        for expansion, kernel, stride, out_ch, repeats in stages:
            for i in range(repeats):
                layers.append(MBConv(in_ch, out_ch, expansion, kernel, stride if i == 0 else 1))
                in_ch = out_ch
        layers.append(conv_bn_silu(in_ch, head_channels, 1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(head_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))  # dropout (0.2) is the identity at inference


def build_efficientnet_b0(seed: int = 0, stages: Sequence[tuple[int, int, int, int, int]] = B0_STAGES,
                          head_channels: int = 1280) -> EfficientNet:
    """EfficientNet-B0; ``stages`` and ``head_channels`` scale it down for tests."""
    torch.manual_seed(seed)
    model = EfficientNet(stages, head_channels)
    separate_top_classes(model.head, seed)
    return model.eval()
