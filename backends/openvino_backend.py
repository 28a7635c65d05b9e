"""OpenVINO on CPU, GPU, NPU or AUTO (``backend=openvino``).

The model comes from the cached ONNX export (``source=onnx``, read with ``Core.read_model``) or
from ``openvino.convert_model`` on the module's ``torch.export`` program (``source=convert_model``),
and is cached as IR (``openvino.save_model``) under a key of source, precision, shapes and library
versions. The IR of ``source=onnx`` keeps the export's dynamic batch axis and keys on one sample's
shapes, so a batch sweep converts once; ``convert_model`` traces static shapes (and a user's ONNX
file may fix its batch), so that IR is one batch's and keys on it. Either way the model read back is reshaped to the static input shapes of the
measured batch before it is compiled (static shapes let the plugins pick their best kernels and
memory plan).

``compile_model`` always gets an explicit INFERENCE_PRECISION_HINT: the CPU plugin runs bf16 by
default on CPUs that have it, and silently turns an unsupported f16 into bf16, so the precision is
set, read back from the compiled model, and a mismatch is an error, never a silent fallback.

Sessions, chosen by the scenario:
- latency: one InferRequest with the input tensors bound once; ``run`` is ``infer()``, which
  returns when the result is ready, so ``synchronize`` has nothing to do. The synchronous call is
  the faster documented path for one request at a time: one call into the runtime (25 us of
  overhead per call on a tiny model here) against two for ``start_async`` + ``wait`` (34 us).
- throughput, server, multistream: an AsyncInferQueue of OPTIMAL_NUMBER_OF_INFER_REQUESTS (or ``num_requests``) jobs,
  every job bound to the same input tensors; ``run`` is ``start_async`` (it blocks only while every
  job is busy), ``synchronize`` is ``wait_all``. Each run is tagged with a number (the queue's
  userdata), so ``to_numpy`` finds the job that holds that run's outputs. The load scenarios use
  ``submit``: start_async with a completion callback that stamps each request's completion.

The GPU and NPU paths are written to OpenVINO's documented API and not yet run on a GPU or NPU;
here only their unavailable path is tested.
"""

from __future__ import annotations

import importlib.util
import itertools
from typing import Any, Optional, Sequence

from bench.backends.artifacts import Artifact, cached_artifact, cached_onnx, describe_conversion, library_versions
from bench.backends.base import Availability, Backend, PrepareContext, Session, lowest_precision

__all__ = ["OpenVinoBackend", "OpenVinoSession", "OpenVinoQueueSession", "OV_PRECISION", "ran_precision"]

_INSTALL = "pip install -c constraints.txt -e '.[openvino]'"
# Our precision -> OpenVINO's INFERENCE_PRECISION_HINT, and the OPTIMIZATION_CAPABILITIES entry a
# device lists when it can run it.
OV_PRECISION = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}
_CAPABILITY = {"fp32": "FP32", "fp16": "FP16", "bf16": "BF16"}
_VIRTUAL = ("AUTO", "MULTI", "HETERO")
_SOURCES = ("onnx", "convert_model")
_HINTS = ("latency", "throughput", "auto")


def _device(settings: Any) -> str:
    # OpenVINO names devices in upper case; accept the harness's lower-case default "cpu" too.
    return str(settings.device).strip().upper()


def _plain(value: Any) -> Any:
    """OpenVINO property values (Type, enums, nested dicts) as JSON-friendly values."""
    if hasattr(value, "get_type_name"):
        return value.get_type_name()
    if hasattr(value, "name") and not isinstance(value, (str, bytes)):
        return value.name
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return value


def _read_back(compiled: Any, key: str) -> Any:
    """A property of the compiled model; AUTO and MULTI do not forward every property, so fall back
    to DEVICE_PROPERTIES of the devices that execute (a dict device -> value)."""
    try:
        return compiled.get_property(key)
    except Exception:  # noqa: BLE001 - an unsupported property raises a plain RuntimeError
        pass
    try:
        per_device = compiled.get_property("DEVICE_PROPERTIES")
        devices = compiled.get_property("EXECUTION_DEVICES")
    except Exception:  # noqa: BLE001
        return None
    found = {d: per_device[d][key] for d in devices if key in per_device.get(d, {})}
    return found or None


