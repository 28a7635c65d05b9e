"""LSTM-ED's training step (Malhotra et al., ICML 2016 AD workshop, arXiv:1607.00148), beside the
model (lstm_ae.py): trained whole, mean squared reconstruction error of the window, Adam lr 1e-3.

As the paper trains it: the decoder reconstructs the window in reverse order with teacher forcing,
its input at each step being the true sample (at inference it is its own previous output). The
paper published no code; Adam with lr 1e-3 is this project's choice (also in the task's ``info``).

A separate module from the model's so that a change of the loss does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.suites.training import TrainTask, trainable

__all__ = ["lstm_ae_task", "teacher_forced_reconstruction"]


def teacher_forced_reconstruction(model: Any, x: Any) -> Any:
    """The window (batch, window, channels) reconstructed as in training: the encoder's final state
    starts the decoder, which predicts the window's samples last to first, each from the true sample
    after it."""
    import torch

    _, (h, c) = model.encoder(x)
    h, c = h[0], c[0]
    reversed_samples = [model.output(h)]  # the last sample, from the encoder's state alone
    for i in range(x.shape[1] - 1, 0, -1):
        h, c = model.decoder(x[:, i], (h, c))  # the true sample i predicts sample i - 1
        reversed_samples.append(model.output(h))
    return torch.stack(reversed_samples[::-1], dim=1)


def lstm_ae_task(model: Any, make_windows: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch.nn.functional as F

    def loss(batch: tuple[Any, ...]) -> Any:
        (x,) = batch
        return F.mse_loss(teacher_forced_reconstruction(model, x).float(), x)

    return TrainTask(
        kind="backprop", modules={"model": model}, parameters=trainable(model), batch=(make_windows(batch_size),),
        loss=loss, optimizer="Adam", lr=1e-3,
        info={"method": "LSTM-ED", "loss": "mean squared reconstruction error of the window (decoder in reverse "
              "order, teacher-forced with the true samples, as the paper trains)",
              "trained": ["model"], "frozen": [],
              "simplified": ["Adam lr 1e-3 is this project's choice (no reference code was published)"]},
    )
