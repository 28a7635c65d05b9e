"""X3D (Feichtenhofer, "X3D: Expanding Architectures for Efficient Video Recognition", CVPR 2020).

Layer shapes follow the paper's Table 1 and the reference implementation in facebookresearch/SlowFast
(``slowfast/models/video_model_builder.py`` X3D, ``resnet_helper.py`` X3DTransform, ``head_helper.py``
X3DHead; Apache-2.0), read for shapes only:

- stem: a 1x3x3 convolution to 24 channels at spatial stride 2, then a 5x1x1 channelwise (depthwise)
  temporal convolution, BN, ReLU;
- four stages res2..res5 of X3D's bottleneck (1x1x1 conv, 3x3x3 channelwise conv, squeeze-excitation on
  every other block, swish, 1x1x1 conv; spatial stride 2 in each stage's first block), widths
  24/48/96/192 (width factor 2), inner widths x2.25, depths 3/5/11/7 (depth factor 2.2);
- head: 1x1x1 conv to 432, BN, ReLU, global average pooling, a 2048-wide 1x1x1 conv (no BN), ReLU,
  a linear classifier (Kinetics-400's 400 classes), softmax left out (a logit is what a runtime returns).

X3D-XS, -S and -M share these weights: 3,794,322 parameters here, PyTorchVideo's model zoo lists 3.79 M,
the paper 3.76 M (0.8% fewer; which layers its count leaves out is not established). FLOPs match the
paper's multiply-accumulates exactly (0.60, 1.96, 4.73 G; bench counts 2 FLOPs per MAC). They differ only in
the clip: XS 4 frames at 160 px, S 13 frames at 160 px, M 16 frames at 224 px (temporal sampling stride
12, 6, 5 frames at 30 fps). Input: (N, 3, T, H, W) normalised with Kinetics' mean 0.45 and std 0.225.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["X3D", "build_x3d", "round_width"]

_WIDTHS = (24, 48, 96, 192)
_BASE_DEPTHS = (1, 2, 5, 3)


def round_width(width: float, multiplier: float = 1.0, divisor: int = 8) -> int:
    """Channels scaled by ``multiplier`` and rounded to a multiple of ``divisor`` (never down by more
    than 10%): how X3D and MobileNet size their layers."""
    width *= multiplier
    out = max(divisor, int(width + divisor / 2) // divisor * divisor)
    if out < 0.9 * width:
        out += divisor
    return int(out)


class SqueezeExcite3d(nn.Module):
    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        hidden = round_width(channels, ratio)
        self.fc1 = nn.Conv3d(channels, hidden, 1, bias=True)
        self.fc2 = nn.Conv3d(hidden, channels, 1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        scale = x.mean(dim=(2, 3, 4), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(scale))))


class X3DBlock(nn.Module):
    """The bottleneck: 1x1x1 -> 3x3x3 channelwise (stride on H, W) -> [SE] -> swish -> 1x1x1."""

    def __init__(self, dim_in: int, dim_out: int, dim_inner: int, stride: int, use_se: bool) -> None:
        super().__init__()
        self.a = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.a_bn = nn.BatchNorm3d(dim_inner)
        self.b = nn.Conv3d(dim_inner, dim_inner, 3, stride=(1, stride, stride), padding=1, groups=dim_inner,
                           bias=False)
        self.b_bn = nn.BatchNorm3d(dim_inner)
        self.se = SqueezeExcite3d(dim_inner, 0.0625) if use_se else None
        self.c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.c_bn = nn.BatchNorm3d(dim_out)
        self.branch1: nn.Module | None = None
        if dim_in != dim_out or stride != 1:
            self.branch1 = nn.Sequential(nn.Conv3d(dim_in, dim_out, 1, stride=(1, stride, stride), bias=False),
                                         nn.BatchNorm3d(dim_out))

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.a_bn(self.a(x)))
        y = self.b_bn(self.b(y))
        if self.se is not None:
            y = self.se(y)
        y = self.c_bn(self.c(y * torch.sigmoid(y)))
        shortcut = x if self.branch1 is None else self.branch1(x)
        return torch.relu(shortcut + y)


class X3D(nn.Module):
    def __init__(self, num_classes: int = 400, depth_factor: float = 2.2, widths: tuple[int, ...] = _WIDTHS,
                 bottleneck_factor: float = 2.25, head_width: int = 2048) -> None:
        super().__init__()
        stem = widths[0]
        self.stem = nn.Sequential(
            nn.Conv3d(3, stem, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False),
            nn.Conv3d(stem, stem, (5, 1, 1), padding=(2, 0, 0), groups=stem, bias=False),
            nn.BatchNorm3d(stem), nn.ReLU(inplace=True))
        stages = []
        dim_in = stem
        for width, base in zip(widths, _BASE_DEPTHS):
            depth = int(math.ceil(depth_factor * base))
            inner = int(bottleneck_factor * width)
            blocks = [X3DBlock(dim_in if i == 0 else width, width, inner, 2 if i == 0 else 1, use_se=i % 2 == 0)
                      for i in range(depth)]
            stages.append(nn.Sequential(*blocks))
            dim_in = width
        self.stages = nn.Sequential(*stages)
        head_inner = int(bottleneck_factor * widths[-1])
        self.conv5 = nn.Sequential(nn.Conv3d(widths[-1], head_inner, 1, bias=False), nn.BatchNorm3d(head_inner),
                                   nn.ReLU(inplace=True))
        self.lin5 = nn.Conv3d(head_inner, head_width, 1, bias=False)
        self.projection = nn.Linear(head_width, num_classes)

    def forward(self, clip: Tensor) -> Tensor:
        x = self.conv5(self.stages(self.stem(clip)))
        x = torch.relu(self.lin5(x.mean(dim=(2, 3, 4), keepdim=True)))
        return self.projection(x.flatten(1))


def build_x3d(seed: int = 0, **overrides: object) -> X3D:
    """X3D with Kinetics-400's head; ``overrides`` scale it down for tests (depth_factor, widths)."""
    torch.manual_seed(seed)
    return X3D(**overrides).eval()  # type: ignore[arg-type]
