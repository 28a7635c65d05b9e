"""TranAD's training step (Tuli et al., VLDB 2022; imperial-qore/TranAD, main.py ``backprop``), beside
the model (tranad.py): trained whole, AdamW lr 1e-4, weight decay 1e-5. Facts from the paper and the
reference code, no code copied.

The loss, as the reference computes it for its TranAD model: both phases reconstruct the window's
newest sample, phase 1 with a zero focus score, phase 2 conditioned on phase 1's squared error (the
self-conditioning; gradients flow through the focus score into phase 1), weighted by the epoch n:
``(1/n) mse(O1, w) + (1 - 1/n) mse(O2, w)``, w the newest sample. The learning rate is the reference's
for SMD, the suite's default data set (it sets one per data set, which changes no cost).

Simplified (also in the task's ``info["simplified"]``): no epochs here, so n is fixed at 2 (the two
phases weigh 1/2 each); the reference's step-decay schedule is left out; dropout (0.1 in the
reference's layers) is not added, as the inference model leaves it out.

A separate module from the model's so that a change of the loss does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.suites.training import TrainTask, trainable

__all__ = ["EPOCH", "tranad_task", "tranad_phases"]

EPOCH = 2  # the fixed n of the 1/n, 1 - 1/n weighting


def tranad_phases(model: Any, x: Any) -> tuple[Any, Any, Any]:
    """Phase 1's and phase 2's reconstructions of the newest sample of ``x`` (batch, window, channels),
    and that sample, each (1, batch, channels): the arithmetic of the model's forward (its
    ``_decode``, so that training and inference share one copy), with phase 1's output kept."""
    import torch

    src = x.transpose(0, 1)  # sequence first, as the model and the reference
    last = src[-1:]
    tgt = last.repeat(1, 1, 2)
    x1 = model._decode(model.decoder1, src, torch.zeros_like(src), tgt)
    x2 = model._decode(model.decoder2, src, (x1 - src).pow(2), tgt)
    return x1, x2, last


def tranad_task(model: Any, make_windows: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    a = 1.0 / EPOCH

    def loss(batch: tuple[Any, ...]) -> Any:
        (x,) = batch
        x1, x2, last = tranad_phases(model, x)
        return a * (x1.float() - last).pow(2).mean() + (1 - a) * (x2.float() - last).pow(2).mean()

    return TrainTask(
        kind="backprop", modules={"model": model}, parameters=trainable(model), batch=(make_windows(batch_size),),
        loss=loss, optimizer="AdamW", lr=1e-4, optimizer_options={"weight_decay": 1e-5},
        info={"method": "TranAD",
              "loss": f"(1/n) mse(O1, w) + (1 - 1/n) mse(O2, w), w the window's newest sample, O1 phase 1's "
                      f"reconstruction, O2 phase 2's (focus: phase 1's squared error); n = {EPOCH}",
              "trained": ["model"], "frozen": [],
              "simplified": [f"no epochs: n fixed at {EPOCH} (both phases weigh 1/2)",
                             "lr 1e-4 (the reference's for SMD) whatever the data set",
                             "no step-decay schedule; no dropout (the inference model has none)"]},
    )
