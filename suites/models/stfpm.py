"""STFPM: student-teacher feature pyramid matching on ResNet-18.

STFPM (Wang, Wu, Cui, Yan: "Student-Teacher Feature Pyramid Matching for Anomaly Detection", BMVC
2021, arXiv:2103.04257) pairs a teacher, a ResNet-18 pre-trained on ImageNet and frozen, with a
student of the same architecture trained from scratch, on normal images only, to reproduce the
teacher's features at three pyramid levels. Where the image is anomalous the student's features
stray from the teacher's.

Architecture: teacher and student are each the ResNet-18 stem and layer1..layer3 (64, 128, 256
channels at strides 4, 8, 16), the configuration of the paper and of anomalib's default
``layers=["layer1", "layer2", "layer3"]``.

Inference (anomalib ``STFPMModel.forward`` in eval mode and its ``AnomalyMapGenerator``): for each
level, both feature maps are L2-normalised along the channels (``F.normalize``, eps 1e-12), the
level's map is 0.5 * ||t_hat - s_hat||^2 summed over channels (equal to 1 - cosine similarity),
bilinearly upsampled (align_corners=False) to the input size; the anomaly map is the product of the
three levels' maps (the paper's equation: product over levels). The image score is the maximum of
the map (anomalib's ``pred_score = amax``; the paper also scores an image by its map's maximum).
No Gaussian blur: neither the paper's inference nor anomalib's STFPM applies one.

References, read for their facts (which layers, the map and score); no code was copied:

* the paper (Section 3);
* anomalib (github.com/openvinotoolkit/anomalib, now open-edge-platform/anomalib),
  ``src/anomalib/models/image/stfpm/torch_model.py`` and ``anomaly_map.py``, licence Apache-2.0.

Where this module differs from the reference in form, not in values: anomalib computes the level
map as ``0.5 * torch.norm(diff, dim=1) ** 2``; here it is ``0.5 * sum(diff ** 2)``, the same
quantity without the square root and square (equal up to rounding). anomalib starts the product
from a tensor of ones, which is exact to leave out.

Weights are PyTorch's default initialisation under ``torch.manual_seed(seed)``, teacher first:
speed does not depend on their values (the real teacher carries ImageNet weights and the real
student weights trained on the target data set).

The forward pass has no data-dependent control flow and exports to ONNX with a dynamic batch axis.
The upsampling size is fixed by ``input_size`` at construction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.suites.models.backbones import resnet18_features

__all__ = ["STFPM", "layer_map", "build_stfpm", "INPUT_NORM", "LAYERS"]

INPUT_NORM = {"build_stfpm": "imagenet"}

LAYERS = ("layer1", "layer2", "layer3")


def layer_map(teacher: Tensor, student: Tensor) -> Tensor:
    """0.5 * squared L2 distance of the channel-normalised features, ``[B, 1, h, w]``."""
    diff = F.normalize(teacher, dim=1) - F.normalize(student, dim=1)
    return 0.5 * torch.sum(diff * diff, dim=1, keepdim=True)


class STFPM(nn.Module):
    """Teacher and student ResNet-18 (layer1..3) and STFPM's anomaly map.

    ``forward(x)`` takes an ImageNet-normalised float32 batch ``[B, 3, input_size, input_size]``
    and returns ``(anomaly_map [B, 1, input_size, input_size], score [B])``.
    """

    def __init__(self, input_size: int = 256, layers: tuple[str, ...] = LAYERS) -> None:
        super().__init__()
        if input_size < 32:
            raise ValueError(f"input_size must be at least 32, not {input_size}")
        self.input_size = input_size
        self.layers = tuple(layers)
        self.teacher = resnet18_features(self.layers)
        self.student = resnet18_features(self.layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        size = (self.input_size, self.input_size)
        anomaly_map: Tensor | None = None
        for t, s in zip(self.teacher(x), self.student(x)):
            level = F.interpolate(layer_map(t, s), size=size, mode="bilinear", align_corners=False)
            anomaly_map = level if anomaly_map is None else anomaly_map * level
        assert anomaly_map is not None  # at least one layer, checked by the backbone
        score = anomaly_map.amax(dim=(1, 2, 3))
        return anomaly_map, score


def build_stfpm(seed: int, input_size: int = 256) -> nn.Module:
    """STFPM with ResNet-18 teacher and student (layer1..3), in eval mode.

    Input: an ImageNet-normalised image ``[B, 3, input_size, input_size]`` (mean and standard
    deviation applied outside the model); 256 is the real workload.
    """
    torch.manual_seed(seed)
    model = STFPM(input_size)
    return model.eval()
