"""PatchTST: Nie et al., "A Time Series is Worth 64 Words: Long-term Forecasting with Transformers",
ICLR 2023; reference implementation yuqinie98/PatchTST (PatchTST_supervised/layers/PatchTST_backbone.py,
RevIN.py, scripts/PatchTST/etth1.sh; Apache-2.0).

Channel-independent: every channel of the look-back window is one sequence. As the reference:
RevIN (per-window, per-channel mean and standard deviation, with a learnt affine), the sequence
padded at the end by repeating its last value ``stride`` times and cut into patches of 16 with
stride 8 (look-back 336 -> 42 patches), a linear patch embedding, a learnt positional embedding, a
Transformer encoder with BatchNorm after attention and after the feed-forward block (post-norm),
GELU, and residual attention (each layer adds the previous layer's pre-softmax scores to its own),
then a flatten head (patches x width -> horizon) and RevIN's inverse. Sizes of the reference's
ETTh1 script: 3 layers, 4 heads, width 16, feed-forward 128, horizon 96. The attention scale
(head_dim^-0.5, a frozen parameter in the reference) is a constant here, so it is not counted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PatchTST", "build_patchtst", "RevIN"]


class RevIN(nn.Module):
    """Reversible instance normalisation (Kim et al., ICLR 2022) with a learnt per-channel affine."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def normalise(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mean = x.mean(dim=1, keepdim=True)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps)
        return (x - mean) / std * self.weight + self.bias, mean, std

    def denormalise(self, y: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        return (y - self.bias) / (self.weight + self.eps * self.eps) * std + mean


class _Norm(nn.Module):
    """BatchNorm1d over the width of (sequences, patches, width) tensors, as the reference's Transpose."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(d)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(x.transpose(1, 2)).transpose(1, 2)


class _EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, d_ff: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = d // heads
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.norm_attn = _Norm(d)
        self.ff = nn.Sequential(nn.Linear(d, d_ff), nn.GELU(), nn.Linear(d_ff, d))
        self.norm_ff = _Norm(d)

    def forward(self, x: Tensor, prev: Tensor | None) -> tuple[Tensor, Tensor]:
        n, length, d = x.shape
        q = self.q(x).view(n, length, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(n, length, self.heads, self.head_dim).permute(0, 2, 3, 1)
        v = self.v(x).view(n, length, self.heads, self.head_dim).transpose(1, 2)
        scores = torch.matmul(q, k) * (self.head_dim ** -0.5)
        if prev is not None:
            scores = scores + prev  # residual attention
        attended = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(n, length, d)
        x = self.norm_attn(x + self.out(attended))
        return self.norm_ff(x + self.ff(x)), scores


class PatchTST(nn.Module):
    def __init__(self, channels: int, lookback: int = 336, horizon: int = 96, patch: int = 16, stride: int = 8,
                 layers: int = 3, heads: int = 4, d_model: int = 16, d_ff: int = 128) -> None:
        super().__init__()
        self.patch, self.stride = patch, stride
        self.patches = (lookback - patch) // stride + 2  # one more for the end padding
        self.revin = RevIN(channels)
        self.embed = nn.Linear(patch, d_model)
        self.pos = nn.Parameter(torch.empty(self.patches, d_model).uniform_(-0.02, 0.02))
        self.layers = nn.ModuleList(_EncoderLayer(d_model, heads, d_ff) for _ in range(layers))
        self.head = nn.Linear(self.patches * d_model, horizon)

    def forward(self, x: Tensor) -> Tensor:
        n, _, channels = x.shape
        z, mean, std = self.revin.normalise(x)
        z = z.transpose(1, 2)  # (batch, channels, lookback)
        z = torch.cat((z, z[:, :, -1:].expand(n, channels, self.stride)), dim=2)  # ReplicationPad1d((0, stride))
        patches = z.unfold(2, self.patch, self.stride)  # (batch, channels, patches, patch)
        h = self.embed(patches.reshape(n * channels, self.patches, self.patch)) + self.pos
        scores = None
        for layer in self.layers:
            h, scores = layer(h, scores)
        forecast = self.head(h.reshape(n, channels, -1)).transpose(1, 2)  # (batch, horizon, channels)
        return self.revin.denormalise(forecast, mean, std)


def build_patchtst(seed: int = 0, channels: int = 7, lookback: int = 336, horizon: int = 96, **sizes: int) -> nn.Module:
    torch.manual_seed(seed)
    return PatchTST(channels, lookback, horizon, **sizes).eval()
