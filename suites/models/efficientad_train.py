"""EfficientAD-S/-M's training step (Batzner et al., WACV 2024; anomalib ``efficient_ad``), beside
the model (efficientad.py): teacher frozen, student and autoencoder trained, Adam lr 1e-4, weight
decay 1e-5. Loss = hard-feature loss of the student (mean of the squared student-teacher
differences at or above their 0.999 quantile, on the normalised teacher features) + ImageNet
penalty (mean squared student output, first half of the channels, on an ImageNet image) +
autoencoder loss (mean squared AE-teacher difference on a colour-jittered image) + student-AE loss
(mean squared difference of the AE output and the student's second half of channels, same image).
Facts from the paper and the reference code read for them, no code copied.

Simplified (also in the task's ``info["simplified"]``): the ImageNet penalty's image is a seeded
random image (a stand-in for ImageNette), not a real one; the colour jitter (brightness, contrast
or saturation by a factor in [0.8, 1.2], as the references draw it) is applied once, outside the
timed step; the 0.999 quantile is taken exactly with ``topk`` instead of ``torch.quantile`` (same
value, no 16M-element limit, no host synchronisation from boolean indexing).

A separate module from the model's so that a change of the loss does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from bench.suites.training import TrainTask, freeze, trainable

__all__ = ["HARD_QUANTILE", "hard_mean", "colour_jitter", "efficientad_task"]

HARD_QUANTILE = 0.999


def hard_mean(distance: Any, quantile: float = HARD_QUANTILE) -> Any:
    """Mean of the elements at or above the ``quantile`` of ``distance`` (EfficientAD's hard
    feature mining), via ``topk``: with linear interpolation the quantile lies between sorted
    elements ``floor(q (n - 1))`` and ``ceil(q (n - 1))``, so the elements at or above it are the
    ``n - ceil(q (n - 1))`` largest (ties at the quantile aside). Equal to the references'
    ``mean(d[d >= quantile(d, q)])`` without torch.quantile's 16M-element limit and without the
    host synchronisation that boolean indexing costs on a GPU."""
    flat = distance.reshape(-1)
    n = flat.numel()
    k = n - math.ceil(quantile * (n - 1))
    return flat.topk(k, sorted=False).values.mean()


def colour_jitter(images: Any, seed: int, low: float = 0.8, high: float = 1.2) -> Any:
    """EfficientAD's augmentation of the autoencoder's image: per image, one of brightness,
    contrast or saturation adjusted by a factor drawn from U(low, high) (torchvision's
    definitions: blend with black, with the mean grey level, with the grey image), clamped to
    [0, 1]."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    out = images.clone()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    for i in range(images.shape[0]):
        image = images[i : i + 1]
        choice = int(torch.randint(3, (1,), generator=generator))
        factor = float(torch.empty(1).uniform_(low, high, generator=generator))
        grey = (image * weights).sum(dim=1, keepdim=True)
        if choice == 0:
            other = torch.zeros_like(image)
        elif choice == 1:
            other = grey.mean().expand_as(image)
        else:
            other = grey.expand_as(image)
        out[i : i + 1] = (factor * image + (1.0 - factor) * other).clamp(0.0, 1.0)
    return out


def efficientad_task(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch

    teacher, student, ae = model.teacher, model.student, model.ae
    freeze(teacher)
    # The normalisation the inference model applies: ImageNet mean/std on the input, and the
    # teacher's per-channel feature statistics (fitted on the training images before training).
    stats = torch.nn.Module()
    for name in ("input_mean", "input_std", "teacher_mean", "teacher_std"):
        stats.register_buffer(name, getattr(model, name).detach().clone())
    c = model.out_channels
    image = make_images(batch_size)
    batch = (image, colour_jitter(image, seed + 1), make_images(batch_size, 2))

    def loss(batch: tuple[Any, ...]) -> Any:
        image, image_ae, image_penalty = (
            (x - stats.input_mean) / stats.input_std for x in batch
        )
        with torch.no_grad():
            t = (teacher(image) - stats.teacher_mean) / stats.teacher_std
            t_ae = (teacher(image_ae) - stats.teacher_mean) / stats.teacher_std
        distance_st = (t.float() - student(image)[:, :c].float()) ** 2
        loss_hard = hard_mean(distance_st)
        loss_penalty = (student(image_penalty)[:, :c].float() ** 2).mean()
        ae_out = ae(image_ae).float()
        student_ae = student(image_ae)[:, c:].float()
        loss_ae = ((t_ae.float() - ae_out) ** 2).mean()
        loss_stae = ((ae_out - student_ae) ** 2).mean()
        return loss_hard + loss_penalty + loss_ae + loss_stae

    return TrainTask(
        kind="backprop", modules={"teacher": teacher, "student": student, "autoencoder": ae, "normalisation": stats},
        parameters=trainable(student, ae), batch=batch, loss=loss, optimizer="Adam", lr=1e-4,
        optimizer_options={"weight_decay": 1e-5},
        make_batch=lambda images: (images, colour_jitter(images, seed + 1), make_images(images.shape[0], 2)),
        info={"method": f"EfficientAD-{model.model_size.upper()}",
              "loss": "hard student-teacher (0.999 quantile) + ImageNet penalty + autoencoder-teacher + "
                      "student-autoencoder, mean squared distances",
              "trained": ["student", "autoencoder"], "frozen": ["teacher"],
              "batch": ["image", "colour-jittered image (autoencoder)", "ImageNet stand-in (penalty)"],
              "simplified": ["penalty image is a seeded random stand-in for ImageNette",
                             "colour jitter applied once, outside the timed step",
                             "0.999 quantile via topk (exact, no host sync)"]},
    )
