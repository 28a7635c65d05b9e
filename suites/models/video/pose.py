"""A per-frame 2D pose estimator for the skeleton pipeline: SimpleBaseline (Xiao, Wu and Wei, "Simple
Baselines for Human Pose Estimation and Tracking", ECCV 2018) with a ResNet-18 backbone, and the
skeleton stream that puts it in front of ST-GCN.

SimpleBaseline as in microsoft/human-pose-estimation.pytorch (MIT; read for shapes only): the ResNet's
stages up to its stride-32 output, three 4x4 transposed convolutions of stride 2 to 256 channels (BN,
ReLU each), a 1x1 convolution to one heatmap per joint; a 256x192 person crop gives 64x48 heatmaps.
The paper's backbones are ResNet-50/101/152; ResNet-18 is the light variant (as in MMPose's configs),
so no published parameter count applies to this exact model (15,378,777 parameters here for 25 joints). The joints
are NTU RGB+D's 25 (the Kinect skeleton ST-GCN was trained on), so the estimator's output feeds ST-GCN
directly; coordinates come from a soft-argmax over each heatmap (differentiable, exportable), the
confidence from the heatmap's peak probability: (x, y, confidence) per joint, as ST-GCN's
OpenPose-based Kinetics-skeleton input.

``SkeletonStream``: one frame's person crops and the pose window of the previous frames in, the action
logits and the window with this frame appended out (state as extra input and output, so backends stay
unaware of the stream). The person boxes come from a detector this benchmark does not model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bench.suites.models.backbones import BasicBlock, ResNetFeatures
from bench.suites.models.video.stgcn import STGCN

__all__ = ["PoseResNet", "build_pose_resnet18", "soft_argmax", "SkeletonStream", "build_skeleton_stream",
           "POSE_INPUT_HW"]

POSE_INPUT_HW = (256, 192)


def soft_argmax(heatmaps: Tensor) -> Tensor:
    """(N, J, H, W) heatmaps -> (N, J, 3): x and y in [0, 1] (expected position under the softmax of
    the heatmap) and the peak probability."""
    n, j, h, w = heatmaps.shape
    probs = torch.softmax(heatmaps.reshape(n, j, h * w), dim=-1).reshape(n, j, h, w)
    xs = torch.linspace(0.0, 1.0, w, dtype=heatmaps.dtype, device=heatmaps.device)
    ys = torch.linspace(0.0, 1.0, h, dtype=heatmaps.dtype, device=heatmaps.device)
    x = (probs.sum(dim=2) * xs).sum(dim=-1)
    y = (probs.sum(dim=3) * ys).sum(dim=-1)
    return torch.stack((x, y, probs.amax(dim=(2, 3))), dim=-1)


class PoseResNet(nn.Module):
    def __init__(self, joints: int = 25, deconv: int = 256, depths: tuple[int, ...] = (2, 2, 2, 2)) -> None:
        super().__init__()
        self.backbone = ResNetFeatures(BasicBlock, depths, ("layer4",))
        layers: list[nn.Module] = []
        n_in = 512
        for _ in range(3):
            layers += [nn.ConvTranspose2d(n_in, deconv, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(deconv),
                       nn.ReLU(inplace=True)]
            n_in = deconv
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(deconv, joints, 1)

    def forward(self, crops: Tensor) -> tuple[Tensor, Tensor]:
        """(N, 3, 256, 192) normalised crops -> heatmaps (N, J, 64, 48) and joints (N, J, 3)."""
        heatmaps = self.final(self.deconv(self.backbone(crops)[0]))
        return heatmaps, soft_argmax(heatmaps)


def build_pose_resnet18(seed: int = 0, **overrides: object) -> PoseResNet:
    torch.manual_seed(seed)
    return PoseResNet(**overrides).eval()  # type: ignore[arg-type]


class SkeletonStream(nn.Module):
    """Pose estimation of this frame's M person crops, then ST-GCN on the last T frames' poses."""

    def __init__(self, pose: PoseResNet, classifier: STGCN) -> None:
        super().__init__()
        self.pose = pose
        self.classifier = classifier

    def forward(self, crops: Tensor, window: Tensor) -> tuple[Tensor, Tensor]:
        """``crops`` (N, M, 3, 256, 192); ``window`` (N, 3, T-1, V, M) -> logits (N, classes) and the
        window of the last T-1 frames including this one."""
        n, m = crops.shape[:2]
        _, joints = self.pose(crops.flatten(0, 1))
        frame = joints.view(n, m, -1, 3).permute(0, 3, 2, 1).unsqueeze(2)  # (N, 3, 1, V, M)
        full = torch.cat((window, frame), dim=2)
        return self.classifier(full), full[:, :, 1:]


def build_skeleton_stream(seed: int = 0, **overrides: object) -> SkeletonStream:
    torch.manual_seed(seed)
    return SkeletonStream(PoseResNet(), STGCN()).eval()