def ran_precision(read_back: Any) -> dict[str, Any]:
    """``ran_precision`` from the compiled model's INFERENCE_PRECISION_HINT as read back (an ov.Type, or
    its name, or, through AUTO and MULTI, a dict device -> value): f32 -> fp32, f16 -> fp16, bf16 ->
    bf16; several devices give the least precise, each one's kept. A value outside those (or none)
    gives no ran_precision: nothing is claimed that OpenVINO did not say."""
    ours = {ov: name for name, ov in OV_PRECISION.items()}
    if read_back is None:
        return {}
    values = read_back if isinstance(read_back, dict) else {"": read_back}
    by_device = {device: ours.get(str(_plain(v))) for device, v in values.items()}
    if any(v is None for v in by_device.values()):
        return {}
    out: dict[str, Any] = {"ran_precision": lowest_precision(by_device.values())}
    if isinstance(read_back, dict):
        out["ran_precision_by_device"] = by_device
    return out


def _settings_problem(settings: Any) -> Optional[str]:
    s = settings
    if s.source not in _SOURCES:
        return f"backend.source={s.source!r} is not one of {', '.join(_SOURCES)}"
    if s.hint not in _HINTS:
        return f"backend.hint={s.hint!r} is not one of {', '.join(_HINTS)}"
    for key in ("num_requests", "threads"):
        value = getattr(s, key)
        if value is not None and int(value) < 1:
            return f"backend.{key}={value} must be >= 1 or null"
    if s.precision not in OV_PRECISION:
        return f"precision {s.precision!r} is not one of {', '.join(OV_PRECISION)}"
    return None


class _Inputs:
    """Host arrays and the ov.Tensors that share their memory; kept together so the arrays outlive
    the tensors bound to the requests."""

    def __init__(self, arrays: list[Any], tensors: list[Any]) -> None:
        self.arrays = arrays
        self.tensors = tensors


class OpenVinoSession(Session):
    """The latency session: one InferRequest, synchronous infer()."""

    api = "InferRequest.infer (synchronous)"

    def __init__(self, compiled: Any, info: dict[str, Any]) -> None:
        self.compiled = compiled
        self.info = info
        self._bound: Optional[_Inputs] = None
        self._request = compiled.create_infer_request()
        self.jobs = 1
        # How many run() calls may be outstanding before run() blocks (a loop that keeps that
        # many in flight measures the runtime's throughput; see the report on bench.measurement.loop).
        self.in_flight = 1

    # Inputs: prepared once, outside timing; run() only checks that they are the bound ones.
    def load_inputs(self, inputs: Sequence[Any]) -> Any:
        import numpy as np
        import openvino as ov

        ports = self.compiled.inputs
        if len(inputs) != len(ports):
            raise ValueError(f"the model takes {len(ports)} inputs, got {len(inputs)}")
        arrays, tensors = [], []
        for port, tensor in zip(ports, inputs):
            array = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
            array = np.ascontiguousarray(array, dtype=port.get_element_type().to_dtype())
            expected = list(port.get_partial_shape().to_shape())
            if list(array.shape) != expected:
                raise ValueError(f"input {port.any_name!r} was compiled for shape {expected}, got {list(array.shape)}")
            arrays.append(array)
            tensors.append(ov.Tensor(array, shared_memory=True))
        loaded = _Inputs(arrays, tensors)
        self._bind(loaded)
        return loaded

    def _bind(self, loaded: _Inputs) -> None:
        for index, tensor in enumerate(loaded.tensors):
            self._request.set_input_tensor(index, tensor)
        self._bound = loaded

    def run(self, inputs: Any) -> Any:
        if inputs is not self._bound:
            self._bind(inputs)
        # share_outputs: views of the output tensors, no copy inside the timed region.
        return self._request.infer(None, False, True)

    def synchronize(self) -> None:
        return None  # infer() returns when the result is ready

    def to_numpy(self, outputs: Any) -> list[Any]:
        import numpy as np

        return [np.array(value, dtype=np.float32) for value in outputs.to_tuple()]

    def device_memory(self) -> dict[str, float]:
        # GPU_MEMORY_STATISTICS (bytes per allocation type) is the GPU plugin's documented report;
        # not yet run on a GPU. The CPU plugin reports nothing.
        if not any(str(d).startswith("GPU") for d in self.info.get("execution_devices") or []):
            return {}
        try:
            stats = self.compiled.get_property("GPU_MEMORY_STATISTICS")
        except Exception:  # noqa: BLE001
            return {}
        return {f"gpu_{kind}_mib": float(n) / 2**20 for kind, n in dict(stats).items()}

    def effective_settings(self) -> dict[str, Any]:
        # AUTO may move from the CPU (while the GPU compiles) to the GPU: read where it runs now, and
        # the precision again with it (prepare checked it on the devices of that moment).
        devices = _plain(_read_back(self.compiled, "EXECUTION_DEVICES"))
        ran = ran_precision(_read_back(self.compiled, "INFERENCE_PRECISION_HINT"))
        return {**self.info, "execution_devices": devices, "api": self.api, "infer_requests": self.jobs, **ran}


