"""USAD: Audibert et al., "USAD: UnSupervised Anomaly Detection on Multivariate Time Series", KDD 2020;
reference implementation manigalati/usad (usad.py and its notebook; no licence file).

One encoder and two decoders of three fully connected layers each on the flattened window: the
encoder halves and quarters the input (w = window x channels) before the latent layer, the decoders
mirror it and end in a sigmoid (the reference min-max scales its inputs to [0, 1]). Sizes follow
the reference notebook on SWaT: a window of 12 samples and a latent of 100 per sample (z = 1200).
Score at inference, as the reference's ``testing``: alpha * mean((x - w1)^2) + beta * mean((x - w2)^2)
with w1 = D1(E(x)) and w2 = D2(E(w1)), alpha = beta = 0.5.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["USAD", "build_usad", "WINDOW", "LATENT_PER_STEP"]

WINDOW = 12
LATENT_PER_STEP = 100


def _mlp(sizes: list[int], last: nn.Module) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(n_in, n_out), nn.ReLU() if i < len(sizes) - 2 else last]
    return nn.Sequential(*layers)


class USAD(nn.Module):
    def __init__(self, channels: int, window: int = WINDOW, latent_per_step: int = LATENT_PER_STEP,
                 alpha: float = 0.5, beta: float = 0.5) -> None:
        super().__init__()
        w = window * channels
        z = window * latent_per_step
        self.alpha, self.beta = alpha, beta
        self.encoder = _mlp([w, w // 2, w // 4, z], nn.ReLU())
        self.decoder1 = _mlp([z, w // 4, w // 2, w], nn.Sigmoid())
        self.decoder2 = _mlp([z, w // 4, w // 2, w], nn.Sigmoid())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        flat = x.flatten(1)
        w1 = self.decoder1(self.encoder(flat))
        w2 = self.decoder2(self.encoder(w1))
        score = self.alpha * (flat - w1).pow(2).mean(dim=1) + self.beta * (flat - w2).pow(2).mean(dim=1)
        return w1.view_as(x), score


def build_usad(seed: int = 0, channels: int = 38, window: int = WINDOW,
               latent_per_step: int = LATENT_PER_STEP) -> nn.Module:
    torch.manual_seed(seed)
    return USAD(channels, window, latent_per_step).eval()
