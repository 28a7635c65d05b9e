"""PyTorch eager execution on the CPU (``backend=cpu``) or an NVIDIA GPU (``backend=cuda``).

The CUDA path is written to PyTorch's documented API (torch.cuda.synchronize, max_memory_allocated)
and tested here for its unavailable path. The CUDA path ran on an NVIDIA H200 (torch 2.11, CUDA 13,
2026-11-28): fp32 (IEEE), tf32, fp16 and bf16 on seven anomaly workloads, parity within tolerance.
Its CUDA streams for the load scenarios (``backend.streams``, backends/cuda_streams.py) were written
after that run: not yet run on a GPU. Streams asked for where they cannot be served (the CPU, the
other scenarios) are an error, never one stream served silently; the session's ``close`` ends them.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Sequence

from bench.backends.base import (Availability, Backend, PrepareContext, Session, TrainingContext, TrainingSession,
                                 lowest_precision)
from bench.backends.torch_math import set_fp32_math

__all__ = ["TorchBackend", "TorchSession", "cuda_device_availability", "set_fp32_math", "ran_precision"]

_INSTALL_TORCH = "pip install -c constraints.txt -e .  (installs torch, pinned in constraints.txt)"
_INSTALL_CUDA = "install a CUDA build of PyTorch for your driver (pytorch.org, 'Get started'), then rerun"


def _dtype(precision: str) -> Any:
    import torch

    return {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


_DTYPE_PRECISION = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def ran_precision(model: Any, dtype: Any, fp32_math: dict[str, Any] | None) -> dict[str, Any]:
    """What the prepared model computes in: the least precise dtype among its floating parameters and
    buffers (the session's dtype for a model without any), and on CUDA fp32 read as tf32 when
    set_fp32_math's read-back says TF32 is on for matrix products or convolutions (either is enough
    to make the results TF32's). Which kernels then take TF32 is cuBLAS's and cuDNN's choice."""
    tensors = [*model.parameters(), *model.buffers()] if hasattr(model, "parameters") else []
    found = {str(t.dtype).replace("torch.", "") for t in tensors if t.is_floating_point()}
    names = [_DTYPE_PRECISION.get(d, d) for d in (found or {str(dtype).replace("torch.", "")})]
    ran = lowest_precision(names)
    if ran == "fp32" and fp32_math and "tf32" in (fp32_math.get("matmul"), fp32_math.get("cudnn_conv")):
        ran = "tf32"
    return {"ran_precision": ran, "model_dtypes": sorted(found)} if ran else {}


def flatten_outputs(outputs: Any) -> list[Any]:
    """A model's outputs (tensor, tuple, list or dict of them) as a flat list of tensors."""
    import torch

    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        return [t for key in sorted(outputs) for t in flatten_outputs(outputs[key])]
    if isinstance(outputs, (list, tuple)):
        return [t for item in outputs for t in flatten_outputs(item)]
    raise TypeError(f"model output of type {type(outputs).__name__} is not a tensor, tuple, list or dict")


def cuda_device_availability(torch: Any, device: str) -> Availability:
    """Whether ``cuda[:N]`` names a CUDA device that this (CUDA-built) PyTorch can see."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        return Availability(False, "no CUDA device is visible (check the driver and CUDA_VISIBLE_DEVICES)",
                            "run on a machine with an NVIDIA GPU and driver")
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if index >= count:
        return Availability(False, f"{device} asked but only {count} CUDA device(s) visible",
                            f"use backend.device=cuda:0 .. cuda:{count - 1}")
    return Availability(True)


class TorchSession(Session):
    def __init__(self, model: Any, device: Any, dtype: Any, channels_last: bool,
                 fp32_math: dict[str, Any] | None = None) -> None:
        import torch

        self._torch = torch
        self.fp32_math = fp32_math or {}
        self.model = model
        self.device = device
        self.dtype = dtype
        self.channels_last = channels_last
        self._cuda = device.type == "cuda"
        self._pool: Any = None

    def use_streams(self, streams: int) -> None:
        """Serve the load scenarios with ``streams`` CUDA streams, a batch in flight on each
        (backends/cuda_streams.py; not yet run on a GPU)."""
        from bench.backends.cuda_streams import CudaStreamPool

        self._pool = CudaStreamPool(self._torch.cuda, self.device, streams)
        self.in_flight = streams

    def submit(self, inputs: Any, on_done: Any) -> None:
        """Start one batch on a free CUDA stream; ``on_done()`` is called when the GPU has finished it."""
        if self._pool is None:
            raise RuntimeError("submit() needs CUDA streams (backend.streams > 1 on a CUDA device)")
        self._pool.submit(lambda: self.run(inputs), on_done)

    def close(self) -> None:
        """End the stream pool's watcher threads (after its batches in flight), then raise what failed
        on a stream: a failed batch never completes, so the load driver records it as unfinished
        (dropped at the drain limit) and only this says why. Safe to call again."""
        if self._pool is not None:
            self._pool.close()
            error = self._pool.error
            if error is not None:
                raise RuntimeError(f"a batch on a CUDA stream failed: {error!r}") from error

    def load_inputs(self, inputs: Sequence[Any]) -> Any:
        torch = self._torch
        loaded = []
        for tensor in inputs:
            tensor = tensor.to(self.device)
            if tensor.is_floating_point():
                tensor = tensor.to(self.dtype)
            if self.channels_last and tensor.dim() == 4:
                tensor = tensor.contiguous(memory_format=torch.channels_last)
            loaded.append(tensor)
        return tuple(loaded)

    def run(self, inputs: Any) -> Any:
        with self._torch.inference_mode():
            return self.model(*inputs)

    def synchronize(self) -> None:
        if self._cuda:
            self._torch.cuda.synchronize(self.device)

    def to_numpy(self, outputs: Any) -> list[Any]:
        return [t.detach().to("cpu", self._torch.float32).numpy() for t in flatten_outputs(outputs)]

    def device_memory(self) -> dict[str, float]:
        if not self._cuda:
            return {}
        cuda = self._torch.cuda
        mib = 1024.0 * 1024.0
        return {
            "torch_max_allocated_mib": cuda.max_memory_allocated(self.device) / mib,
            "torch_max_reserved_mib": cuda.max_memory_reserved(self.device) / mib,
        }

    def effective_settings(self) -> dict[str, Any]:
        torch = self._torch
        settings: dict[str, Any] = {
            "torch_version": torch.__version__,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "channels_last": self.channels_last,
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
            "mkldnn_enabled": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **ran_precision(self.model, self.dtype, self.fp32_math if self._cuda else None),
        }
        if self._cuda:
            settings["cuda_device_name"] = torch.cuda.get_device_name(self.device)
            settings["cuda_version"] = torch.version.cuda
            settings["cudnn_version"] = torch.backends.cudnn.version()
            settings["fp32_math"] = self.fp32_math
            settings["cuda_streams"] = self.in_flight if self._pool is not None else 1
        return settings


class TorchBackend(Backend):
    name = "torch"
    precisions = ("fp32", "tf32", "fp16", "bf16")
    can_train = True

    @classmethod
    def available(cls, settings: Any) -> Availability:
        if importlib.util.find_spec("torch") is None:
            return Availability(False, "PyTorch is not installed", _INSTALL_TORCH)
        device = str(settings.device)
        if device == "cpu":
            if settings.precision == "tf32":
                return Availability(False, "precision=tf32 is a mode of NVIDIA GPUs' tensor cores, not of the CPU",
                                    "use backend.precision=fp32 (or bf16) on the CPU")
            return Availability(True)
        if not device.startswith("cuda"):
            return Availability(False, f"device {device!r} is not cpu or cuda[:N]", "set backend.device=cpu or cuda")
        import torch

        if torch.version.cuda is None:
            return Availability(False, f"this PyTorch ({torch.__version__}) is built without CUDA", _INSTALL_CUDA)
        return cuda_device_availability(torch, device)

    def prepare(self, model: Any, example_inputs: Sequence[Any], context: PrepareContext) -> Session:
        session = self._place(model)
        streams = self.streams_for(session.device, context)
        if streams > 1:
            session.use_streams(streams)
        return session

    def convert(self, model: Any, example_inputs: Sequence[Any], context: PrepareContext) -> dict[str, Any]:
        """Nothing to convert ahead: the module itself is served (a compiled backend compiles in the
        serving process's prepare, in-process, as it does for any item)."""
        return {"cache_hit": True, "build_s": 0.0, "stages": {}}

    def streams_for(self, device: Any, context: PrepareContext) -> int:
        """How many CUDA streams to serve with: backend.streams, which config validation allows above 1
        only on a CUDA device in the load scenarios. Asked for elsewhere it is an error here too,
        never one stream served silently."""
        streams = int(getattr(self.settings, "streams", 1) or 1)
        if streams > 1 and (device.type != "cuda" or context.scenario not in ("server", "multistream")):
            raise ValueError(f"backend.streams={streams} needs a CUDA device and scenario=server or multistream "
                             f"(got device {device}, scenario={context.scenario})")
        return streams

    def _place(self, model: Any) -> TorchSession:
        """The model on its device, in its dtype and memory format, in eval mode, as a session without
        streams (the compiled backend compiles it before adding them)."""
        import torch

        s = self.settings
        if s.threads is not None:
            torch.set_num_threads(int(s.threads))
        if s.interop_threads is not None:
            torch.set_num_interop_threads(int(s.interop_threads))
        device = torch.device(s.device)
        dtype = _dtype(s.precision)
        fp32_math = set_fp32_math(torch, s.precision == "tf32") if device.type == "cuda" else None
        model = model.to(device=device, dtype=dtype)
        if s.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model.eval()
        return TorchSession(model, device, dtype, bool(s.channels_last), fp32_math)

    def prepare_training(self, task: Any, context: TrainingContext) -> TrainingSession:
        """The task's training session in eager PyTorch (backends/torch_training.py): AMP for fp16 and
        bf16 over fp32 master weights, TF32 products on CUDA for tf32; a fit runs in fp32."""
        from bench.backends.torch_training import prepare_torch_training

        return prepare_torch_training(self, task, context.precision, context.record_losses, compile=False)
