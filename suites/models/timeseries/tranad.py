"""TranAD: Tuli et al., "TranAD: Deep Transformer Networks for Anomaly Detection in Multivariate Time
Series Data", VLDB 2022; reference implementation imperial-qore/TranAD (src/models.py, src/dlutils.py;
BSD-3-Clause).

As the reference: a window of 10 samples; model width d = 2 x channels (the window concatenated with
a focus score of the same shape), one head per channel, feed-forward width 16, one encoder layer and
two one-layer decoders; the reference's own layers (attention and feed-forward with residuals and no
layer norm); its positional encoding (sin + cos of the same angle, added); the decoders' target is
the window's last sample repeated to width d. Phase 1 decodes with a zero focus score, phase 2 with
the squared error of phase 1 as focus. Output: phase 2's reconstruction of the last sample; the score
is its mean squared error against that sample (the reference's test-time loss, averaged over
channels).

One departure: the reference builds its activation as ``nn.LeakyReLU(True)``, which sets the negative
slope to 1.0 (an identity); LeakyReLU's default slope 0.01 is used here, as the code intends. Dropout
is inactive at inference and left out. Attention has nn.MultiheadAttention's parameters and arithmetic
(the reference uses that module), written out (``_Attention``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TranAD", "build_tranad", "WINDOW"]

WINDOW = 10
FEEDFORWARD = 16


class _Attention(nn.Module):
    """Multi-head attention on sequence-first tensors with nn.MultiheadAttention's parameters (one
    packed input projection, one output projection), written out so that it exports to ONNX as a few
    matrix products instead of the fused operator's decomposition."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.in_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)

    def _split(self, x: Tensor) -> Tensor:  # (length, batch, d) -> (batch, heads, length, head_dim)
        length, n, _ = x.shape
        return x.reshape(length, n, self.heads, self.head_dim).permute(1, 2, 0, 3)

    def forward(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        d = query.shape[-1]
        w, b = self.in_proj.weight, self.in_proj.bias
        q = self._split(F.linear(query, w[:d], b[:d]))
        k = self._split(F.linear(key, w[d:2 * d], b[d:2 * d]))
        v = self._split(F.linear(value, w[2 * d:], b[2 * d:]))
        attended = torch.softmax(torch.matmul(q, k.transpose(2, 3)) * self.head_dim ** -0.5, dim=-1) @ v
        length, n = query.shape[0], query.shape[1]
        return self.out_proj(attended.permute(2, 0, 1, 3).reshape(length, n, d))


class _EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.self_attn = _Attention(d, heads)
        self.ff = nn.Sequential(nn.Linear(d, FEEDFORWARD), nn.LeakyReLU(), nn.Linear(FEEDFORWARD, d))

    def forward(self, src: Tensor) -> Tensor:
        src = src + self.self_attn(src, src, src)
        return src + self.ff(src)


class _DecoderLayer(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.self_attn = _Attention(d, heads)
        self.cross_attn = _Attention(d, heads)
        self.ff = nn.Sequential(nn.Linear(d, FEEDFORWARD), nn.LeakyReLU(), nn.Linear(FEEDFORWARD, d))

    def forward(self, tgt: Tensor, memory: Tensor) -> Tensor:
        tgt = tgt + self.self_attn(tgt, tgt, tgt)
        tgt = tgt + self.cross_attn(tgt, memory, memory)
        return tgt + self.ff(tgt)


def positional_encoding(length: int, d: int) -> Tensor:
    """The reference's encoding: sin and cos of one angle per (position, dimension), summed."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(torch.arange(d, dtype=torch.float32) * (-math.log(10000.0) / d))
    return (torch.sin(position * rate) + torch.cos(position * rate)).unsqueeze(1)  # (length, 1, d)


class TranAD(nn.Module):
    def __init__(self, channels: int, window: int = WINDOW) -> None:
        super().__init__()
        d = 2 * channels
        self.channels = channels
        self.register_buffer("pe", positional_encoding(window, d), persistent=False)
        self.encoder = _EncoderLayer(d, channels)
        self.decoder1 = _DecoderLayer(d, channels)
        self.decoder2 = _DecoderLayer(d, channels)
        self.fcn = nn.Sequential(nn.Linear(d, channels), nn.Sigmoid())

    def _decode(self, decoder: nn.Module, src: Tensor, focus: Tensor, tgt: Tensor) -> Tensor:
        memory = torch.cat((src, focus), dim=2) * math.sqrt(self.channels) + self.pe
        return self.fcn(decoder(tgt, self.encoder(memory)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        src = x.transpose(0, 1)  # (window, batch, channels): the reference's sequence-first layout
        last = src[-1:]
        tgt = last.repeat(1, 1, 2)
        x1 = self._decode(self.decoder1, src, torch.zeros_like(src), tgt)
        x2 = self._decode(self.decoder2, src, (x1 - src).pow(2), tgt)
        reconstruction = x2[0]
        score = (reconstruction - last[0]).pow(2).mean(dim=1)
        return reconstruction, score


def build_tranad(seed: int = 0, channels: int = 38, window: int = WINDOW) -> nn.Module:
    torch.manual_seed(seed)
    return TranAD(channels, window).eval()
