"""torch.compile with the inductor compiler, on the CPU (``backend=cpu-compiled``) or an NVIDIA GPU
(``backend=cuda-compiled``).

The model is placed exactly as the eager backend places it (device, dtype, channels_last, threads:
this module subclasses ``TorchBackend`` and ``TorchSession``), then compiled with
``torch.compile(model, backend="inductor", mode=..., dynamic=...)``. Inductor's ``freezing``
(constant-folds the weights into the graph and lets it pre-pack them, inference only) is set from
the settings before the first call, which is when inductor compiles. Compilation is lazy, so
``prepare`` runs the compiled model once on the example inputs: the compile time lands in the
worker's setup time (``prepare_s``), not in the first timed inference.

In the load scenarios on CUDA, ``backend.streams=N`` serves the compiled model on N CUDA streams
(``add_streams`` says why that is safe for inductor's kernels; the modes that replay CUDA graphs,
reduce-overhead and max-autotune, are refused with it). Not yet run on a GPU.

Inductor needs a C++ compiler on the CPU and Triton on CUDA; ``available`` checks for both.
The CUDA path ran on an NVIDIA H200 (2026-11-28: STFPM fp16 inference, 19 s to compile, and training).
Training (``prepare_training``) compiles the task's forward and loss with torch.compile's defaults
(backends/torch_training.py).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from typing import Any, Sequence

from bench.backends.base import Availability, PrepareContext, Session, TrainingContext, TrainingSession
from bench.backends.torch_eager import TorchBackend, TorchSession

__all__ = ["CompiledBackend", "CompiledSession", "COMPILE_MODES", "add_streams", "find_cxx"]

# torch.compile's documented modes ("default" is the same as mode=None).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

# Inductor settings that change what gets generated; read back after compiling for the record.
_INDUCTOR_KEYS = ("freezing", "max_autotune", "cpp_wrapper", "fx_graph_cache", "triton.cudagraphs",
                  "coordinate_descent_tuning", "epilogue_fusion")


def find_cxx() -> str | None:
    """The C++ compiler inductor would use on the CPU: $CXX, else the first of g++, c++, clang++."""
    cxx = os.environ.get("CXX")
    if cxx:
        return shutil.which(cxx)
    for name in ("g++", "c++", "clang++"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _counters() -> dict[str, dict[str, int]]:
    """A copy of dynamo's process-wide counters, so that prepare can report its own increments."""
    from torch._dynamo.utils import counters

    return {group: dict(values) for group, values in counters.items()}


def _increments(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], group: str) -> dict[str, int]:
    old = before.get(group, {})
    return {key: n - old.get(key, 0) for key, n in after.get(group, {}).items() if n - old.get(key, 0)}


class CompiledSession(TorchSession):
    """The eager session's input placement, run and synchronize, on the compiled module."""

    def __init__(self, model: Any, device: Any, dtype: Any, channels_last: bool,
                 fp32_math: dict[str, Any] | None = None) -> None:
        super().__init__(model, device, dtype, channels_last, fp32_math)
        self.compile_info: dict[str, Any] = {}

    def effective_settings(self) -> dict[str, Any]:
        return {**super().effective_settings(), **self.compile_info}


