"""Reverse Distillation's training step (Deng & Li, CVPR 2022; hq-deng/RD4AD; anomalib), beside the
model (reverse_distillation.py): encoder frozen, OCBE and decoder trained, Adam lr 0.005, betas
(0.5, 0.999) (the authors'; anomalib has 0.99). Loss = per level the batch mean of
``1 - cos(encoder, decoder)`` with each image's feature map flattened into one vector (as both
references compute it), summed over levels. Facts from the paper and the reference code, no code
copied.

A separate module from the model's so that a change of the loss does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.suites.training import TrainTask, freeze, trainable

__all__ = ["reverse_distillation_task"]


def reverse_distillation_task(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch
    import torch.nn.functional as F

    encoder, bottleneck, decoder = model.encoder, model.bottleneck, model.decoder
    freeze(encoder)

    def loss(batch: tuple[Any, ...]) -> Any:
        (x,) = batch
        with torch.no_grad():
            encoded = list(encoder(x))
        total = 0.0
        for e, d in zip(encoded, decoder(bottleneck(encoded))):
            cosine = F.cosine_similarity(e.flatten(1).float(), d.flatten(1).float(), dim=1)
            total = total + (1.0 - cosine).mean()
        return total

    return TrainTask(
        kind="backprop", modules={"encoder": encoder, "bottleneck": bottleneck, "decoder": decoder},
        parameters=trainable(bottleneck, decoder), batch=(make_images(batch_size),), loss=loss,
        optimizer="Adam", lr=0.005, optimizer_options={"betas": (0.5, 0.999)},
        info={"method": "Reverse Distillation", "loss": "sum over levels of the batch mean of 1 - cosine similarity "
              "of each image's flattened encoder and decoder features (RD4AD, anomalib)",
              "trained": ["bottleneck", "decoder"], "frozen": ["encoder"], "simplified": []},
    )
