"""Native TensorRT (``backend=tensorrt``): an engine built from the model's ONNX export, run with
``execute_async_v3`` on a CUDA stream, optionally replayed from a CUDA graph.

Not yet run on a GPU: every CUDA path here follows TensorRT 10's documented Python API (Builder,
OnnxParser, builder config, optimisation profile, build_serialized_network, Runtime, execution
context with named tensor addresses) and PyTorch's CUDA stream and graph API. It is tested on this
project's machines against a fake of that API subset (``tests/fake_tensorrt.py``: the build, the
engine cache, the session, the CUDA graph and its fallback, both int8 methods) and a fake
``torch.cuda``; the Q/DQ quantization runs for real on the CPU.

Device buffers are torch CUDA tensors (``data_ptr()`` for ``set_tensor_address``) and the stream is
a ``torch.cuda.Stream`` (``cuda_stream`` for ``execute_async_v3``), the documented pattern that needs
neither pycuda nor cuda-python. The serialized engine is cached by ``cached_artifact`` under a key
that names everything an engine depends on: the ONNX export (or its Q/DQ form), precision, profile,
workspace, optimisation level, int8 method and calibration data, the TensorRT version and the
distribution that provides the imported ``tensorrt`` module, and the GPU model (an engine runs only
on the GPU model and TensorRT version that built it).

CUDA graph (``backend.cuda_graph``): one inference captured in thread-local mode and replayed; a
failed capture is ended, the session falls back to plain ``execute_async_v3`` launches and says so
(``cuda_graph: false`` with ``cuda_graph_error``; the record's ``cuda_graph_fallback`` warning), as
trtexec does.

int8 (``bench.backends.tensorrt_int8``): by default explicit quantization, a Q/DQ ONNX file made by
ONNX Runtime's static quantizer and built as a strongly typed network (no precision flag); or
TensorRT's entropy calibrator (``backend.int8_method=calibrator``, TensorRT 10 only, deprecated).
TensorRT 11 removed the weak-typing builder flags (FP16, BF16, INT8) and calibrators: fp32, tf32 and
Q/DQ int8 build with either major version; fp16, bf16 and calibrator int8 need TensorRT 10, and
``available`` says so.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Sequence

from bench.backends.artifacts import Artifact, cached_artifact, cached_onnx, describe_conversion
from bench.backends.base import Availability, Backend, PrepareContext, Session, lowest_precision
from bench.backends.tensorrt_int8 import (
    INT8_METHODS, QDQ_SETTINGS, calibration_batches, calibration_digest, calibration_files, calibration_samples,
    entropy_calibrator, qdq_nodes, quantize_qdq, quantizer_version, workload_calibration,
)
from bench.system.cuda_libs import gpu_install_command

__all__ = ["TensorRTBackend", "TensorRTSession", "profile_shapes", "engine_key_parts", "tensorrt_distribution",
           "calibration_files", "calibration_digest", "calibration_batches", "layer_precisions", "ran_precision",
           "PRECISION_FLAGS", "INSTALL_TENSORRT", "CALIBRATOR_DEPRECATED"]

# The extra of this machine's PyTorch CUDA major (gpu-cu12 or gpu-cu13), read from torch/version.py.
INSTALL_TENSORRT = f"{gpu_install_command()}  (TensorRT 10: tensorrt-cuNN>=10,<11)"
_INSTALL_CUDA_TORCH = "install a CUDA build of PyTorch for your driver (pytorch.org, 'Get started'), then rerun"
# The builder flag each reduced precision needs in a weakly typed network. TensorRT sets TF32 by
# default: precision=fp32 clears it (IEEE fp32 products), precision=tf32 keeps it. int8 takes the
# INT8 flag only with the calibrator (int8_method=calibrator); a Q/DQ network is strongly typed.
PRECISION_FLAGS = {"tf32": "TF32", "fp16": "FP16", "bf16": "BF16", "int8": "INT8"}
_MIB = 1024 * 1024
CALIBRATOR_DEPRECATED = ("IInt8EntropyCalibrator2 (implicit quantization) is deprecated since TensorRT 10.1 and "
                         "removed in 11: backend.int8_method=qdq is the supported int8")


# ---------------------------------------------------------------- pure parts (tested without a GPU)


def profile_shapes(sample_shape: Sequence[int], batch: int, max_batch_size: int,
                   max_batch: Optional[int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) of one input: batch 1 up to the largest batch of the sweep or of the settings,
    tuned (opt) for the largest batch the item covers: outside a sweep the batch measured; in a batch
    sweep its largest size, the same for every point, so that one engine (one cache key) serves the
    whole sweep. A smaller point then runs kernels tuned for the largest (profile_min_opt_max in the
    record says so)."""
    opt = max(int(batch), int(max_batch_size))
    top = max(opt, int(max_batch or 0))
    rest = tuple(int(d) for d in sample_shape)
    return (1, *rest), (opt, *rest), (top, *rest)