class CompiledBackend(TorchBackend):
    name = "compiled"
    precisions = ("fp32", "fp16", "bf16")

    @classmethod
    def available(cls, settings: Any) -> Availability:
        try:
            mode = str(getattr(settings, "compile_mode", "default"))
            if mode not in COMPILE_MODES:
                return Availability(False, f"backend.compile_mode={mode!r} is not a torch.compile mode",
                                    f"set backend.compile_mode to one of {', '.join(COMPILE_MODES)}")
            base = super().available(settings)
            if not base.ok:
                return base
            if str(settings.device) == "cpu":
                if find_cxx() is None:
                    return Availability(False, "inductor needs a C++ compiler on the CPU and none was found "
                                        "($CXX, g++, c++ or clang++)",
                                        "install one (Debian/Ubuntu: apt-get install g++) or set CXX")
            elif importlib.util.find_spec("triton") is None:
                return Availability(False, "inductor needs Triton to generate CUDA kernels and it is not installed",
                                    "pip install triton (the version your PyTorch's CUDA build names)")
            return Availability(True)
        except Exception as exc:  # noqa: BLE001 - available() answers, it never raises
            return Availability(False, f"checking torch.compile failed: {type(exc).__name__}: {exc}",
                                "see the error; `python -c 'import torch'` should work")

    def prepare(self, model: Any, example_inputs: Sequence[Any], context: PrepareContext) -> Session:
        import torch
        import torch._inductor
        import torch._inductor.config as inductor_config

        s = self.settings
        eager = self._place(model)
        streams = self.streams_for(eager.device, context)
        mode_options = _mode_options(torch, s.compile_mode, bool(s.dynamic))
        if streams > 1 and (mode_options.get("triton.cudagraphs") or inductor_config.triton.cudagraphs):
            # Config validation refuses these modes with backend.streams > 1 up front; this is torch's own
            # answer for the mode, checked before minutes of compiling (see add_streams).
            raise ValueError(f"backend.streams={streams} cannot serve backend.compile_mode={s.compile_mode}: it "
                             "replays CUDA graphs, whose batches in flight would share one set of buffers")
        # Read when inductor compiles the graph, i.e. at the first call below, not at torch.compile().
        inductor_config.freezing = bool(s.freezing)
        before = _counters()
        t0 = time.perf_counter()
        compiled = torch.compile(eager.model, backend="inductor", mode=s.compile_mode, dynamic=bool(s.dynamic))
        session = CompiledSession(compiled, eager.device, eager.dtype, eager.channels_last, eager.fp32_math)
        # The first call compiles; running it here keeps compile time out of the first timed inference.
        session.run(session.load_inputs(example_inputs))
        session.synchronize()
        compile_s = time.perf_counter() - t0
        if streams > 1:
            add_streams(session, streams)
        after = _counters()
        graph_breaks = _increments(before, after, "graph_break")
        inductor_counts = _increments(before, after, "inductor")
        session.compile_info = {
            "compiler": "torch.compile",
            "compile_backend": "inductor",
            "compile_mode": s.compile_mode,
            "dynamic": bool(s.dynamic),
            "compile_s": compile_s,
            "inductor": {key: _config_value(inductor_config, key) for key in _INDUCTOR_KEYS},
            # What the mode switches on for this compile (applied as a patch, not in the global config).
            "mode_options": mode_options,
            "graphs_compiled": _increments(before, after, "stats").get("unique_graphs", 0),
            "graph_breaks": sum(graph_breaks.values()),
            "graph_break_reasons": sorted(graph_breaks)[:10],
            "conversion": {
                "kind": "torch.compile (inductor), compiled in-process at prepare",
                "compile_s": compile_s,
                # Inductor keeps its own on-disk cache of generated code (FX graph cache).
                "fx_graph_cache_hit": inductor_counts.get("fxgraph_cache_hit", 0),
                "fx_graph_cache_miss": inductor_counts.get("fxgraph_cache_miss", 0),
                "fx_graph_cache_bypass": inductor_counts.get("fxgraph_cache_bypass", 0),
            },
        }
        return session

    def prepare_training(self, task: Any, context: TrainingContext) -> TrainingSession:
        """As the eager backend's, with the forward and the loss wrapped in ``torch.compile`` (its
        defaults; the first step compiles, in the worker's first step, before the warm-up). The
        inference settings (compile_mode, freezing, dynamic) do not apply; a fit is not compiled."""
        from bench.backends.torch_training import prepare_torch_training

        return prepare_torch_training(self, task, context.precision, context.record_losses, compile=True)


def add_streams(session: CompiledSession, streams: int) -> None:
    """Serve the load scenarios with the compiled model on ``streams`` CUDA streams (the eager
    session's pool, backends/cuda_streams.py; not yet run on a GPU), once it has compiled.

    Why this is safe for inductor's own kernels and not for CUDA graphs:
    - The pool launches every batch from one thread, the load driver's, the thread that compiled:
      torch.compile is not thread-safe (pytorch/pytorch#105943, #118260), but nothing here calls it
      from two threads; the streams overlap on the GPU only.
    - Inductor's generated wrapper asks for the current stream at each call (torch._C.
      _cuda_getCurrentRawStream) and launches its Triton kernels and allocates its buffers there, so
      under ``torch.cuda.stream(s)`` a batch runs on ``s`` as an eager one does; the weights (frozen
      constants or parameters) are only read.
    - CUDA graphs (mode reduce-overhead, and max-autotune, which turns triton.cudagraphs on) replay
      into fixed addresses of one memory pool, and a replay overwrites the previous replay's outputs
      (the CUDAGraph Trees documentation): two batches in flight would write the same buffers. Those
      modes are refused with backend.streams > 1 (config validation, and prepare above)."""
    session.use_streams(streams)


def _config_value(config: Any, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part, None)
    return value if isinstance(value, (bool, int, float, str, type(None))) else str(value)


def _mode_options(torch: Any, mode: str, dynamic: bool) -> dict[str, Any]:
    try:
        options = torch._inductor.list_mode_options(mode, dynamic)
    except Exception as exc:  # noqa: BLE001 - informational only
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {key: value if isinstance(value, (bool, int, float, str, type(None))) else str(value)
            for key, value in options.items()}
