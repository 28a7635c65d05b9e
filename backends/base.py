"""The backend contract. A backend knows nothing of suites: it gets a torch module and example
inputs, and returns a Session that the measurement loop drives with run() and synchronize().
A backend that can train (``can_train``) also turns a suite's training task into a
TrainingSession, driven with step() and synchronize() (scenario=training).

Everything backend-specific (device placement, dtype, memory format, IO binding, thread settings)
lives behind this contract; the loop is written once for all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Sequence

from bench.precision import PARITY_TOLERANCE, PRECISION_ORDER, lowest_precision

__all__ = ["Availability", "Backend", "Session", "PrepareContext", "TrainingContext", "TrainingSession",
           "CannotTrain", "PARITY_TOLERANCE", "PRECISION_ORDER", "lowest_precision"]


@dataclass(frozen=True)
class PrepareContext:
    """What a backend may need to know besides the model: the scenario it will be driven in (an
    async runtime sizes its request queue by it), the batch sizes to build for, and where to cache
    conversions. ``model_key`` identifies the model and its input spec (suite, workload, seed, suite
    options, the model code's hash, one sample's input shapes and dtypes: not the batch size); a
    backend adds its precision, its settings, its library versions and the batch sizes the artifact
    serves to make a conversion's cache key. ``max_batch_size`` is the largest batch the item covers:
    a batch sweep's largest size (so one artifact serves the whole sweep), else ``batch_size``."""

    scenario: str = "latency"
    batch_size: int = 1
    max_batch_size: int = 1
    cache_dir: Optional[str] = None
    model_key: str = ""
    cache_enabled: bool = True
    # A model the user brings as an ONNX file: ONNX-based backends run it as it is (there is no
    # torch model to export, and prepare() gets model=None).
    onnx_path: Optional[str] = None
    # More of the workload's inputs for a backend that calibrates on them (TensorRT int8, Q/DQ):
    # calibration_inputs(i) is a batch of the measured size drawn as the worker drew the measured one,
    # with seed suite.seed + 1 + i. None: the example inputs are all there is.
    calibration_inputs: Optional[Callable[[int], Sequence[Any]]] = None


@dataclass(frozen=True)
class TrainingContext:
    """What a backend needs to prepare a training task besides the task: the precision asked for
    (fp32, tf32, fp16 or bf16; a backend trains the low precisions as AMP over fp32 master weights)
    and whether every step's loss is recorded (read back afterwards through ``losses``)."""

    precision: str = "fp32"
    record_losses: bool = True


class CannotTrain(ValueError):
    """Raised by ``Backend.prepare_training`` on a backend whose class says ``can_train = False``."""


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""
    install: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"available": self.ok, "reason": self.reason, "install": self.install}


class Session(ABC):
    """A model prepared for one runtime and device. ``run`` is one inference of one batch.

    ``in_flight`` is how many requests the session keeps running at once: 1 for a session whose
    run() completes (or is completed by synchronize) one batch at a time; more for an async queue,
    whose run() returns as soon as a slot is free. The throughput loop then never synchronizes
    between blocks (bench.measurement.loop.measure)."""

    in_flight: int = 1

    @abstractmethod
    def load_inputs(self, inputs: Sequence[Any]) -> Any:
        """Move host fp32 tensors to where and how ``run`` wants them (outside any timing)."""

    @abstractmethod
    def run(self, inputs: Any) -> Any:
        """One inference of one batch; may return before the device is done (see synchronize)."""

    @abstractmethod
    def synchronize(self) -> None:
        """Wait until the device has finished all work queued by run(); a no-op on the CPU."""

    @abstractmethod
    def to_numpy(self, outputs: Any) -> list[Any]:
        """Outputs as host float32 numpy arrays, in a fixed order, for the parity check."""

    def device_memory(self) -> dict[str, float]:
        """What the runtime can tell of device memory, in MiB; {} when nothing."""
        return {}

    def effective_settings(self) -> dict[str, Any]:
        """The settings that actually ran, as the runtime reports them (recorded, not the request).
        Where the runtime can say what precision it computed in, ``ran_precision`` holds it (the least
        precise of its parts, see lowest_precision); bench.results.diagnostics warns when it differs from the
        precision asked for. Absent where the runtime cannot say."""
        return {}

    def close(self) -> None:
        """Release what the session started besides the model (threads, streams), then raise what
        failed in them unseen (a batch whose completion never came). The worker calls it once the
        item's result is complete, and also when the item failed (then what it raises is dropped for
        the first error). Safe to call again; nothing to release by default."""


