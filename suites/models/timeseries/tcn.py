"""Temporal convolutional network: Bai, Kolter and Koltun, "An Empirical Evaluation of Generic
Convolutional and Recurrent Networks for Sequence Modeling", arXiv:1803.01271, 2018; reference
implementation locuslab/TCN (TCN/tcn.py; MIT).

As the reference: residual blocks of two dilated causal convolutions (padding (k-1)d on the left,
the reference's "chomp"), each weight-normalised and followed by ReLU, a 1x1 convolution on the
residual path where the width changes, ReLU after the sum; dilation 2^i in block i. Weight
normalisation is written out (w = g v / ||v|| per output channel, the reference's weight_norm with
its g and v parameters) so that it exports to ONNX as plain arithmetic.

Used here for prediction-based anomaly detection: a 1x1 head turns each step's features into the
next sample's prediction; the score is the squared error of the prediction of the window's last
sample (from the steps before it), averaged over channels; the second output is the forecast of the
sample after the window. Sizes (ours; the paper's are per task): 6 blocks of 64 channels, kernel 3,
a receptive field of 1 + 2 (k - 1)(2^6 - 1) = 253 steps, more than the data sets' windows of 100.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TCN", "TemporalBlock", "WeightNormConv1d", "build_tcn"]


class WeightNormConv1d(nn.Module):
    """A causal 1-D convolution with weight normalisation over each output channel."""

    def __init__(self, n_in: int, n_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        conv = nn.Conv1d(n_in, n_out, kernel, dilation=dilation)
        conv.weight.data.normal_(0, 0.01)  # the reference's init_weights
        self.v = nn.Parameter(conv.weight.data.clone())
        self.g = nn.Parameter(conv.weight.data.flatten(1).norm(dim=1).view(n_out, 1, 1))
        self.bias = nn.Parameter(conv.bias.data.clone())
        self.pad = (kernel - 1) * dilation
        self.dilation = dilation

    def forward(self, x: Tensor) -> Tensor:
        weight = self.g * self.v / self.v.flatten(1).norm(dim=1).view(-1, 1, 1)
        return F.conv1d(F.pad(x, (self.pad, 0)), weight, self.bias, dilation=self.dilation)


class TemporalBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = WeightNormConv1d(n_in, n_out, kernel, dilation)
        self.conv2 = WeightNormConv1d(n_out, n_out, kernel, dilation)
        self.downsample = nn.Conv1d(n_in, n_out, 1) if n_in != n_out else None

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.conv2(F.relu(self.conv1(x))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class TCN(nn.Module):
    def __init__(self, channels: int, hidden: int = 64, levels: int = 6, kernel: int = 3) -> None:
        super().__init__()
        widths = [channels] + [hidden] * levels
        self.blocks = nn.Sequential(*(TemporalBlock(widths[i], widths[i + 1], kernel, 2 ** i) for i in range(levels)))
        self.head = nn.Conv1d(hidden, channels, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        predicted = self.head(self.blocks(x.transpose(1, 2)))  # (batch, channels, window): step t predicts t+1
        score = (predicted[:, :, -2] - x[:, -1, :]).pow(2).mean(dim=1)
        return predicted[:, :, -1], score


def build_tcn(seed: int = 0, channels: int = 38, hidden: int = 64, levels: int = 6, kernel: int = 3,
              window: int = 100) -> nn.Module:
    """``window`` is accepted for the suite's uniform builder call; a TCN takes any length."""
    torch.manual_seed(seed)
    return TCN(channels, hidden, levels, kernel).eval()
