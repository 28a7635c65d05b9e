"""A fake of the TensorRT 10 Python API subset bench.backends.tensorrt_backend uses, and a fake
``torch.cuda`` surface, so that the build, the engine cache, the session and the CUDA graph path run
on a CPU. Installed with ``install(monkeypatch)``: ``sys.modules["tensorrt"]`` becomes the fake
module, and the few ``torch.cuda`` calls, ``torch.empty(device="cuda")`` and ``Tensor.to("cuda")``
are patched for the test's duration.

What it keeps of TensorRT (TensorRT 10's Python API reference): the signatures and return values,
with None or False where TensorRT returns them on failure (parse_from_file -> bool,
add_optimization_profile -> index or -1, build_serialized_network -> IHostMemory or None,
deserialize_cuda_engine -> ICudaEngine or None, set_input_shape / set_tensor_address /
execute_async_v3 -> bool), errors reported through the ILogger given, output shapes unknown (-1)
until every input shape is set, addresses that must be device buffers of the right size, precision
flags refused on a strongly typed network, an engine refused by another TensorRT version, the TF32
flag on by default. The engine computes for real: it runs the ONNX graph it was parsed from with
ONNX Runtime on the CPU, reading its inputs from, and writing its outputs to, the buffers whose
addresses were set; so run() gives checkable outputs.

"Device memory" is CPU tensors registered by their data_ptr. A launch on a stream being captured is
recorded into the graph instead of run; replay() runs it. ``FakeGpu.capture_fault`` makes a capture
fail: "execute" (execute_async_v3 returns False while capturing, logging an error) or "end"
(capture_end raises, as an invalidated capture does).
"""

from __future__ import annotations

import base64
import contextlib
import enum
import importlib.machinery
import itertools
import json
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

MAGIC = "fake-tensorrt-engine"


# ---------------------------------------------------------------- the fake GPU (shared state)


@dataclass
class FakeGpu:
    name: str = "NVIDIA Fake H200"
    capability: tuple[int, int] = (9, 0)
    total_bytes: int = 141 * 1024 ** 3
    memory: dict[int, Any] = field(default_factory=dict)  # data_ptr -> CPU tensor standing for a device buffer
    current_device: Any = None
    capture: Optional[dict[str, Any]] = None  # the capture in progress: stream handle, graph, mode
    capture_fault: Optional[str] = None
    capture_modes: list[str] = field(default_factory=list)
    launches: list[tuple[int, str]] = field(default_factory=list)  # (stream handle, "run" | "captured" | "replay")
    builds: list[dict[str, Any]] = field(default_factory=list)  # what each build_serialized_network saw
    streams_by_handle: dict[int, Any] = field(default_factory=dict)
    current_stream: Any = None
    _handles: Any = field(default_factory=lambda: itertools.count(0x1000, 0x10))

    def register(self, tensor: Any) -> Any:
        self.memory[int(tensor.data_ptr())] = tensor
        return tensor

    def allocated(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.memory.values())


def _is_cuda(device: Any) -> bool:
    return device is not None and str(device).startswith("cuda")


# ---------------------------------------------------------------- the fake tensorrt module


class Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class ILogger:
    Severity = Severity

    def __init__(self) -> None:  # the bindings' base constructor, which a subclass must call
        self._base_initialised = True

    def log(self, severity: Severity, msg: str) -> None:
        raise NotImplementedError


class Logger(ILogger):
    def __init__(self, min_severity: Severity = Severity.WARNING) -> None:
        super().__init__()
        self.min_severity = min_severity

    def log(self, severity: Severity, msg: str) -> None:
        pass


def _log(logger: Any, severity: Severity, msg: str) -> None:
    if not getattr(logger, "_base_initialised", False):
        raise TypeError("the logger's ILogger.__init__ was not called (pybind11 would refuse it)")
    logger.log(severity, msg)


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class MemoryPoolType(enum.Enum):
    WORKSPACE = 0
    DLA_MANAGED_SRAM = 1
    DLA_LOCAL_DRAM = 2
    DLA_GLOBAL_DRAM = 3
    TACTIC_DRAM = 4


