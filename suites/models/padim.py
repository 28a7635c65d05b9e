"""PaDiM: anomaly detection with a Gaussian model of the patch features at every position.

PaDiM (Defard, Setkov, Loesch, Audigier: "PaDiM: a Patch Distribution Modeling Framework for
Anomaly Detection and Localization", ICPR 2021 workshops, arXiv:2011.08785) embeds every patch
with the features of three stages of an ImageNet backbone and models, per position of the feature
grid, the embeddings of the normal training images as a multivariate Gaussian. A test patch scores
its Mahalanobis distance to the Gaussian of its position. Inference (``PaDiM.forward``):

1. backbone stages layer1, layer2, layer3: ResNet-18 (64 + 128 + 256 = 448 channels) or
   Wide ResNet-50-2 (256 + 512 + 1024 = 1792 channels); layer1 has stride 4 (a 64x64 grid for a
   256x256 image);
2. layer2 and layer3 upsampled to layer1's grid with nearest-neighbour interpolation and
   concatenated;
3. a fixed random subset of the channels (100 for ResNet-18, 550 for Wide ResNet-50-2, the
   paper's sizes), chosen once by a seeded random permutation and applied with ``index_select``;
4. at every position p, ``sqrt((x_p - mu_p)^T Sigma_p^-1 (x_p - mu_p))`` with the fitted mean
   ``mean [C, H*W]`` and inverse covariance ``inv_covariance [H*W, C, C]`` (anomalib's
   MultiVariateGaussian layout), as one batched matrix product over the positions;
5. the distance map bilinearly upsampled to the input size and blurred with a Gaussian of sigma 4
   (33x33 kernel, reflect padding); the image score is the map's maximum.

The inverse covariance is what makes PaDiM memory-bound: at 256x256 with Wide ResNet-50-2 it is
4096 x 550 x 550 float32 = 4.96 GB, read once per batch for about 2.5 GFLOPs per image.

Written for this project from the paper and these references, read for their facts (stages,
channel counts, subset sizes, upsampling modes, distance, map and score); no code was copied:

* anomalib, ``src/anomalib/models/image/padim/torch_model.py`` and ``anomaly_map.py``,
  ``src/anomalib/models/components/stats/multi_variate_gaussian.py`` and
  ``components/filters/blur.py`` (github.com/openvinotoolkit/anomalib, now
  open-edge-platform/anomalib), licence Apache-2.0 (SPDX headers of those files);
* xiahaifeng1995/PaDiM-Anomaly-Detection-Localization-master, ``main.py`` and
  ``datasets/mvtec.py``: the widely used unofficial implementation (the authors published no
  code); read for facts only, its licence not checked.

Where the references differ:

* input size: the paper and xiahaifeng1995 resize to 256 and centre-crop 224 (56x56 grid);
  anomalib's default pre-processing resizes to 256x256 without a crop (64x64 grid). The default
  here is 256, anomalib's (``input_size=224`` gives the paper's);
* channel subset: both draw it at random once (``random.sample``); here a seeded
  ``torch.randperm``, so the subset is fixed by the seed and stored as the ``idx`` buffer;
* upsampling of layer2 and layer3: anomalib interpolates (nearest); xiahaifeng1995 copies each
  coarse cell into its block with unfold/fold, which is the same for the integer factors here;
* distance: xiahaifeng1995 loops over positions with scipy's ``mahalanobis``; anomalib (and this
  module) batches the positions in one matrix product;
* score: the maximum of the blurred map in both; xiahaifeng1995 then min-max normalises over the
  test set, a data-set-level step outside the model, not done here.

Input: ImageNet-normalised outside the model.

Weights are PyTorch's default initialisation under ``torch.manual_seed(seed)``. The Gaussian
statistics, which the real method fits on a category's training images, are seeded stand-ins of
the right shape, dtype and numerical kind (see ``PaDiM.fill_statistics``): a per-position mean
near the random backbone's feature statistics and a distinct symmetric positive definite inverse
covariance per position. Speed does not depend on the values.

ONNX: the forward pass exports with a dynamic batch axis; a model whose buffers exceed the 2 GB
protobuf limit (the Wide ResNet-50-2 variant above about 180x180 input) needs the weights stored
as external data, which ``torch.onnx.export(..., dynamo=True)`` does (``external_data=True``, its
default).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.suites.models.backbones import STAGE_CHANNELS, resnet18_features, wide_resnet50_2_features
from bench.suites.models.blur import GaussianBlur
from bench.suites.models.patchcore import MVTEC_AD_CATEGORIES, MVTEC_AD_TRAIN_IMAGES

__all__ = [
    "PaDiM",
    "build_padim_resnet18",
    "build_padim_wrn50",
    "INPUT_NORM",
    "N_FEATURES",
    "COVARIANCE_REGULARISATION",
]

INPUT_NORM = {"build_padim_resnet18": "imagenet", "build_padim_wrn50": "imagenet"}

LAYERS = ("layer1", "layer2", "layer3")
# Size of the random channel subset (the paper's, anomalib's defaults).
N_FEATURES = {"resnet18": 100, "wide_resnet50_2": 550}
_BACKBONES = {"resnet18": resnet18_features, "wide_resnet50_2": wide_resnet50_2_features}
# Added to the diagonal of every fitted covariance by the references before inverting it.
COVARIANCE_REGULARISATION = 0.01
LAYER1_STRIDE = 4
# Positions whose inverse covariance is written at once while filling the buffer; bounds the
# temporary memory to a chunk (77 MB for 550 channels).
_FILL_CHUNK = 64


class PaDiM(nn.Module):
    """Backbone stages 1-3, channel subset, per-position Mahalanobis distance, map and score.

    ``forward(x)`` takes an ImageNet-normalised float32 batch ``[B, 3, input_size, input_size]``
    and returns ``(anomaly_map [B, 1, input_size, input_size], score [B])``.
    ``seed`` draws the channel subset and the stand-in statistics.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        input_size: int = 256,
        n_features: int | None = None,
        sigma: float = 4.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if backbone not in _BACKBONES:
            raise ValueError(f"backbone must be one of {sorted(_BACKBONES)}, not {backbone!r}")
        total = sum(STAGE_CHANNELS[backbone][name] for name in LAYERS)
        n_features = N_FEATURES[backbone] if n_features is None else n_features
        if not 0 < n_features <= total:
            raise ValueError(f"n_features must be in 1..{total} for {backbone}, not {n_features}")
        if input_size <= int(4.0 * sigma + 0.5):
            raise ValueError(f"input_size {input_size} is too small for the reflect padding of a sigma-{sigma} blur")
        self.backbone_name = backbone
        self.input_size = input_size
        self.n_features = n_features
        self.grid = math.ceil(input_size / LAYER1_STRIDE)
        positions = self.grid * self.grid
        self.backbone = _BACKBONES[backbone](LAYERS)
        self.blur = GaussianBlur(sigma)
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("idx", torch.randperm(total, generator=generator)[:n_features])
        # Fitted in the real method; uninitialised here until fill_statistics writes them (the
        # inverse covariance can be several GB: it is written once, in place).
        self.register_buffer("mean", torch.empty(n_features, positions))
        self.register_buffer("inv_covariance", torch.empty(positions, n_features, n_features))
        self.fill_statistics(seed)

    def embed(self, x: Tensor) -> Tensor:
        """Channel subset of the concatenated stages on layer1's grid, ``[B, C, grid, grid]``."""
        layer1, layer2, layer3 = self.backbone(x)
        size = (self.grid, self.grid)
        embedding = torch.cat(
            (
                layer1,
                F.interpolate(layer2, size=size, mode="nearest"),
                F.interpolate(layer3, size=size, mode="nearest"),
            ),
            dim=1,
        )
        return embedding.index_select(1, self.idx)

    def distance(self, embedding: Tensor) -> Tensor:
        """Mahalanobis distance at every position, ``[B, 1, grid, grid]``."""
        delta = (embedding.flatten(2) - self.mean).permute(2, 0, 1)  # [P, B, C]
        # One [B, C] x [C, C] product per position, batched over the P positions.
        squared = (torch.matmul(delta, self.inv_covariance) * delta).sum(dim=2)  # [P, B]
        distances = squared.clamp_min(0.0).sqrt().transpose(0, 1)
        return distances.unflatten(1, (self.grid, self.grid)).unsqueeze(1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        distances = self.distance(self.embed(x))
        size = (self.input_size, self.input_size)
        anomaly_map = self.blur(F.interpolate(distances, size=size, mode="bilinear", align_corners=False))
        return anomaly_map, anomaly_map.amax(dim=(1, 2, 3))

    @torch.no_grad()
    def fill_statistics(self, seed: int) -> None:
        """Seeded stand-ins for the fitted mean and inverse covariance.

        Scale: the per-channel mean and standard deviation ``s`` of the backbone's embedding of
        one seeded standard-normal image. Mean: that channel mean plus half a standard deviation
        of seeded noise per position, clamped at 0 (the features are ReLU outputs).
        Covariance: as the reference fits it, a sample covariance of n = 3629 / 15 (the training
        images of an average MVTec AD category) seeded vectors with spread ``s``, plus 0.01 I;
        inverted once (Cholesky, float64). That one SPD matrix S is then made distinct per
        position by a congruence with a seeded positive diagonal D_p, ``D_p S D_p``, which keeps
        it symmetric positive definite and costs one pass over the buffer instead of thousands
        of inversions; it is written in chunks into the preallocated buffer, so building needs
        little more memory than the buffer itself.
        """
        if self.inv_covariance.is_meta:
            return
        generator = torch.Generator().manual_seed(seed)
        was_training = self.training
        self.eval()
        image = torch.randn((1, 3, self.input_size, self.input_size), generator=generator)
        features = self.embed(image).flatten(2)[0]  # [C, P]
        channel_mean, channel_std = features.mean(dim=1), features.std(dim=1)
        noise = torch.randn(self.mean.shape, generator=generator)
        self.mean.copy_((channel_mean[:, None] + 0.5 * channel_std[:, None] * noise).clamp_min(0.0))

        c = self.n_features
        n_images = round(MVTEC_AD_TRAIN_IMAGES / MVTEC_AD_CATEGORIES)
        samples = torch.randn((c, n_images), generator=generator, dtype=torch.float64)
        samples = samples * channel_std.double()[:, None]
        samples = samples - samples.mean(dim=1, keepdim=True)
        covariance = samples @ samples.T / (n_images - 1)
        covariance += COVARIANCE_REGULARISATION * torch.eye(c, dtype=torch.float64)
        inverse = torch.cholesky_inverse(torch.linalg.cholesky(covariance))
        inverse = (0.5 * (inverse + inverse.T)).to(torch.float32)
        # Per-position channel scales around 1 (log-normal): distinct, positive.
        scales = torch.exp(0.25 * torch.randn((self.inv_covariance.shape[0], c), generator=generator))
        for start in range(0, scales.shape[0], _FILL_CHUNK):
            d = scales[start : start + _FILL_CHUNK]
            target = self.inv_covariance[start : start + _FILL_CHUNK]
            # The outer product first: d_i * d_j == d_j * d_i exactly, so each matrix stays
            # exactly symmetric.
            torch.mul(d[:, :, None], d[:, None, :], out=target)
            target.mul_(inverse)
        self.train(was_training)


def _build(backbone: str, seed: int, input_size: int, n_features: int | None) -> nn.Module:
    torch.manual_seed(seed)
    model = PaDiM(backbone=backbone, input_size=input_size, n_features=n_features, seed=seed)
    return model.eval()


def build_padim_resnet18(seed: int, input_size: int = 256, n_features: int = N_FEATURES["resnet18"]) -> nn.Module:
    """PaDiM with ResNet-18 stages 1-3 (448 channels, 100 kept), in eval mode.

    Input: ``[B, 3, input_size, input_size]`` float32, ImageNet-normalised outside the model.
    At 256: 64x64 positions, inverse covariance 4096 x 100 x 100 float32 (164 MB).
    """
    return _build("resnet18", seed, input_size, n_features)


def build_padim_wrn50(
    seed: int, input_size: int = 256, n_features: int = N_FEATURES["wide_resnet50_2"]
) -> nn.Module:
    """PaDiM with Wide ResNet-50-2 stages 1-3 (1792 channels, 550 kept), in eval mode.

    Input: ``[B, 3, input_size, input_size]`` float32, ImageNet-normalised outside the model.
    At 256: 64x64 positions, inverse covariance 4096 x 550 x 550 float32 (4.96 GB).
    """
    return _build("wide_resnet50_2", seed, input_size, n_features)
