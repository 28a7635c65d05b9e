"""LSTM encoder-decoder for anomaly detection (LSTM-ED, "LSTM-AE"): Malhotra et al., "LSTM-based
Encoder-Decoder for Multi-sensor Anomaly Detection", ICML 2016 Anomaly Detection Workshop
(arXiv:1607.00148). No reference code was published with the paper.

The paper's model: an encoder LSTM reads the window; its final state is the decoder LSTM's initial
state; the decoder reconstructs the window in reverse order, a linear layer turning each decoder
state into a sample, and at inference each reconstructed sample is the decoder's next input (the
paper's teacher forcing is for training only). The paper picks the hidden size per data set by
validation; 64 here. The paper's score is a Mahalanobis distance of the error vectors under a normal
fitted on validation data; here the score is the window's mean squared reconstruction error (the
same arithmetic class, without fitted statistics that random weights would make meaningless).

The decoder's loop is unrolled over the window: an ONNX export holds one LSTM cell per step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["LSTMAutoencoder", "build_lstm_ae"]


class LSTMAutoencoder(nn.Module):
    def __init__(self, channels: int, window: int, hidden: int = 64) -> None:
        super().__init__()
        self.window = window
        self.encoder = nn.LSTM(channels, hidden, batch_first=True)
        self.decoder = nn.LSTMCell(channels, hidden)
        self.output = nn.Linear(hidden, channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _, (h, c) = self.encoder(x)
        h, c = h[0], c[0]
        sample = self.output(h)  # the window's last sample first: the paper reconstructs in reverse
        reversed_samples = [sample]
        for _ in range(self.window - 1):
            h, c = self.decoder(sample, (h, c))
            sample = self.output(h)
            reversed_samples.append(sample)
        reconstruction = torch.stack(reversed_samples[::-1], dim=1)
        score = (reconstruction - x).pow(2).mean(dim=(1, 2))
        return reconstruction, score


def build_lstm_ae(seed: int = 0, channels: int = 38, window: int = 100, hidden: int = 64) -> nn.Module:
    torch.manual_seed(seed)
    return LSTMAutoencoder(channels, window, hidden).eval()
