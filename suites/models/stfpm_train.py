"""STFPM's training step (Wang et al., BMVC 2021; anomalib ``stfpm``), beside the model (stfpm.py):
teacher frozen, student trained, SGD lr 0.4, momentum 0.9, weight decay 1e-3. Loss = per level
``0.5 / (h * w) * sum ||t_hat - s_hat||^2`` (channel-L2-normalised features, summed over batch,
channels and positions), summed over levels. Facts from the paper and the reference code, no code
copied.

A separate module from the model's so that a change of the loss does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.suites.training import TrainTask, freeze, trainable

__all__ = ["stfpm_task"]


def stfpm_task(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch
    import torch.nn.functional as F

    teacher, student = model.teacher, model.student
    freeze(teacher)

    def loss(batch: tuple[Any, ...]) -> Any:
        (x,) = batch
        with torch.no_grad():
            targets = teacher(x)
        total = 0.0
        for t, s in zip(targets, student(x)):
            h, w = t.shape[-2:]
            diff = F.normalize(t.float(), dim=1) - F.normalize(s.float(), dim=1)
            total = total + (0.5 / (h * w)) * diff.pow(2).sum()
        return total

    return TrainTask(
        kind="backprop", modules={"teacher": teacher, "student": student}, parameters=trainable(student),
        batch=(make_images(batch_size),), loss=loss, optimizer="SGD", lr=0.4,
        optimizer_options={"momentum": 0.9, "dampening": 0.0, "weight_decay": 1e-3},
        info={"method": "STFPM", "loss": "sum over levels of 0.5 / (h w) * squared distance of channel-L2-normalised "
              "teacher and student features, summed over batch, channels and positions (anomalib's STFPMLoss)",
              "trained": ["student"], "frozen": ["teacher"], "simplified": []},
    )
