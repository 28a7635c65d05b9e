"""Reverse Distillation (RD4AD): a student decoder rebuilds the teacher encoder's features.

Reverse Distillation (Deng, Li: "Anomaly Detection via Reverse Distillation from One-Class
Embedding", CVPR 2022, arXiv:2201.10703) uses a frozen ImageNet encoder as teacher and, as student,
a decoder that must rebuild the teacher's multi-scale features from a compact one-class bottleneck
embedding (OCBE). Trained on normal images only, the decoder rebuilds normal features well and
anomalous ones poorly.

Architecture (Wide ResNet-50-2 teacher, the paper's and anomalib's default):

* encoder: the Wide ResNet-50-2 stem and layer1..layer3 (256, 512, 1024 channels at strides 4, 8,
  16: 64, 32, 16 pixels for a 256x256 input), frozen;
* OCBE, multi-scale feature fusion: layer1 -> conv 3x3/2 (256 -> 512), BN, ReLU, conv 3x3/2
  (512 -> 1024), BN, ReLU; layer2 -> conv 3x3/2 (512 -> 1024), BN, ReLU; concatenated with layer3
  into 3072 channels at stride 16; then one-class embedding, a ResNet stage of three Bottleneck
  blocks (planes 512, output 2048), the first with stride 2 and a 1x1/2 projection shortcut
  3072 -> 2048: a 2048 x 8 x 8 embedding for a 256x256 input;
* decoder: a mirrored Wide ResNet-50-2, three stages of decoder bottlenecks (1x1 conv, 2x2
  transposed conv with stride 2 in each stage's first block and 3x3 conv in the others, 1x1 conv;
  bottleneck width twice the planes as in the wide encoder): 3 blocks -> 1024 channels at stride 16,
  4 blocks -> 512 at stride 8, 6 blocks -> 256 at stride 4; each stage's first block has a 2x2
  stride-2 transposed-conv + BN shortcut. Its three outputs mirror encoder layer3, layer2, layer1.

Inference (anomalib ``ReverseDistillationModel.forward`` in eval mode, its ``AnomalyMapGenerator``
and the authors' test code): for each scale, 1 - cosine similarity of encoder and decoder features
along the channels, bilinearly upsampled (align_corners=True) to the input size; the maps of the
three scales are added (anomalib's ``AnomalyMapGenerationMode.ADD``, the default of its lightning
model, and the authors' ``amap_mode='a'`` at test time; anomalib's map generator on its own
defaults to "multiply", kept here as ``mode="multiply"``); a Gaussian blur with sigma 4 (33x33
kernel, reflect padding) smooths the sum. The image score is the maximum of the map.

References, read for their facts (layer shapes, channel counts, strides, the map); no code was
copied:

* the paper (Section 3, Figure 3);
* anomalib (github.com/openvinotoolkit/anomalib, now open-edge-platform/anomalib),
  ``src/anomalib/models/image/reverse_distillation/torch_model.py``, ``anomaly_map.py``,
  ``lightning_model.py``, ``components/bottleneck.py``, ``components/de_resnet.py`` and
  ``src/anomalib/models/components/filters/blur.py``, licence Apache-2.0;
* the authors' code, hq-deng/RD4AD (github.com/hq-deng/RD4AD), ``resnet.py``, ``de_resnet.py``,
  ``test.py``, licence MIT (as anomalib's headers record it).

Where the references differ, this module follows:

* the width of the OCBE's Bottleneck blocks: the authors build the OCBE with the encoder's keyword
  arguments, so for Wide ResNet-50-2 its bottleneck width is 128/64 x planes = 1024; anomalib
  builds it without them, so its width is 512. Default here: the authors' (``ocbe_width=128``);
  ``ocbe_width=64`` gives anomalib's;
* the OCBE's unused ``conv4``/``bn4`` (a 1x1 convolution 4096 -> 2048 that both references create
  and never call) is left out: it is not on any path, and only inflates the parameter count;
* the blur: the authors blur with ``scipy.ndimage.gaussian_filter(sigma=4)`` (33 taps, mode
  "reflect" = edge sample repeated); anomalib with a 33x33 Gaussian convolution after
  ``F.pad(mode="reflect")`` (edge sample not repeated). This module follows anomalib, as one fixed
  convolution; the two differ only within 16 pixels of the border.

Weights are PyTorch's default initialisation under ``torch.manual_seed(seed)``: speed does not
depend on their values (the real encoder carries ImageNet weights, OCBE and decoder weights
trained on the target data set).

The forward pass has no data-dependent control flow and exports to ONNX with a dynamic batch axis.
Upsampling sizes are fixed by ``input_size`` at construction.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.suites.models.backbones import Bottleneck, wide_resnet50_2_features
from bench.suites.models.blur import GaussianBlur

__all__ = [
    "OCBE",
    "DecoderBottleneck",
    "Decoder",
    "ReverseDistillation",
    "build_reverse_distillation",
    "INPUT_NORM",
    "LAYERS",
]

INPUT_NORM = {"build_reverse_distillation": "imagenet"}

LAYERS = ("layer1", "layer2", "layer3")
EXPANSION = 4  # Bottleneck: output channels = 4 x planes


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)


class OCBE(nn.Module):
    """One-class bottleneck embedding: fuse encoder layer1..3 and compress to stride 32.

    For Wide ResNet-50-2 features (256, 512, 1024 channels) it returns 2048 channels at half the
    grid of layer3. ``width`` is the Bottleneck blocks' width per 64 planes (128: the authors', 64:
    anomalib's).
    """

    def __init__(self, width: int = 128, blocks: int = 3) -> None:
        super().__init__()
        c1, c2, c3 = 64 * EXPANSION, 128 * EXPANSION, 256 * EXPANSION  # 256, 512, 1024
        self.conv1 = _conv3x3(c1, c2, 2)
        self.bn1 = nn.BatchNorm2d(c2)
        self.conv2 = _conv3x3(c2, c3, 2)
        self.bn2 = nn.BatchNorm2d(c3)
        self.conv3 = _conv3x3(c2, c3, 2)
        self.bn3 = nn.BatchNorm2d(c3)
        self.relu = nn.ReLU(inplace=True)
        planes = 512
        stage = [Bottleneck(3 * c3, planes, 2, width)]  # 3072 -> 2048, stride 2, 1x1/2 shortcut
        stage += [Bottleneck(planes * EXPANSION, planes, 1, width) for _ in range(1, blocks)]
        self.bn_layer = nn.Sequential(*stage)

    def forward(self, features: list[Tensor] | tuple[Tensor, ...]) -> Tensor:
        f1, f2, f3 = features
        f1 = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(f1))))))
        f2 = self.relu(self.bn3(self.conv3(f2)))
        return self.bn_layer(torch.cat([f1, f2, f3], dim=1))


class DecoderBottleneck(nn.Module):
    """Bottleneck of the decoder: 1x1, then 2x2 transposed conv /2 (``stride=2``) or 3x3, then 1x1.

    With ``stride=2`` the shortcut is a 2x2 stride-2 transposed convolution and BN to the output
    channels, so the block doubles the grid.
    """

    def __init__(self, c_in: int, planes: int, stride: int = 1, width: int = 128) -> None:
        super().__init__()
        mid = planes * width // 64
        c_out = planes * EXPANSION
        self.conv1 = nn.Conv2d(c_in, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        if stride == 2:
            self.conv2: nn.Module = nn.ConvTranspose2d(mid, mid, 2, stride=2, bias=False)
        else:
            self.conv2 = _conv3x3(mid, mid)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.upsample: nn.Module | None = None
        if stride == 2:
            self.upsample = nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 2, stride=2, bias=False),
                                          nn.BatchNorm2d(c_out))
        elif c_in != c_out:
            raise ValueError(f"a stride-1 decoder block keeps its channels, got {c_in} -> {c_out}")

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.upsample is None else self.upsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class Decoder(nn.Module):
    """Mirrored Wide ResNet-50-2 (de_wide_resnet50_2): 2048 at stride 32 -> features mirroring
    encoder layer1, layer2, layer3 (256, 512, 1024 channels), returned in that order."""

    def __init__(self, depths: tuple[int, int, int] = (3, 4, 6), width: int = 128) -> None:
        super().__init__()
        c_in = 512 * EXPANSION
        stages = []
        for planes, depth in zip((256, 128, 64), depths):
            blocks = [DecoderBottleneck(c_in, planes, 2, width)]
            c_in = planes * EXPANSION
            blocks += [DecoderBottleneck(c_in, planes, 1, width) for _ in range(1, depth)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages

    def forward(self, x: Tensor) -> list[Tensor]:
        a = self.layer1(x)  # mirrors encoder layer3
        b = self.layer2(a)  # mirrors encoder layer2
        c = self.layer3(b)  # mirrors encoder layer1
        return [c, b, a]


class ReverseDistillation(nn.Module):
    """Encoder, OCBE, decoder and the anomaly map of Reverse Distillation.

    ``forward(x)`` takes an ImageNet-normalised float32 batch ``[B, 3, input_size, input_size]``
    and returns ``(anomaly_map [B, 1, input_size, input_size], score [B])``.
    """

    def __init__(
        self,
        input_size: int = 256,
        mode: Literal["add", "multiply"] = "add",
        sigma: float = 4.0,
        ocbe_width: int = 128,
    ) -> None:
        super().__init__()
        # A multiple of 32 keeps the decoder's grids equal to the encoder's; the blur's reflect
        # padding (16) needs a map larger than 16 pixels.
        if input_size < 32 or input_size % 32:
            raise ValueError(f"input_size must be a positive multiple of 32, not {input_size}")
        if mode not in ("add", "multiply"):
            raise ValueError(f"mode must be 'add' or 'multiply', not {mode!r}")
        self.input_size = input_size
        self.mode = mode
        self.encoder = wide_resnet50_2_features(LAYERS)
        self.bottleneck = OCBE(width=ocbe_width)
        self.decoder = Decoder(width=128)
        self.blur = GaussianBlur(sigma)

    def features(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Encoder features (layer1..3) and the decoder's reconstructions of them."""
        encoded = list(self.encoder(x))
        return encoded, self.decoder(self.bottleneck(encoded))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        size = (self.input_size, self.input_size)
        anomaly_map: Tensor | None = None
        for enc, dec in zip(*self.features(x)):
            distance = 1.0 - F.cosine_similarity(enc, dec, dim=1).unsqueeze(1)
            distance = F.interpolate(distance, size=size, mode="bilinear", align_corners=True)
            if anomaly_map is None:
                anomaly_map = distance
            elif self.mode == "add":
                anomaly_map = anomaly_map + distance
            else:
                anomaly_map = anomaly_map * distance
        assert anomaly_map is not None
        anomaly_map = self.blur(anomaly_map)
        score = anomaly_map.amax(dim=(1, 2, 3))
        return anomaly_map, score


def build_reverse_distillation(
    seed: int,
    input_size: int = 256,
    mode: Literal["add", "multiply"] = "add",
    ocbe_width: int = 128,
) -> nn.Module:
    """Reverse Distillation with a Wide ResNet-50-2 encoder (layer1..3), in eval mode.

    Input: an ImageNet-normalised image ``[B, 3, input_size, input_size]`` (mean and standard
    deviation applied outside the model); 256 is the real workload. ``ocbe_width=64`` gives
    anomalib's narrower OCBE instead of the authors' (see the module docstring).
    """
    torch.manual_seed(seed)
    model = ReverseDistillation(input_size, mode, ocbe_width=ocbe_width)
    return model.eval()