class OpenVinoQueueSession(OpenVinoSession):
    """The throughput session: an AsyncInferQueue; run() = start_async, synchronize() = wait_all."""

    api = "AsyncInferQueue.start_async / wait_all"

    def __init__(self, compiled: Any, info: dict[str, Any], jobs: int) -> None:
        import openvino as ov

        self.compiled = compiled
        self.info = info
        self._bound = None
        self._queue = ov.AsyncInferQueue(compiled, int(jobs))
        self.jobs = self.in_flight = len(self._queue)
        self._tokens = itertools.count(1)
        self._callbacks: Optional[dict[int, Any]] = None

    def _bind(self, loaded: _Inputs) -> None:
        self._queue.wait_all()  # never swap tensors under a running request
        for job in range(self.jobs):
            for index, tensor in enumerate(loaded.tensors):
                self._queue[job].set_input_tensor(index, tensor)
        self._bound = loaded

    def run(self, inputs: Any) -> Any:
        if inputs is not self._bound:
            self._bind(inputs)
        token = next(self._tokens)
        self._queue.start_async(None, token)
        return token

    def synchronize(self) -> None:
        self._queue.wait_all()

    def submit(self, inputs: Any, on_done: Any) -> None:
        """Start one inference; OpenVINO calls ``on_done()`` from its own thread when it completes
        (the load scenarios' asynchronous path). The completion callback is installed at the first
        submit, so the throughput loop's run() pays for none."""
        if self._callbacks is None:
            self._callbacks = {}
            self._queue.set_callback(self._completed)
        if inputs is not self._bound:
            self._bind(inputs)
        token = next(self._tokens)
        self._callbacks[token] = on_done
        self._queue.start_async(None, token)

    def _completed(self, request: Any, token: Any) -> None:
        callback = self._callbacks.pop(token, None) if self._callbacks is not None else None
        if callback is not None:
            callback()

    def to_numpy(self, outputs: Any) -> list[Any]:
        import numpy as np

        self._queue.wait_all()
        tags = self._queue.userdata
        if outputs not in tags:
            raise RuntimeError(f"the outputs of run #{outputs} were overwritten by later runs; "
                               "call to_numpy right after that run's synchronize()")
        request = self._queue[tags.index(outputs)]
        return [np.array(request.get_output_tensor(i).data, dtype=np.float32)
                for i in range(len(self.compiled.outputs))]


