"""ResNet-50 v1.5: MLPerf Inference's image-classification model.

ResNet (He, Zhang, Ren, Sun: "Deep Residual Learning for Image Recognition", CVPR 2016,
arXiv:1512.03385), 50 layers: a 7x7/2 stem convolution, a 3x3/2 max pool, four stages of
bottleneck blocks (3, 4, 6, 3 blocks; 64, 128, 256, 512 planes, four times as many outputs), global
average pooling and a 1000-way fully connected layer. "v1.5" is the variant MLPerf, NVIDIA and
torchvision use: a down-sampling block strides in its 3x3 convolution, not in its first 1x1 (the
paper's v1), which costs more: 4.1 GMACs at 224x224 where the paper gives 3.8 G for v1.

The blocks are bench.suites.models.backbones' ``Bottleneck`` (the same v1.5 block the anomaly suite's
Wide ResNet-50-2 uses, at width 64). References, read for their facts, no code copied: the paper
(Table 1), MLPerf Inference's reference (github.com/mlcommons/inference, vision/classification_and_detection,
Apache-2.0: the model "resnet50-v1.5" and its preprocessing) and torchvision's ``resnet50``
(BSD-3-Clause: 25,557,032 parameters, 4.09 GMACs at 224x224).

Weights are PyTorch's default initialisation under the seed; the head's bias separates six classes
(see common.py). No data-dependent control flow: exports to ONNX with a dynamic batch axis.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from bench.suites.models.backbones import Bottleneck, ResNetFeatures
from bench.suites.models.vision.common import NUM_CLASSES, separate_top_classes

__all__ = ["ResNetClassifier", "build_resnet50", "RESNET50_DEPTHS"]

RESNET50_DEPTHS = (3, 4, 6, 3)


class ResNetClassifier(nn.Module):
    """Stem and the four bottleneck stages, global average pooling, a linear head: logits out."""

    def __init__(self, depths: Sequence[int] = RESNET50_DEPTHS, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.features = ResNetFeatures(Bottleneck, depths, ("layer4",))
        self.head = nn.Linear(512 * Bottleneck.expansion, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        (features,) = self.features(x)
        return self.head(torch.flatten(features.mean(dim=(2, 3)), 1))


def build_resnet50(seed: int = 0, depths: Sequence[int] = RESNET50_DEPTHS) -> ResNetClassifier:
    """ResNet-50 v1.5; ``depths`` scales it down for tests (the same code path)."""
    torch.manual_seed(seed)
    model = ResNetClassifier(depths)
    separate_top_classes(model.head, seed)
    return model.eval()