class TrainingSession(ABC):
    """A suite's training task (bench.suites.training.TrainTask) prepared for one runtime and device.

    A backprop task (``kind == "backprop"``): ``step`` is one training step (forward, the method's
    loss, backward, optimizer step), which the measurement loop times with ``synchronize`` as its one
    synchronisation hook; ``losses`` reads every step's loss back (outside timed regions). A fit task
    (``kind == "fit"``: PatchCore, PaDiM): ``fit_cost`` times the whole fit per training image."""

    kind: str = "backprop"
    # What preparing set for fp32 arithmetic in this process (TF32 or IEEE products), read back;
    # None where the runtime has no such switch. Recorded beside the run's settings.
    fp32_math: Optional[dict[str, Any]] = None

    @abstractmethod
    def step(self) -> None:
        """One training step; may return before the device is done (see synchronize)."""

    @abstractmethod
    def synchronize(self) -> None:
        """Wait until the device has finished all work queued by step(); a no-op on the CPU."""

    @property
    def losses(self) -> list[float]:
        """The loss of every recorded step so far (may synchronise: read it outside timing)."""
        return []

    def fit_cost(self, images: int, repeats: int) -> dict[str, Any]:
        """A fit task: the whole fit on ``images`` training images, timed ``repeats`` times (per-image
        seconds and the fit's own info, as bench.backends.torch_training.fit_cost returns them)."""
        raise ValueError(f"a {self.kind} task has no fit: time its step()")

    def effective_settings(self) -> dict[str, Any]:
        """What actually trains, read back from the objects that run it (outside timed regions)."""
        return {}

    def device_memory(self) -> dict[str, float]:
        """What the runtime can tell of device memory, in MiB; {} when nothing."""
        return {}


class Backend(ABC):
    """One runtime. Subclasses set ``name`` and are built with their typed settings."""

    name: ClassVar[str] = ""
    # The precisions this backend can run; check_runnable refuses others before any work.
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    # Whether prepare() can take a user's ONNX file (PrepareContext.onnx_path) instead of a torch module.
    accepts_onnx_file: ClassVar[bool] = False
    # Whether prepare_training() can train a suite's training task; config validation refuses
    # scenario=training on a backend whose class says False.
    can_train: ClassVar[bool] = False

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    @classmethod
    @abstractmethod
    def available(cls, settings: Any) -> Availability:
        """Whether this backend can run with these settings here; if not, why, and how to install."""

    @abstractmethod
    def prepare(self, model: Any, example_inputs: Sequence[Any], context: PrepareContext) -> Session:
        """Convert, compile or place ``model`` (a torch nn.Module in eval mode) for this runtime.
        What the conversion cost and whether a cache served it go into effective_settings()."""

    def convert(self, model: Any, example_inputs: Sequence[Any], context: PrepareContext) -> dict[str, Any]:
        """Build the conversions ``prepare`` would use (ONNX export, IR, engine) into the context's
        cache, without keeping a session, and return what they cost (bench.backends.artifacts
        describe_conversion's shape). scenario=continual runs it in the trainer process, so that the
        serving process's ``prepare`` of the adapted model finds them cached and only loads them. The
        default prepares a session and closes it; a backend overrides it to skip the session."""
        session = self.prepare(model, example_inputs, context)
        try:
            return dict(session.effective_settings().get("conversion") or {})
        finally:
            session.close()

    def prepare_training(self, task: Any, context: TrainingContext) -> TrainingSession:
        """Place a suite's training task (bench.suites.training.TrainTask: its modules, batch and loss,
        or its fit) on this runtime's device, with its optimizer and the context's precision. A
        backend that can train sets ``can_train`` and overrides this."""
        raise CannotTrain(f"backend {self.name!r} ({type(self).__name__}) cannot train: train on a backend whose "
                          "class sets can_train (the PyTorch backends)")
