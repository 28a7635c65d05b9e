"""What a suite is: a named set of workloads, each a model builder plus the inputs of the data set it
represents. A suite knows nothing of backends; the worker hands the model it builds to a backend.

Nothing here imports torch at module level: `bench list` and config validation read the catalog
without any ML runtime. Builders and input makers are import paths, resolved only in the worker.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Workload", "Suite", "resolve"]


def resolve(path: str) -> Any:
    """Import ``package.module:attribute`` and return the attribute."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"import path {path!r} must look like 'package.module:attribute'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"import path {path!r}: module {module_name!r} has no attribute {attr!r}") from None


@dataclass(frozen=True)
class Workload:
    """One model on one representative input, as a catalog entry.

    ``builder`` is ``module:function``; the function takes ``seed: int`` and returns a torch
    ``nn.Module`` in eval mode whose forward takes the tensors ``make_inputs`` returns.
    ``inputs`` is ``module:function`` taking ``(batch_size: int, seed: int)`` and returning a tuple of
    tensors; when empty, one float32 tensor of ``(batch_size, *input_shape)`` is drawn, seeded, from
    ``input_range``: "unit" (uniform in [0, 1], an image the model normalises itself) or "normal"
    (standard normal, an already normalised tensor).
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
    input_range: str = "unit"
    description: str = ""

    def build(self, seed: int) -> Any:
        import torch

        torch.manual_seed(seed)
        model = resolve(self.builder)(seed=seed)
        return model.eval()

    def make_inputs(self, batch_size: int, seed: int) -> tuple[Any, ...]:
        if self.inputs:
            return tuple(resolve(self.inputs)(batch_size=batch_size, seed=seed))
        import torch

        generator = torch.Generator().manual_seed(seed)
        draw = torch.rand if self.input_range == "unit" else torch.randn
        return (draw((batch_size, *self.input_shape), generator=generator),)

    def catalog(self) -> dict[str, Any]:
        """The fields a person chooses from (without the computed cost; see suites.cost)."""
        return {
            "name": self.name,
            "family": self.family,
            "input_shape": list(self.input_shape),
            "dataset": self.dataset,
            "preprocessing": self.preprocessing,
            "input_range": self.input_range,
            "latency_tier_ms": self.latency_tier_ms,
            "licence": self.licence,
            "reference": self.reference,
            "outputs": list(self.outputs),
            "description": self.description,
        }


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    workloads: tuple[Workload, ...] = field(default_factory=tuple)

    def names(self) -> list[str]:
        return [w.name for w in self.workloads]

    def get(self, name: str) -> Workload:
        for workload in self.workloads:
            if workload.name == name:
                return workload
        raise KeyError(name)


def load_suite(path: str) -> Suite:
    """Load the ``Suite`` object a suite config names (``module:attribute``)."""
    suite = resolve(path)
    if not isinstance(suite, Suite):
        raise TypeError(f"{path!r} is not a suites.base.Suite")
    return suite


__all__ += ["load_suite"]
