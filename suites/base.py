"""What a suite is: a named set of workloads, each a model builder plus the inputs of the data set it
represents. A suite knows nothing of backends; the worker hands the model it builds to a backend.

Nothing here imports torch at module level: `bench list` and config validation read the catalog
without any ML runtime. Builders and input makers are import paths, resolved only in the worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

# resolve and load_suite live in bench.plugins (import paths, legacy ones included); kept here for
# the code that imports them from bench.suites.base.
from bench.plugins import load_suite, resolve

__all__ = ["Workload", "Suite", "resolve", "SuiteOptionError", "Instance", "choose"]


class SuiteOptionError(ValueError):
    """A suite option (data set, boundary, data folder, ...) the suite cannot honour. The CLI turns it
    into a one-line usage error naming the key, the value and the fix."""

    def __init__(self, key: str, value: Any, fix: str, problem: str) -> None:
        self.key, self.value, self.fix, self.problem = key, value, fix, problem
        super().__init__(f"{key}={value!r} {problem}: {fix}")


def choose(key: str, value: Any, default: str, choices: Any, problem: str) -> str:
    """A suite option that must be one of ``choices`` (a data set, a boundary): the value, or the
    default when it is empty; otherwise a SuiteOptionError naming the key, the value and the choices."""
    value = value or default
    if value not in choices:
        raise SuiteOptionError(key, value, f"use one of {', '.join(choices)}", problem)
    return value


@dataclass
class Instance:
    """What the worker measures: a model, its inputs, and what the record should say about them."""

    model: Any  # a torch module; None for a user's ONNX file (onnx_path)
    inputs: tuple[Any, ...]
    info: dict[str, Any] = field(default_factory=dict)
    onnx_path: Optional[str] = None
    # The parity reference when it is not the torch module in fp32 on the CPU: inputs -> float32 arrays.
    reference: Optional[Callable[[tuple[Any, ...]], list[Any]]] = None
    reference_name: str = "PyTorch eager fp32 on the CPU"


@dataclass(frozen=True)
class Workload:
    """One model on one representative input, as a catalog entry.

    ``builder`` is ``module:function``; the function takes ``seed: int`` and returns a torch
    ``nn.Module`` in eval mode whose forward takes the tensors ``make_inputs`` returns.
    ``inputs`` is ``module:function`` taking ``(batch_size: int, seed: int)`` and returning a tuple of
    tensors; when empty, one float32 tensor of ``(batch_size, *input_shape)`` is drawn, seeded: with
    ``input_norm="none"`` an image in [0, 1] (the model works on raw images or normalises itself);
    with "imagenet" such an image normalised with ImageNet's mean and std (what a pipeline feeds a
    model with an ImageNet backbone); with "normal" a standard normal tensor.
    ``resize`` is the size an image is resized to before a centre crop to ``input_shape`` (None: no
    crop, resize straight to the input shape).

    Several inputs, inputs that are not images (sensor windows, token ids, a state) and state carried
    between calls all go through ``inputs``: a stateful model takes its state as extra inputs and
    returns the new state as extra outputs (what a streaming ONNX model does), named in ``outputs``,
    so that backends, the parity check and every scenario handle it as any other model. Every input
    and output keeps the batch as its first axis, a state too (one per sample): the ONNX export
    refuses an output without it (bench.backends.onnx_export.check_batch_axes). ``input_shape`` is
    then the first input's shape; the catalog shows every input's, as counted by bench.suites.cost.
    tests/integration/test_suite_contract.py runs such a workload end to end.
    """

    name: str
    family: str
    builder: str
    input_shape: tuple[int, ...]
    dataset: str
    preprocessing: str
    latency_tier_ms: int
    licence: str
    reference: str
    outputs: tuple[str, ...] = ("anomaly_map", "score")
    inputs: str = ""
    input_norm: str = "imagenet"
    resize: Optional[int] = None
    description: str = ""
    # What an engineer filters the catalog on (`bench list task=... domain=...`): the task solved
    # ("anomaly detection", "forecasting", "action recognition", ...), the application domain, the
    # architecture's category ("CNN", "transformer", "RNN", "MLP", "flow", "GCN", ...), the smallest input
    # the model is meant for ("" when resolution means nothing, e.g. a sensor window), and the
    # licence of the data set the model's published weights were trained on ("" when not applicable).
    task: str = ""
    domain: str = ""
    category: str = ""
    min_resolution: str = ""
    dataset_licence: str = ""
    # Keyword arguments of the builder besides the seed, as (name, value) pairs so the workload stays
    # hashable: the sizes a suite derives from its options (a time series model's channel count and
    # window follow the data set; see Suite.adapt).
    builder_args: tuple[tuple[str, Any], ...] = ()

    def build(self, seed: int) -> Any:
        import torch

        torch.manual_seed(seed)
        model = resolve(self.builder)(seed=seed, **dict(self.builder_args))
        return model.eval()

    def make_inputs(self, batch_size: int, seed: int) -> tuple[Any, ...]:
        if self.inputs:
            return tuple(resolve(self.inputs)(batch_size=batch_size, seed=seed))
        import torch

        generator = torch.Generator().manual_seed(seed)
        shape = (batch_size, *self.input_shape)
        if self.input_norm == "normal":
            return (torch.randn(shape, generator=generator),)
        image = torch.rand(shape, generator=generator)
        if self.input_norm == "imagenet":
            # Channels first after the batch: (N, 3, H, W) images and (N, 3, T, H, W) clips alike.
            spread = (1, 3, *([1] * (len(shape) - 2)))
            mean = torch.tensor(IMAGENET_MEAN).view(spread)
            std = torch.tensor(IMAGENET_STD).view(spread)
            image = (image - mean) / std
        return (image,)

    def catalog(self) -> dict[str, Any]:
        """The fields a person chooses from (without the computed cost; see bench.suites.cost)."""
        return {
            "name": self.name,
            "family": self.family,
            "input_shape": list(self.input_shape),
            "dataset": self.dataset,
            "preprocessing": self.preprocessing,
            "input_norm": self.input_norm,
            "resize": self.resize,
            "latency_tier_ms": self.latency_tier_ms,
            "licence": self.licence,
            "reference": self.reference,
            "outputs": list(self.outputs),
            "description": self.description,
            "task": self.task,
            "domain": self.domain,
            "category": self.category,
            "min_resolution": self.min_resolution,
            "dataset_licence": self.dataset_licence,
        }


@dataclass(frozen=True)
class Suite:
    """A catalog of workloads. ``instantiate`` builds what the worker measures from a workload and
    the suite's options (data set, boundary, ...); ``check_options`` refuses options the suite
    cannot honour, before any work starts. The defaults measure the bare model on generated inputs."""

    name: str
    description: str
    workloads: tuple[Workload, ...] = field(default_factory=tuple)
    instantiate: Optional[Callable[[Workload, int, int, dict[str, Any]], Instance]] = None
    check_options: Optional[Callable[["Suite", dict[str, Any]], None]] = None
    describe: Optional[Callable[[Workload, dict[str, Any]], dict[str, Any]]] = None
    model_options: bool = False  # reads model.* (a model the user brings); other suites' configs refuse them
    # The workload as the options make it, when they change the model itself (a time series model's
    # channel count, window and latency budget follow the data set); None: the catalog's entry as it is.
    adapt: Optional[Callable[[Workload, dict[str, Any]], Workload]] = None

    def make(self, workload: Workload, batch_size: int, seed: int, options: dict[str, Any]) -> Instance:
        if self.instantiate is not None:
            return self.instantiate(workload, batch_size, seed, options)
        return Instance(workload.build(seed), workload.make_inputs(batch_size, seed))

    def check(self, options: dict[str, Any]) -> None:
        if self.check_options is not None:
            self.check_options(self, options)

    def adapted(self, workload: Workload, options: dict[str, Any]) -> Workload:
        """``workload`` as the options make it (``adapt``); what the worker builds, counts and budgets."""
        return self.adapt(workload, options) if self.adapt is not None else workload

    def workload_info(self, workload: Workload, options: dict[str, Any]) -> dict[str, Any]:
        """The catalog entry as these options make it (the data set chosen, the boundary, ...)."""
        workload = self.adapted(workload, options)
        info = workload.catalog()
        if self.describe is not None:
            info.update(self.describe(workload, options))
        return info

    def names(self) -> list[str]:
        return [w.name for w in self.workloads]

    def get(self, name: str) -> Workload:
        for workload in self.workloads:
            if workload.name == name:
                return workload
        raise KeyError(name)


def _source_digest(origin: str) -> bytes:
    """The source a module's code can depend on, hashed: for a module of bench's suites, every .py
    file under suites/ (models share backbones and heads across files and folders, pipelines live
    beside the catalogs) but the training losses and fits (``*_train.py``, ``training.py``), which no
    model imports, so that a change of loss keeps the cached conversions; for another package's module,
    the .py files of its own folder (the modules it most likely imports). Reading them costs
    milliseconds; a stale cached conversion costs a wrong number."""
    import hashlib
    from pathlib import Path

    here = Path(origin).resolve()
    suites = Path(__file__).resolve().parent
    if here.is_relative_to(suites):
        files = sorted(p for p in suites.rglob("*.py") if not (p.name.endswith("_train.py") or p == suites / "training.py"))
    else:
        files = sorted(here.parent.glob("*.py"))
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(file.parent.parent)).encode() + b"\0")
        digest.update(file.read_bytes())
    return digest.digest()


def code_hash(workload: Workload) -> str:
    """A hash of the source the workload's model and inputs are built from (``_source_digest``) and
    of its input shape: a change of the model code, or of a module it shares, changes the hash and
    invalidates what was cached."""
    import hashlib
    import importlib.util
    import os

    digest = hashlib.sha256()
    for path in (workload.builder, workload.inputs):
        if not path:
            continue
        spec = importlib.util.find_spec(path.partition(":")[0])
        if spec and spec.origin and os.path.exists(spec.origin):
            digest.update(_source_digest(spec.origin))
        digest.update(path.encode())
    digest.update(repr(workload.input_shape).encode())
    if workload.builder_args:  # the same code builds another model with other sizes
        digest.update(repr(workload.builder_args).encode())
    return digest.hexdigest()[:16]


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ += ["load_suite", "code_hash", "IMAGENET_MEAN", "IMAGENET_STD"]
