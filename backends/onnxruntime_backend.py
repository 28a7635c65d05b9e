"""ONNX Runtime on the model's ONNX export: the CPU, CUDA or TensorRT execution provider
(``backend=onnxruntime``, ``onnxruntime-cuda``, ``onnxruntime-tensorrt``).

The ONNX file comes from the conversion cache (``cached_onnx``: fp32, dynamic batch axis). fp16 on
the CUDA provider runs a copy of that file converted with ``onnxruntime.transformers.float16`` (the
float16 converter of onnxconverter-common as ONNX Runtime ships it, so no extra dependency; converting
the ONNX graph rather than exporting ``model.half()`` keeps one export per model, needs no fp16
kernels in CPU PyTorch, and keeps the ops the converter knows to be unsafe in fp16 in fp32). fp16 on
the TensorRT provider is TensorRT's own choice per layer (``trt_fp16_enable``) on the fp32 file.

ONNX Runtime falls back to the CPU without failing when a GPU provider cannot load (its library or
CUDA/cuDNN missing): every session's ``get_providers()`` is checked against the provider asked for,
and a fallback is an error whose advice names the CUDA version the installed onnxruntime-gpu wheel
was built for (``onnxruntime.cuda_version``) and the TensorRT package that matches it
(tensorrt-cu12 for CUDA 12, tensorrt-cu13 for CUDA 13).

Before the first session of a GPU provider the libraries it loads are made loadable
(``onnxruntime_gpu.preload_libraries``; that module also holds the placement helpers): CUDA and
cuDNN through ``onnxruntime.preload_dlls()`` where this ONNX Runtime has it (1.21 and later), and for
the TensorRT provider TensorRT 10's libnvinfer.so.10, libnvinfer_plugin.so.10 and
libnvonnxparser.so.10, opened with RTLD_GLOBAL from the ``tensorrt_libs`` package of the
tensorrt-cuNN wheels (else by name from the library path), so that the provider's own library finds
them when ONNX Runtime loads it. What was preloaded, and what failed, is recorded.

Nodes a GPU provider cannot run go to the CPU provider. The session's graph assignment report
(``get_provider_graph_assignment_info``, ONNX Runtime 1.23 and later) gives the op types placed on
each provider: the record's ``cpu_nodes`` (count and op types, a ``cpu_nodes`` warning in the
parent), and with ``backend.allow_cpu_nodes=false`` any such node fails the item at prepare time. An
ONNX Runtime that cannot report placement is recorded as such, never as "no CPU nodes".

The CUDA and TensorRT paths follow ONNX Runtime's documented Python API (provider options,
IOBinding, OrtValue, preload_dlls, the graph assignment report) and are tested here with fakes of
onnxruntime-gpu's failure modes and a real CPU session: they have not yet run on a GPU.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence

from bench.backends.artifacts import Artifact, cached_artifact, cached_onnx, describe_conversion, library_versions
from bench.backends.base import Availability, Backend, PrepareContext, Session, lowest_precision
from bench.backends.onnxruntime_gpu import (CpuNodesError, check_cpu_nodes, cpu_nodes, cuda_major, node_placement,
                                            preload_libraries, preload_note, tensorrt_install, wheel_cuda_version)
from bench.system.cuda_libs import gpu_install_command

__all__ = ["OrtBackend", "OrtSession", "ProviderFallbackError", "CpuNodesError", "PROVIDERS", "GRAPH_OPTIMIZATION",
           "PROVIDER_PRECISIONS", "check_providers", "cuda_options", "provider_list", "ran_precision"]

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}
GRAPH_OPTIMIZATION = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                      "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
# The CPU provider has fp16 kernels for few ops and wraps the rest in casts to fp32: an "fp16" CPU
# result would measure casts, not fp16 arithmetic.
# The CUDA provider's use_tf32 option (on by default) is set from the precision: off for fp32, on for
# tf32. The TensorRT provider has no such option and TensorRT builds with TF32 on by default, so it
# cannot run IEEE fp32: its fp32 is tf32 (bench.config.validate.validate refuses fp32 there with the fix).
PROVIDER_PRECISIONS = {"cpu": ("fp32",), "cuda": ("fp32", "tf32", "fp16"), "tensorrt": ("tf32", "fp16")}

_INSTALL_CPU = "pip install -c constraints.txt -e '.[onnx]'"
# The extra of this machine's PyTorch CUDA major (gpu-cu12 or gpu-cu13), read from torch/version.py.
_INSTALL_GPU = (gpu_install_command(first="pip uninstall -y onnxruntime && ")
                + "  (onnxruntime-gpu; the CPU and GPU wheels must not be installed together)")
_DEVICE = re.compile(r"cuda(?::(\d+))?")
_NUMPY_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
                 "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(int32)": "int32",
                 "tensor(int64)": "int64", "tensor(bool)": "bool"}


class ProviderFallbackError(RuntimeError):
    """ONNX Runtime built the session on another provider than the one asked for."""


def _device_id(device: str) -> int:
    match = _DEVICE.fullmatch(device)
    return int(match.group(1) or 0) if match else 0


def _ort_packages() -> dict[str, Optional[str]]:
    return library_versions("onnxruntime", "onnxruntime-gpu")


def _installed() -> str:
    """The ONNX Runtime wheels installed, e.g. 'onnxruntime 1.32.0' (both at once is a broken install)."""
    return ", ".join(f"{name} {version}" for name, version in _ort_packages().items() if version) or "unknown"


def _fallback_cause(ort: Any, wanted: str, preload: Optional[dict[str, Any]] = None) -> str:
    """Why ONNX Runtime most likely dropped ``wanted``, and the fix."""
    if wanted not in ort.get_available_providers():
        return (f"this ONNX Runtime build has no {wanted} (installed: {_installed()}); the GPU "
                f"providers come with onnxruntime-gpu: {_INSTALL_GPU}")
    cuda = wheel_cuda_version(ort)
    runtime = f"CUDA {cuda_major(cuda)}" if cuda_major(cuda) else "CUDA"
    trt = (preload or {}).get("tensorrt") or {}
    if wanted == "TensorrtExecutionProvider" and trt.get("loaded") and not trt.get("failed"):
        # TensorRT itself was found: what is left is CUDA, cuDNN or the GPU.
        return (f"TensorRT 10 was loaded ({', '.join(trt['loaded'].values())}), so the {runtime} runtime or "
                f"cuDNN 9 libraries are likely missing, or no GPU/driver is visible: pip install "
                "'onnxruntime-gpu[cuda,cudnn]'; ONNX Runtime's own message is in the worker's log")
    if wanted == "TensorrtExecutionProvider":
        # onnxruntime-gpu's TensorRT provider is built against TensorRT 10 (libnvinfer.so.10).
        return (f"the TensorRT 10 libraries (libnvinfer.so.10) could not be loaded{preload_note(preload)}, or "
                f"the {runtime} runtime or cuDNN 9 are missing: {tensorrt_install(cuda)} (or put TensorRT 10's "
                "lib folder on LD_LIBRARY_PATH); ONNX Runtime's own message is in the worker's log")
    built = f" (onnxruntime-gpu here is built for CUDA {cuda})" if cuda else ""
    return (f"the CUDA provider's library could not be loaded: the {runtime} runtime or cuDNN 9 libraries are "
            f"missing from the library path{built}, or no GPU/driver is visible: pip install "
            "'onnxruntime-gpu[cuda,cudnn]' (or import a CUDA build of torch first); ONNX Runtime's own "
            "message is in the worker's log")


def check_providers(ort: Any, session: Any, wanted: str, device: str,
                    preload: Optional[dict[str, Any]] = None) -> list[str]:
    """The providers the session really uses; raises ProviderFallbackError unless ``wanted`` leads."""
    used = list(session.get_providers())
    if used and used[0] == wanted:
        return used
    where = "the CPU" if used[:1] == ["CPUExecutionProvider"] else str(used[:1])
    raise ProviderFallbackError(
        f"ONNX Runtime fell back to {where}: asked for {wanted} on {device}, the session runs on {used}. "
        f"Likely cause: {_fallback_cause(ort, wanted, preload)}")


def cuda_options(device_id: int, precision: str) -> dict[str, str]:
    """The CUDA provider's options. use_tf32 is on by default in ONNX Runtime, so it is always given:
    off for fp32 (IEEE products), on for tf32; under fp16 the file is fp16 and the few fp32 ops the
    converter keeps stay IEEE."""
    return {"device_id": str(device_id), "use_tf32": "1" if precision == "tf32" else "0"}


def provider_list(provider: str, precision: str, device_id: int,
                  trt_options: Optional[dict[str, str]] = None) -> list[Any]:
    """What InferenceSession gets as ``providers``, in priority order. The TensorRT provider hands the
    nodes TensorRT cannot take to the CUDA provider, so that one gets the same use_tf32 as a CUDA
    session: the fallback nodes run in the precision asked for too. One function for the measured
    session and the throwaway one that builds the TensorRT engine, so the two cannot drift apart."""
    wanted = PROVIDERS[provider]
    if provider == "cpu":
        return [wanted]
    if provider == "cuda":
        return [(wanted, cuda_options(device_id, precision)), "CPUExecutionProvider"]
    return [(wanted, dict(trt_options or {})), ("CUDAExecutionProvider", cuda_options(device_id, precision)),
            "CPUExecutionProvider"]


def _provider_precision(name: str, options: dict[str, Any], file_precision: str) -> str:
    """The precision one provider runs its nodes in, from its options as the session reports them."""
    if file_precision != "fp32":  # the fp16 file: every provider computes on fp16 tensors
        return file_precision
    if name == "CUDAExecutionProvider":
        return "tf32" if str(options.get("use_tf32", "1")) == "1" else "fp32"  # ONNX Runtime's default is on
    if name == "TensorrtExecutionProvider":
        # TF32 is always on (no option to clear it); with fp16 enabled TensorRT picks fp16 per layer
        # where it is faster. Which layers took TF32 or fp16 tactics is not reported through ONNX Runtime.
        return "fp16" if str(options.get("trt_fp16_enable", "")).lower() in ("1", "true") else "tf32"
    return "fp32"  # the CPU provider (and any other) on the fp32 file


def ran_precision(nodes_per_provider: dict[str, int], providers: Sequence[str],
                  provider_options: dict[str, dict[str, Any]], file_precision: str) -> dict[str, Any]:
    """What the session ran, for the record: the precision of each provider that got nodes and the
    least precise of them as ``ran_precision``. Node placement comes from ONNX Runtime's graph
    assignment report (``nodes_per_provider``); where this ONNX Runtime cannot give it, only the
    leading provider is counted (the others listed by get_providers() may hold no node), and the
    record says so."""
    if nodes_per_provider:
        used = [name for name, count in nodes_per_provider.items() if count]
        basis = "providers that ran nodes (ONNX Runtime's graph assignment report)"
    else:
        used = list(providers[:1])
        basis = "the leading provider only: this ONNX Runtime does not report which provider ran each node"
    by_provider = {name: _provider_precision(name, provider_options.get(name) or {}, file_precision)
                   for name in used}
    out: dict[str, Any] = {"ran_precision": lowest_precision(by_provider.values()),
                           "precision_by_provider": by_provider, "ran_precision_basis": basis}
    if "TensorrtExecutionProvider" in by_provider:
        out["ran_precision_note"] = ("TensorRT provider: TF32 always allowed, fp16 per layer when enabled; "
                                     "not verifiable further through ONNX Runtime")
    return out


def _profile_shapes(onnx_path: Path, example_inputs: Sequence[Any], context: PrepareContext) -> dict[str, str]:
    """TensorRT optimisation profile over batch 1 .. max_batch_size, tuned (opt) for max_batch_size:
    outside a sweep that is the batch measured; in a batch sweep it is the sweep's largest size, the
    same for every point, so one engine (one cache key) serves the whole sweep instead of one per shape."""
    import onnx

    names = [i.name for i in onnx.load(str(onnx_path), load_external_data=False).graph.input]

    def spec(batch: int) -> str:
        return ",".join(f"{n}:" + "x".join(str(d) for d in (batch, *t.shape[1:]))
                        for n, t in zip(names, example_inputs))

    top = max(context.max_batch_size, context.batch_size)
    return {"trt_profile_min_shapes": spec(1), "trt_profile_opt_shapes": spec(top),
            "trt_profile_max_shapes": spec(top)}


def _gpu_name(device_id: int) -> Optional[str]:
    """The GPU's name for the engine's cache key (an engine is specific to the GPU model)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", str(device_id)],
                             capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _fp16_onnx(source_path: Path, source: Artifact, context: PrepareContext) -> tuple[Path, Artifact]:
    """The fp32 export converted to fp16, inputs and outputs included (inputs are cast in load_inputs,
    outside the timed loop, as the torch backend does)."""

    def build(folder: Path) -> None:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # A path (not a loaded model) lets the converter run shape inference on models over 2 GB.
        model = convert_float_to_float16(str(source_path), keep_io_types=False)
        onnx.save_model(model, str(folder / "model.onnx"), save_as_external_data=True,
                        all_tensors_to_one_file=True, location="model.onnx.data")

    parts = {"source": source.key, "converter": "onnxruntime.transformers.float16", "keep_io_types": False,
             "versions": {**library_versions("onnx"), **_ort_packages()}}
    artifact = cached_artifact("onnx-fp16", context, parts, build)
    return artifact.path / "model.onnx", artifact


