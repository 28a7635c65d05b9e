"""MobileNetV3-Large (Howard et al.: "Searching for MobileNetV3", ICCV 2019, arXiv:1905.02244).

Layer shapes from the paper's Table 1 (and torchvision's ``mobilenet_v3_large``, BSD-3-Clause, and
TensorFlow's ``mobilenet_v3`` in tensorflow/models, Apache-2.0, read for their facts; no code
copied): a 3x3/2 stem of 16 channels with hard-swish; fifteen inverted-residual blocks ("bneck":
1x1 expansion, depthwise kxk, optional squeeze-and-excitation, 1x1 projection, residual when the
stride is 1 and the channels match); a 1x1 convolution to 960 channels; global average pooling; a
1x1 "convolution" (a linear layer, no batch norm) to 1280 with hard-swish; the 1000-way classifier.

Squeeze-and-excitation: a squeeze to the expansion width divided by 4, rounded to a multiple of 8
(``make_divisible``), ReLU, an excitation back with hard-sigmoid, both 1x1 convolutions with bias.

Counts: the paper gives 5.4 M parameters and 219 M multiply-adds. The reference implementations
(TensorFlow's, torchvision's, timm's) all count 5,483,032 parameters: the paper's "5.4 M" is that
figure cut, not rounded, to one decimal; the tests check ours against the implementations' exact
count and the paper's multiply-adds.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from bench.suites.models.vision.common import NUM_CLASSES, separate_top_classes

__all__ = ["MobileNetV3", "build_mobilenetv3_large", "LARGE_BLOCKS", "make_divisible"]

# (kernel, expansion width, output channels, squeeze-and-excitation, hard-swish, stride): Table 1.
LARGE_BLOCKS: tuple[tuple[int, int, int, bool, bool, int], ...] = (
    (3, 16, 16, False, False, 1),
    (3, 64, 24, False, False, 2),
    (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2),
    (5, 120, 40, True, False, 1),
    (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2),
    (3, 200, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 480, 112, True, True, 1),
    (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2),
    (5, 960, 160, True, True, 1),
    (5, 960, 160, True, True, 1),
)


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round to the nearest multiple of ``divisor``, never more than 10% below ``value`` (the
    TensorFlow reference's rule for channel counts)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
            act: Optional[type[nn.Module]] = None) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(out_ch, eps=1e-3)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)
        scale = nn.functional.hardsigmoid(self.expand(nn.functional.relu(self.reduce(scale))))
        return x * scale


class InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, kernel: int, expanded: int, out_ch: int, se: bool, hswish: bool,
                 stride: int) -> None:
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != in_ch:  # the first block has no expansion
            layers.append(conv_bn(in_ch, expanded, 1, act=act))
        layers.append(conv_bn(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if se:
            layers.append(SqueezeExcite(expanded, make_divisible(expanded / 4)))
        layers.append(conv_bn(expanded, out_ch, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return out + x if self.residual else out


class MobileNetV3(nn.Module):
    def __init__(self, blocks: Sequence[tuple[int, int, int, bool, bool, int]] = LARGE_BLOCKS,
                 last_channels: int = 1280, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 16, 3, 2, act=nn.Hardswish)]
        in_ch = 16
        for kernel, expanded, out_ch, se, hswish, stride in blocks:
            layers.append(InvertedResidual(in_ch, kernel, expanded, out_ch, se, hswish, stride))
            in_ch = out_ch
        head_ch = 6 * in_ch  # 960 for the large model's 160
        layers.append(conv_bn(in_ch, head_ch, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.pre_logits = nn.Sequential(nn.Linear(head_ch, last_channels), nn.Hardswish())
        self.head = nn.Linear(last_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x).mean(dim=(2, 3))
        return self.head(self.pre_logits(x))  # dropout (0.2) is the identity at inference


def build_mobilenetv3_large(seed: int = 0, blocks: Sequence[tuple[int, int, int, bool, bool, int]] = LARGE_BLOCKS,
                            last_channels: int = 1280) -> MobileNetV3:
    """MobileNetV3-Large 1.0; ``blocks`` and ``last_channels`` scale it down for tests."""
    torch.manual_seed(seed)
    model = MobileNetV3(blocks, last_channels)
    separate_top_classes(model.head, seed)
    return model.eval()