class ProfilingVerbosity(enum.Enum):
    LAYER_NAMES_ONLY = 0
    NONE = 1
    DETAILED = 2


class LayerInformationFormat(enum.Enum):
    ONELINE = 0
    JSON = 1


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0  # deprecated in TensorRT 10 (explicit batch is the only mode)
    STRONGLY_TYPED = 1


_ONNX_TYPES = {1: DataType.FLOAT, 10: DataType.HALF, 16: DataType.BF16, 3: DataType.INT8, 2: DataType.UINT8,
               6: DataType.INT32, 7: DataType.INT64, 9: DataType.BOOL}
_PRECISION_FLAGS = ("FP16", "BF16", "INT8", "FP8", "INT4")


class ParserError:
    def __init__(self, desc: str) -> None:
        self._desc = desc

    def desc(self) -> str:
        return self._desc

    def __str__(self) -> str:
        return f"In node -1 with name:  and operator:  (parse): {self._desc}"


class ITensor:
    def __init__(self, name: str, shape: tuple[int, ...], dtype: DataType) -> None:
        self.name, self.shape, self.dtype = name, shape, dtype


class INetworkDefinition:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.inputs: list[ITensor] = []
        self.outputs: list[ITensor] = []
        self.num_layers = 0
        self.onnx: Optional[bytes] = None
        self.qdq = False

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    def get_input(self, index: int) -> ITensor:
        return self.inputs[index]

    def get_output(self, index: int) -> ITensor:
        return self.outputs[index]

    def get_flag(self, flag: NetworkDefinitionCreationFlag) -> bool:
        return bool(self.flags & (1 << int(flag)))


class OnnxParser:
    def __init__(self, network: INetworkDefinition, logger: ILogger) -> None:
        if not isinstance(network, INetworkDefinition) or not isinstance(logger, ILogger):
            raise TypeError("OnnxParser(network: INetworkDefinition, logger: ILogger)")
        self.network, self.logger = network, logger
        self.errors: list[ParserError] = []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> ParserError:
        return self.errors[index]

    def parse_from_file(self, model: str) -> bool:
        import onnx

        if not isinstance(model, str):
            raise TypeError(f"parse_from_file(): incompatible function arguments: model: str, got {type(model)}")
        try:
            proto = onnx.load(model)
        except Exception as exc:  # noqa: BLE001 - the parser reports, it does not raise
            self.errors.append(ParserError(f"failed to load {model}: {exc}"))
            _log(self.logger, Severity.ERROR, f"ModelImporter: failed to parse {model}")
            return False
        initializers = {t.name for t in proto.graph.initializer}

        def tensor(value: Any) -> ITensor:
            dims = value.type.tensor_type.shape.dim
            shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
            return ITensor(value.name, shape, _ONNX_TYPES[value.type.tensor_type.elem_type])

        self.network.inputs = [tensor(v) for v in proto.graph.input if v.name not in initializers]
        self.network.outputs = [tensor(v) for v in proto.graph.output]
        self.network.num_layers = len(proto.graph.node)
        self.network.onnx = proto.SerializeToString()
        self.network.qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
        return True


class IOptimizationProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:  # noqa: A002 - TensorRT's names
        if not isinstance(input, str):
            raise TypeError("set_shape(input: str, min: Dims, opt: Dims, max: Dims)")
        self.shapes[input] = tuple(tuple(int(d) for d in dims) for dims in (min, opt, max))