class OpenVinoBackend(Backend):
    accepts_onnx_file = True  # a user's ONNX file (suite=custom model.path) runs as it is
    name = "openvino"
    precisions = ("fp32", "fp16", "bf16")

    @classmethod
    def available(cls, settings: Any) -> Availability:
        if importlib.util.find_spec("openvino") is None:
            return Availability(False, "OpenVINO is not installed", _INSTALL)
        problem = _settings_problem(settings)
        if problem:
            return Availability(False, problem, "fix the setting (see `bench run --help`)")
        device = _device(settings)
        try:
            import openvino as ov

            core = ov.Core()
            found = list(core.available_devices)
        except Exception as exc:  # noqa: BLE001 - available() never raises
            return Availability(False, f"OpenVINO failed to start: {exc}", _INSTALL)
        listed = ", ".join(found) or "none"
        base, _, wanted = device.partition(":")
        if base in _VIRTUAL:
            # AUTO picks among the devices present; AUTO:GPU,CPU, MULTI:... and HETERO:... name theirs.
            names = [d for d in wanted.split(",") if d]
            missing = [d for d in names if not _present(d, found)]
            if not found or missing or (base != "AUTO" and not names):
                what = (f"{', '.join(missing)} not found" if missing
                        else "no device" if not found else "no device listed")
                return Availability(False, f"device {device}: {what} (devices found by OpenVINO: {listed})",
                                    _device_hint(found))
        elif not _present(device, found):
            return Availability(False, f"device {device} not found by OpenVINO (devices found: {listed})",
                                _device_hint(found))
        # A virtual device runs on the devices it names (or, for plain AUTO, on those it may pick).
        targets = ([d for d in wanted.split(",") if d] or [device]) if base in _VIRTUAL else [device]
        try:
            caps = sorted(set.intersection(*(
                {str(c) for c in core.get_property(d, "OPTIMIZATION_CAPABILITIES")} for d in targets)))
        except Exception as exc:  # noqa: BLE001
            return Availability(False, f"cannot read the OPTIMIZATION_CAPABILITIES of {', '.join(targets)}: {exc}",
                                _device_hint(found))
        if _CAPABILITY[settings.precision] not in caps:
            runnable = [p for p, c in _CAPABILITY.items() if c in caps]
            return Availability(False, f"{device} cannot run {settings.precision} (OPTIMIZATION_CAPABILITIES: "
                                       f"{', '.join(caps)}); OpenVINO would run another precision instead",
                                f"use backend.precision={' or '.join(runnable) or 'fp32'} on {device}")
        return Availability(True)

    def prepare(self, model: Any, example_inputs: Sequence[Any], context: PrepareContext) -> Session:
        import openvino as ov
        import openvino.properties as props
        import openvino.properties.hint as hints

        s = self.settings
        problem = _settings_problem(s)
        if problem:
            raise ValueError(problem)
        core = ov.Core()
        ir, artifact, onnx_artifact = self._ir(core, model, example_inputs, context)
        ov_model = core.read_model(str(ir))
        # The measured batch's static shapes (a batch-dynamic IR serves every batch of a sweep).
        ov_model.reshape({port: ov.PartialShape(list(t.shape)) for port, t in zip(ov_model.inputs, example_inputs)})

        # auto: the throughput hint for back-to-back batches, the latency hint for one request at a time
        # and for the load scenarios (whose requests are judged by their latency).
        hint = s.hint if s.hint != "auto" else context.scenario
        mode = hints.PerformanceMode.THROUGHPUT if hint == "throughput" else hints.PerformanceMode.LATENCY
        precision = getattr(ov.Type, OV_PRECISION[s.precision])
        config: dict[str, Any] = {hints.performance_mode(): mode, hints.inference_precision(): precision}
        if s.threads is not None:
            config[props.inference_num_threads()] = int(s.threads)
        if s.num_requests is not None:
            # As benchmark_app's -nireq: the hint sizes streams to this many requests.
            config[hints.num_requests()] = int(s.num_requests)
        device = _device(s)
        compiled = core.compile_model(ov_model, device, config)

        got = _read_back(compiled, hints.inference_precision())
        values = list(got.values()) if isinstance(got, dict) else [got]
        if got is None or any(v != precision for v in values):
            raise RuntimeError(f"OpenVINO on {device} runs inference precision {_plain(got)} although "
                               f"{OV_PRECISION[s.precision]} was asked: refusing to measure another precision")
        info: dict[str, Any] = {
            "openvino_version": ov.get_version(),
            "device": device,
            "source": s.source,
            "input_shapes": [list(t.shape) for t in example_inputs],
            "requested": {"performance_hint": mode.name, "inference_precision": OV_PRECISION[s.precision],
                          "inference_num_threads": s.threads, "num_requests": s.num_requests},
            "inference_precision": _plain(got),
        }
        for key, name in ((hints.performance_mode(), "performance_hint"),
                          (props.optimal_number_of_infer_requests(), "optimal_number_of_infer_requests"),
                          (props.streams.num(), "num_streams"),
                          (props.inference_num_threads(), "inference_num_threads"),
                          (props.execution_devices(), "execution_devices"),
                          (hints.execution_mode(), "execution_mode_hint")):
            info[name] = _plain(_read_back(compiled, key))
        info["device_names"] = _device_names(core, info["execution_devices"] or [device])
        info["conversion"] = describe_conversion({"onnx": onnx_artifact, "openvino_model": artifact})

        if context.scenario in ("throughput", "server", "multistream"):
            jobs = s.num_requests or int(info["optimal_number_of_infer_requests"] or 1)
            return OpenVinoQueueSession(compiled, info, jobs)
        return OpenVinoSession(compiled, info)

    def convert(self, model: Any, example_inputs: Sequence[Any], context: PrepareContext) -> dict[str, Any]:
        """The IR (and the ONNX export it is read from) without compiling it for the device."""
        import openvino as ov

        _, artifact, onnx_artifact = self._ir(ov.Core(), model, example_inputs, context)
        return describe_conversion({"onnx": onnx_artifact, "openvino_model": artifact})

    def _ir(self, core: Any, model: Any, example_inputs: Sequence[Any],
            context: PrepareContext) -> tuple[Any, Artifact, Optional[Artifact]]:
        """The IR (model.xml + model.bin), from the cache or converted now: batch-dynamic from the ONNX
        export, static (the measured batch) from convert_model."""
        import openvino as ov

        s = self.settings
        shapes = [list(t.shape) for t in example_inputs]
        # Our export has a dynamic batch axis; a user's ONNX file may fix it, so its IR stays static.
        dynamic_batch = s.source == "onnx" and not context.onnx_path
        used_onnx: list[Artifact] = []

        def build(folder: Any) -> None:
            if s.source == "onnx":
                onnx_path, onnx_artifact = cached_onnx(model, example_inputs, context)
                used_onnx.append(onnx_artifact)
                ov_model = core.read_model(str(onnx_path))
            else:
                # convert_model takes a torch.export ExportedProgram (documented); its default for an
                # nn.Module is torch.jit.trace, which PyTorch deprecates.
                import torch

                ov_model = ov.convert_model(torch.export.export(model, tuple(example_inputs)))
            if dynamic_batch:  # the export's batch axis stays dynamic; the rest takes the sample's shape
                ov_model.reshape({port: ov.PartialShape([-1, *shape[1:]])
                                  for port, shape in zip(ov_model.inputs, shapes)})
            else:
                ov_model.reshape({port: ov.PartialShape(shape) for port, shape in zip(ov_model.inputs, shapes)})
            # save_model compresses weights to fp16 by default: only do so when fp16 is what runs.
            ov.save_model(ov_model, str(folder / "model.xml"), compress_to_fp16=s.precision == "fp16")

        libraries = ("openvino", "torch") + (("onnx", "onnxscript") if s.source == "onnx" else ())
        parts = {"source": s.source, "precision": s.precision,
                 "shapes": [["batch", *shape[1:]] for shape in shapes] if dynamic_batch else shapes,
                 "versions": library_versions(*libraries)}
        artifact = cached_artifact("openvino", context, parts, build)
        return artifact.path / "model.xml", artifact, (used_onnx[0] if used_onnx else None)


def _present(device: str, found: list[str]) -> bool:
    # With several GPUs OpenVINO lists GPU.0, GPU.1; plain "GPU" means GPU.0.
    return device in found or any(d.split(".")[0] == device for d in found)


def _device_names(core: Any, devices: list[str]) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for device in devices:
        try:
            names[device] = core.get_property(device, "FULL_DEVICE_NAME")
        except Exception:  # noqa: BLE001
            names[device] = None
    return names


def _device_hint(found: list[str]) -> str:
    choices = ", ".join(found + ["AUTO"]) if found else "none (install the device's driver)"
    return f"use backend.device= one of {choices}"
