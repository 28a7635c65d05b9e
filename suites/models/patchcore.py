"""PatchCore: anomaly detection by nearest-neighbour search in a memory bank of patch features.

PatchCore (Roth, Pemula, Zepeda, Schölkopf, Brox, Gehler: "Towards Total Recall in Industrial
Anomaly Detection", CVPR 2022, arXiv:2106.08265) describes every patch of an image with mid-level
features of an ImageNet backbone and scores it by its distance to the nearest patch feature of the
normal training images, kept in a memory bank that a greedy coreset reduces to a fraction of the
training patches. Inference (what ``PatchCore.forward`` does):

1. Wide ResNet-50-2 up to layer3; the outputs of layer2 (512 channels, stride 8) and layer3
   (1024 channels, stride 16);
2. local neighbourhood aggregation: a 3x3 average pool (stride 1, padding 1) of each stage;
3. layer3 bilinearly upsampled to layer2's grid and concatenated: 1536 features per patch
   (28x28 = 784 patches for a 224x224 image);
4. for every patch, the euclidean distance to its nearest memory-bank row, from
   ``|x|^2 - 2 x.y + |y|^2`` (matrix products, clamped at 0, square root), as anomalib computes it
   so that it exports to ONNX (no ``cdist``);
5. anomaly map: the patch distances on the grid, upsampled to the input size and blurred with a
   Gaussian of sigma 4 (33x33 kernel, reflect padding);
6. image score, the paper's reweighting (Eq. 7): take the patch with the largest distance s*, its
   nearest bank row m*, the ``num_neighbors`` (9) bank rows nearest to m* (m* included); the score
   is ``(1 - softmax(distances of the patch to those rows)[m*]) * s*``.

Written for this project from the paper and these references, read for their facts (layers,
pooling, feature sizes, distance, map and score computation); no code was copied:

* anomalib, ``src/anomalib/models/image/patchcore/torch_model.py`` and ``anomaly_map.py``,
  ``src/anomalib/models/components/filters/blur.py`` (github.com/openvinotoolkit/anomalib, now
  open-edge-platform/anomalib), licence Apache-2.0 (SPDX headers of those files);
* the authors' code, amazon-science/patchcore-inspection, ``src/patchcore/patchcore.py`` and
  ``common.py``, licence Apache-2.0 (its README).

Where the references differ, this module follows anomalib:

* feature size: the authors' code maps each stage's 3x3 patch (C x 3 x 3 values) to 1024 values
  with an adaptive average pool over the flattened patch, then pools the two stages' vectors to a
  1024-dimensional target; anomalib (and this module) average-pools 3x3 and concatenates
  512 + 1024 = 1536 channels. 1536 is what the PatchCore users of anomalib run, and it makes the
  nearest-neighbour search (most of the arithmetic) 1.5 times larger than the 1024 variant;
* distance: the authors search with faiss ``IndexFlatL2``, which returns squared distances;
  anomalib takes the square root; so does this module;
* image score: the authors' code scores an image by its largest patch distance (their
  ``anomaly_scorer_num_nn=1``, no reweighting); anomalib implements the paper's reweighting with
  ``num_neighbors=9``, as here (``num_neighbors=1`` gives the plain maximum);
* map upsampling: the authors upsample bilinearly and blur with ``scipy.ndimage.gaussian_filter``;
  anomalib upsamples with ``F.interpolate``'s default (nearest) and blurs with a 33x33 Gaussian
  convolution with reflect padding. Nearest is the default here (``map_upsampling="bilinear"``
  gives the authors' choice).

Input: 224x224 (the paper and both references resize to 256 and centre-crop 224), normalised
with the ImageNet mean and standard deviation outside the model.

Weights are PyTorch's default initialisation under ``torch.manual_seed(seed)``. The memory bank,
which the real method fills with a 10% coreset of a category's training patches, has the size of
such a coreset for an average MVTec AD category (``default_memory_bank_size``) and seeded random
rows with the per-channel mean and spread of the random backbone's features on a seeded random
image, clamped at 0 like the real (post-ReLU, averaged) features: the distances then have a
plausible scale. Speed does not depend on the values.

The forward pass has no data-dependent Python control flow; argmax, gather, index_select and
topk with a fixed k all export to ONNX (dynamic batch axis).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.suites.models.backbones import STAGE_CHANNELS, wide_resnet50_2_features
from bench.suites.models.blur import GaussianBlur

__all__ = [
    "PatchCore",
    "build_patchcore",
    "default_memory_bank_size",
    "feature_grid",
    "euclidean_distance",
    "INPUT_NORM",
    "MVTEC_AD_TRAIN_IMAGES",
    "MVTEC_AD_CATEGORIES",
    "CORESET_SAMPLING_RATIO",
]

INPUT_NORM = {"build_patchcore": "imagenet"}

# MVTec AD: 3629 defect-free training images over 15 categories (5354 images in all, 1725 of them
# for testing), about 242 training images per category.
MVTEC_AD_TRAIN_IMAGES = 3629
MVTEC_AD_CATEGORIES = 15
# Fraction of the training patches the coreset keeps (PatchCore-10%, anomalib's default).
CORESET_SAMPLING_RATIO = 0.1
LAYERS = ("layer2", "layer3")
EMBEDDING_DIM = sum(STAGE_CHANNELS["wide_resnet50_2"][name] for name in LAYERS)  # 512 + 1024
LAYER2_STRIDE = 8


def feature_grid(input_size: int, stride: int = LAYER2_STRIDE) -> int:
    """Side of a ResNet stage's output grid: every stride-2 step (stem convolution, max pool,
    first block of a stage, each padded) maps n to ceil(n / 2)."""
    return math.ceil(input_size / stride)


def default_memory_bank_size(input_size: int = 224) -> int:
    """Rows a 10% coreset keeps for an average MVTec AD category at ``input_size``.

    Training patches of a category = its training images (3629 / 15 on average) times the patches
    per image (layer2's grid: 28 x 28 = 784 at 224). Truncated, as anomalib's coreset size is.
    At 224: 3629 / 15 * 784 * 0.1 = 18967; at 256: 3629 / 15 * 1024 * 0.1 = 24773.
    """
    patches_per_image = feature_grid(input_size) ** 2
    images_per_category = MVTEC_AD_TRAIN_IMAGES / MVTEC_AD_CATEGORIES
    return int(images_per_category * patches_per_image * CORESET_SAMPLING_RATIO)


def euclidean_distance(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise euclidean distances ``[..., n, m]`` between rows of ``x [..., n, d]`` and
    ``y [..., m, d]`` through matrix products (exportable, unlike ``cdist``)."""
    x_sq = x.pow(2).sum(dim=-1, keepdim=True)
    y_sq = y.pow(2).sum(dim=-1, keepdim=True).transpose(-2, -1)
    squared = x_sq - 2.0 * torch.matmul(x, y.transpose(-2, -1)) + y_sq
    # Rounding can make the squared distance of (nearly) equal rows slightly negative.
    return squared.clamp_min(0.0).sqrt()


class PatchCore(nn.Module):
    """Wide ResNet-50-2 patch features, memory-bank nearest neighbours, map and reweighted score.

    ``forward(x)`` takes an ImageNet-normalised float32 batch ``[B, 3, input_size, input_size]``
    and returns ``(anomaly_map [B, 1, input_size, input_size], score [B])``.
    """

    def __init__(
        self,
        input_size: int = 224,
        memory_bank_size: int | None = None,
        num_neighbors: int = 9,
        map_upsampling: str = "nearest",
        sigma: float = 4.0,
    ) -> None:
        super().__init__()
        if input_size <= int(4.0 * sigma + 0.5):
            raise ValueError(f"input_size {input_size} is too small for the reflect padding of a sigma-{sigma} blur")
        if map_upsampling not in ("nearest", "bilinear"):
            raise ValueError(f"map_upsampling must be 'nearest' or 'bilinear', not {map_upsampling!r}")
        if num_neighbors < 1:
            raise ValueError("num_neighbors must be at least 1")
        self.input_size = input_size
        self.grid = feature_grid(input_size)
        self.memory_bank_size = (
            default_memory_bank_size(input_size) if memory_bank_size is None else memory_bank_size
        )
        self.num_neighbors = num_neighbors
        self.map_upsampling = map_upsampling
        self.backbone = wide_resnet50_2_features(LAYERS)
        self.feature_pooler = nn.AvgPool2d(kernel_size=3, stride=1, padding=1)
        self.blur = GaussianBlur(sigma)
        # Fitted in the real method (coreset of the training patches); see fill_memory_bank.
        self.register_buffer("memory_bank", torch.zeros(self.memory_bank_size, EMBEDDING_DIM))

    def embed(self, x: Tensor) -> Tensor:
        """Locally aggregated patch features ``[B, 1536, grid, grid]``."""
        layer2, layer3 = (self.feature_pooler(f) for f in self.backbone(x))
        layer3 = F.interpolate(layer3, size=layer2.shape[-2:], mode="bilinear")
        return torch.cat((layer2, layer3), dim=1)

    def image_score(self, patches: Tensor, patch_scores: Tensor, locations: Tensor) -> Tensor:
        """The paper's reweighted image score from ``patches [B, P, D]``, each patch's nearest
        distance ``[B, P]`` and the index of its nearest bank row ``[B, P]``."""
        if self.num_neighbors == 1:
            return patch_scores.amax(dim=1)
        bank = self.memory_bank
        worst = patch_scores.argmax(dim=1, keepdim=True)  # the most anomalous patch, [B, 1]
        s_star = patch_scores.gather(1, worst).squeeze(1)
        m_test = patches.gather(1, worst.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))  # [B, 1, D]
        m_star = bank.index_select(0, locations.gather(1, worst).squeeze(1))  # [B, D]
        k = min(self.num_neighbors, self.memory_bank_size)
        # The k bank rows nearest to m* (m* itself first, at distance 0): its neighbourhood N_b(m*).
        support = euclidean_distance(m_star, bank).topk(k, dim=1, largest=False).indices  # [B, k]
        support_rows = bank.index_select(0, support.flatten()).unflatten(0, (-1, k))  # [B, k, D]
        distances = euclidean_distance(m_test, support_rows).squeeze(1)  # [B, k]
        weight = 1.0 - F.softmax(distances, dim=1)[:, 0]
        return weight * s_star

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        embedding = self.embed(x)
        patches = embedding.flatten(2).transpose(1, 2)  # [B, P, D], row-major over the grid
        patch_scores, locations = euclidean_distance(patches, self.memory_bank).min(dim=2)
        score = self.image_score(patches, patch_scores, locations)
        anomaly_map = patch_scores.unflatten(1, (self.grid, self.grid)).unsqueeze(1)
        size = (self.input_size, self.input_size)
        if self.map_upsampling == "nearest":
            anomaly_map = F.interpolate(anomaly_map, size=size, mode="nearest")
        else:
            anomaly_map = F.interpolate(anomaly_map, size=size, mode="bilinear", align_corners=False)
        return self.blur(anomaly_map), score

    @torch.no_grad()
    def fill_memory_bank(self, seed: int) -> None:
        """Seeded stand-in for the fitted memory bank, with the scale of real features.

        The per-channel mean and standard deviation of the backbone's patch features on one
        seeded standard-normal image (an ImageNet-normalised image has about that spread) set a
        Gaussian per channel; rows are drawn from it and clamped at 0 (features are averages of
        ReLU outputs).
        """
        if self.memory_bank.is_meta:
            return
        generator = torch.Generator().manual_seed(seed)
        was_training = self.training
        self.eval()
        image = torch.randn((1, 3, self.input_size, self.input_size), generator=generator)
        features = self.embed(image).flatten(2)[0]  # [D, P]
        mean, std = features.mean(dim=1), features.std(dim=1)
        rows = torch.randn(self.memory_bank.shape, generator=generator)
        self.memory_bank.copy_((mean + std * rows).clamp_min(0.0))
        self.train(was_training)


def build_patchcore(
    seed: int,
    input_size: int = 224,
    memory_bank_size: int | None = None,
    num_neighbors: int = 9,
) -> nn.Module:
    """PatchCore (Wide ResNet-50-2, layers 2+3, 1536-dim patches), in eval mode.

    Input: ``[B, 3, input_size, input_size]`` float32, ImageNet-normalised outside the model.
    ``memory_bank_size`` defaults to ``default_memory_bank_size(input_size)`` (18967 at 224:
    a 10% coreset of an average MVTec AD category's training patches).
    """
    torch.manual_seed(seed)
    model = PatchCore(input_size=input_size, memory_bank_size=memory_bank_size, num_neighbors=num_neighbors)
    model.eval()
    model.fill_memory_bank(seed)
    return model.eval()