class IBuilderConfig:
    def __init__(self, builder: "Builder") -> None:
        self.builder = builder
        self.pools: dict[MemoryPoolType, int] = {}
        self.builder_optimization_level = 3
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY
        self.flags = {builder.flag_enum.TF32}  # TensorRT sets TF32 by default
        self.profiles: list[IOptimizationProfile] = []
        self._int8_calibrator: Any = None
        self.calibration_profile: Optional[IOptimizationProfile] = None

    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:
        if not isinstance(pool, MemoryPoolType) or not isinstance(pool_size, int):
            raise TypeError("set_memory_pool_limit(pool: MemoryPoolType, pool_size: int)")
        self.pools[pool] = pool_size

    def set_flag(self, flag: Any) -> None:
        if not isinstance(flag, self.builder.flag_enum):
            raise TypeError(f"set_flag(flag: BuilderFlag), got {flag!r}")
        self.flags.add(flag)

    def clear_flag(self, flag: Any) -> None:
        if not isinstance(flag, self.builder.flag_enum):
            raise TypeError(f"clear_flag(flag: BuilderFlag), got {flag!r}")
        self.flags.discard(flag)

    def get_flag(self, flag: Any) -> bool:
        return flag in self.flags

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        for low, opt, high in profile.shapes.values():
            if not (len(low) == len(opt) == len(high)) or any(
                    not (a <= b <= c) for a, b, c in zip(low, opt, high)):
                _log(self.builder.logger, Severity.ERROR, f"invalid optimization profile {profile.shapes}")
                return -1
        self.profiles.append(profile)
        return len(self.profiles) - 1

    @property
    def int8_calibrator(self) -> Any:
        return self._int8_calibrator

    @int8_calibrator.setter
    def int8_calibrator(self, calibrator: Any) -> None:
        if self.builder.module.calibrators and not isinstance(calibrator, self.builder.module.IInt8EntropyCalibrator2):
            raise TypeError("int8_calibrator must be an IInt8Calibrator")
        self._int8_calibrator = calibrator

    def set_calibration_profile(self, profile: IOptimizationProfile) -> bool:
        if profile not in self.profiles:
            return False
        self.calibration_profile = profile
        return True


class HostMemory(bytes):
    """IHostMemory: a buffer (written with file.write) with nbytes."""

    @property
    def nbytes(self) -> int:
        return len(self)


class Builder:
    def __init__(self, logger: ILogger, module: Any, gpu: FakeGpu) -> None:
        if not isinstance(logger, ILogger):
            raise TypeError("Builder(logger: ILogger)")
        self.logger, self.module, self.gpu = logger, module, gpu
        self.flag_enum = module.BuilderFlag

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        if not isinstance(flags, int) or isinstance(flags, enum.Enum):
            raise TypeError(f"create_network(flags: int = 0): a bit mask, got {flags!r}")
        return INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig(self)

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def _error(self, msg: str) -> None:
        _log(self.logger, Severity.ERROR, msg)

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> Optional[HostMemory]:
        if not isinstance(network, INetworkDefinition) or not isinstance(config, IBuilderConfig):
            raise TypeError("build_serialized_network(network: INetworkDefinition, config: IBuilderConfig)")
        strongly_typed = network.get_flag(NetworkDefinitionCreationFlag.STRONGLY_TYPED) or self.module.major >= 11
        flags = sorted(f.name for f in config.flags)
        self.gpu.builds.append({"strongly_typed": strongly_typed, "flags": flags, "qdq": network.qdq,
                                "pools": {k.name: v for k, v in config.pools.items()},
                                "optimization_level": config.builder_optimization_level,
                                "profiling_verbosity": config.profiling_verbosity.name,
                                "profiles": [dict(p.shapes) for p in config.profiles],
                                "calibrated_batches": 0})
        if network.onnx is None:
            self._error("the network is empty (nothing parsed)")
            return None
        if strongly_typed and any(f in _PRECISION_FLAGS for f in flags):
            self._error(f"precision builder flags {flags} are not allowed with a strongly typed network")
            return None
        if len(config.profiles) != 1:
            self._error(f"{len(config.profiles)} optimization profiles; this network needs one for its dynamic inputs")
            return None
        profile = config.profiles[0]
        for tensor in network.inputs:
            if tensor.name not in profile.shapes:
                self._error(f"input {tensor.name} has no shapes in the optimization profile")
                return None
            for dims in profile.shapes[tensor.name]:
                if len(dims) != len(tensor.shape) or any(s >= 0 and s != d for s, d in zip(tensor.shape, dims)):
                    self._error(f"profile shape {list(dims)} of {tensor.name} does not match {list(tensor.shape)}")
                    return None
        if "INT8" in flags and not network.qdq:
            if config.int8_calibrator is None:
                self._error("INT8 without a calibrator nor dynamic ranges: calibration failure")
                return None
            if not self._calibrate(network, config):
                return None
        engine = {"magic": MAGIC, "version": self.module.__version__, "gpu": self.gpu.name,
                  "onnx": base64.b64encode(network.onnx).decode(), "flags": flags, "strongly_typed": strongly_typed,
                  "qdq": network.qdq, "detailed": config.profiling_verbosity == ProfilingVerbosity.DETAILED,
                  "inputs": [{"name": t.name, "dtype": t.dtype.name, "profile": profile.shapes[t.name]}
                             for t in network.inputs],
                  "outputs": [{"name": t.name, "dtype": t.dtype.name, "shape": t.shape} for t in network.outputs],
                  "layers": network.num_layers}
        return HostMemory(json.dumps(engine).encode())

    def _calibrate(self, network: INetworkDefinition, config: IBuilderConfig) -> bool:
        """Implicit quantization: TensorRT pulls batches of the calibration profile's opt shape."""
        calibrator = config.int8_calibrator
        profile = config.calibration_profile or config.profiles[0]
        names = [t.name for t in network.inputs]
        opt = profile.shapes[names[0]][1]
        calibrator.read_calibration_cache()
        count = 0
        while True:
            pointers = calibrator.get_batch(names)
            if pointers is None:
                break
            buffer = self.gpu.memory.get(int(pointers[0]))
            if buffer is None or tuple(buffer.shape) != tuple(opt):
                self._error(f"calibration batch at {pointers[0]} is not a device buffer of the opt shape {list(opt)}")
                return False
            count += 1
        if not count:
            self._error("the calibrator gave no batch")
            return False
        calibrator.write_calibration_cache(b"fake calibration table")
        self.gpu.builds[-1]["calibrated_batches"] = count
        return True


