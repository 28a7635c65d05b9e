"""Training on PyTorch (the ``cpu``, ``cuda``, ``cpu-compiled`` and ``cuda-compiled`` backends):
``prepare_training`` turns a ``bench.suites.training.TrainTask`` into a ``TorchTrainingSession``
whose ``step()`` the measurement loop times and whose ``synchronize()`` is the loop's one
synchronisation hook; a fit task (PatchCore, PaDiM) becomes a ``TorchFitSession``, whose fit
fit_cost times.

Precision is automatic mixed precision, never a cast model: fp32 master weights, the forward and
the loss under ``torch.autocast`` with the precision's dtype (bf16 or fp16), the backward outside it
(PyTorch's recommendation), and for fp16 a ``torch.amp.GradScaler`` so that small gradients do not
underflow. ``GradScaler.step`` reads its inf/NaN check back to the host, so an fp16 step on CUDA
holds one device synchronisation per step; that is part of what fp16 training costs (the
optimizers PyTorch marks as fused avoid it; the methods' usual optimizers here are not fused).

The CUDA paths (device "cuda" or "cuda:N") follow PyTorch's documented AMP and synchronisation APIs.
No test here runs them (the project's test machine has no GPU); they were run once, during
development, on an NVIDIA H200 with torch 2.11 (every backprop workload in fp32, bf16 and fp16 at
batch 8 or 16, the three fits, one compiled step): the losses fell, and CUDA's synchronisation debug
mode saw no host synchronisation inside ``step()`` in fp32 and bf16, and the GradScaler's one in
fp16. This module imports torch only inside its functions.
"""

from __future__ import annotations

import statistics
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from bench.backends.base import TrainingSession

__all__ = ["TorchTrainingSession", "TorchFitSession", "prepare_training", "prepare_fit", "torch_device",
           "PRECISIONS", "OPTIMIZERS", "cpu_fp16_autocast", "fit_cost"]

PRECISIONS = ("fp32", "fp16", "bf16")
OPTIMIZERS = ("Adam", "AdamW", "SGD")
_LOSS_CHUNK = 1024  # losses recorded per device buffer before another is allocated


def _synchronize(device: Any) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def _device_memory(device: Any) -> dict[str, float]:
    if device.type != "cuda":
        return {}
    import torch

    mib = 1024.0 * 1024.0
    return {"torch_max_allocated_mib": torch.cuda.max_memory_allocated(device) / mib,
            "torch_max_reserved_mib": torch.cuda.max_memory_reserved(device) / mib}


