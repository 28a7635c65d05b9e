"""PatchTST's and DLinear's training step, beside the models (patchtst.py, dlinear.py): trained whole,
mean squared error of the forecast over the horizon, Adam; PatchTST lr 1e-4 (Nie et al., ICLR 2023;
yuqinie98/PatchTST, scripts/PatchTST/etth1.sh), DLinear lr 5e-3 (Zeng et al., AAAI 2023;
cure-lab/LTSF-Linear, scripts/EXP-LongForecasting/Linear/etth1.sh). Both references train with
``nn.MSELoss`` on the normalised series. Facts from the papers and the reference code, no code copied.

The batch is (look-back windows, targets): windows of look-back + horizon samples cut from the
suite's generated series (or the user's file), normalised with the series' per-channel statistics,
split into the look-back the model reads and the ``horizon`` samples after it.

Simplified (also in the task's ``info["simplified"]``): ``make_batch(samples)``, which gets look-back
windows only (a continual-learning step's recent samples), uses each window's own last ``horizon``
samples as its target: the future of the newest window is not known yet, and the step's cost (shapes,
forward, backward) is the same. PatchTST's dropout (0.3 in the reference's ETTh1 script) is not added
(the inference model has none); neither model's learning-rate adjustment is.

A separate module from the models' so that a change of the loss does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.suites.timeseries import HORIZON
from bench.suites.training import TrainTask, trainable

__all__ = ["patchtst_task", "dlinear_task", "forecast_task"]

_TAIL = f"make_batch(samples): each look-back window's own last {HORIZON} samples are its target (the future of " \
        "a new window is not known yet; same shapes and cost as a real target)"


def forecast_task(model: Any, make_windows: Callable[..., Any], batch_size: int, method: str, lr: float,
                  simplified: list[str]) -> TrainTask:
    """A forecasting model's task: MSE over the horizon, Adam at ``lr``."""
    windows = make_windows(batch_size, HORIZON)
    lookback = windows.shape[1] - HORIZON
    batch = (windows[:, :lookback].contiguous(), windows[:, lookback:].contiguous())

    def loss(batch: tuple[Any, ...]) -> Any:
        x, target = batch
        return (model(x).float() - target).pow(2).mean()

    return TrainTask(
        kind="backprop", modules={"model": model}, parameters=trainable(model), batch=batch, loss=loss,
        optimizer="Adam", lr=lr, make_batch=lambda samples: (samples, samples[:, -HORIZON:].contiguous()),
        info={"method": method, "loss": f"mean squared error of the forecast over the horizon ({HORIZON} samples)",
              "trained": ["model"], "frozen": [],
              "batch": [f"look-back windows ({lookback} samples)", f"the {HORIZON} samples after each"],
              "simplified": [_TAIL, *simplified]},
    )


def patchtst_task(model: Any, make_windows: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    return forecast_task(model, make_windows, batch_size, "PatchTST", 1e-4,
                         ["no dropout (0.3 in the reference's ETTh1 script; the inference model has none)"])


def dlinear_task(model: Any, make_windows: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    return forecast_task(model, make_windows, batch_size, "DLinear", 5e-3, [])
