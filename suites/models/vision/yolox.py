"""YOLOX-S, a real-time object detector (Ge, Liu, Wang, Li, Sun: "YOLOX: Exceeding YOLO Series in
2021", arXiv:2107.08430), at 640x640 on COCO's 80 classes.

Why YOLOX-S: its paper publishes its parameters and FLOPs (9.0 M, 26.8 GFLOPs at 640x640, two FLOPs
per multiply-add),
and its reference implementation (github.com/Megvii-BaseDetection/YOLOX) is Apache-2.0, which an
industrial user can deploy (the YOLOv5/v8 references are AGPL-3.0).

Layer shapes from the reference (``yolox/models``: ``darknet.py`` CSPDarknet, ``yolo_pafpn.py``,
``yolo_head.py``, ``network_blocks.py``; ``exps/default/yolox_s.py``: depth 0.33, width 0.50), read for
their facts, no code copied. Every convolution is conv (no bias), BatchNorm (eps 1e-3), SiLU.

* Backbone (CSPDarknet-53 scaled): a Focus stem (space-to-depth of the 2x2 pixel neighbourhoods,
  then a 3x3 convolution to 32 channels); four stages, each a 3x3/2 convolution and a CSP layer
  (1, 3, 3, 1 bottlenecks; 64, 128, 256, 512 channels); the last adds an SPP block (max pools 5, 9,
  13) before its CSP layer, whose bottlenecks have no shortcut.
* Neck (PAFPN): top-down with nearest 2x upsampling and concatenation, bottom-up with 3x3/2
  convolutions, CSP layers of one bottleneck without shortcut; 128, 256, 512 channels at strides 8,
  16, 32.
* Head (decoupled, anchor-free): per level a 1x1 stem to 128 channels, two 3x3 convolutions for
  classification and two for regression, 1x1 predictions of 80 class logits, 4 box values and 1
  objectness logit.

Outputs (the reference's ``decode_in_inference``): one tensor (N, 8400, 85): per anchor point
(80x80 + 40x40 + 20x20 at 640x640) the box centre ``(xy + grid) * stride``, its size
``exp(wh) * stride`` in input pixels, the objectness and 80 class probabilities (sigmoids).
Non-maximum suppression is *not* in the model: it is post-processing outside the model and the
pipeline boundaries, because its cost depends on how many boxes pass the score threshold, which
with random weights says nothing of a trained detector on real images.

Weights: PyTorch's default initialisation under the seed. The prediction biases use the
reference's prior (objectness and class logits start at log(0.01/0.99)), and the box-size outputs
are kept small so that ``exp`` stays finite with random weights (speed does not depend on values).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["YOLOX", "build_yolox_s", "NUM_COCO_CLASSES", "STRIDES"]

NUM_COCO_CLASSES = 80
STRIDES = (8, 16, 32)


class ConvBnSiLU(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=1e-3)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.silu(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, channels: int, shortcut: bool) -> None:
        super().__init__()
        self.conv1 = ConvBnSiLU(channels, channels, 1)
        self.conv2 = ConvBnSiLU(channels, channels, 3)
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv2(self.conv1(x))
        return x + y if self.shortcut else y


class CSPLayer(nn.Module):
    """Two 1x1 branches of half the output width, bottlenecks on one, concatenated, a 1x1 fusion."""

    def __init__(self, in_ch: int, out_ch: int, n: int, shortcut: bool = True) -> None:
        super().__init__()
        hidden = out_ch // 2
        self.conv1 = ConvBnSiLU(in_ch, hidden, 1)
        self.conv2 = ConvBnSiLU(in_ch, hidden, 1)
        self.blocks = nn.Sequential(*(Bottleneck(hidden, shortcut) for _ in range(n)))
        self.conv3 = ConvBnSiLU(2 * hidden, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(torch.cat([self.blocks(self.conv1(x)), self.conv2(x)], dim=1))


class SPP(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernels: Sequence[int] = (5, 9, 13)) -> None:
        super().__init__()
        hidden = in_ch // 2
        self.conv1 = ConvBnSiLU(in_ch, hidden, 1)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)
        self.conv2 = ConvBnSiLU(hidden * (len(kernels) + 1), out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x, *(pool(x) for pool in self.pools)], dim=1))


class Focus(nn.Module):
    """The four pixels of each 2x2 neighbourhood stacked as channels, then a 3x3 convolution."""

    def __init__(self, out_ch: int) -> None:
        super().__init__()
        self.conv = ConvBnSiLU(12, out_ch, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], dim=1)
        return self.conv(x)


class YOLOX(nn.Module):
    def __init__(self, depth: float = 0.33, width: float = 0.50, num_classes: int = NUM_COCO_CLASSES) -> None:
        super().__init__()
        base, n = int(64 * width), max(round(3 * depth), 1)
        c3, c4, c5 = base * 4, base * 8, base * 16  # 128, 256, 512 for YOLOX-S
        self.stem = Focus(base)
        self.dark2 = nn.Sequential(ConvBnSiLU(base, base * 2, 3, 2), CSPLayer(base * 2, base * 2, n))
        self.dark3 = nn.Sequential(ConvBnSiLU(base * 2, c3, 3, 2), CSPLayer(c3, c3, 3 * n))
        self.dark4 = nn.Sequential(ConvBnSiLU(c3, c4, 3, 2), CSPLayer(c4, c4, 3 * n))
        self.dark5 = nn.Sequential(ConvBnSiLU(c4, c5, 3, 2), SPP(c5, c5), CSPLayer(c5, c5, n, shortcut=False))
        neck_n = round(3 * depth)
        self.lateral0 = ConvBnSiLU(c5, c4, 1)
        self.csp_p4 = CSPLayer(2 * c4, c4, neck_n, False)
        self.reduce1 = ConvBnSiLU(c4, c3, 1)
        self.csp_p3 = CSPLayer(2 * c3, c3, neck_n, False)
        self.down2 = ConvBnSiLU(c3, c3, 3, 2)
        self.csp_n3 = CSPLayer(2 * c3, c4, neck_n, False)
        self.down1 = ConvBnSiLU(c4, c4, 3, 2)
        self.csp_n4 = CSPLayer(2 * c4, c5, neck_n, False)
        head = int(256 * width)
        self.stems = nn.ModuleList(ConvBnSiLU(c, head, 1) for c in (c3, c4, c5))
        self.cls_convs = nn.ModuleList(nn.Sequential(ConvBnSiLU(head, head, 3), ConvBnSiLU(head, head, 3))
                                       for _ in STRIDES)
        self.reg_convs = nn.ModuleList(nn.Sequential(ConvBnSiLU(head, head, 3), ConvBnSiLU(head, head, 3))
                                       for _ in STRIDES)
        self.cls_preds = nn.ModuleList(nn.Conv2d(head, num_classes, 1) for _ in STRIDES)
        self.reg_preds = nn.ModuleList(nn.Conv2d(head, 4, 1) for _ in STRIDES)
        self.obj_preds = nn.ModuleList(nn.Conv2d(head, 1, 1) for _ in STRIDES)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    def neck(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x2 = self.dark3(self.dark2(self.stem(x)))
        x1 = self.dark4(x2)
        x0 = self.dark5(x1)
        fpn0 = self.lateral0(x0)
        fpn1 = self.reduce1(self.csp_p4(torch.cat([self.upsample(fpn0), x1], dim=1)))
        pan2 = self.csp_p3(torch.cat([self.upsample(fpn1), x2], dim=1))
        pan1 = self.csp_n3(torch.cat([self.down2(pan2), fpn1], dim=1))
        pan0 = self.csp_n4(torch.cat([self.down1(pan1), fpn0], dim=1))
        return pan2, pan1, pan0

    def forward(self, x: Tensor) -> Tensor:
        levels = []
        for k, feature in enumerate(self.neck(x)):
            feature = self.stems[k](feature)
            cls = self.cls_preds[k](self.cls_convs[k](feature))
            reg_feature = self.reg_convs[k](feature)
            box, obj = self.reg_preds[k](reg_feature), self.obj_preds[k](reg_feature)
            levels.append(self._decode(box, obj, cls, STRIDES[k]))
        return torch.cat(levels, dim=1)

    @staticmethod
    def _decode(box: Tensor, obj: Tensor, cls: Tensor, stride: int) -> Tensor:
        """One level's (N, h*w, 85): centre and size in input pixels, objectness, class probabilities."""
        n, _, height, width = box.shape
        ys = torch.arange(height, dtype=box.dtype, device=box.device)
        xs = torch.arange(width, dtype=box.dtype, device=box.device)
        grid = torch.stack([xs.view(1, -1).expand(height, width), ys.view(-1, 1).expand(height, width)], dim=-1)
        box = box.flatten(2).transpose(1, 2)  # (n, h*w, 4)
        centre = (box[..., :2] + grid.reshape(1, -1, 2)) * stride
        size = torch.exp(box[..., 2:]) * stride
        scores = torch.cat([obj, cls], dim=1).flatten(2).transpose(1, 2).sigmoid()
        return torch.cat([centre, size, scores], dim=-1)


def build_yolox_s(seed: int = 0, depth: float = 0.33, width: float = 0.50) -> YOLOX:
    """YOLOX-S (depth 0.33, width 0.50); ``width`` scales it down for tests (YOLOX-Nano's 0.25)."""
    torch.manual_seed(seed)
    model = YOLOX(depth, width)
    prior = -math.log((1 - 0.01) / 0.01)  # the reference's initialize_biases(1e-2)
    with torch.no_grad():
        for conv in (*model.cls_preds, *model.obj_preds):
            conv.bias.fill_(prior)
        for conv in model.reg_preds:
            conv.weight.mul_(0.1)  # keeps exp(wh) finite under random weights
    return model.eval()
