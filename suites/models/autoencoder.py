"""Plain convolutional autoencoder: this project's reconstruction baseline for anomaly detection.

Many inspection lines run the simplest reconstruction method there is: train a convolutional
autoencoder on good images only, and flag the pixels it fails to reconstruct. This module is
that baseline, in a small conventional design of this project's own, not a reproduction of a
particular paper:

* encoder: four 4x4 convolutions with stride 2 and padding 1 (3 -> 32 -> 64 -> 128 -> 256
  channels, input / 16), each followed by batch norm and LeakyReLU (slope 0.2);
* bottleneck: a 1x1 convolution to ``latent_channels`` (64 by default), linear; the latent code
  is a ``latent_channels`` x (input / 16)^2 grid, 64 x 16 x 16 at 256;
* decoder, the mirror image: a 1x1 convolution back to 256 channels with batch norm and
  LeakyReLU, three 4x4 transposed convolutions with stride 2 (256 -> 128 -> 64 -> 32), each with
  batch norm and LeakyReLU, and a last 4x4 transposed convolution to 3 channels with a sigmoid, so
  that the reconstruction lies in [0, 1] like the input;
* anomaly map: the per-pixel squared reconstruction error averaged over the three colour
  channels, smoothed by a Gaussian blur with sigma 4 (a fixed 33x33 kernel, reflect padding: the
  filter anomalib applies to the maps of several of its models, ``GaussianBlur2d`` in
  ``src/anomalib/models/components/filters/blur.py``, Apache-2.0); image score: the maximum of the
  map.

Why not a published architecture: anomalib (the reference library for the other models of this
suite) has no plain convolutional autoencoder. The best-known one in industrial inspection, the
CAE of Bergmann et al. ("Improving Unsupervised Defect Segmentation by Applying Structural
Similarity to Autoencoders", VISAPP 2019; the AE-L2 and AE-SSIM baselines of the MVTec AD paper,
CVPR 2019), is defined by a layer table for 128x128 patches with a dense 8x8 bottleneck and has
no public reference implementation from its authors; the extension to 256x256 images used for
MVTec AD is described only in prose, and third-party reimplementations differ. The design here
belongs to the same family (stride-2 4x4 convolutions, LeakyReLU 0.2, mirrored transposed
convolutions, per-pixel L2 residual map) and is simple enough to be reproduced from this
docstring. Its layer choices (batch norm, the 1x1 convolutional bottleneck, the widths) are this
project's, chosen as typical of the autoencoders that users write for themselves.

Weights are PyTorch's default initialisation under ``torch.manual_seed(seed)``. The batch-norm
running statistics, which in a real deployment come from training on good images, are set by
``calibrate`` from one forward pass on a seeded random image (the reconstruction and the map then
have a plausible scale); latency does not depend on them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from bench.suites.models.blur import GaussianBlur

__all__ = [
    "ConvAutoencoder",
    "build_conv_autoencoder",
    "INPUT_NORM",
    "ENCODER_WIDTHS",
]

INPUT_NORM = {"build_conv_autoencoder": "none"}

ENCODER_WIDTHS = (32, 64, 128, 256)
LEAKY_SLOPE = 0.2


def _down(c_in: int, c_out: int) -> nn.Sequential:
    # No conv bias before batch norm: the norm's shift makes it redundant.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(LEAKY_SLOPE),
    )


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(LEAKY_SLOPE),
    )


class ConvAutoencoder(nn.Module):
    """The baseline autoencoder with its anomaly map and score.

    ``forward(x)`` takes a float32 batch ``[B, 3, H, W]``, an RGB image in [0, 1] (no ImageNet
    normalisation), H and W multiples of 16 and at least 32, and returns ``(anomaly_map
    [B, 1, H, W], score [B])``.
    """

    def __init__(
        self,
        input_size: int = 256,
        latent_channels: int = 64,
        widths: tuple[int, ...] = ENCODER_WIDTHS,
        blur_sigma: float = 4.0,
    ) -> None:
        super().__init__()
        if not math.isfinite(blur_sigma) or blur_sigma <= 0:
            raise ValueError(f"blur_sigma must be positive, not {blur_sigma}")
        factor = 2 ** len(widths)
        if input_size % factor or input_size < max(factor, 32):
            raise ValueError(f"input_size must be a multiple of {factor} and at least 32, not {input_size}")
        self.blur = GaussianBlur(blur_sigma)
        # Reflect padding cannot reach further than the map is wide (16 pixels for sigma 4).
        if self.blur.pad >= input_size:
            raise ValueError(f"blur_sigma {blur_sigma} needs an input larger than {2 * self.blur.pad}")
        self.input_size = input_size
        self.encoder = nn.Sequential(*(_down(a, b) for a, b in zip((3, *widths[:-1]), widths)))
        self.bottleneck = nn.Conv2d(widths[-1], latent_channels, kernel_size=1)
        self.expand = nn.Sequential(
            nn.Conv2d(latent_channels, widths[-1], kernel_size=1, bias=False),
            nn.BatchNorm2d(widths[-1]),
            nn.LeakyReLU(LEAKY_SLOPE),
        )
        mirrored = widths[::-1]
        self.decoder = nn.Sequential(*(_up(a, b) for a, b in zip(mirrored[:-1], mirrored[1:])))
        self.out_conv = nn.ConvTranspose2d(widths[0], 3, kernel_size=4, stride=2, padding=1)

    def reconstruct(self, x: Tensor) -> Tensor:
        """The autoencoder's reconstruction of ``x``, in [0, 1]."""
        z = self.bottleneck(self.encoder(x))
        return torch.sigmoid(self.out_conv(self.decoder(self.expand(z))))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        error = ((x - self.reconstruct(x)) ** 2).mean(dim=1, keepdim=True)
        anomaly_map = self.blur(error)
        return anomaly_map, anomaly_map.amax(dim=(1, 2, 3))

    @torch.no_grad()
    def calibrate(self, images: Tensor) -> None:
        """Set every batch norm's running statistics to those of its input on ``images`` (one
        training-mode pass with cumulative averaging after a reset)."""
        was_training = self.training
        norms = [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        self.train()
        self.reconstruct(images)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        self.train(was_training)


def build_conv_autoencoder(
    seed: int,
    input_size: int = 256,
    latent_channels: int = 64,
    blur_sigma: float = 4.0,
) -> nn.Module:
    """The plain convolutional autoencoder baseline (widths 32-64-128-256, 64 latent channels) in
    eval mode.

    Input: ``[B, 3, input_size, input_size]`` float32, an RGB image in [0, 1]; no ImageNet
    normalisation (``INPUT_NORM["build_conv_autoencoder"] == "none"``). Output: ``(anomaly_map
    [B, 1, H, W], score [B])``.
    """
    torch.manual_seed(seed)
    model = ConvAutoencoder(input_size, latent_channels, ENCODER_WIDTHS, blur_sigma)
    # A seeded stand-in image sets the batch-norm statistics (real ones come from training).
    generator = torch.Generator().manual_seed(seed)
    model.calibrate(torch.rand((1, 3, input_size, input_size), generator=generator))
    return model.eval()
