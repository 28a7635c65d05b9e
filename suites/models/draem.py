"""DRAEM: a discriminatively trained reconstruction embedding for surface anomaly detection.

DRAEM (Zavrtanik, Kristan, Skočaj: "DRAEM - A discriminatively trained reconstruction embedding
for surface anomaly detection", ICCV 2021, arXiv:2108.07610) is trained on good images with
synthetic anomalies pasted in through Perlin-noise masks, and at inference runs two networks:

* a reconstructive sub-network, an encoder-decoder without skip connections (base width 128)
  that maps an image to an anomaly-free version of itself;
* a discriminative sub-network, a U-Net (base width 64) that takes the image and its
  reconstruction stacked along the channels (6 channels) and predicts two logits per pixel,
  normal and anomalous.

Inference (what anomalib's ``DraemModel.forward`` does in eval mode): softmax over the two
logits; the anomaly map is the probability of the anomalous class, at the input resolution (both
networks are fully convolutional and end at the input size, so no upsampling or blur follows);
the image score is the maximum of that map.

Written for this project from the published architecture and from these references, read for
their facts (layer widths, kernel sizes, pooling, upsampling mode, skip connections, the map and
score); no code was copied:

* the paper (architecture figure and section 3);
* anomalib, ``src/anomalib/models/image/draem/torch_model.py`` (github.com/openvinotoolkit/
  anomalib, now open-edge-platform/anomalib): Apache-2.0 for Intel's changes, the sub-networks
  being derived from the authors' code under MIT (``draem/LICENSE`` in that folder says both);
* VitjanZ/DRAEM (github.com/VitjanZ/DRAEM), the authors' code, ``model_unet.py`` and
  ``test_DRAEM.py``; licence MIT (its LICENSE file).

Where the references differ, this module follows anomalib's current torch model:

* image score: anomalib takes the maximum of the anomaly map (``torch.amax`` over the spatial
  axes). The authors' evaluation script first smooths the map with a 21x21 mean filter (stride 1,
  zero padding 10, padding counted in the mean) and takes the maximum of that. The default here
  is anomalib's; ``score_pooling=True`` gives the authors' score, as an ``avg_pool2d`` that
  exports to ONNX ``AveragePool``. The map itself is the same either way;
* input order of the discriminative network: anomalib stacks (image, reconstruction), the
  authors' scripts (reconstruction, image). Only the meaning of the first-layer weights differs;
  the shapes and the cost are the same. Here: (image, reconstruction), as anomalib;
* colour order and normalisation: the authors read images with OpenCV (BGR) and scale them to
  [0, 1]; anomalib gives RGB, and its current ``Draem.configure_pre_processor`` only resizes
  (no ImageNet normalisation; some earlier anomalib releases fell back to the library's default
  pre-processor, which does normalise). Here the input is an RGB image scaled to [0, 1], not
  normalised.

anomalib's optional SSPCAB block (an alternative last encoder stage of the reconstructive network,
off by default) is not built; the default DRAEM has a plain double convolution there.

Weights are PyTorch's default initialisation under ``torch.manual_seed(seed)``. The batch-norm
running statistics, which in the real method come from training, keep PyTorch's initial values
(mean 0, variance 1): deterministic, of the right shape, and numerically benign. Statistics
taken from one forward pass on a seeded image were tried and rejected: with random weights and
every layer renormalised to unit scale, the 51-layer network becomes chaotic (logits near 150,
float32 results 2e-4 away from float64 ones in the map), so no two correct backends could agree
to the tolerances this project checks. With the initial statistics the map sits near 0.49 and
float32 backends agree to ~1e-7. Latency does not depend on either choice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ReconstructiveSubNetwork",
    "DiscriminativeSubNetwork",
    "DRAEM",
    "build_draem",
    "INPUT_NORM",
    "SCORE_POOL_SIZE",
]

INPUT_NORM = {"build_draem": "none"}

# Mean-filter window of the authors' image score (test_DRAEM.py); anomalib does not pool.
SCORE_POOL_SIZE = 21


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


def double_conv(c_in: int, c_mid: int, c_out: int | None = None) -> nn.Sequential:
    """Two (3x3 conv, batch norm, ReLU) units: ``c_in -> c_mid -> c_out`` (``c_out`` defaults to
    ``c_mid``). The building block of every stage of both DRAEM sub-networks."""
    c_out = c_mid if c_out is None else c_out
    return nn.Sequential(*_conv_bn_relu(c_in, c_mid), *_conv_bn_relu(c_mid, c_out))


class UpConv(nn.Module):
    """Bilinear upsampling by 2 (``align_corners=True``, as both references) then one 3x3 conv,
    batch norm and ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(*_conv_bn_relu(c_in, c_out))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True))