def engine_key_parts(settings: Any, shapes: Sequence[tuple[tuple[int, ...], ...]], onnx_key: str,
                     trt_version: str, gpu_name: str, capability: tuple[int, int],
                     calibration: Optional[str] = None, package: Optional[str] = None) -> dict[str, Any]:
    """What determines an engine, besides the model (cached_artifact adds the model key). ``onnx_key``
    is the key of the ONNX file built from (the Q/DQ file's under int8_method=qdq); ``package`` the
    distribution that provides the imported tensorrt module (tensorrt_distribution)."""
    return {
        "onnx": onnx_key,
        "precision": settings.precision,
        "int8_method": getattr(settings, "int8_method", "qdq") if settings.precision == "int8" else None,
        "profile": [[list(s) for s in triple] for triple in shapes],
        "workspace_mib": int(settings.workspace_mib),
        "optimization_level": int(settings.optimization_level),
        "calibration": calibration,
        "tensorrt": trt_version,
        "tensorrt_package": package,
        "gpu": gpu_name,
        "compute_capability": f"{capability[0]}.{capability[1]}",
    }


def tensorrt_distribution(module: Any) -> str:
    """``name==version`` of the installed distribution whose files hold ``module`` (the imported
    ``tensorrt``: tensorrt, tensorrt-cu12, tensorrt_cu12_bindings, tensorrt-cu13, ... ship the same
    module name, built against different CUDA majors), read from its ``__file__``; the only
    candidate packages_distributions() names when the file is not listed; else "unknown"."""
    from importlib import metadata

    top = str(getattr(module, "__name__", "tensorrt")).partition(".")[0]
    candidates = list(dict.fromkeys(metadata.packages_distributions().get(top, [])))
    origin = getattr(module, "__file__", None)
    if origin:
        resolved = Path(origin).resolve()
        for name in candidates:
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue
            for entry in dist.files or []:
                if entry.name == resolved.name and Path(str(dist.locate_file(entry))).resolve() == resolved:
                    return f"{dist.metadata['Name']}=={dist.version}"
    if len(candidates) == 1:
        try:
            return f"{candidates[0]}=={metadata.version(candidates[0])}"
        except metadata.PackageNotFoundError:
            pass
    return "unknown"


# The engine inspector's "Format/Datatype" of a tensor: the data type's short name without an execution
# context ("Float", "Half", "Int8"), a description with one ("Row major linear FP32", "Channel major
# FP16 format where channel % 8 == 0"). Whole words only, so BFloat16 is not read as Float.
_INSPECTOR_TYPES = re.compile(r"\b(FP32|FLOAT|FP16|HALF|BF16|BFLOAT16|FP8|INT8|UINT8|INT32|INT64|BOOL|FP4|INT4)\b")
_TYPE_NAMES = {"FP32": "fp32", "FLOAT": "fp32", "FP16": "fp16", "HALF": "fp16", "BF16": "bf16",
               "BFLOAT16": "bf16", "FP8": "fp8", "INT8": "int8", "UINT8": "uint8", "INT32": "int32",
               "INT64": "int64", "BOOL": "bool", "FP4": "fp4", "INT4": "int4"}


