"""FastFlow: anomaly detection and localisation with 2D normalising flows on ResNet-18 features.

FastFlow (Yu, Zheng, Zhu, Yu, Li, Wang, Wu: "FastFlow: Unsupervised Anomaly Detection and
Localization via 2D Normalizing Flows", arXiv:2111.07677, 2021) maps the features of a frozen
ImageNet backbone to a standard normal distribution with one fully convolutional normalising flow
per feature scale. Normal patches get a high likelihood, anomalous ones a low one.

Architecture (anomalib's ResNet-18 configuration):

* backbone: ResNet-18 stem and layer1..layer3 (64, 128, 256 channels at strides 4, 8, 16; for a
  256x256 input grids of 64, 32 and 16), frozen;
* per scale, a LayerNorm over the whole [C, H, W] feature map with an elementwise affine (for
  ResNets anomalib trains these; for the transformer backbones it reuses their own norm);
* per scale, a flow of 8 steps. Each step is FrEIA's ``AllInOneBlock`` as anomalib configures it
  (``permute_soft=False``, ``affine_clamping=2.0``, the default ``global_affine_type="SOFTPLUS"``),
  written here in plain PyTorch (``FlowStep``):

  1. split the C channels into x1 (the first C - C//2) and x2 (the last C//2);
  2. a = 0.1 * subnet(x1), the subnet being conv(k) -> ReLU -> conv(k) from C - C//2 to
     ``hidden_ratio * (C - C//2)`` to 2 * (C//2) channels, with k = 3 on even steps and k = 1 on
     odd steps (anomalib's ``conv3x3_only=False``; ``hidden_ratio=1.0`` for ResNet-18);
  3. affine coupling with a soft-clamped log-scale: s = 2.0 * tanh(a[:, :C//2]),
     x2 <- x2 * exp(s) + a[:, C//2:];
  4. y = concat(x1, x2);
  5. global affine ("ActNorm"): y <- y * 0.1 * softplus_{beta=0.5}(g) + o, per channel, with g
     initialised so that the scale starts at 1.0 and o at 0;
  6. a fixed random channel permutation, applied (as the reference does) as a 1x1 convolution with
     a permutation matrix.

Inference (anomalib ``FastflowModel.forward`` in eval mode and its ``AnomalyMapGenerator``): for
each scale, log p = -0.5 * mean over channels of z^2, p = exp(log p); -p is bilinearly upsampled
(align_corners=False) to the input size; the anomaly map is the mean of the three upsampled maps.
The image score is the maximum of the map (``torch.amax`` over the spatial axes, as anomalib's
torch model computes ``pred_score``). The log-determinants of the Jacobians, which the reference
computes and discards at inference, are not computed by ``forward``: nothing in the outputs depends
on them (``forward_and_log_det`` of a step and of a scale's flow computes them, for training).

References, read for their facts (layer shapes, channel counts, kernel sizes, the map); no code
was copied:

* the paper (Section 3, Figure 2);
* anomalib (github.com/openvinotoolkit/anomalib, now open-edge-platform/anomalib),
  ``src/anomalib/models/image/fastflow/torch_model.py`` and ``anomaly_map.py``, licence
  Apache-2.0 (itself derived from gathierry/FastFlow, Apache-2.0), and
  ``src/anomalib/models/components/flow/all_in_one_block.py`` (from FrEIA, MIT);
* FrEIA (github.com/vislearn/FrEIA), ``FrEIA/modules/all_in_one_block.py``, licence MIT.

Where the references differ or leave a choice, this module follows:

* soft clamp: ``AllInOneBlock`` (FrEIA and anomalib alike) clamps the log-scale with
  ``clamp * tanh(.)``; the atan-based soft clamp (``clamp * 0.636 * atan(s / clamp)``) belongs to
  FrEIA's other coupling blocks (GLOW, RNVP), which FastFlow does not use. tanh here;
* padding of the subnet's convolutions: anomalib pads with ``nn.ZeroPad2d`` before an unpadded
  convolution, only to work around an ONNX export problem of ``padding="same"``; a convolution with
  ``padding=k // 2`` computes the same values without the extra copy, and exports fine;
* the permutation matrices: the reference stores the matrix and its inverse as frozen
  ``nn.Parameter``s (so they count as parameters there); here the forward matrix is a buffer and
  the inverse, used only to run the flow backwards, is not kept.

Weights are PyTorch's default initialisation under ``torch.manual_seed(seed)`` (the LayerNorms'
affine starts at weight 1, bias 0; the global scale at 1.0 as in the reference): speed does not
depend on their values. The permutations are drawn with ``torch.randperm`` under the same seed, as
the reference draws them.

The forward pass has no data-dependent control flow; the LayerNorm shapes (and so the input size)
are fixed at construction. It exports to ONNX with a dynamic batch axis.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.suites.models.backbones import STAGE_CHANNELS, STAGE_STRIDE, resnet18_features

__all__ = ["FlowStep", "FastFlowScale", "FastFlow", "build_fastflow", "INPUT_NORM", "LAYERS"]

INPUT_NORM = {"build_fastflow": "imagenet"}

# timm's features_only ResNet-18 with out_indices [1, 2, 3], as anomalib uses it.
LAYERS = ("layer1", "layer2", "layer3")


class FlowStep(nn.Module):
    """One ``AllInOneBlock`` step (affine coupling, global affine, hard permutation), forward only."""

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        hidden_ratio: float = 1.0,
        clamp: float = 2.0,
        global_affine_init: float = 1.0,
    ) -> None:
        super().__init__()
        self.passive = channels - channels // 2  # x1, conditions the subnet
        self.active = channels // 2  # x2, transformed
        self.clamp = clamp
        hidden = int(self.passive * hidden_ratio)
        pad = kernel_size // 2
        self.subnet = nn.Sequential(
            nn.Conv2d(self.passive, hidden, kernel_size, padding=pad),
            nn.ReLU(),
            nn.Conv2d(hidden, 2 * self.active, kernel_size, padding=pad),
        )
        # Pre-activation value that makes 0.1 * softplus_{beta=0.5}(g) equal global_affine_init.
        g0 = 2.0 * math.log(math.exp(0.5 * 10.0 * global_affine_init) - 1.0)
        self.global_scale = nn.Parameter(torch.full((1, channels, 1, 1), g0))
        self.global_offset = nn.Parameter(torch.zeros(1, channels, 1, 1))
        # Row i of the matrix picks input channel perm[i]: out[i] = x[perm[i]].
        perm = torch.randperm(channels)
        w_perm = torch.zeros(channels, channels)
        w_perm[torch.arange(channels), perm] = 1.0
        self.register_buffer("w_perm", w_perm.view(channels, channels, 1, 1))

    def _step(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The step's output, its coupling's log-scales and its global affine's per-channel scales."""
        x1, x2 = torch.split(x, [self.passive, self.active], dim=1)
        # The reference scales all coupling coefficients by 0.1 for a stable start of training.
        a = self.subnet(x1) * 0.1
        log_scale = self.clamp * torch.tanh(a[:, : self.active])
        x2 = x2 * torch.exp(log_scale) + a[:, self.active :]
        y = torch.cat((x1, x2), dim=1)
        scale = 0.1 * F.softplus(self.global_scale, beta=0.5)
        return F.conv2d(y * scale + self.global_offset, self.w_perm), log_scale, scale

    def forward(self, x: Tensor) -> Tensor:
        return self._step(x)[0]

    def forward_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Training: the step's output (the same values as ``forward``) and the log-determinant of its
        Jacobian per sample, ``[B]``: the coupling's is the sum of its log-scales, the global affine's
        is H * W times the sum of the log of its per-channel scales (FrEIA's ``AllInOneBlock``), the
        permutation's is 0."""
        out, log_scale, scale = self._step(x)
        pixels = x.shape[2] * x.shape[3]
        return out, log_scale.sum(dim=(1, 2, 3)) + pixels * torch.log(scale).sum()


class FastFlowScale(nn.Sequential):
    """The flow of one feature scale: ``steps`` FlowSteps, 3x3 and 1x1 subnets alternating."""

    def __init__(
        self,
        channels: int,
        steps: int = 8,
        conv3x3_only: bool = False,
        hidden_ratio: float = 1.0,
        clamp: float = 2.0,
    ) -> None:
        super().__init__(
            *(
                FlowStep(channels, 1 if (i % 2 == 1 and not conv3x3_only) else 3, hidden_ratio, clamp)
                for i in range(steps)
            )
        )

    def forward_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Training: z and the log-determinant of the whole flow's Jacobian per sample, ``[B]``."""
        log_det = x.new_zeros(x.shape[0])
        for step in self:
            x, step_log_det = step.forward_and_log_det(x)
            log_det = log_det + step_log_det
        return x, log_det


class FastFlow(nn.Module):
    """ResNet-18 features, per-scale LayerNorm and flow, and FastFlow's anomaly map.

    ``forward(x)`` takes an ImageNet-normalised float32 batch ``[B, 3, input_size, input_size]``
    and returns ``(anomaly_map [B, 1, input_size, input_size], score [B])``. The map is -p
    averaged over scales, so it lies in [-1, 0) and higher means more anomalous.
    """

    def __init__(
        self,
        input_size: int = 256,
        flow_steps: int = 8,
        conv3x3_only: bool = False,
        hidden_ratio: float = 1.0,
        clamp: float = 2.0,
    ) -> None:
        super().__init__()
        if input_size < 16 or input_size % 16:
            raise ValueError(f"input_size must be a positive multiple of 16, not {input_size}")
        self.input_size = input_size
        self.feature_extractor = resnet18_features(LAYERS)
        self.norms = nn.ModuleList()
        self.flows = nn.ModuleList()
        for layer in LAYERS:
            channels = STAGE_CHANNELS["resnet18"][layer]
            side = input_size // STAGE_STRIDE[layer]
            self.norms.append(nn.LayerNorm([channels, side, side], elementwise_affine=True))
            self.flows.append(FastFlowScale(channels, flow_steps, conv3x3_only, hidden_ratio, clamp))

    def hidden_variables(self, x: Tensor) -> list[Tensor]:
        """z of each scale: the flows' outputs on the normalised backbone features."""
        features = self.feature_extractor(x)
        return [flow(norm(f)) for f, norm, flow in zip(features, self.norms, self.flows)]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        size = (self.input_size, self.input_size)
        maps = []
        for z in self.hidden_variables(x):
            log_prob = -0.5 * torch.mean(z * z, dim=1, keepdim=True)
            maps.append(F.interpolate(-torch.exp(log_prob), size=size, mode="bilinear", align_corners=False))
        anomaly_map = torch.stack(maps, dim=-1).mean(dim=-1)
        score = anomaly_map.amax(dim=(1, 2, 3))
        return anomaly_map, score


def build_fastflow(
    seed: int,
    input_size: int = 256,
    flow_steps: int = 8,
    conv3x3_only: bool = False,
    hidden_ratio: float = 1.0,
) -> nn.Module:
    """FastFlow with a ResNet-18 backbone (anomalib's configuration), in eval mode.

    Input: an ImageNet-normalised image ``[B, 3, input_size, input_size]`` (mean and standard
    deviation applied outside the model). ``input_size`` must be a multiple of 16 (the LayerNorms
    are built for it); the defaults are the real workload.
    """
    torch.manual_seed(seed)
    model = FastFlow(input_size, flow_steps, conv3x3_only, hidden_ratio)
    return model.eval()
