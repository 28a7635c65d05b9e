"""The timed fit of the training methods that do not train by backprop (PatchCore, PaDiM):
``fit_cost`` times a suite's whole fit per training image. The timed training step of the backprop
methods is a backend's (bench.backends.base.TrainingSession; PyTorch's in
bench/backends/torch_training.py), driven by bench.measurement.loop. This module imports torch only
inside its functions.
"""

from __future__ import annotations

import statistics
from typing import Any, Optional

__all__ = ["fit_cost"]


def _device(device: str) -> Any:
    import torch

    try:
        target = torch.device(device)
    except RuntimeError:
        target = None
    if target is None or target.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported for training: use cpu or cuda[:N]")
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} is not available: this torch sees no CUDA device")
        if target.index is None:
            target = torch.device("cuda", torch.cuda.current_device())
    return target


def fit_cost(task: Any, images: int, device: str, repeats: int) -> dict[str, Any]:
    """Time the task's whole fit on ``images`` generated training images, ``repeats`` times, on
    ``device`` (fp32). Each repeat starts from the same images and writes the same fitted state.
    Returns per-image seconds (the median and every repeat's), each repeat's total, and the fit's
    own info. The images are generated and moved to the device before the clock starts; the first
    repeat on a GPU also pays lazy library initialisation (cuBLAS, cuSOLVER), so warm up first or
    read the median."""
    import torch

    from bench.measurement.timing import timed_runs

    if task.kind != "fit" or task.fit is None or task.make_images is None:
        raise ValueError(f"{task.info.get('workload', 'this task')} is a {task.kind} task: use prepare_training")
    if images < 1 or repeats < 1:
        raise ValueError(f"images ({images}) and repeats ({repeats}) must be at least 1")
    target = _device(device)
    for module in task.modules.values():
        module.to(target)
    task.set_modes()
    data = task.make_images(images).to(target)

    def synchronize() -> None:
        if target.type == "cuda":
            torch.cuda.synchronize(target)

    info: Optional[dict[str, Any]] = None

    def fit() -> None:
        nonlocal info
        info = task.fit(data)

    synchronize()  # the images are on the device before the clock starts
    totals = [ns / 1e9 for ns in timed_runs(fit, synchronize, min_runs=repeats).durations_ns]
    per_image = [t / images for t in totals]
    return {
        "per_image_s": statistics.median(per_image),
        "per_image_s_all": per_image,
        "total_s_all": totals,
        "images": images,
        "repeats": repeats,
        "device": str(target),
        "precision": "fp32",
        "torch_version": torch.__version__,
        "fit": info,
        "method": task.info.get("method"),
    }