def layer_precisions(engine_information: str | dict[str, Any]) -> dict[str, int]:
    """Layers per output type, from the engine inspector's JSON (``get_engine_information(JSON)``):
    each layer counted once, by the type of its first output. A layer whose output names no type
    (an engine built below DETAILED profiling verbosity lists layer names only) counts as unknown."""
    info = json.loads(engine_information) if isinstance(engine_information, str) else engine_information
    counts: dict[str, int] = {}
    for layer in info.get("Layers", []):
        outputs = layer.get("Outputs") if isinstance(layer, dict) else None
        first = outputs[0] if outputs and isinstance(outputs[0], dict) else {}
        found = _INSPECTOR_TYPES.search(str(first.get("Format/Datatype", "")).upper())
        name = _TYPE_NAMES[found.group(1)] if found else "unknown"
        counts[name] = counts.get(name, 0) + 1
    return counts


def ran_precision(counts: dict[str, int], tf32_allowed: bool) -> dict[str, Any]:
    """``ran_precision``: the least precise type any layer outputs (index and boolean tensors say
    nothing of arithmetic and are skipped), with fp32 read as tf32 when the builder's TF32 flag was
    set: TF32 is a mode of fp32 products, not a tensor type, so the inspector cannot tell which
    layers' tactics used it (not verifiable further). Empty when no layer's type is known."""
    ran = lowest_precision(counts)
    if ran is None:
        return {}
    out: dict[str, Any] = {"ran_precision": ran}
    if ran == "fp32" and tf32_allowed:
        out["ran_precision"] = "tf32"
        out["ran_precision_note"] = ("fp32 layers with the TF32 builder flag set: which of them ran TF32 "
                                     "tactics is not reported by the engine inspector")
    return out


# ---------------------------------------------------------------- TensorRT objects (not yet run on a GPU)


