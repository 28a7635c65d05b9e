"""What the vision classifiers share: the separated head bias that makes their top-5 comparable
across backends, and the one seeded-initialisation entry point the builders call.

Why the head bias: a classifier with random weights gives near-equal logits, so its top-5 classes
swap between two backends (or between fp32 and fp16) on rounding alone, and the pipeline's top-5
indices would fail the parity check for no fault of the backend. A trained classifier is confident
on a real image; here the head stands in for that: its weights are scaled by 0.1 (what the features
add to a logit stays near 0.1) and a seeded choice of six classes gets a bias of 10, 9, ..., 5 above
the rest, so consecutive top classes lie 1 apart, far more than any tolerated rounding (int8's 5% of
the largest logit is 0.5). Speed does not depend on these values.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NUM_CLASSES", "separate_top_classes"]

NUM_CLASSES = 1000  # ImageNet-1k


def separate_top_classes(head: nn.Linear, seed: int, top: int = 6) -> None:
    """Scale ``head``'s weights by 0.1; bias a seeded choice of ``top`` classes at 10, 9, ..., the rest 0."""
    if head.bias.device.type == "meta":  # counting parameters and FLOPs: no values to set
        return
    generator = torch.Generator().manual_seed(seed + 1)
    classes = torch.randperm(head.out_features, generator=generator)[:top]
    bias = torch.zeros(head.out_features)
    bias[classes] = torch.arange(10.0, 10.0 - top, -1.0)
    with torch.no_grad():
        head.weight.mul_(0.1)
        head.bias.copy_(bias)