@dataclass
class TorchTrainingSession(TrainingSession):
    """One prepared training run: modules, batch and optimizer on the device. Built by
    ``prepare_training``; the measurement loop calls ``step()`` and ``synchronize()``.

    The loss of every step is recorded on the device, detached, into preallocated buffers, never
    read back inside ``step()`` (a ``.item()`` there would synchronise the host with the device and
    distort CUDA timings); ``losses`` reads them back, and must only be read outside timed regions.
    """

    task: Any
    device: Any  # torch.device
    precision: str
    optimizer: Any
    loss_fn: Callable[[tuple[Any, ...]], Any]
    batch: tuple[Any, ...]
    amp_dtype: Any = None  # torch.bfloat16 / torch.float16, or None for fp32
    scaler: Any = None  # torch.amp.GradScaler for fp16
    compiled: bool = False
    record_losses: bool = True
    fp32_math: Optional[dict[str, Any]] = None
    _buffers: list[Any] = field(default_factory=list, repr=False)
    _count: int = 0

    kind = "backprop"

    def step(self) -> None:
        """One training step: zero_grad, forward and loss under autocast, backward (scaled for
        fp16), optimizer step. On CUDA: run once on an H200, not by the tests (module docstring)."""
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            loss = self.loss_fn(self.batch)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            # Metadata only: no synchronisation.
            raise TypeError(f"the loss must be a scalar tensor, not {type(loss).__name__} "
                            f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}".rstrip())
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        if self.record_losses:
            self._record(loss.detach())

    def _record(self, loss: Any) -> None:
        import torch

        slot = self._count % _LOSS_CHUNK
        if slot == 0:
            self._buffers.append(torch.empty(_LOSS_CHUNK, dtype=torch.float32, device=self.device))
        self._buffers[-1][slot].copy_(loss)  # asynchronous on a GPU; casts bf16/fp16 to fp32
        self._count += 1

    @property
    def losses(self) -> list[float]:
        """The loss of every step so far (synchronises with the device: read it outside timing)."""
        if not self._buffers:
            return []
        import torch

        return torch.cat(self._buffers)[: self._count].cpu().tolist()

    def synchronize(self) -> None:
        """Wait for the device's queued work: ``torch.cuda.synchronize`` on CUDA, nothing on the
        CPU."""
        _synchronize(self.device)

    def device_memory(self) -> dict[str, float]:
        return _device_memory(self.device)

    def effective_settings(self) -> dict[str, Any]:
        """What actually runs, read back from the objects that run it. Reads the GradScaler's
        current scale (a synchronisation): call it outside timed regions."""
        import torch

        defaults = {k: v for k, v in self.optimizer.defaults.items()
                    if isinstance(v, (int, float, bool, str, tuple, type(None)))}
        settings: dict[str, Any] = {
            "device": str(self.device),
            "precision": self.precision,
            "amp": self.amp_dtype is not None,
            "amp_dtype": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype is not None else None,
            "master_weights": "float32",
            "grad_scaler": self.scaler is not None,
            # fp16: the scale halves at each step whose gradients overflowed (that step's optimizer
            # update is skipped), so a scale far below the initial 65536 says early steps were skipped.
            "grad_scale": float(self.scaler.get_scale()) if self.scaler is not None else None,
            "optimizer": type(self.optimizer).__name__,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "optimizer_settings": {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()},
            "compiled": self.compiled,
            "torch_version": torch.__version__,
            "record_losses": self.record_losses,
            "trainable_params": sum(p.numel() for p in self.task.parameters),
            "batch_shapes": [list(t.shape) for t in self.batch],
        }
        if self.device.type == "cuda":
            settings.update(
                device_name=torch.cuda.get_device_name(self.device),
                tf32_matmul=bool(torch.backends.cuda.matmul.allow_tf32),
                tf32_cudnn=bool(torch.backends.cudnn.allow_tf32),
                cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
            )
        else:
            settings["threads"] = torch.get_num_threads()
        return settings


@dataclass
class TorchFitSession(TrainingSession):
    """A fit task (PatchCore, PaDiM: no backprop) on its device, always in fp32: ``fit_cost`` times
    the whole fit per training image (fit_cost)."""

    task: Any
    device: Any  # torch.device
    fp32_math: Optional[dict[str, Any]] = None

    kind = "fit"

    def step(self) -> None:
        raise ValueError(f"{self.task.info.get('workload', 'this task')} is a fit task: time it with fit_cost")

    def synchronize(self) -> None:
        _synchronize(self.device)

    def fit_cost(self, images: int, repeats: int) -> dict[str, Any]:
        return fit_cost(self.task, images, str(self.device), repeats)

    def device_memory(self) -> dict[str, float]:
        return _device_memory(self.device)

    def effective_settings(self) -> dict[str, Any]:
        return {"device": str(self.device), "fp32_math": self.fp32_math}