class IEngineInspector:
    def __init__(self, engine: "ICudaEngine") -> None:
        self.engine = engine
        self.execution_context: Any = None

    def get_engine_information(self, format: LayerInformationFormat) -> str:  # noqa: A002 - TensorRT's name
        if not isinstance(format, LayerInformationFormat):
            raise TypeError("get_engine_information(format: LayerInformationFormat)")
        spec = self.engine.spec
        names = [f"layer_{i}" for i in range(max(1, spec["layers"]))]
        if not spec["detailed"]:
            return json.dumps({"Layers": names})
        if spec["qdq"]:
            kinds = ["Int8", "Float"]  # quantized layers, and the float ones around them
        elif "FP16" in spec["flags"]:
            kinds = ["Half", "Float"]
        elif "INT8" in spec["flags"]:
            kinds = ["Int8", "Float"]
        else:
            kinds = ["Float"]
        layers = [{"Name": n, "Outputs": [{"Name": f"{n}_out", "Format/Datatype": kinds[i % len(kinds)]}]}
                  for i, n in enumerate(names)]
        return json.dumps({"Layers": layers, "Bindings": [t["name"] for t in spec["inputs"] + spec["outputs"]]})


class ICudaEngine:
    def __init__(self, spec: dict[str, Any], module: Any, gpu: FakeGpu, logger: ILogger) -> None:
        self.spec, self.module, self.gpu, self.logger = spec, module, gpu, logger
        self.inputs = {t["name"]: t for t in spec["inputs"]}
        self.outputs = {t["name"]: t for t in spec["outputs"]}
        self.names = [*self.inputs, *self.outputs]
        self.device_memory_size_v2 = 3 * 1024 * 1024
        self._session: Any = None

    @property
    def num_io_tensors(self) -> int:
        return len(self.names)

    def get_tensor_name(self, index: int) -> str:
        return self.names[index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode.INPUT if name in self.inputs else TensorIOMode.OUTPUT if name in self.outputs \
            else TensorIOMode.NONE

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType[(self.inputs.get(name) or self.outputs[name])["dtype"]]

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
        if name not in self.inputs or profile_index != 0:
            _log(self.logger, Severity.ERROR, f"get_tensor_profile_shape: {name!r} profile {profile_index} is invalid")
            return []
        return [tuple(d) for d in self.inputs[name]["profile"]]

    def create_execution_context(self) -> "IExecutionContext":
        return IExecutionContext(self)

    def create_engine_inspector(self) -> IEngineInspector:
        return IEngineInspector(self)

    def session(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            self._session = ort.InferenceSession(base64.b64decode(self.spec["onnx"]),
                                                 providers=["CPUExecutionProvider"])
        return self._session


class IExecutionContext:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine, self.gpu = engine, engine.gpu
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}

    def _error(self, msg: str) -> None:
        _log(self.engine.logger, Severity.ERROR, msg)

    def set_input_shape(self, name: str, shape: Any) -> bool:
        tensor = self.engine.inputs.get(name)
        if tensor is None:
            self._error(f"set_input_shape: {name!r} is not an input")
            return False
        shape = tuple(int(d) for d in shape)
        low, _, high = tensor["profile"]
        if len(shape) != len(low) or any(not (a <= s <= c) for a, s, c in zip(low, shape, high)):
            self._error(f"set_input_shape: {list(shape)} of {name} is outside the profile [{low}, {high}]")
            return False
        self.shapes[name] = shape
        return True

    def set_tensor_address(self, name: str, memory: int) -> bool:
        if not isinstance(memory, int):
            raise TypeError(f"set_tensor_address(name: str, memory: int), got {type(memory).__name__}")
        if name not in self.engine.names:
            self._error(f"set_tensor_address: {name!r} is not an I/O tensor")
            return False
        self.addresses[name] = memory
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        if name in self.engine.inputs:
            return self.shapes.get(name, tuple(-1 for _ in self.engine.inputs[name]["profile"][0]))
        declared = tuple(self.engine.outputs[name]["shape"])
        if set(self.shapes) != set(self.engine.inputs):
            return tuple(d if d >= 0 else -1 for d in declared)  # unknown until every input shape is set
        return self._output_shapes()[name]

    def _output_shapes(self) -> dict[str, tuple[int, ...]]:
        feeds = {n: np.zeros(s, _numpy_type(self.engine.inputs[n]["dtype"])) for n, s in self.shapes.items()}
        outs = self.engine.session().run(None, feeds)
        return {name: tuple(out.shape) for name, out in zip(self.engine.outputs, outs)}

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: str) -> Any:
        buffer = self.gpu.memory.get(self.addresses.get(name, -1))
        if buffer is None:
            self._error(f"{name}: address {self.addresses.get(name)} is not device memory")
            return None
        needed = int(np.prod(shape)) * np.dtype(_numpy_type(dtype)).itemsize if shape else 0
        if buffer.numel() * buffer.element_size() < needed:
            self._error(f"{name}: the buffer at {self.addresses[name]} is smaller than {list(shape)} {dtype}")
            return None
        return buffer

    def execute_async_v3(self, stream_handle: int) -> bool:
        if not isinstance(stream_handle, int):
            raise TypeError(f"execute_async_v3(stream_handle: int), got {type(stream_handle).__name__}")
        if stream_handle not in self.gpu.streams_by_handle:
            self._error(f"execute_async_v3: {stream_handle} is not a CUDA stream")
            return False
        missing = [n for n in self.engine.inputs if n not in self.shapes]
        if missing:
            self._error(f"execute_async_v3: input shapes not set for {missing}")
            return False
        for name in self.engine.names:
            if name not in self.addresses:
                self._error(f"execute_async_v3: no address set for {name}")
                return False
        capture = self.gpu.capture
        if capture is not None:
            if capture["stream"] != stream_handle and capture["mode"] != "relaxed":
                self._error("execute_async_v3 on a stream other than the one being captured")
                return False
            if self.gpu.capture_fault in ("execute", "both"):
                self._error("enqueue: operation not permitted when stream is capturing")
                return False
            capture["graph"].work.append(self._run)
            self.gpu.launches.append((stream_handle, "captured"))
            return True
        self.gpu.launches.append((stream_handle, "run"))
        return self._run()

    def _run(self) -> bool:
        import torch

        feeds = {}
        for name, shape in self.shapes.items():
            buffer = self._buffer(name, shape, self.engine.inputs[name]["dtype"])
            if buffer is None:
                return False
            feeds[name] = buffer.reshape(-1)[:int(np.prod(shape))].reshape(shape).numpy()
        outs = self.engine.session().run(None, feeds)
        for (name, spec), value in zip(self.engine.outputs.items(), outs):
            buffer = self._buffer(name, tuple(value.shape), spec["dtype"])
            if buffer is None:
                return False
            buffer.reshape(-1)[:value.size].copy_(torch.from_numpy(np.ascontiguousarray(value)).reshape(-1))
        return True


