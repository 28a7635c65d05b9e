"""DLinear: Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023;
reference implementation cure-lab/LTSF-Linear (models/DLinear.py; Apache-2.0).

As the reference (individual=False): the look-back window is split into a trend (a moving average
of 25 steps, the series' ends repeated so the length is kept) and the remainder; one linear layer
over time maps each to the horizon, shared by all channels; the forecast is their sum. 2 (L H + H)
parameters: 64,704 for look-back 336 and horizon 96; 139,680 for L = 96, H = 720, the paper's
"139.7K" in its efficiency table.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DLinear", "build_dlinear", "moving_average"]


def moving_average(x: Tensor, kernel: int) -> Tensor:
    """The trend of (batch, length, channels): a centred mean of ``kernel`` steps, ends repeated."""
    front = x[:, :1].expand(-1, (kernel - 1) // 2, -1)
    end = x[:, -1:].expand(-1, (kernel - 1) // 2, -1)
    padded = torch.cat((front, x, end), dim=1).transpose(1, 2)
    return F.avg_pool1d(padded, kernel, stride=1).transpose(1, 2)


class DLinear(nn.Module):
    def __init__(self, lookback: int = 336, horizon: int = 96, kernel: int = 25) -> None:
        super().__init__()
        self.kernel = kernel
        self.seasonal = nn.Linear(lookback, horizon)
        self.trend = nn.Linear(lookback, horizon)

    def forward(self, x: Tensor) -> Tensor:
        trend = moving_average(x, self.kernel)
        seasonal = x - trend
        out = self.seasonal(seasonal.transpose(1, 2)) + self.trend(trend.transpose(1, 2))
        return out.transpose(1, 2)  # (batch, horizon, channels)


def build_dlinear(seed: int = 0, channels: int = 7, lookback: int = 336, horizon: int = 96) -> nn.Module:
    """``channels`` is accepted for the suite's uniform builder call: the layers are shared by all."""
    torch.manual_seed(seed)
    return DLinear(lookback, horizon).eval()