def _logger(trt: Any) -> Any:
    """A logger that keeps TensorRT's errors and warnings for the exception text and the record."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if int(severity) <= int(trt.ILogger.Severity.WARNING):
                self.messages = [*self.messages[-49:], f"{severity}: {msg}"]
                sys.stderr.write(f"[TensorRT] {severity}: {msg}\n")

    return _Logger()


def _torch_dtype(trt: Any, torch: Any, dtype: Any) -> Any:
    table = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT8": torch.int8,
             "UINT8": torch.uint8, "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool}
    for name, torch_dtype in table.items():
        if getattr(trt.DataType, name, None) == dtype:
            return torch_dtype
    raise TypeError(f"TensorRT tensor type {dtype} has no torch equivalent here")


def _engine_information(trt: Any, engine: Any, context: Any) -> str:
    """The engine inspector's JSON (the builder set ProfilingVerbosity.DETAILED). The execution context,
    whose input shapes load_inputs set, lets it resolve the profile's dynamic shapes: without one it
    leaves out the format information of shape-dependent tensors."""
    inspector = engine.create_engine_inspector()
    if context is not None:
        inspector.execution_context = context
    return inspector.get_engine_information(trt.LayerInformationFormat.JSON)


class _Bound(NamedTuple):
    """Device buffers of one input set; run() returns the output buffers (rewritten by each run)."""

    inputs: tuple[Any, ...]
    outputs: tuple[Any, ...]


class TensorRTSession(Session):
    """One engine and execution context on one stream. Not yet run on a GPU."""

    use_graph: bool = False
    graph_error: Optional[str] = None  # why the last capture failed (then plain launches run)

    def __init__(self, trt: Any, torch: Any, runtime: Any, engine: Any, logger: Any, device: Any,
                 cuda_graph: bool, info: dict[str, Any]) -> None:
        self._trt, self._torch = trt, torch
        self.runtime, self.engine, self.logger = runtime, engine, logger  # the runtime must outlive the engine
        self.device = device
        self.context = engine.create_execution_context()
        if self.context is None:
            raise RuntimeError("TensorRT could not create an execution context: " + "; ".join(logger.messages[-5:]))
        self.stream = torch.cuda.Stream(device=device)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.use_graph = cuda_graph
        self.graph: Any = None
        self.graph_error = None
        self.bound: Optional[_Bound] = None
        self.info = info

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed: " + "; ".join(self.logger.messages[-5:]))

    def load_inputs(self, inputs: Sequence[Any]) -> Any:
        torch = self._torch
        if len(inputs) != len(self.input_names):
            raise ValueError(f"the engine has {len(self.input_names)} inputs {self.input_names}, got {len(inputs)}")
        with torch.cuda.device(self.device):
            ins = []
            for name, host in zip(self.input_names, inputs):
                dtype = _torch_dtype(self._trt, torch, self.engine.get_tensor_dtype(name))
                buffer = host.to(device=self.device, dtype=dtype).contiguous()
                if not self.context.set_input_shape(name, tuple(buffer.shape)):
                    raise ValueError(f"input {name} of shape {list(buffer.shape)} is outside the engine's profile "
                                     f"{[list(d) for d in self.engine.get_tensor_profile_shape(name, 0)]}")
                if not self.context.set_tensor_address(name, buffer.data_ptr()):
                    raise RuntimeError(f"TensorRT refused the address of input {name}: "
                                       + "; ".join(self.logger.messages[-3:]))
                ins.append(buffer)
            outs = []
            for name in self.output_names:
                shape = tuple(self.context.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise RuntimeError(f"output {name} has a data-dependent shape {list(shape)}: not supported")
                out = torch.empty(shape, dtype=_torch_dtype(self._trt, torch, self.engine.get_tensor_dtype(name)),
                                  device=self.device)
                if not self.context.set_tensor_address(name, out.data_ptr()):
                    raise RuntimeError(f"TensorRT refused the address of output {name}: "
                                       + "; ".join(self.logger.messages[-3:]))
                outs.append(out)
            # The copies ran on the current stream; TensorRT runs on ours.
            torch.cuda.current_stream(self.device).synchronize()
            self.graph = None
            if self.use_graph:
                self._capture()
        self.bound = _Bound(tuple(ins), tuple(outs))
        return self.bound

    def _capture(self) -> None:
        """Capture one inference in a CUDA graph; on failure fall back to plain launches and keep why."""
        torch = self._torch
        # One plain run first lets TensorRT finish its deferred work, which a capture must not contain.
        self._execute()
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        current = torch.cuda.current_stream(self.device)
        try:
            # thread_local: only CUDA calls of this thread can invalidate the capture; the worker's
            # sensor threads keep running during it (PyTorch's capture_error_mode, documented values
            # "global", "thread_local", "relaxed").
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                self._execute()
        except Exception as exc:  # noqa: BLE001 - any failed capture falls back, as trtexec does
            # Leaving the with-block ended the capture (torch.cuda.graph's exit calls capture_end,
            # whose own error is the one seen here when the capture was invalidated). When
            # capture_end raises, that exit never restores the stream it made current: restored here.
            # The graph is dropped; the context is unchanged, so plain launches run on, checked once.
            torch.cuda.set_stream(current)
            # When capture_end's error masks the body's, the body's (the cause) is kept as its context.
            cause = exc.__context__ if exc.__context__ is not None and exc.__cause__ is None else None
            error = f"{type(exc).__name__}: {exc}".strip()
            if cause is not None:
                error = f"{type(cause).__name__}: {cause}; then {error}"
            self.graph, self.graph_error = None, error[:500]
            self.stream.synchronize()
            self._execute()
            self.stream.synchronize()
            return
        self.graph, self.graph_error = graph, None

    def run(self, inputs: Any) -> Any:
        if inputs is not self.bound:
            raise ValueError("run() takes what the last load_inputs() returned: the context holds its addresses")
        if self.graph is not None:
            with self._torch.cuda.stream(self.stream):  # replay() launches on the current stream
                self.graph.replay()
        else:
            self._execute()
        return inputs.outputs

    def synchronize(self) -> None:
        self.stream.synchronize()

    def to_numpy(self, outputs: Any) -> list[Any]:
        self.stream.synchronize()
        return [t.to("cpu", self._torch.float32).numpy() for t in outputs]

    def device_memory(self) -> dict[str, float]:
        cuda = self._torch.cuda
        activations = getattr(self.engine, "device_memory_size_v2", None)
        if activations is None:
            activations = getattr(self.engine, "device_memory_size", 0)
        free, total = cuda.mem_get_info(self.device)
        return {
            "torch_max_allocated_mib": cuda.max_memory_allocated(self.device) / _MIB,  # the I/O buffers
            "tensorrt_context_mib": float(activations) / _MIB,  # allocated by TensorRT, unseen by torch
            "device_used_mib": (total - free) / _MIB,
        }

    def effective_settings(self) -> dict[str, Any]:
        trt, engine = self._trt, self.engine
        io = {name: {"mode": "input" if name in self.input_names else "output",
                     "dtype": str(engine.get_tensor_dtype(name)).replace("DataType.", ""),
                     "shape": list(self.context.get_tensor_shape(name))}
              for name in [*self.input_names, *self.output_names]}
        profile = {name: [list(d) for d in engine.get_tensor_profile_shape(name, 0)] for name in self.input_names}
        precision: dict[str, Any]
        try:
            layers = layer_precisions(_engine_information(trt, engine, self.context if self.bound else None))
            precision = {"layer_precisions": layers,
                         **ran_precision(layers, tf32_allowed=self.info.get("precision") != "fp32")}
        except Exception as exc:  # noqa: BLE001 - the report is not worth failing a run for; no ran_precision then
            precision = {"layer_precisions": {"error": f"{type(exc).__name__}: {exc}"}}
        graph: dict[str, Any] = {"cuda_graph": self.graph is not None}
        if self.use_graph and self.graph_error:
            graph["cuda_graph_error"] = self.graph_error  # asked for, capture failed: plain launches measured
        return {**self.info, "io": io, "profile_min_opt_max": profile, **graph,
                **precision, "build_warnings": self.logger.messages[-10:]}


class TensorRTBackend(Backend):
    accepts_onnx_file = True  # a user's ONNX file (suite=custom model.path) runs as it is
    name = "tensorrt"
    precisions = ("fp32", "tf32", "fp16", "bf16", "int8")

    @classmethod
    def available(cls, settings: Any) -> Availability:
        try:
            return cls._check(settings)
        except Exception as exc:  # noqa: BLE001 - available() answers, it never raises
            return Availability(False, f"checking TensorRT failed: {type(exc).__name__}: {exc}", INSTALL_TENSORRT)

    @classmethod
    def _check(cls, s: Any) -> Availability:
        # Settings first: they are wrong on any machine, with or without TensorRT.
        device = str(s.device)
        if device != "cuda" and not (device.startswith("cuda:") and device[5:].isdigit()):
            return Availability(False, f"device {device!r} is not cuda or cuda:N", "set backend.device=cuda")
        if int(s.workspace_mib) < 1:
            return Availability(False, f"backend.workspace_mib={s.workspace_mib} must be >= 1", "e.g. 4096")
        if not 0 <= int(s.optimization_level) <= 5:
            return Availability(False, f"backend.optimization_level={s.optimization_level} is not in 0..5",
                                "set backend.optimization_level=3 (TensorRT's default)")
        if s.max_batch is not None and int(s.max_batch) < 1:
            return Availability(False, f"backend.max_batch={s.max_batch} must be >= 1 or null", "e.g. 16, or null")
        method = str(getattr(s, "int8_method", "qdq"))
        if s.precision == "int8":
            if method not in INT8_METHODS:
                return Availability(False, f"backend.int8_method={method!r} is not one of {', '.join(INT8_METHODS)}",
                                    "set backend.int8_method=qdq (explicit quantization, the default)")
            if method == "calibrator" and not s.int8_calibration:
                return Availability(False, "precision=int8 with int8_method=calibrator needs calibration data and "
                                    "backend.int8_calibration is null",
                                    "set backend.int8_calibration=FOLDER of .npy input tensors (preprocessed as "
                                    "the workload's input), or use backend.int8_method=qdq (calibrates on the "
                                    "workload's own inputs), or backend.precision=fp16")
            if s.int8_calibration and not calibration_files(s.int8_calibration):
                return Availability(False, f"backend.int8_calibration={s.int8_calibration!r} holds no .npy files",
                                    "save preprocessed input tensors there with numpy.save (one sample or a stack), "
                                    "or set backend.int8_calibration=null to calibrate on the workload's inputs")
        qdq = s.precision == "int8" and method == "qdq"
        try:
            import tensorrt as trt
        except Exception as exc:  # noqa: BLE001 - ImportError, or OSError when its libraries fail to load
            what = "is not installed" if isinstance(exc, ImportError) else f"fails to load ({exc})"
            return Availability(False, f"the TensorRT Python package {what}", INSTALL_TENSORRT)
        version = str(getattr(trt, "__version__", "0"))
        major = int(version.split(".")[0] or 0)
        if major < 10:
            return Availability(False, f"TensorRT {version} is older than 10, whose API this backend uses",
                                INSTALL_TENSORRT)
        no_calibrators = major >= 11 or not hasattr(trt, "IInt8EntropyCalibrator2")
        if s.precision == "int8" and method == "calibrator" and no_calibrators:
            return Availability(False, f"TensorRT {version} has no INT8 calibrators (backend.int8_method=calibrator "
                                "needs IInt8EntropyCalibrator2, removed in TensorRT 11)",
                                "use backend.int8_method=qdq (explicit quantization), or "
                                "pip install 'tensorrt>=10,<11'")
        flag = None if qdq else PRECISION_FLAGS.get(s.precision)
        if flag and not hasattr(trt.BuilderFlag, flag):
            return Availability(False, f"TensorRT {version} has no BuilderFlag.{flag} (TensorRT 11 removed weak "
                                f"typing), so precision={s.precision} cannot be built from the fp32 export",
                                "pip install 'tensorrt>=10,<11', or use backend.precision=fp32")
        if qdq:
            if not hasattr(getattr(trt, "NetworkDefinitionCreationFlag", None), "STRONGLY_TYPED"):
                return Availability(False, f"TensorRT {version} has no strongly typed networks, which "
                                    "int8_method=qdq builds", "pip install 'tensorrt>=10'")
            from importlib.util import find_spec

            if find_spec("onnxruntime") is None:  # found, not imported: the parent stays light
                return Availability(False, "backend.int8_method=qdq quantizes with ONNX Runtime's quantization tools "
                                    "and onnxruntime is not installed", "pip install onnxruntime (or onnxruntime-gpu)")
        import torch

        if torch.version.cuda is None:
            return Availability(False, f"this PyTorch ({torch.__version__}) is built without CUDA; TensorRT's "
                                "buffers and stream are torch CUDA tensors", _INSTALL_CUDA_TORCH)
        from bench.backends.torch_eager import cuda_device_availability

        return cuda_device_availability(torch, device)

    def prepare(self, model: Any, example_inputs: Sequence[Any], context: PrepareContext) -> Session:
        # Not yet run on a GPU.
        import tensorrt as trt
        import torch

        s = self.settings
        device = torch.device(s.device)
        index = device.index if device.index is not None else 0
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)  # TensorRT builds and runs on the current CUDA device
        onnx_path, onnx_artifact = cached_onnx(model, example_inputs, context)
        stages: dict[str, Optional[Artifact]] = {"onnx": onnx_artifact}
        shapes = [profile_shapes(t.shape[1:], int(t.shape[0]), context.max_batch_size, s.max_batch)
                  for t in example_inputs]
        strongly_typed = s.precision == "int8" and s.int8_method == "qdq"
        files: list[Path] = []
        int8: Optional[dict[str, Any]] = None
        build_from, build_key = onnx_path, onnx_artifact.key
        if strongly_typed and qdq_nodes(onnx_path):
            # A user's file that is quantized already (QAT, ModelOpt): built as it is, never quantized twice.
            int8 = {"method": "qdq", "source": "the ONNX file's own Q/DQ nodes", "digest": None,
                    **qdq_nodes(onnx_path)}
        elif strongly_typed:
            build_from, qdq_artifact, int8 = self._qdq(onnx_path, onnx_artifact, example_inputs, context)
            stages["qdq"], build_key = qdq_artifact, qdq_artifact.key
        elif s.precision == "int8":
            files = calibration_files(s.int8_calibration)
            int8 = {"method": "calibrator", "deprecated": CALIBRATOR_DEPRECATED, "source": "folder",
                    "folder": str(s.int8_calibration), "files": len(files), "digest": calibration_digest(files)}
        package = tensorrt_distribution(trt)
        parts = engine_key_parts(s, shapes, build_key, trt.__version__, torch.cuda.get_device_name(index),
                                 torch.cuda.get_device_capability(index), int8["digest"] if int8 else None,
                                 package=package)
        logger = _logger(trt)

        def build(folder: Path) -> None:
            self._build(trt, torch, logger, build_from, shapes, files, device, folder)

        engine_artifact: Artifact = cached_artifact("tensorrt", context, parts, build)
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine((engine_artifact.path / "model.engine").read_bytes())
        if engine is None:
            raise RuntimeError("TensorRT could not deserialize the cached engine: " + "; ".join(logger.messages[-5:]))
        info = {
            "tensorrt_version": trt.__version__, "tensorrt_package": package, "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda, "device": str(device), "gpu_name": parts["gpu"],
            "compute_capability": parts["compute_capability"], "precision": s.precision,
            "builder_flag": None if strongly_typed else PRECISION_FLAGS.get(s.precision),
            "strongly_typed": strongly_typed,
            "workspace_mib": int(s.workspace_mib), "optimization_level": int(s.optimization_level),
            "int8": int8,
            "engine_mib": (engine_artifact.path / "model.engine").stat().st_size / _MIB,
            "conversion": describe_conversion({**stages, "engine": engine_artifact}),
        }
        return TensorRTSession(trt, torch, runtime, engine, logger, device, bool(s.cuda_graph), info)

    def _qdq(self, onnx_path: Path, onnx_artifact: Artifact, example_inputs: Sequence[Any],
             context: PrepareContext) -> tuple[Path, Artifact, dict[str, Any]]:
        """The export's Q/DQ form, calibrated on the calibration data and cached: its path, its
        artifact and what the record says of the int8 conversion (bench.backends.tensorrt_int8)."""
        s = self.settings
        produce: Callable[[], list[tuple[Any, ...]]]
        if s.int8_calibration:
            if len(example_inputs) != 1:
                raise ValueError(f"backend.int8_calibration={s.int8_calibration!r}: a folder of .npy tensors "
                                 f"calibrates a model with one input, this one has {len(example_inputs)}; set "
                                 "backend.int8_calibration=null to calibrate on the workload's own inputs")
            files = calibration_files(s.int8_calibration)
            sample_shape, batch = tuple(example_inputs[0].shape[1:]), int(example_inputs[0].shape[0])
            info: dict[str, Any] = {"source": "folder", "folder": str(s.int8_calibration), "files": len(files),
                                    "digest": calibration_digest(files)}

            def produce() -> list[tuple[Any, ...]]:
                samples = calibration_samples(files, sample_shape)
                if not len(samples):
                    raise ValueError(f"backend.int8_calibration={s.int8_calibration!r}: the .npy files hold no sample")
                step = min(batch, len(samples))  # batches of the size measured; a partial last one dropped
                return [(samples[i:i + step],) for i in range(0, len(samples) - step + 1, step)]
        else:
            info, produce = workload_calibration(example_inputs, context.calibration_inputs)
        parts = {"onnx": onnx_artifact.key, "calibration": info["digest"], "quantizer": quantizer_version(),
                 "settings": QDQ_SETTINGS,
                 "calibration_source": {k: info.get(k) for k in ("source", "batches", "samples", "files")}}

        def build(folder: Path) -> None:
            nodes = quantize_qdq(onnx_path, folder / "model.onnx", produce())
            (folder / "qdq.json").write_text(json.dumps(nodes))

        artifact = cached_artifact("onnx-qdq", context, parts, build)
        nodes = json.loads((artifact.path / "qdq.json").read_text())
        return artifact.path / "model.onnx", artifact, {"method": "qdq", **info, "quantizer": parts["quantizer"],
                                                        "quantizer_settings": QDQ_SETTINGS, **nodes}

    def _build(self, trt: Any, torch: Any, logger: Any, onnx_path: Path, shapes: list[Any], files: list[Path],
               device: Any, folder: Path) -> None:
        """ONNX file -> serialized engine in ``folder``. Not yet run on a GPU."""
        s = self.settings
        # Q/DQ int8 builds a strongly typed network: its types come from the graph (int8 between each
        # Q/DQ pair, fp32 elsewhere), and TensorRT's explicit-quantization guide says precision flags
        # are then neither needed nor to be set (TensorRT refuses FP16/BF16/INT8 on such a network). A
        # weakly typed TensorRT 10 network would need BuilderFlag.INT8 for its Q/DQ layers to run in
        # int8; TensorRT 11 has strongly typed networks only, so this one path serves both.
        strongly_typed = s.precision == "int8" and s.int8_method == "qdq"
        builder = trt.Builder(logger)
        # Explicit batch is the default (and only mode) since TensorRT 10: no flag but strong typing.
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):  # from the file, so external weights are found
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise RuntimeError(f"TensorRT could not parse {onnx_path.name}: {'; '.join(errors) or logger.messages}")
        if network.num_inputs != len(shapes):
            raise RuntimeError(f"the ONNX graph has {network.num_inputs} inputs, the model {len(shapes)}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(s.workspace_mib) * _MIB)
        config.builder_optimization_level = int(s.optimization_level)
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # lets the inspector report layer types
        flag = None if strongly_typed else PRECISION_FLAGS.get(s.precision)
        if flag:
            config.set_flag(getattr(trt.BuilderFlag, flag))
        if s.precision == "fp32":
            config.clear_flag(trt.BuilderFlag.TF32)
        profile = builder.create_optimization_profile()
        for i, (low, opt, high) in enumerate(shapes):
            profile.set_shape(network.get_input(i).name, low, opt, high)
        if config.add_optimization_profile(profile) < 0:
            raise RuntimeError(f"TensorRT refused the optimisation profile {shapes}: "
                               + "; ".join(logger.messages[-5:]))
        calibrator = None
        if s.precision == "int8" and not strongly_typed:
            if len(shapes) != 1:
                raise RuntimeError("int8 calibration supports models with one input")
            batches = calibration_batches(files, shapes[0][1][1:], shapes[0][1][0])
            # Held in a local: it must outlive build_serialized_network, which calls back into it.
            calibrator = entropy_calibrator(trt, torch, batches, device, folder / "calibration.cache")
            config.int8_calibrator = calibrator
            config.set_calibration_profile(profile)  # calibration runs at the profile's opt shape
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError("TensorRT could not build the engine: " + "; ".join(logger.messages[-10:]))
        with open(folder / "model.engine", "wb") as handle:
            handle.write(serialized)
        inputs = [network.get_input(i).name for i in range(network.num_inputs)]
        (folder / "build.json").write_text(json.dumps({"warnings": logger.messages, "layers": network.num_layers,
                                                       "inputs": inputs, "strongly_typed": strongly_typed}, indent=1))
