"""FastFlow's training step (Yu et al. 2021; anomalib ``fastflow``), beside the model (fastflow.py):
backbone frozen, LayerNorms and flows trained, Adam lr 1e-3, weight decay 1e-5. Loss = per scale,
the batch mean of ``0.5 * sum(z^2) - log|det J|`` (sums over channels and positions per image),
summed over scales. Facts from the paper and the reference code, no code copied.

A separate module from the model's so that a change of the loss does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.suites.training import TrainTask, freeze, trainable

__all__ = ["fastflow_task"]


def fastflow_task(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch

    extractor, norms, flows = model.feature_extractor, model.norms, model.flows
    freeze(extractor)

    def loss(batch: tuple[Any, ...]) -> Any:
        (x,) = batch
        with torch.no_grad():
            features = extractor(x)
        total = 0.0
        for f, norm, flow in zip(features, norms, flows):
            z, log_det = flow.forward_and_log_det(norm(f))
            total = total + (0.5 * z.float().pow(2).sum(dim=(1, 2, 3)) - log_det.float()).mean()
        return total

    return TrainTask(
        kind="backprop", modules={"feature_extractor": extractor, "norms": norms, "flows": flows},
        parameters=trainable(norms, flows), batch=(make_images(batch_size),), loss=loss, optimizer="Adam",
        lr=1e-3, optimizer_options={"weight_decay": 1e-5},
        info={"method": "FastFlow", "loss": "negative log-likelihood: batch mean of 0.5 * sum(z^2) - log|det J| "
              "per image, summed over the three scales (anomalib's FastflowLoss)",
              "trained": ["norms", "flows"], "frozen": ["feature_extractor"], "simplified": []},
    )
