"""The TCN's training step (Bai, Kolter & Koltun, arXiv:1803.01271; locuslab/TCN), beside the model
(tcn.py): trained whole, next-sample prediction, mean squared error, Adam lr 1e-3. Facts from the
paper and the reference code, no code copied.

The model's head turns step t's features into a prediction of sample t + 1 (its forecast output is
the last step's; its score is the error of step W-1's prediction of the newest sample W). The loss is
that prediction's squared error at every step of the window: each sample from the second to the
newest predicted from the samples before it, which causal convolutions give in one pass, as the
reference trains its multivariate sequence task (polyphonic music: input the sequence without its
last step, target the sequence shifted by one; Adam, lr 1e-3 by default). The cost is the same as
scoring the newest sample only: the forward and the backward run through every step either way.

Simplified (also in the task's ``info["simplified"]``): the reference's gradient clipping (0.2 in
that task) is left out (a TrainTask has no clipping); dropout is not added (the inference model has
none).

A separate module from the model's so that a change of the loss does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.suites.training import TrainTask, trainable

__all__ = ["tcn_task", "next_sample_predictions"]


def next_sample_predictions(model: Any, x: Any) -> Any:
    """Step t's prediction of sample t + 1 for every step of ``x`` (batch, window, channels), as
    (batch, window, channels): the model's blocks and head, without its score."""
    return model.head(model.blocks(x.transpose(1, 2))).transpose(1, 2)


def tcn_task(model: Any, make_windows: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    def loss(batch: tuple[Any, ...]) -> Any:
        (x,) = batch
        predicted = next_sample_predictions(model, x).float()
        return (predicted[:, :-1] - x[:, 1:]).pow(2).mean()

    return TrainTask(
        kind="backprop", modules={"model": model}, parameters=trainable(model), batch=(make_windows(batch_size),),
        loss=loss, optimizer="Adam", lr=1e-3,
        info={"method": "TCN", "loss": "mean squared error of the next-sample prediction at every step of the "
              "window (samples 2 to W, the newest included, each from the samples before it)",
              "trained": ["model"], "frozen": [],
              "simplified": ["no gradient clipping; no dropout (the inference model has none)"]},
    )