class OrtSession(Session):
    """One InferenceSession. With IO binding (GPU providers), inputs live on the device from
    load_inputs on and outputs stay there; run() is then run_with_iobinding. Otherwise run() is
    session.run(None, feeds) on host numpy arrays."""

    # Where IO binding puts inputs and outputs (a test binds to "cpu" to run this path without a GPU).
    binding_device: ClassVar[str] = "cuda"

    def __init__(self, session: Any, settings: Any, requested: dict[str, Any],
                 conversions: dict[str, Artifact], preload: Optional[dict[str, Any]] = None) -> None:
        import numpy as np
        import onnxruntime as ort

        self._np, self._ort = np, ort
        self.session = session
        self.settings = settings
        self.requested = requested
        self.conversions = conversions
        self.preload = dict(preload or {})
        self.device_id = _device_id(settings.device)
        self.io_binding = bool(settings.io_binding) and settings.provider != "cpu"
        self.input_names = [i.name for i in session.get_inputs()]
        self.input_types = [i.type for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self._binding: Any = None
        self._device_inputs: list[Any] = []  # keeps the bound OrtValues alive

    def load_inputs(self, inputs: Sequence[Any]) -> Any:
        np = self._np
        arrays = []
        for tensor, kind in zip(inputs, self.input_types):
            array = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
            dtype = _NUMPY_DTYPES.get(kind)
            arrays.append(np.ascontiguousarray(array, dtype=dtype) if dtype else np.ascontiguousarray(array))
        if not self.io_binding:
            return dict(zip(self.input_names, arrays))
        # not yet run on a GPU: one host-to-device copy here, none inside the timed loop.
        device = self.binding_device
        values = [self._ort.OrtValue.ortvalue_from_numpy(a, device, self.device_id) for a in arrays]
        binding = self.session.io_binding()
        for name, value in zip(self.input_names, values):
            binding.bind_ortvalue_input(name, value)
        for name in self.output_names:
            # Unshaped: ONNX Runtime allocates each output on the device (its shape follows the batch).
            binding.bind_output(name, device, self.device_id)
        self._binding, self._device_inputs = binding, values
        return binding

    def run(self, inputs: Any) -> Any:
        if self.io_binding:
            self.session.run_with_iobinding(inputs)
            return inputs
        return self.session.run(None, inputs)

    def synchronize(self) -> None:
        # session.run returns host arrays, so it is already done. Run() with a binding also waits
        # for its stream by default; synchronize_outputs is the documented way to be sure.
        if self._binding is not None:
            self._binding.synchronize_outputs()

    def to_numpy(self, outputs: Any) -> list[Any]:
        np = self._np
        if hasattr(outputs, "copy_outputs_to_cpu"):
            outputs = outputs.copy_outputs_to_cpu()
        return [np.asarray(o.numpy() if hasattr(o, "numpy") else o, dtype=np.float32) for o in outputs]

    def effective_settings(self) -> dict[str, Any]:
        ort = self._ort
        options = self.session.get_session_options()
        settings: dict[str, Any] = {
            "onnxruntime_version": ort.__version__,
            "onnxruntime_packages": _ort_packages(),
            "provider": self.settings.provider,
            "providers": list(self.session.get_providers()),
            "provider_options": self.session.get_provider_options(),
            "graph_optimization_level": str(options.graph_optimization_level).rsplit(".", 1)[-1],
            # 0 means ONNX Runtime's default (intra: one thread per physical core).
            "intra_op_threads": options.intra_op_num_threads,
            "inter_op_threads": options.inter_op_num_threads,
            "execution_mode": str(options.execution_mode).rsplit(".", 1)[-1],
            "threads_requested": {"intra_op": self.settings.intra_op_threads,
                                  "inter_op": self.settings.inter_op_threads},
            "io_binding": self.io_binding,
            "precision": self.settings.precision,
            "input_types": dict(zip(self.input_names, self.input_types)),
            "requested_providers": self.requested,
        }
        placement = node_placement(self.session)
        nodes = {name: sum(ops.values()) for name, ops in (placement or {}).items()}
        if placement:
            settings["nodes_per_provider"] = nodes
            settings["node_placement"] = placement
        if self.settings.provider != "cpu":
            settings["allow_cpu_nodes"] = bool(getattr(self.settings, "allow_cpu_nodes", True))
            settings["cpu_nodes"] = cpu_nodes(placement, ort.__version__)
            settings["onnxruntime_cuda_version"] = wheel_cuda_version(ort)
            settings["library_preload"] = self.preload
        file_precision = "fp16" if "onnx_fp16" in self.conversions else "fp32"
        settings.update(ran_precision(nodes, settings["providers"], settings["provider_options"], file_precision))
        settings["conversion"] = describe_conversion(dict(self.conversions))
        return settings


class OrtBackend(Backend):
    accepts_onnx_file = True  # a user's ONNX file (suite=custom model.path) runs as it is
    name = "onnxruntime"
    # The union over providers; available() refuses fp16 on the CPU provider with the reason.
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "tf32", "fp16")
    # What preload_libraries() did in this prepare (read by the fallback advice).
    _preload: Optional[dict[str, Any]] = None

    @classmethod
    def available(cls, settings: Any) -> Availability:
        try:
            return cls._available(settings)
        except Exception as exc:  # noqa: BLE001 - available() never raises
            return Availability(False, f"cannot check ONNX Runtime: {type(exc).__name__}: {exc}", _INSTALL_CPU)

    @classmethod
    def _available(cls, s: Any) -> Availability:
        provider = str(getattr(s, "provider", "cpu"))
        if provider not in PROVIDERS:
            return Availability(False, f"backend.provider={provider!r} is not a provider",
                                f"set backend.provider to one of {', '.join(PROVIDERS)}")
        install = _INSTALL_CPU if provider == "cpu" else _INSTALL_GPU
        if importlib.util.find_spec("onnxruntime") is None:
            return Availability(False, "ONNX Runtime is not installed", install)
        if s.precision not in PROVIDER_PRECISIONS[provider]:
            fix = ("use backend.precision=fp32, or backend=onnxruntime-cuda or onnxruntime-tensorrt for fp16"
                   if provider == "cpu" else f"use backend.precision={' or '.join(PROVIDER_PRECISIONS[provider])}")
            return Availability(False, f"the {provider} provider does not run {s.precision} "
                                       f"(it runs {', '.join(PROVIDER_PRECISIONS[provider])})", fix)
        device = str(s.device)
        if provider == "cpu" and device != "cpu":
            return Availability(False, f"the cpu provider runs on device cpu, not {device!r}",
                                "set backend.device=cpu, or backend=onnxruntime-cuda")
        if provider != "cpu" and not _DEVICE.fullmatch(device):
            return Availability(False, f"device {device!r} is not cuda or cuda:N",
                                "set backend.device=cuda or cuda:N")
        if s.graph_optimization not in GRAPH_OPTIMIZATION:
            return Availability(False, f"backend.graph_optimization={s.graph_optimization!r} is not a level",
                                f"use one of {', '.join(GRAPH_OPTIMIZATION)}")
        for key in ("intra_op_threads", "inter_op_threads"):
            value = getattr(s, key)
            if value is not None and int(value) < 1:
                return Availability(False, f"backend.{key}={value} must be >= 1", "give a whole number >= 1, or null")
        import onnxruntime as ort

        wanted = PROVIDERS[provider]
        if wanted not in ort.get_available_providers():
            return Availability(False, f"this ONNX Runtime ({_installed()}) has no {wanted}; "
                                       f"it has {ort.get_available_providers()}", install)
        return Availability(True)

    def prepare(self, model: Any, example_inputs: Sequence[Any], context: PrepareContext) -> Session:
        import onnxruntime as ort

        s = self.settings
        if s.precision not in PROVIDER_PRECISIONS.get(s.provider, ()):
            raise ValueError(f"backend.provider={s.provider} does not run precision {s.precision}")
        onnx_path, onnx_artifact = cached_onnx(model, example_inputs, context)
        conversions: dict[str, Artifact] = {"onnx": onnx_artifact}
        if s.provider == "cuda" and s.precision == "fp16":
            onnx_path, conversions["onnx_fp16"] = _fp16_onnx(onnx_path, onnx_artifact, context)
        device_id = _device_id(s.device)
        wanted = PROVIDERS[s.provider]
        # Before any session of a GPU provider (the TensorRT engine's build included): ONNX Runtime
        # loads the provider's library, and with it CUDA, cuDNN and TensorRT, at session creation.
        self._preload = preload_libraries(ort, s.provider)
        trt_options = None
        if s.provider == "tensorrt":  # not yet run on a GPU (nor is the cuda provider)
            conversions["tensorrt_engine"], trt_options = self._trt_options(onnx_path, onnx_artifact,
                                                                            example_inputs, context, device_id)
        providers = provider_list(s.provider, s.precision, device_id, trt_options)
        session = self._session(ort, onnx_path, providers)
        check_providers(ort, session, wanted, s.device, self._preload)
        check_cpu_nodes(session, wanted, bool(s.allow_cpu_nodes), ort.__version__)
        return OrtSession(session, s, {"providers": [p if isinstance(p, str) else p[0] for p in providers]},
                          conversions, self._preload)

    def convert(self, model: Any, example_inputs: Sequence[Any], context: PrepareContext) -> dict[str, Any]:
        """The ONNX export (and its fp16 version for the cuda provider in fp16) without a session; the
        tensorrt provider builds its engine in a session, so it takes the default."""
        s = self.settings
        if s.provider == "tensorrt":
            return super().convert(model, example_inputs, context)
        onnx_path, onnx_artifact = cached_onnx(model, example_inputs, context)
        conversions: dict[str, Artifact] = {"onnx": onnx_artifact}
        if s.provider == "cuda" and s.precision == "fp16":
            _, conversions["onnx_fp16"] = _fp16_onnx(onnx_path, onnx_artifact, context)
        return describe_conversion(conversions)

    def session_options(self, ort: Any) -> Any:
        s = self.settings
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION[s.graph_optimization])
        if s.intra_op_threads is not None:
            options.intra_op_num_threads = int(s.intra_op_threads)
        if s.inter_op_threads is not None:
            # Used only by the parallel execution mode; the default sequential mode is recorded.
            options.inter_op_num_threads = int(s.inter_op_threads)
        try:  # lets effective_settings() count the nodes each provider got (ONNX Runtime >= 1.23)
            options.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
        except Exception:  # noqa: BLE001
            pass
        return options

    def _session(self, ort: Any, onnx_path: Path, providers: list[Any]) -> Any:
        # enable_fallback=0: a provider that fails to initialise raises instead of the Python API
        # printing the error and quietly retrying on the CPU.
        try:
            return ort.InferenceSession(str(onnx_path), self.session_options(ort), providers=providers,
                                        enable_fallback=0)
        except (RuntimeError, ValueError) as exc:
            if self.settings.provider == "cpu":
                raise
            wanted = PROVIDERS[self.settings.provider]
            raise ProviderFallbackError(f"ONNX Runtime could not create a session on {wanted} "
                                        f"({self.settings.device}): {exc}. Likely cause: "
                                        f"{_fallback_cause(ort, wanted, self._preload)}") from exc

    def _trt_options(self, onnx_path: Path, source: Artifact, example_inputs: Sequence[Any],
                     context: PrepareContext, device_id: int) -> tuple[Artifact, dict[str, str]]:
        """TensorRT provider options with the engine cache in the artifact cache; on a miss the
        engine is built there once (a throwaway session and one run), then loaded by the real one."""
        # not yet run on a GPU
        import numpy as np
        import onnxruntime as ort

        fp16 = self.settings.precision == "fp16"
        profile = _profile_shapes(onnx_path, example_inputs, context)

        def options(folder: Path) -> dict[str, str]:
            return {"device_id": str(device_id), "trt_fp16_enable": str(fp16),
                    "trt_engine_cache_enable": "True", "trt_engine_cache_path": str(folder), **profile}

        def build(folder: Path) -> None:
            providers = provider_list("tensorrt", self.settings.precision, device_id, options(folder))
            session = self._session(ort, onnx_path, providers)
            check_providers(ort, session, "TensorrtExecutionProvider", self.settings.device, self._preload)
            # Fails before the engine is built and cached for a session that would be refused.
            check_cpu_nodes(session, "TensorrtExecutionProvider", bool(self.settings.allow_cpu_nodes),
                            ort.__version__)
            names = [i.name for i in session.get_inputs()]
            session.run(None, {n: np.ascontiguousarray(t.detach().cpu().numpy())
                               for n, t in zip(names, example_inputs)})

        # The graph optimisation level changes the subgraphs TensorRT is given, hence the engines.
        parts = {"source": source.key, "fp16": fp16, "profile": profile, "gpu": _gpu_name(device_id),
                 "graph_optimization": self.settings.graph_optimization,
                 "versions": {**_ort_packages(), **library_versions("tensorrt", "tensorrt-cu12", "tensorrt-cu12-libs",
                                                                    "tensorrt-cu13", "tensorrt-cu13-libs")}}
        artifact = cached_artifact("ort-tensorrt-engine", context, parts, build)
        return artifact, options(artifact.path)
