"""ImageNet backbones in plain PyTorch (no torchvision): ResNet-18 and Wide ResNet-50-2, with the
layer shapes of He et al. (2016) and Zagoruyko & Komodakis (2016) as torchvision defines them, and a
feature extractor that builds only the stages a method uses.

Anomaly-detection methods use these backbones as frozen feature extractors pre-trained on ImageNet;
here the weights are seeded random values, since speed does not depend on them.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["BasicBlock", "Bottleneck", "ResNetFeatures", "resnet18_features", "wide_resnet50_2_features",
           "STAGE_CHANNELS"]

# Output channels of layer1..layer4 and their stride relative to the input.
STAGE_CHANNELS = {
    "resnet18": {"layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512},
    "wide_resnet50_2": {"layer1": 256, "layer2": 512, "layer3": 1024, "layer4": 2048},
}
STAGE_STRIDE = {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
_LAYERS = ("layer1", "layer2", "layer3", "layer4")


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_ch != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1, width: int = 64) -> None:
        super().__init__()
        mid = int(planes * (width / 64.0))  # Wide ResNet-50-2: twice the bottleneck width
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)  # stride on the 3x3 (ResNet v1.5)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetFeatures(nn.Module):
    """The stem and the stages up to the deepest requested one; forward returns the requested
    stages' outputs as a tuple, in the order asked."""

    def __init__(self, block: type[nn.Module], depths: Sequence[int], layers: Sequence[str],
                 width: int = 64) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in _LAYERS]
        if unknown or not layers:
            raise ValueError(f"layers {list(layers)} must be among {_LAYERS}")
        self.layers = tuple(layers)
        deepest = max(_LAYERS.index(name) for name in layers)
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_ch = 64
        self.stages = nn.ModuleDict()
        for index, (name, depth, planes) in enumerate(zip(_LAYERS, depths, (64, 128, 256, 512))):
            if index > deepest:
                break
            stride = 1 if index == 0 else 2
            blocks = []
            for i in range(depth):
                blocks.append(block(in_ch, planes, stride if i == 0 else 1, width))  # type: ignore[call-arg]
                in_ch = planes * block.expansion  # type: ignore[attr-defined]
            self.stages[name] = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        found: dict[str, Tensor] = {}
        for name, stage in self.stages.items():
            x = stage(x)
            if name in self.layers:
                found[name] = x
        return tuple(found[name] for name in self.layers)


def resnet18_features(layers: Sequence[str] = ("layer1", "layer2", "layer3")) -> ResNetFeatures:
    return ResNetFeatures(BasicBlock, (2, 2, 2, 2), layers)


def wide_resnet50_2_features(layers: Sequence[str] = ("layer2", "layer3")) -> ResNetFeatures:
    return ResNetFeatures(Bottleneck, (3, 4, 6, 3), layers, width=128)


def _self_check() -> None:  # pragma: no cover - a reader's aid: python -m bench.suites.models.backbones
    torch.manual_seed(0)
    for make, name in ((resnet18_features, "resnet18"), (wide_resnet50_2_features, "wide_resnet50_2")):
        model = make(("layer1", "layer2", "layer3", "layer4")).eval()
        with torch.no_grad():
            shapes = [tuple(t.shape) for t in model(torch.zeros(1, 3, 224, 224))]
        print(name, sum(p.numel() for p in model.parameters()), shapes)


if __name__ == "__main__":  # pragma: no cover
    _self_check()