def _numpy_type(name: str) -> Any:

    return {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "UINT8": np.uint8, "INT32": np.int32,
            "INT64": np.int64, "BOOL": np.bool_}[name]


class Runtime:
    def __init__(self, logger: ILogger, module: Any, gpu: FakeGpu) -> None:
        if not isinstance(logger, ILogger):
            raise TypeError("Runtime(logger: ILogger)")
        self.logger, self.module, self.gpu = logger, module, gpu

    def deserialize_cuda_engine(self, serialized_engine: Any) -> Optional[ICudaEngine]:
        try:
            spec = json.loads(bytes(serialized_engine))
        except (ValueError, TypeError):
            _log(self.logger, Severity.ERROR, "deserialize_cuda_engine: not an engine (magic tag mismatch)")
            return None
        if spec.get("magic") != MAGIC:
            _log(self.logger, Severity.ERROR, "deserialize_cuda_engine: magic tag mismatch")
            return None
        if spec["version"] != self.module.__version__ or spec["gpu"] != self.gpu.name:
            _log(self.logger, Severity.ERROR, f"the engine was built by TensorRT {spec['version']} for {spec['gpu']}; "
                 f"this is TensorRT {self.module.__version__} on {self.gpu.name}")
            return None
        return ICudaEngine(spec, self.module, self.gpu, self.logger)


