"""The convolutional autoencoder's training step (this project's baseline), beside the model
(autoencoder.py): trained whole, Adam lr 1e-3, L2 reconstruction loss.

A separate module from the model's so that a change of the loss does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.suites.training import TrainTask, trainable

__all__ = ["autoencoder_task"]


def autoencoder_task(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch.nn.functional as F

    def loss(batch: tuple[Any, ...]) -> Any:
        (x,) = batch
        return F.mse_loss(model.reconstruct(x).float(), x)

    return TrainTask(
        kind="backprop", modules={"autoencoder": model}, parameters=trainable(model),
        batch=(make_images(batch_size),), loss=loss, optimizer="Adam", lr=1e-3,
        info={"method": "convolutional autoencoder", "loss": "L2 (mean squared) reconstruction error",
              "trained": ["autoencoder"], "frozen": [], "simplified": []},
    )