def cpu_fp16_autocast() -> bool:
    """Whether this torch runs float16 autocast on the CPU: a matrix product under
    ``autocast("cpu", float16)`` comes out in float16 (older releases warn and leave it fp32)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.autocast("cpu", dtype=torch.float16):
                out = torch.mm(torch.ones(2, 2), torch.ones(2, 2))
        except (RuntimeError, ValueError):
            return False
    return out.dtype == torch.float16


def _amp(device: Any, precision: str) -> tuple[Any, Any]:
    """(autocast dtype or None, GradScaler or None) for the precision on the device."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None, None
    if device.type == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"precision 'bf16' is not supported on {torch.cuda.get_device_name(device)}")
        if precision == "bf16":
            return torch.bfloat16, None
        return torch.float16, torch.amp.GradScaler("cuda")
    if precision == "bf16":
        return torch.bfloat16, None
    if not cpu_fp16_autocast():
        raise ValueError(f"precision 'fp16' on the CPU needs float16 CPU autocast, which torch {torch.__version__} "
                         "lacks: use precision bf16 or fp32")
    # fp16 gradients underflow on any device: scale them on the CPU too.
    return torch.float16, torch.amp.GradScaler("cpu")


def torch_device(device: str) -> Any:
    """``device`` as a torch.device to train on (cpu, or cuda[:N] where this torch sees it; "cuda"
    is the current CUDA device, with its index)."""
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
    target = torch_device(device)
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


def _optimizer(task: Any) -> Any:
    import torch

    if task.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {task.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    return getattr(torch.optim, task.optimizer)(task.parameters, lr=task.lr, **task.optimizer_options)


def prepare_training(task: Any, device: str, precision: str, compile: bool = False,
                     record_losses: bool = True) -> TorchTrainingSession:
    """Move the task's modules and batch to ``device``, set train/eval modes, build the optimizer
    and the AMP settings. ``compile=True`` wraps the task's forward and loss in ``torch.compile``:
    the first ``step()`` then compiles (the warm-up's business, not the timed loop's). ``"cuda"``
    means the current CUDA device, recorded with its index."""
    import torch

    if task.kind != "backprop" or task.loss is None:
        raise ValueError(f"{task.info.get('workload', 'this task')} is a {task.kind} task: time it with fit_cost")
    target = torch_device(device)
    amp_dtype, scaler = _amp(target, precision)
    for module in task.modules.values():
        module.to(target)
    task.set_modes()
    batch = tuple(t.to(target) for t in task.batch)
    loss_fn = torch.compile(task.loss) if compile else task.loss
    return TorchTrainingSession(task=task, device=target, precision=precision, optimizer=_optimizer(task),
                                loss_fn=loss_fn, batch=batch, amp_dtype=amp_dtype, scaler=scaler,
                                compiled=bool(compile), record_losses=record_losses)


def prepare_fit(task: Any, device: str) -> TorchFitSession:
    """A fit task on ``device`` (checked here, before any timing; fit_cost places the modules)."""
    if task.kind != "fit" or task.fit is None or task.make_images is None:
        raise ValueError(f"{task.info.get('workload', 'this task')} is a {task.kind} task: use prepare_training")
    return TorchFitSession(task=task, device=torch_device(device))


def prepare_torch_training(backend: Any, task: Any, precision: str, record_losses: bool,
                           compile: bool) -> TrainingSession:
    """TorchBackend.prepare_training and CompiledBackend's: the backend's threads, the fp32 math mode
    on CUDA (precision=tf32 lets fp32 products use TF32; tf32 trains as fp32 otherwise), then the
    task's session (a compiled backend compiles the forward and the loss; a fit is never compiled)."""
    import torch

    from bench.backends.torch_math import set_fp32_math

    s = backend.settings
    device = str(s.device)
    if s.threads:
        torch.set_num_threads(int(s.threads))
    fp32_math = set_fp32_math(torch, precision == "tf32") if device.startswith("cuda") else None
    session: TrainingSession
    if task.kind == "fit":
        session = prepare_fit(task, device)
    else:
        session = prepare_training(task, device, "fp32" if precision == "tf32" else precision, compile=compile,
                                   record_losses=record_losses)
    session.fp32_math = fp32_math
    return session
