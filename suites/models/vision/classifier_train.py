"""The vision classifiers' training step: fine-tuning the whole network with cross-entropy over the
1000 ImageNet classes, on seeded images and seeded labels (values do not change speed), beside the
models (resnet.py, mobilenetv3.py, efficientnet.py, vit.py, convnext.py).

Optimizers (facts from the papers and reference recipes, no code copied):

* ResNet-50, MobileNetV3-Large, EfficientNet-B0: SGD, momentum 0.9, lr 0.01, the usual fine-tuning
  setting for these CNNs (this project's choice: their papers train from scratch, ResNet with SGD
  from lr 0.1, MobileNetV3 and EfficientNet with RMSProp);
* ViT-B/16: SGD, momentum 0.9, lr 0.01, as the ViT paper fine-tunes (Dosovitskiy et al., ICLR 2021,
  appendix: SGD with momentum 0.9, lr from a small grid that holds 0.01); its gradient clipping at
  global norm 1 is left out (a TrainTask has no clipping);
* ConvNeXt-T: AdamW, lr 5e-5, weight decay 1e-8, as facebookresearch/ConvNeXt's ImageNet-1K
  fine-tuning commands (TRAINING.md); their layer-wise learning-rate decay is left out (one
  learning rate for every layer: the same cost).

Simplified (also in the task's ``info["simplified"]``): labels are seeded random classes; the
fine-tuning recipes' augmentation, label smoothing, dropout, stochastic depth and schedules are left
out (the inference models have no dropout or stochastic depth).

A separate module from the models' so that a change of the loss does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.suites.training import TrainTask, trainable

__all__ = ["LABEL_SEED_OFFSET", "seeded_labels", "classifier_task", "sgd_finetune_task", "vit_finetune_task",
           "adamw_finetune_task"]

# The labels' generator seed is the task's plus this: away from the images' (the seed) and from the head's
# biased classes' (seed + 1, common.separate_top_classes), whose first draw torch.randint would repeat.
LABEL_SEED_OFFSET = 7919
_SIMPLIFIED = ["labels are seeded random classes",
               "no augmentation, label smoothing, dropout, stochastic depth or schedule"]


def seeded_labels(n: int, seed: int) -> Any:
    """``n`` class indices (int64) among ImageNet's 1000, drawn with a generator seeded by ``seed``."""
    import torch

    from bench.suites.models.vision.common import NUM_CLASSES

    return torch.randint(0, NUM_CLASSES, (n,), generator=torch.Generator().manual_seed(seed))


def classifier_task(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int, optimizer: str,
                    lr: float, optimizer_options: dict[str, Any], simplified: list[str]) -> TrainTask:
    """Cross-entropy fine-tuning of the whole ``model`` with ``optimizer``."""
    import torch.nn.functional as F

    from bench.suites.models.vision.common import NUM_CLASSES

    labels_seed = seed + LABEL_SEED_OFFSET

    def loss(batch: tuple[Any, ...]) -> Any:
        images, labels = batch
        return F.cross_entropy(model(images).float(), labels)

    return TrainTask(
        kind="backprop", modules={"model": model}, parameters=trainable(model),
        batch=(make_images(batch_size), seeded_labels(batch_size, labels_seed)), loss=loss,
        optimizer=optimizer, lr=lr, optimizer_options=optimizer_options,
        make_batch=lambda images: (images, seeded_labels(images.shape[0], labels_seed)),
        info={"method": "fine-tuning", "loss": f"cross-entropy over {NUM_CLASSES} classes",
              "trained": ["model"], "frozen": [], "batch": ["images (ImageNet-normalised)", "class labels (int64)"],
              "simplified": [*_SIMPLIFIED, *simplified]},
    )


def sgd_finetune_task(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    """ResNet-50, MobileNetV3-Large and EfficientNet-B0: SGD, momentum 0.9, lr 0.01 (our choice)."""
    return classifier_task(model, make_images, batch_size, seed, "SGD", 0.01, {"momentum": 0.9},
                           ["SGD, momentum 0.9, lr 0.01 is this project's fine-tuning choice"])


def vit_finetune_task(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    """ViT-B/16: SGD, momentum 0.9, lr 0.01, as the ViT paper fine-tunes."""
    return classifier_task(model, make_images, batch_size, seed, "SGD", 0.01, {"momentum": 0.9},
                           ["no gradient clipping (the paper's fine-tuning clips at global norm 1)"])


def adamw_finetune_task(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    """ConvNeXt-T: AdamW, lr 5e-5, weight decay 1e-8 (the reference's fine-tuning commands)."""
    return classifier_task(model, make_images, batch_size, seed, "AdamW", 5e-5, {"weight_decay": 1e-8},
                           ["one learning rate for every layer (the reference fine-tunes with layer-wise decay)"])
