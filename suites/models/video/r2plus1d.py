"""R(2+1)D-18 (Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition",
CVPR 2018).

Each 3x3x3 convolution of a ResNet-18 video network is factored into a 1x3x3 spatial convolution to
M_i channels, BN, ReLU, and a 3x1x1 temporal one, with M_i = floor(3 * 9 * N_in * N_out / (9 * N_in +
3 * N_out)) so that the factored pair has the parameters of the full 3D kernel (the paper's Eq. 5).
The layout follows torchvision's ``r2plus1d_18`` (BSD-3-Clause; read for shapes only): a (2+1)D stem
(1x7x7 to 45 channels at spatial stride 2, then 3x1x1 to 64), four stages of two basic blocks at
64/128/256/512 channels, stride 2 in space and time at the first block of stages 2-4 (a 1x1x1
projection with BN on the shortcut there), global average pooling and a 400-class linear layer
(Kinetics-400). 31,505,325 parameters, torchvision's count; the paper's Table 2 lists 33.3 M for its
own 18-layer variant, whose stem differs. Input (N, 3, 16, 112, 112) normalised with Kinetics' mean and
std (torchvision's 0.43216/0.394666/0.37645 and 0.22803/0.22145/0.216989).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["R2Plus1D", "build_r2plus1d_18", "mid_channels"]


def mid_channels(n_in: int, n_out: int) -> int:
    """The paper's M_i: the (2+1)D pair gets the 3x3x3 kernel's parameter count."""
    return (n_in * n_out * 3 * 3 * 3) // (n_in * 3 * 3 + 3 * n_out)


def conv2plus1d(n_in: int, n_out: int, mid: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(n_in, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
        nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
        nn.Conv3d(mid, n_out, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False))


class BasicBlock2Plus1D(nn.Module):
    def __init__(self, n_in: int, n_out: int, stride: int) -> None:
        super().__init__()
        mid = mid_channels(n_in, n_out)  # one M_i for both convolutions of the block, as torchvision
        self.conv1 = nn.Sequential(conv2plus1d(n_in, n_out, mid, stride), nn.BatchNorm3d(n_out), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv2plus1d(n_out, n_out, mid), nn.BatchNorm3d(n_out))
        self.downsample: nn.Module | None = None
        if stride != 1 or n_in != n_out:
            self.downsample = nn.Sequential(nn.Conv3d(n_in, n_out, 1, stride=stride, bias=False), nn.BatchNorm3d(n_out))

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.conv2(self.conv1(x)) + shortcut)


class R2Plus1D(nn.Module):
    def __init__(self, num_classes: int = 400, widths: tuple[int, ...] = (64, 128, 256, 512),
                 depths: tuple[int, ...] = (2, 2, 2, 2), stem_mid: int = 45) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, stem_mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(stem_mid), nn.ReLU(inplace=True),
            nn.Conv3d(stem_mid, widths[0], (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(widths[0]), nn.ReLU(inplace=True))
        layers = []
        n_in = widths[0]
        for index, (width, depth) in enumerate(zip(widths, depths)):
            for i in range(depth):
                layers.append(BasicBlock2Plus1D(n_in, width, 2 if index > 0 and i == 0 else 1))
                n_in = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(n_in, num_classes)

    def forward(self, clip: Tensor) -> Tensor:
        x = self.layers(self.stem(clip))
        return self.fc(x.mean(dim=(2, 3, 4)))


def build_r2plus1d_18(seed: int = 0, **overrides: object) -> R2Plus1D:
    torch.manual_seed(seed)
    return R2Plus1D(**overrides).eval()  # type: ignore[arg-type]