def make_module(gpu: FakeGpu, version: str = "10.13.0.35") -> types.ModuleType:
    """The fake ``tensorrt`` module: TensorRT 10 (weak typing flags, calibrators) or 11 (neither)."""
    module = types.ModuleType("tensorrt")
    # A spec without a file: importlib.util.find_spec (which torch's dynamo calls on modules named
    # tensorrt) answers instead of raising.
    module.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    module.__version__ = version
    module.major = int(version.split(".")[0])
    weak_typing = ["FP16", "BF16", "INT8", "FP8"] if module.major < 11 else []  # removed in TensorRT 11
    names = ["TF32", "DEBUG", "REFIT", "SPARSE_WEIGHTS", *weak_typing]
    module.BuilderFlag = enum.Enum("BuilderFlag", names)
    module.calibrators = module.major < 11
    if module.calibrators:
        class IInt8EntropyCalibrator2:
            def __init__(self) -> None:
                self._base_initialised = True

        module.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    for item in (ILogger, Logger, DataType, TensorIOMode, MemoryPoolType, ProfilingVerbosity, LayerInformationFormat,
                 NetworkDefinitionCreationFlag, OnnxParser, IOptimizationProfile, HostMemory, ICudaEngine,
                 IExecutionContext, IEngineInspector, INetworkDefinition, IBuilderConfig):
        setattr(module, item.__name__, item)
    module.Builder = lambda logger: Builder(logger, module, gpu)
    module.Runtime = lambda logger: Runtime(logger, module, gpu)
    module.gpu = gpu
    return module


# ---------------------------------------------------------------- the fake torch.cuda surface


class FakeStream:
    def __init__(self, gpu: FakeGpu, device: Any = None, handle: Optional[int] = None) -> None:
        self.gpu, self.device = gpu, device
        self.cuda_stream = next(gpu._handles) if handle is None else handle
        gpu.streams_by_handle[self.cuda_stream] = self
        self.synchronized = 0

    def synchronize(self) -> None:
        if self.gpu.capture is not None and self.gpu.capture["stream"] == self.cuda_stream:
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
        self.synchronized += 1


class FakeCUDAGraph:
    def __init__(self) -> None:
        self.work: list[Any] = []
        self.captured = False
        self.replays = 0

    def replay(self) -> None:
        if not self.captured:
            raise RuntimeError("replay() of a graph that was not captured")
        gpu = self.gpu
        for run in self.work:
            gpu.launches.append((gpu.current_stream.cuda_stream, "replay"))
            if not run():
                raise RuntimeError("a kernel of the graph failed")
        self.replays += 1

    def reset(self) -> None:
        self.work, self.captured = [], False


