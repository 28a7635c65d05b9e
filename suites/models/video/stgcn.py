"""ST-GCN (Yan, Xiong and Lin, "Spatial Temporal Graph Convolutional Networks for Skeleton-Based Action
Recognition", AAAI 2018) on NTU RGB+D skeletons.

Shapes follow the paper and the authors' yysijie/st-gcn (``net/st_gcn.py``, ``net/utils/graph.py``;
BSD-2-Clause; read for shapes only). Input (N, C=3, T=300, V=25, M=2): 3 coordinates of 25 Kinect joints
over 300 frames for up to 2 people. A BatchNorm over the joints' coordinates, then ten ST-GCN units
(64, 64, 64, 64, 128, 128, 128, 256, 256, 256 channels; temporal stride 2 at the 5th and 8th): a graph
convolution over the skeleton with the spatial-configuration partition (3 adjacency matrices: the
joint itself, its neighbours nearer the body's centre, those farther), a learnable edge-importance mask
per unit, then BN, ReLU, a 9x1 temporal convolution, BN, dropout (inactive at inference) and a
residual. Global average pooling over time, joints and people, and a 1x1 convolution to NTU RGB+D's
60 classes. 3,098,832 parameters here; the paper does not print a count (3.1 M is the figure
usually quoted from the reference implementation).

The graph: NTU RGB+D's 25 joints with the 24 bones of the Kinect v2 skeleton, centre joint 21 (the spine
at the shoulders; 1-based, as the data set numbers them).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["STGCN", "build_stgcn_ntu", "ntu_adjacency", "NTU_BONES"]

# NTU RGB+D's Kinect v2 bones (1-based joint numbers, as the data set documents them).
NTU_BONES = ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
             (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23),
             (23, 8), (24, 25), (25, 12))
NTU_CENTRE = 21


def ntu_adjacency(joints: int = 25, bones: tuple[tuple[int, int], ...] = NTU_BONES, centre: int = NTU_CENTRE
                  ) -> np.ndarray:
    """The spatial-configuration partition: (3, V, V) matrices (root, centripetal, centrifugal) of the
    column-normalised adjacency with self-loops."""
    hops = np.full((joints, joints), np.inf)
    adjacency = np.eye(joints)
    for a, b in bones:
        adjacency[a - 1, b - 1] = adjacency[b - 1, a - 1] = 1
    reach = np.eye(joints)
    for distance in range(joints):
        hops[(reach > 0) & np.isinf(hops)] = distance
        reach = reach @ adjacency
    normalised = adjacency / adjacency.sum(axis=0, keepdims=True)
    root, closer, farther = (np.zeros((joints, joints)) for _ in range(3))
    c = centre - 1
    for i in range(joints):
        for j in range(joints):
            if hops[j, i] > 1:
                continue
            if hops[j, c] == hops[i, c]:
                root[j, i] = normalised[j, i]
            elif hops[j, c] > hops[i, c]:
                closer[j, i] = normalised[j, i]
            else:
                farther[j, i] = normalised[j, i]
    return np.stack((root, closer, farther)).astype(np.float32)


class STGCNUnit(nn.Module):
    def __init__(self, n_in: int, n_out: int, partitions: int, stride: int = 1, residual: bool = True) -> None:
        super().__init__()
        self.partitions = partitions
        self.gcn = nn.Conv2d(n_in, n_out * partitions, 1)
        self.tcn = nn.Sequential(nn.BatchNorm2d(n_out), nn.ReLU(inplace=True),
                                 nn.Conv2d(n_out, n_out, (9, 1), (stride, 1), (4, 0)), nn.BatchNorm2d(n_out),
                                 nn.Dropout(0.5))
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif n_in == n_out and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(n_in, n_out, 1, (stride, 1)), nn.BatchNorm2d(n_out))

    def forward(self, x: Tensor, adjacency: Tensor) -> Tensor:
        n, _, t, v = x.shape
        y = self.gcn(x).view(n, self.partitions, -1, t, v)
        y = torch.einsum("nkctv,kvw->nctw", y, adjacency)
        y = self.tcn(y)
        return torch.relu(y if self.residual is None else y + self.residual(x))


_UNITS = ((3, 64, 1, False), (64, 64, 1, True), (64, 64, 1, True), (64, 64, 1, True), (64, 128, 2, True),
          (128, 128, 1, True), (128, 128, 1, True), (128, 256, 2, True), (256, 256, 1, True), (256, 256, 1, True))


class STGCN(nn.Module):
    def __init__(self, num_classes: int = 60, channels: int = 3, joints: int = 25, width: float = 1.0,
                 depth: int = 10) -> None:
        """``width``, ``depth`` (the first units only) and ``joints`` other than 25 (a chain skeleton)
        scale the network down for tests; the defaults are the published model."""
        super().__init__()
        # torch.tensor, not from_numpy: it follows a torch.device("meta") context (cost counting).
        adjacency = torch.tensor(ntu_adjacency(joints) if joints == 25 else _chain_adjacency(joints))
        self.register_buffer("adjacency", adjacency)
        self.data_bn = nn.BatchNorm1d(channels * joints)
        units = [(channels if i == 0 else int(a * width), int(b * width), s, r)
                 for i, (a, b, s, r) in enumerate(_UNITS[:depth])]
        self.units = nn.ModuleList(STGCNUnit(a, b, adjacency.shape[0], s, r) for a, b, s, r in units)
        self.edge_importance = nn.ParameterList(nn.Parameter(torch.ones_like(adjacency)) for _ in self.units)
        self.fcn = nn.Conv2d(units[-1][1], num_classes, 1)

    def forward(self, skeletons: Tensor) -> Tensor:
        n, c, t, v, m = skeletons.shape
        x = skeletons.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
        x = self.data_bn(x).view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for unit, importance in zip(self.units, self.edge_importance):
            x = unit(x, self.adjacency * importance)
        x = x.mean(dim=(2, 3)).view(n, m, -1).mean(dim=1)
        return self.fcn(x[:, :, None, None]).flatten(1)


def _chain_adjacency(joints: int) -> np.ndarray:
    """A small skeleton (a chain of joints, centre in the middle) for scaled-down tests."""
    bones = tuple((i, i + 1) for i in range(1, joints))
    return ntu_adjacency(joints, bones, (joints + 1) // 2)


def build_stgcn_ntu(seed: int = 0, **overrides: object) -> STGCN:
    torch.manual_seed(seed)
    return STGCN(**overrides).eval()  # type: ignore[arg-type]
