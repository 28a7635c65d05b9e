"""The GPU check's plan: which `bench run` invocations cover every GPU path, what each costs, and
what fits a time budget. Pure (no subprocess, no bench import), so it is unit-tested and
`scripts/gpu_check.py --dry-run` prints it anywhere.

Each Item is one work item (or one batch sweep) of the check; items that differ only in precision
share a Group, one `bench run -m backend.precision=a,b` that starts Python, Hydra and the runtime's
imports once. Items are listed in priority order (ITEMS): first every GPU path once, the paths that
never ran on a GPU first, then more combinations. `plan` walks that order and keeps an item when its
estimate still fits; what does not fit is dropped, and said so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

__all__ = ["GPU_BACKENDS", "PATHS", "WORKLOAD", "Item", "Group", "Plan", "ITEMS", "START_S", "WORKER_S",
           "MEASURE_S", "CONVERT_S", "CACHED_S", "ONCE_PER_RUN", "OVERHEAD_S", "scenario_overrides",
           "item_work_s", "item_timeout_s", "plan", "covered"]

GPU_BACKENDS = ("cuda", "cuda-compiled", "onnxruntime-cuda", "onnxruntime-tensorrt", "tensorrt")
# The smallest anomaly workload that every backend runs and that trains (1.4 M parameters): the check
# is about code paths, not about speed, so build and measuring time go to paths, not to bigger models.
WORKLOAD = "autoencoder"
# Every GPU path the check must reach at least once (the backends are paths too).
PATHS = GPU_BACKENDS + ("fp32", "tf32", "fp16", "bf16", "int8", "batch-range:tensorrt",
                        "batch-range:onnxruntime-tensorrt", "cuda-graph", "throughput", "server", "stream-pool",
                        "multistream", "training", "user-onnx", "continual")

# ---- the estimate table (seconds on a GPU machine; conservative, so that a plan that fits does) ----
START_S = 6.0  # one `bench run`: Python, Hydra's compose and validation, the backend's availability imports
WORKER_S = 8.0  # one work item's fixed part: spawned worker, torch import, CUDA context, model, CPU reference
MEASURE_S = {  # warm-up (capped at 2 s) and measurement (capped at 2 s, 3 s for the load scenarios) + drain
    "latency": 4.0, "throughput": 4.0, "server": 6.0, "multistream": 6.0, "training": 5.0,
    # a trainer process (torch import, CUDA context, the task twice), 64 steady requests, the drift, 32
    # drifted ones, five steps, the swap and 2 s after it
    "continual": 25.0}
CONVERT_S = {
    "onnx": 8.0,  # dynamo ONNX export of the workload (once per run: the run's cache serves the rest)
    "user_onnx": 15.0,  # the script's own tiny model exported in a subprocess (torch import included)
    "trt": 45.0,  # a TensorRT engine at builder level 3: ~10-20 s for this model; 30-90 s is the usual range
    "trt_int8": 60.0,  # int8 adds the calibration / Q/DQ pass and the int8 tactics
    "ort_trt": 45.0,  # ONNX Runtime's TensorRT provider builds its own engine on the first run
    "compile": 40.0,  # torch.compile (inductor) of the forward pass
    "compile_train": 60.0,  # forward and backward graphs
}
CACHED_S = 1.0  # a conversion served from the run's cache (later sweep points, a second ONNX user)
ONCE_PER_RUN = ("onnx", "user_onnx")  # conversions whose artifact every later item of the run reuses
OVERHEAD_S = 10.0  # the script's own work before the first item (dependency check, `bench list --json`)
TIMEOUT_FACTOR = 2.0  # an item is killed at twice its estimate (never past the budget)
MIN_TIMEOUT_S = 30.0

# Short windows: the check asks "does this path run and give right numbers", not "how fast".
_SHORT = ("scenario.warmup_iterations=2", "scenario.warmup_s=0.2", "scenario.warmup_max_s=2",
          "scenario.min_iterations=10", "scenario.min_duration_s=0.5", "scenario.max_duration_s=2")
# The load scenarios need 100 arrivals per probe: 200 requests/s (4 streams x 30 fps) bring them in
# under a second; a fixed rate (no find_peak search) keeps it to one probe.
_LOAD = ("scenario.warmup_iterations=2", "scenario.warmup_s=0.2", "scenario.warmup_max_s=2",
         "scenario.min_duration_s=1", "scenario.max_duration_s=3", "scenario.drain_s=0.5")
_SCENARIO = {
    "latency": _SHORT, "throughput": _SHORT, "training": _SHORT,
    "server": _LOAD + ("scenario.rate_qps=200", "batch_size=4", "scenario.max_wait_ms=2"),
    "multistream": _LOAD + ("scenario.streams=4", "scenario.fps=30"),
    # The trainer on the GPU beside the server, on a stream of its own (priority -1: the setting's code
    # path, not a recommendation): 200 requests/s bring the detector's 64-sample reference before the
    # drift at 1 s; a short adaptation, 2 s after the swap.
    "continual": _LOAD + ("scenario.rate_qps=200", "scenario.drift.at_s=1", "scenario.duration_s=120",
                          "scenario.after_swap_s=2", "scenario.adapt.steps=5", "scenario.train.alone_steps=2",
                          "scenario.train.device=cuda", "scenario.train.cuda_stream_priority=-1"),
}
# Batch 1 and 8 from one engine: the profile spans 1..8, so the batch-8 point must come from the cache.
SWEEP = ("sweep=batch", "sweep.start=1", "sweep.factor=8", "sweep.max_batch=8", "sweep.min_gain=-1",
         "sweep.require_converged=false", "sweep.respect_latency_requirement=false")


def scenario_overrides(scenario: str) -> tuple[str, ...]:
    return (f"scenario={scenario}",) + _SCENARIO[scenario]


@dataclass(frozen=True)
class Item:
    """One thing the check runs: a backend at a precision in a scenario, with extra overrides."""

    backend: str
    precision: str
    scenario: str = "latency"
    extra: tuple[str, ...] = ()  # more `bench run` overrides (backend.cuda_graph=true, backend.streams=2)
    paths: tuple[str, ...] = ()  # the GPU paths it covers besides its backend and precision
    convert: tuple[str, ...] = ()  # its conversions (keys of CONVERT_S)
    points: int = 1  # work items: a sweep's batch sizes
    user_onnx: bool = False  # suite=custom on the ONNX file the script writes

    @property
    def sweep(self) -> bool:
        return self.points > 1

    @property
    def group_key(self) -> tuple:
        """Items equal in all but precision share one `bench run -m` (sweeps run alone)."""
        return (self.backend, self.scenario, self.extra, self.user_onnx, self.sweep,
                self.precision if self.sweep else "")

    @property
    def covers(self) -> tuple[str, ...]:
        return (self.backend, self.precision) + self.paths

    @property
    def what(self) -> str:
        """The scenario and what the item adds to it: 'throughput batch 1..8 cuda_graph=true'."""
        return " ".join([self.scenario, *(["batch 1..8"] if self.sweep else []),
                         *(e.split(".", 1)[-1] for e in self.extra)])

    @property
    def label(self) -> str:
        return f"{'user ONNX' if self.user_onnx else WORKLOAD} {self.what}"

    def overrides(self) -> list[str]:
        """The item's overrides, without backend.precision (the group sets it) and the run's folders."""
        suite = ["suite=custom"] if self.user_onnx else ["suite=anomaly", f"suite.only=[{WORKLOAD}]"]
        return [f"backend={self.backend}", *suite, *scenario_overrides(self.scenario),
                *(SWEEP if self.sweep else ()), *self.extra]


def _i(backend: str, precision: str, scenario: str = "latency", *, extra: tuple[str, ...] = (),
       paths: tuple[str, ...] = (), convert: tuple[str, ...] = (), points: int = 1, user_onnx: bool = False) -> Item:
    return Item(backend, precision, scenario, extra, paths, convert, points, user_onnx)


_TRT, _ORT_TRT, _INT8 = ("onnx", "trt"), ("onnx", "ort_trt"), ("onnx", "trt_int8")
_STREAMS = ("backend.streams=2",)
# The priority order. First tier: every path once, the paths no GPU has run yet first (TensorRT, ONNX
# Runtime's GPU providers, the stream pool), cuda-compiled last (it ran on an H200). Paths share items
# where one build serves several (a sweep in the throughput scenario with a CUDA graph). Second tier:
# the other precision x backend pairs, cheap before dear.
ITEMS: tuple[Item, ...] = (
    _i("tensorrt", "fp16", convert=_TRT),
    _i("onnxruntime-tensorrt", "tf32", "throughput", paths=("batch-range:onnxruntime-tensorrt", "throughput"),
       convert=_ORT_TRT, points=2),
    _i("onnxruntime-cuda", "fp32", convert=("onnx",)),
    _i("cuda", "bf16", "server", extra=_STREAMS, paths=("server", "stream-pool")),
    _i("tensorrt", "tf32", "throughput", extra=("backend.cuda_graph=true",),
       paths=("batch-range:tensorrt", "throughput", "cuda-graph"), convert=_TRT, points=2),
    _i("tensorrt", "int8", convert=_INT8),
    _i("onnxruntime-cuda", "fp32", paths=("user-onnx",), convert=("user_onnx",), user_onnx=True),
    _i("cuda", "fp16", "multistream", extra=_STREAMS, paths=("multistream", "stream-pool")),
    _i("cuda", "fp32", "training", paths=("training",)),
    _i("cuda", "fp32", "continual", paths=("continual",)),
    _i("cuda-compiled", "fp32", convert=("compile",)),
    # second tier
    _i("onnxruntime-cuda", "tf32", convert=("onnx",)),
    _i("onnxruntime-cuda", "fp16", convert=("onnx",)),
    _i("onnxruntime-tensorrt", "fp16", convert=_ORT_TRT),
    _i("tensorrt", "fp32", convert=_TRT),
    _i("cuda", "fp32"),
    _i("cuda", "tf32"),
    _i("cuda", "fp16"),
    _i("cuda", "bf16"),
    _i("cuda", "fp16", "training", paths=("training",)),
    _i("cuda", "bf16", "training", paths=("training",)),
    _i("tensorrt", "bf16", convert=_TRT),
    _i("cuda-compiled", "fp16", convert=("compile",)),
    _i("cuda-compiled", "bf16", convert=("compile",)),
    _i("tensorrt", "fp16", paths=("user-onnx",), convert=("user_onnx", "trt"), user_onnx=True),
    _i("cuda-compiled", "fp32", "training", paths=("training",), convert=("compile_train",)),
)


def item_work_s(item: Item, done: Iterable[str] = ()) -> float:
    """An item's estimate without the process start: its work items, measured, and its conversions
    (a once-per-run conversion already in ``done`` costs CACHED_S; later sweep points CACHED_S)."""
    done = set(done)
    convert = sum(CACHED_S if c in ONCE_PER_RUN and c in done else CONVERT_S[c] for c in item.convert)
    return item.points * (WORKER_S + MEASURE_S[item.scenario]) + convert + (item.points - 1) * CACHED_S


def item_timeout_s(work_s: float) -> float:
    return max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * work_s)


@dataclass
class Group:
    """One `bench run` (a multirun over the precisions of its items)."""

    items: list[Item]
    work_s: list[float]  # each item's estimate, in order

    @property
    def estimate_s(self) -> float:
        return START_S + sum(self.work_s)

    @property
    def timeout_s(self) -> float:
        """The subprocess's limit: its start and each item's own timeout."""
        return START_S + sum(item_timeout_s(w) for w in self.work_s)

    @property
    def worker_timeout_s(self) -> float:
        """bench's worker.timeout_s: the longest item's own timeout (a sweep's build is in its first point)."""
        return max(item_timeout_s(w) for w in self.work_s)


@dataclass
class Plan:
    groups: list[Group] = field(default_factory=list)
    dropped: list[tuple[Item, float]] = field(default_factory=list)  # with the estimate that did not fit
    budget_s: float = 0.0

    @property
    def estimate_s(self) -> float:
        return sum(g.estimate_s for g in self.groups)

    @property
    def items(self) -> list[Item]:
        return [i for g in self.groups for i in g.items]


def plan(items: Iterable[Item], budget_s: float, done: Iterable[str] = ()) -> Plan:
    """Keep items in the given (priority) order while their estimate fits ``budget_s``; an item joining
    an already planned group costs no process start. Groups run in the order of their first item.
    ``done``: once-per-run conversions already made (a re-plan of the dropped items mid-run)."""
    out = Plan(budget_s=budget_s)
    by_key: dict[tuple, Group] = {}
    made, total = set(done), 0.0
    for item in items:
        work = item_work_s(item, made)
        group: Optional[Group] = by_key.get(item.group_key)
        cost = work + (0.0 if group else START_S)
        if total + cost > budget_s:
            out.dropped.append((item, cost))
            continue
        total += cost
        made.update(c for c in item.convert if c in ONCE_PER_RUN)
        if group is None:
            group = by_key[item.group_key] = Group([], [])
            out.groups.append(group)
        group.items.append(item)
        group.work_s.append(work)
    return out


def covered(items: Iterable[Item]) -> set[str]:
    """The paths these items reach."""
    return {path for item in items for path in item.covers}