def install(monkeypatch: Any, version: str = "10.13.0.35", gpu: Optional[FakeGpu] = None) -> Any:
    """Install the fake tensorrt module and the fake torch.cuda surface; returns the module (its
    ``gpu`` attribute is the shared FakeGpu)."""
    import torch

    gpu = gpu or FakeGpu()
    module = make_module(gpu, version)
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    default = FakeStream(gpu, handle=0)  # the legacy default stream
    gpu.current_stream = default
    cuda = torch.cuda

    @contextlib.contextmanager
    def device(d: Any) -> Any:
        previous, gpu.current_device = gpu.current_device, d
        try:
            yield
        finally:
            gpu.current_device = previous

    @contextlib.contextmanager
    def stream(s: FakeStream) -> Any:
        previous, gpu.current_stream = gpu.current_stream, s
        try:
            yield
        finally:
            gpu.current_stream = previous

    class graph:  # noqa: N801 - torch.cuda.graph's name
        """torch.cuda.graph(cuda_graph, pool=None, stream=None, capture_error_mode="global")."""

        def __init__(self, cuda_graph: FakeCUDAGraph, pool: Any = None, stream: Optional[FakeStream] = None,
                     capture_error_mode: str = "global") -> None:
            if capture_error_mode not in ("global", "thread_local", "relaxed"):
                raise RuntimeError(f"Unknown capture error mode. Expected `global`, `thread_local`, or `relaxed`, "
                                   f"got {capture_error_mode}")
            self.cuda_graph, self.stream, self.mode = cuda_graph, stream or FakeStream(gpu), capture_error_mode

        def __enter__(self) -> None:
            gpu.capture_modes.append(self.mode)
            self.cuda_graph.gpu = gpu
            self.previous, gpu.current_stream = gpu.current_stream, self.stream  # torch.cuda.stream(stream)
            gpu.capture = {"stream": self.stream.cuda_stream, "graph": self.cuda_graph, "mode": self.mode}

        def __exit__(self, *exc: Any) -> None:
            gpu.capture = None  # capture_end: the stream leaves capture mode whatever happened
            if gpu.capture_fault in ("end", "both"):
                # As torch's exit: capture_end raises before the stream context is exited.
                raise RuntimeError("CUDA error: operation failed due to a previous error during capture")
            self.cuda_graph.captured = True
            gpu.current_stream = self.previous

    real_empty, real_to = torch.empty, torch.Tensor.to

    def empty(*size: Any, device: Any = None, **kw: Any) -> Any:
        if _is_cuda(device):
            return gpu.register(real_empty(*size, **kw))
        return real_empty(*size, device=device, **kw)

    def to(self: Any, *args: Any, **kw: Any) -> Any:
        target = kw.get("device")
        if target is None:
            target = next((a for a in args if isinstance(a, (str, torch.device))), None)
        if _is_cuda(target):
            kw.pop("device", None)
            rest = [a for a in args if a is not target]
            return gpu.register(real_to(self, *rest, **kw).clone())  # a copy in "device memory"
        return real_to(self, *args, **kw)

    for name, value in {
        "is_available": lambda: True, "device_count": lambda: 1,
        "set_device": lambda d: setattr(gpu, "current_device", d),
        "get_device_name": lambda index=None: gpu.name, "get_device_capability": lambda index=None: gpu.capability,
        "device": device, "stream": stream, "graph": graph, "CUDAGraph": FakeCUDAGraph,
        "Stream": lambda device=None, priority=0: FakeStream(gpu, device),
        "current_stream": lambda device=None: gpu.current_stream,
        "synchronize": lambda device=None: None,
        "set_stream": lambda s: setattr(gpu, "current_stream", s),
        "mem_get_info": lambda device=None: (gpu.total_bytes - gpu.allocated(), gpu.total_bytes),
        "max_memory_allocated": lambda device=None: gpu.allocated(),
    }.items():
        monkeypatch.setattr(cuda, name, value)
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(torch.Tensor, "to", to)
    return module


__all__ = ["FakeGpu", "install", "make_module", "MAGIC"]