class ReconstructiveSubNetwork(nn.Module):
    """Encoder-decoder that reconstructs the image (no skip connections).

    Encoder: five double-conv stages of widths ``b * (1, 2, 4, 8, 8)`` with a 2x2 max pool
    between consecutive stages (input / 16 at the bottleneck). Decoder: four stages, each an
    upsampling conv that keeps the width and a double conv whose second conv narrows it
    (8b -> 8b -> 8b -> 4b, then 4b -> 2b, 2b -> b, and b -> b in the last stage), and a final 3x3
    conv to ``out_channels`` with no activation.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, base_width: int = 128) -> None:
        super().__init__()
        b = base_width
        widths = (b, 2 * b, 4 * b, 8 * b, 8 * b)
        self.encoder = nn.ModuleList(
            double_conv(c_in, c_out) for c_in, c_out in zip((in_channels, *widths[:-1]), widths)
        )
        # (upsampling conv width, width after the double conv) for each decoder stage.
        stages = ((8 * b, 4 * b), (4 * b, 2 * b), (2 * b, b), (b, b))
        c = 8 * b
        self.up = nn.ModuleList()
        self.decode = nn.ModuleList()
        for width, c_out in stages:
            self.up.append(UpConv(c, width))
            self.decode.append(double_conv(width, width, c_out))
            c = c_out
        self.out_conv = nn.Conv2d(b, out_channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        for i, stage in enumerate(self.encoder):
            x = stage(x if i == 0 else F.max_pool2d(x, 2))
        for up, decode in zip(self.up, self.decode):
            x = decode(up(x))
        return self.out_conv(x)


class DiscriminativeSubNetwork(nn.Module):
    """U-Net that segments anomalies from the stacked image and reconstruction.

    Encoder: six double-conv stages of widths ``base * (1, 2, 4, 8, 8, 8)`` with a 2x2 max pool
    between consecutive stages (input / 32 at the deepest stage). Decoder: five times (upsample
    and conv to ``base * (8, 4, 2, 1, 1)``, concatenate the encoder stage of the same resolution,
    double conv), then a 3x3 conv to ``out_channels`` logits.
    """

    def __init__(self, in_channels: int = 6, out_channels: int = 2, base_width: int = 64) -> None:
        super().__init__()
        b = base_width
        widths = (b, 2 * b, 4 * b, 8 * b, 8 * b, 8 * b)
        self.encoder = nn.ModuleList(
            double_conv(c_in, c_out) for c_in, c_out in zip((in_channels, *widths[:-1]), widths)
        )
        self.up = nn.ModuleList()
        self.decode = nn.ModuleList()
        c = widths[-1]
        # Decoder stage k meets encoder stage 4 - k (the skip of the same resolution).
        for skip, width in zip(reversed(widths[:-1]), (8 * b, 4 * b, 2 * b, b, b)):
            self.up.append(UpConv(c, width))
            self.decode.append(double_conv(width + skip, width))
            c = width
        self.out_conv = nn.Conv2d(b, out_channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        skips: list[Tensor] = []
        for i, stage in enumerate(self.encoder):
            x = stage(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, decode in zip(self.up, self.decode):
            x = decode(torch.cat((up(x), skips.pop()), dim=1))
        return self.out_conv(x)


class DRAEM(nn.Module):
    """Reconstructive and discriminative sub-networks with DRAEM's inference path.

    ``forward(x)`` takes a float32 batch ``[B, 3, H, W]``, an RGB image scaled to [0, 1] (no
    ImageNet normalisation), H and W multiples of 32, and returns ``(anomaly_map [B, 1, H, W],
    score [B])``: the map is the softmax probability of the anomalous class, the score its maximum
    (``score_pooling=True``: the maximum after a 21x21 mean filter, as the authors' script).
    """

    def __init__(
        self,
        input_size: int = 256,
        recon_base_width: int = 128,
        disc_base_width: int = 64,
        score_pooling: bool = False,
    ) -> None:
        super().__init__()
        # Five 2x2 pools in the discriminative encoder (four in the reconstructive one), each
        # undone by an upsampling by 2 whose output must match its skip connection.
        if input_size < 32 or input_size % 32:
            raise ValueError(f"input_size must be a positive multiple of 32, not {input_size}")
        self.input_size = input_size
        self.score_pooling = score_pooling
        self.reconstructive = ReconstructiveSubNetwork(3, 3, recon_base_width)
        self.discriminative = DiscriminativeSubNetwork(6, 2, disc_base_width)

    def logits(self, x: Tensor) -> Tensor:
        """The discriminative network's two logits per pixel, ``[B, 2, H, W]``."""
        reconstruction = self.reconstructive(x)
        return self.discriminative(torch.cat((x, reconstruction), dim=1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        anomaly_map = torch.softmax(self.logits(x), dim=1)[:, 1:2]
        scored = anomaly_map
        if self.score_pooling:  # fixed at construction, not data-dependent
            # Zero padding counted in the mean, as torch's default in the authors' script.
            scored = F.avg_pool2d(
                anomaly_map, SCORE_POOL_SIZE, stride=1, padding=SCORE_POOL_SIZE // 2, count_include_pad=True
            )
        return anomaly_map, scored.amax(dim=(1, 2, 3))


def build_draem(
    seed: int,
    input_size: int = 256,
    recon_base_width: int = 128,
    disc_base_width: int = 64,
    score_pooling: bool = False,
) -> nn.Module:
    """DRAEM (reconstructive base width 128, discriminative base width 64) in eval mode.

    Input: ``[B, 3, input_size, input_size]`` float32, an RGB image in [0, 1]; no ImageNet
    normalisation (``INPUT_NORM["build_draem"] == "none"``). Output: ``(anomaly_map [B, 1, H, W],
    score [B])``. The widths are options only so that tests can build a small model.
    """
    torch.manual_seed(seed)
    # Batch-norm running statistics stay at their initial values (see the module docstring); a
    # trained model's would come from its training images.
    return DRAEM(input_size, recon_base_width, disc_base_width, score_pooling).eval()
