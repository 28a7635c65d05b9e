"""EfficientAD-S and EfficientAD-M: visual anomaly detection at millisecond-level latencies.

EfficientAD (Batzner, Heckler, König: "EfficientAD: Accurate Visual Anomaly Detection at
Millisecond-Level Latencies", WACV 2024, arXiv:2303.14535) scores an image with three small
fully convolutional networks:

* a teacher, a patch description network (PDN) that in the paper is distilled from a
  WideResNet-101 on ImageNet and is then frozen; it describes every 33x33 patch with 384 features;
* a student, a PDN of the same kind with 2 x 384 = 768 output channels: the first 384 imitate the
  teacher (local anomalies show as a student-teacher discrepancy), the last 384 imitate the
  autoencoder (logical anomalies show as an autoencoder-student discrepancy);
* an autoencoder: six strided convolutions down to a 64-channel 1x1 bottleneck, and a decoder of
  bilinear upsamplings and convolutions back to the teacher's feature grid.

Inference (what ``EfficientAD.forward`` does, the path of the reference implementations):
normalise the teacher's features with per-channel mean and standard deviation; map_st is the
channel mean of the squared teacher-student difference, map_ae the channel mean of the squared
autoencoder-student difference; each map is rescaled with two quantiles of its values on
validation images, ``0.1 * (map - q_start) / (q_end - q_start)`` (q_start the 0.9 and q_end the
0.995 quantile); the combined map is ``0.5 * map_st + 0.5 * map_ae``, padded by 4 zero pixels per
side (the PDNs run without padding, so their 56x56 output grid lacks the 4-pixel border of the
64x64 grid a padded PDN gives) and bilinearly upsampled to the input size. The image score is the
maximum of that map.

Written for this project from the published architecture and from these references, read for
their facts (layer shapes, kernel sizes, strides, padding, upsampling sizes, the map computation);
no code was copied:

* the paper, tables of the PDN-S, PDN-M and autoencoder layers (appendix);
* anomalib, ``src/anomalib/models/image/efficient_ad/torch_model.py``
  (github.com/openvinotoolkit/anomalib, now open-edge-platform/anomalib), licence Apache-2.0
  (SPDX header of that file);
* nelson1425/EfficientAD (github.com/nelson1425/EfficientAD), ``common.py``, ``efficientad.py``,
  ``benchmark.py``: an unofficial reimplementation whose README reports the paper's MVTec AD
  results; licence Apache-2.0 (as third-party catalogues record it; its LICENSE file itself was
  not in the index searched).

Where the references differ, this module follows:

* padding: the paper's tables list padded convolutions (64x64 output); both implementations
  default to ``padding=False`` (56x56 output, map padded by 4 pixels afterwards) and so does this
  module (``padding=True`` gives the paper's table);
* input normalisation: anomalib takes a [0, 1] RGB image and applies the ImageNet mean and
  standard deviation inside the model (in each of the three networks); nelson1425 normalises in
  the data loader. Here it is inside the model, once, shared by the three networks
  (``normalize_input=True``, the anomalib convention); with ``normalize_input=False`` the model
  takes an already ImageNet-normalised image (the nelson1425 convention);
* order of map normalisation and padding: nelson1425 normalises and combines the 56x56 maps, then
  pads the combined map with zeros and upsamples it once; anomalib pads and upsamples both raw
  maps and normalises afterwards (so its border is not 0). This module follows nelson1425 (one pad
  and one upsampling instead of two); the interior of the map is identical either way;
* dropout: anomalib (like the paper's autoencoder table) puts Dropout(p=0.2) after the first six
  decoder convolutions, nelson1425 has none. They are kept here; in eval mode they are identities.

Weights are PyTorch's default initialisation under ``torch.manual_seed(seed)``: latency, memory
and FLOPs do not depend on their values. The normalisation statistics, which in the real method
come from training on the target data set, are set by ``EfficientAD.calibrate`` from one forward
pass on a seeded random image, so that the maps have a plausible scale; speed does not depend on
them either.

The forward pass has no data-dependent Python control flow, no ``torch.quantile`` and no in-place
operation on its input, so ``torch.onnx.export`` can trace it (checked with the TorchScript and the
dynamo exporter, batch as a dynamic axis, against onnxruntime). The upsampling sizes are fixed by
``image_size`` at construction (256 by default, the size the method is defined for; the
autoencoder's 8x8 bottleneck convolution needs at least 256).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "PDNSmall",
    "PDNMedium",
    "AutoEncoder",
    "decoder_sizes",
    "EfficientAD",
    "build_efficientad_s",
    "build_efficientad_m",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Anomaly-map quantiles of the reference implementations (on validation images).
Q_START = 0.9
Q_END = 0.995


class PDNSmall(nn.Module):
    """Patch description network, small (PDN-S), teacher of EfficientAD-S.

    conv 4x4 -> 128, ReLU, avgpool 2/2, conv 4x4 -> 256, ReLU, avgpool 2/2, conv 3x3 -> 256, ReLU,
    conv 4x4 -> ``out_channels``. Stride 1 everywhere except the pools. Receptive field 33x33.
    Without padding a 256x256 input gives a 56x56 grid; with the paper's padding (3, 1, 3, 1, 1, 0)
    a 64x64 grid.
    """

    def __init__(self, out_channels: int = 384, padding: bool = False) -> None:
        super().__init__()
        p = 1 if padding else 0
        self.conv1 = nn.Conv2d(3, 128, kernel_size=4, padding=3 * p)
        self.pool1 = nn.AvgPool2d(kernel_size=2, stride=2, padding=1 * p)
        self.conv2 = nn.Conv2d(128, 256, kernel_size=4, padding=3 * p)
        self.pool2 = nn.AvgPool2d(kernel_size=2, stride=2, padding=1 * p)
        self.conv3 = nn.Conv2d(256, 256, kernel_size=3, padding=1 * p)
        self.conv4 = nn.Conv2d(256, out_channels, kernel_size=4)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = F.relu(self.conv3(x))
        return self.conv4(x)


class PDNMedium(nn.Module):
    """Patch description network, medium (PDN-M), teacher of EfficientAD-M.

    conv 4x4 -> 256, ReLU, avgpool 2/2, conv 4x4 -> 512, ReLU, avgpool 2/2, conv 1x1 -> 512, ReLU,
    conv 3x3 -> 512, ReLU, conv 4x4 -> ``out_channels``, ReLU, conv 1x1 -> ``out_channels``.
    Same receptive field (33x33) and output grid as PDN-S.
    """

    def __init__(self, out_channels: int = 384, padding: bool = False) -> None:
        super().__init__()
        p = 1 if padding else 0
        self.conv1 = nn.Conv2d(3, 256, kernel_size=4, padding=3 * p)
        self.pool1 = nn.AvgPool2d(kernel_size=2, stride=2, padding=1 * p)
        self.conv2 = nn.Conv2d(256, 512, kernel_size=4, padding=3 * p)
        self.pool2 = nn.AvgPool2d(kernel_size=2, stride=2, padding=1 * p)
        self.conv3 = nn.Conv2d(512, 512, kernel_size=1)
        self.conv4 = nn.Conv2d(512, 512, kernel_size=3, padding=1 * p)
        self.conv5 = nn.Conv2d(512, out_channels, kernel_size=4)
        self.conv6 = nn.Conv2d(out_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = F.relu(self.conv3(x))
        x = F.relu(self.conv4(x))
        x = F.relu(self.conv5(x))
        return self.conv6(x)


def decoder_sizes(image_size: int, padding: bool = False) -> tuple[int, ...]:
    """Side lengths the decoder upsamples to, in order (for 256: 3, 8, 15, 32, 63, 127, 56).

    Each of the first six is followed by a 4x4 convolution with padding 2, which adds one pixel
    (3 -> 4, 8 -> 9, ..., 127 -> 128); the last one is the PDN's output grid.
    """
    s = image_size
    grid = s // 4 if padding else s // 4 - 8
    return (s // 64 - 1, s // 32, s // 16 - 1, s // 8, s // 4 - 1, s // 2 - 1, grid)


class AutoEncoder(nn.Module):
    """EfficientAD's autoencoder (the same for S and M).

    Encoder: five 4x4 convolutions with stride 2 and padding 1 (3 -> 32 -> 32 -> 64 -> 64 -> 64
    channels, 256 -> 8 pixels), ReLU after each, then an 8x8 convolution to a 64x1x1 bottleneck.
    Decoder: six times (bilinear upsampling, 4x4 convolution with padding 2, ReLU, dropout 0.2),
    a last bilinear upsampling to the PDN's grid, a 3x3 convolution with ReLU and a 3x3
    convolution to ``out_channels``.
    """

    def __init__(self, out_channels: int = 384, image_size: int = 256, padding: bool = False) -> None:
        super().__init__()
        self.encoder = nn.ModuleList(
            [
                nn.Conv2d(3, 32, kernel_size=4, stride=2, padding=1),
                nn.Conv2d(32, 32, kernel_size=4, stride=2, padding=1),
                nn.Conv2d(32, 64, kernel_size=4, stride=2, padding=1),
                nn.Conv2d(64, 64, kernel_size=4, stride=2, padding=1),
                nn.Conv2d(64, 64, kernel_size=4, stride=2, padding=1),
            ]
        )
        self.bottleneck = nn.Conv2d(64, 64, kernel_size=8)
        self.sizes = decoder_sizes(image_size, padding)
        self.decoder = nn.ModuleList(
            [nn.Conv2d(64, 64, kernel_size=4, stride=1, padding=2) for _ in range(6)]
        )
        self.dropouts = nn.ModuleList([nn.Dropout(p=0.2) for _ in range(6)])
        self.head1 = nn.Conv2d(64, 64, kernel_size=3, padding=1)
        self.head2 = nn.Conv2d(64, out_channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.encoder:
            x = F.relu(conv(x))
        x = self.bottleneck(x)
        for size, conv, dropout in zip(self.sizes[:-1], self.decoder, self.dropouts):
            x = F.interpolate(x, size=(size, size), mode="bilinear")
            x = dropout(F.relu(conv(x)))
        grid = self.sizes[-1]
        x = F.interpolate(x, size=(grid, grid), mode="bilinear")
        x = F.relu(self.head1(x))
        return self.head2(x)


class EfficientAD(nn.Module):
    """Teacher, student and autoencoder with the inference path of EfficientAD.

    ``forward(x)`` takes a float32 batch ``[B, 3, image_size, image_size]`` (with
    ``normalize_input=True``, an RGB image scaled to [0, 1]; otherwise one already normalised with
    the ImageNet mean and standard deviation) and returns ``(anomaly_map [B, 1, H, W], score [B])``.
    """

    def __init__(
        self,
        model_size: Literal["s", "m"] = "s",
        out_channels: int = 384,
        image_size: int = 256,
        padding: bool = False,
        normalize_input: bool = True,
    ) -> None:
        super().__init__()
        if model_size not in ("s", "m"):
            raise ValueError(f"model_size must be 's' or 'm', not {model_size!r}")
        if image_size < 256 or image_size % 64:
            raise ValueError(f"image_size must be a multiple of 64 and at least 256, not {image_size}")
        pdn = PDNSmall if model_size == "s" else PDNMedium
        self.model_size = model_size
        self.out_channels = out_channels
        self.image_size = image_size
        self.normalize_input = normalize_input
        # Zero border that brings the unpadded PDN's grid (image/4 - 8) back to image/4.
        self.map_pad = 0 if padding else 4
        self.teacher = pdn(out_channels, padding)
        self.student = pdn(2 * out_channels, padding)
        self.ae = AutoEncoder(out_channels, image_size, padding)

        self.register_buffer("input_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("input_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        # Statistics that the real method computes on the training and validation images of the
        # data set: the teacher's per-channel feature mean and standard deviation, and the 0.9 and
        # 0.995 quantiles of each anomaly map. Neutral values here; ``calibrate`` replaces them.
        self.register_buffer("teacher_mean", torch.zeros(1, out_channels, 1, 1))
        self.register_buffer("teacher_std", torch.ones(1, out_channels, 1, 1))
        self.register_buffer("q_st_start", torch.tensor(0.0))
        self.register_buffer("q_st_end", torch.tensor(1.0))
        self.register_buffer("q_ae_start", torch.tensor(0.0))
        self.register_buffer("q_ae_end", torch.tensor(1.0))

    def _networks(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Raw outputs of teacher, student and autoencoder (teacher not yet normalised)."""
        if self.normalize_input:
            x = (x - self.input_mean) / self.input_std
        return self.teacher(x), self.student(x), self.ae(x)

    def _raw_maps(self, teacher: Tensor, student: Tensor, ae: Tensor) -> tuple[Tensor, Tensor]:
        """map_st and map_ae on the PDN's grid, before quantile normalisation."""
        c = self.out_channels
        teacher = (teacher - self.teacher_mean) / self.teacher_std
        map_st = ((teacher - student[:, :c]) ** 2).mean(dim=1, keepdim=True)
        map_ae = ((ae - student[:, c:]) ** 2).mean(dim=1, keepdim=True)
        return map_st, map_ae

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        map_st, map_ae = self._raw_maps(*self._networks(x))
        map_st = 0.1 * (map_st - self.q_st_start) / (self.q_st_end - self.q_st_start)
        map_ae = 0.1 * (map_ae - self.q_ae_start) / (self.q_ae_end - self.q_ae_start)
        anomaly_map = 0.5 * map_st + 0.5 * map_ae
        pad = self.map_pad
        anomaly_map = F.pad(anomaly_map, (pad, pad, pad, pad))
        size = (self.image_size, self.image_size)
        anomaly_map = F.interpolate(anomaly_map, size=size, mode="bilinear")
        score = anomaly_map.amax(dim=(1, 2, 3))
        return anomaly_map, score

    @torch.no_grad()
    def calibrate(self, images: Tensor) -> None:
        """Set the normalisation buffers from ``images`` as the reference training does.

        Teacher mean and standard deviation per channel over all images and positions; then the
        0.9 and 0.995 quantiles of map_st and map_ae (on the PDN's grid, before padding). The real
        method uses the training images for the first and held-out good images for the second.
        """
        was_training = self.training
        self.eval()
        teacher, student, ae = self._networks(images)
        mean = teacher.mean(dim=(0, 2, 3), keepdim=True)
        std = ((teacher - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True).sqrt()
        self.teacher_mean.copy_(mean)
        self.teacher_std.copy_(std.clamp_min(1e-6))
        map_st, map_ae = self._raw_maps(teacher, student, ae)
        for values, start, end in (
            (map_st, self.q_st_start, self.q_st_end),
            (map_ae, self.q_ae_start, self.q_ae_end),
        ):
            q = torch.quantile(
                values.flatten(), torch.tensor([Q_START, Q_END], dtype=values.dtype, device=values.device)
            )
            start.copy_(q[0])
            end.copy_(torch.maximum(q[1], q[0] + 1e-6))
        self.train(was_training)


def _build(model_size: Literal["s", "m"], seed: int) -> EfficientAD:
    torch.manual_seed(seed)
    model = EfficientAD(model_size).eval()
    # One seeded stand-in image in [0, 1] gives the normalisation statistics a plausible scale
    # (real values come from training on the data set; speed does not depend on them).
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand((1, 3, model.image_size, model.image_size), generator=generator)
    model.calibrate(image)
    return model.eval()


def build_efficientad_s(seed: int) -> nn.Module:
    """EfficientAD-S (PDN-S teacher and student, autoencoder) for 3x256x256, in eval mode."""
    return _build("s", seed)


def build_efficientad_m(seed: int) -> nn.Module:
    """EfficientAD-M (PDN-M teacher and student, autoencoder) for 3x256x256, in eval mode."""
    return _build("m", seed)
