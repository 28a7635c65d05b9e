"""What ONNX Runtime's GPU execution providers need around a session (``onnxruntime_backend``'s CUDA
and TensorRT providers; not yet run on a GPU):

- their libraries made loadable before the first session (``preload_libraries``): CUDA and cuDNN
  through ``onnxruntime.preload_dlls()`` where the wheel has it (1.21 and later), and for the TensorRT
  provider TensorRT 10's libraries, opened with RTLD_GLOBAL from the ``tensorrt_libs`` package of the
  tensorrt-cuNN wheels (found without importing it) or by soname from the library path. ONNX Runtime
  loads the provider's own library at session creation, and the dynamic linker then resolves its
  libnvinfer.so.10 to the copy already loaded;
- the CUDA version the installed wheel was built for (``onnxruntime.cuda_version``) and the TensorRT
  wheel that matches it, for the advice when a provider cannot load;
- where the session placed its nodes (the graph assignment report of ONNX Runtime 1.23 and later),
  the nodes left to the CPU provider, and ``backend.allow_cpu_nodes=false`` refusing any.

Nothing here raises for a missing library: what loaded and what failed is returned for the record.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import sys
from pathlib import Path
from typing import Any, Optional

__all__ = ["CpuNodesError", "TENSORRT_LIBRARIES", "check_cpu_nodes", "cpu_nodes", "cuda_major", "node_placement",
           "preload_libraries", "preload_note", "tensorrt_install", "tensorrt_package", "wheel_cuda_version"]

CPU = "CPUExecutionProvider"
# What ONNX Runtime's TensorRT provider library links against (TensorRT 10; the libraries its own
# packaging lists as the provider's TensorRT dependencies), in dependency order.
TENSORRT_LIBRARIES = ("libnvinfer.so.10", "libnvinfer_plugin.so.10", "libnvonnxparser.so.10")
# The libraries worth naming in the record: CUDA, cuDNN and TensorRT, as the process has them mapped.
_GPU_LIBRARY = re.compile(r"lib(?:cudart|cublas|cublasLt|cudnn|nvrtc|curand|cufft|nvinfer|nvinfer_plugin|"
                          r"nvonnxparser)\.so(?:\.[\d.]+)?$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # preload_dlls colours its warnings


class CpuNodesError(RuntimeError):
    """Nodes of a GPU session were placed on the CPU provider while backend.allow_cpu_nodes=false, or
    this ONNX Runtime cannot say where its nodes were placed."""


def wheel_cuda_version(ort: Any) -> Optional[str]:
    """The CUDA version the installed ONNX Runtime wheel was built for ("12.8"), as ONNX Runtime reports
    it: ``onnxruntime.cuda_version``, read from ``onnxruntime/capi/build_and_package_info.py`` (written
    by its GPU packaging since 1.21). None for the CPU wheel ("") and for a wheel that does not say."""
    version = getattr(ort, "cuda_version", None)
    if version is None:
        try:
            from onnxruntime.capi import build_and_package_info as info
        except Exception:  # noqa: BLE001 - an unreadable build record is "unknown"
            return None
        version = getattr(info, "cuda_version", None)
    return str(version) if version else None


def cuda_major(cuda_version: Optional[str]) -> Optional[str]:
    major = (cuda_version or "").split(".", 1)[0]
    return major if major.isdigit() else None


def tensorrt_package(cuda_version: Optional[str]) -> Optional[str]:
    """The TensorRT wheel that matches a CUDA version: tensorrt-cu12 for 12.x, tensorrt-cu13 for 13.x
    (NVIDIA names them by CUDA major); None when the version is unknown."""
    major = cuda_major(cuda_version)
    return f"tensorrt-cu{major}" if major else None


def tensorrt_install(cuda_version: Optional[str]) -> str:
    package = tensorrt_package(cuda_version)
    if package:
        return f"pip install '{package}>=10,<11' (onnxruntime-gpu here is built for CUDA {cuda_version})"
    return ("pip install 'tensorrt-cuNN>=10,<11' with NN the CUDA major version onnxruntime-gpu was built for "
            "(tensorrt-cu12 for CUDA 12, tensorrt-cu13 for CUDA 13; this wheel does not record it: "
            "python -c 'import onnxruntime; onnxruntime.print_debug_info()' shows what it has)")


def preload_note(preload: Optional[dict[str, Any]]) -> str:
    """What preloading found, in one clause for an error message ("" when nothing was tried)."""
    if not preload:
        return ""
    trt = preload.get("tensorrt") or {}
    failed = trt.get("failed") or {}
    if failed:
        where = (f"not in tensorrt_libs ({trt['tensorrt_libs']}){trt.get('note', '')} nor on the library path"
                 if trt.get("tensorrt_libs") else "tensorrt_libs is not installed and the library path has none")
        return f" ({', '.join(failed)} could not be preloaded: {where})"
    return ""


def _dlopen(path: str) -> Any:
    """Open a shared library into the process's global namespace, so that a library ONNX Runtime
    loads later resolves its DT_NEEDED sonames to it."""
    import ctypes

    return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


def _tensorrt_libs_folder() -> Optional[Path]:
    """The folder of the ``tensorrt_libs`` package (the tensorrt-cuNN-libs wheels), found without
    importing it."""
    try:
        spec = importlib.util.find_spec("tensorrt_libs")
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def _preload_tensorrt() -> dict[str, Any]:
    """Open TensorRT 10's libraries: from tensorrt_libs where that package has them, else by soname
    (LD_LIBRARY_PATH, the linker cache). Never raises: what loaded and what failed is the result."""
    folder = _tensorrt_libs_folder()
    out: dict[str, Any] = {"tensorrt_libs": str(folder) if folder else None, "loaded": {}, "failed": {}}
    if folder is not None and not (folder / TENSORRT_LIBRARIES[0]).is_file():
        other = sorted(p.name for p in folder.glob("libnvinfer.so.*"))
        if other:  # e.g. TensorRT 11 installed: its libnvinfer.so.11 is no use to this provider
            out["note"] = f", which holds {', '.join(other)}, another TensorRT than 10"
    for name in TENSORRT_LIBRARIES:
        candidate = folder / name if folder is not None else None
        target = str(candidate) if candidate is not None and candidate.is_file() else name
        try:
            _dlopen(target)
            out["loaded"][name] = target
        except OSError as exc:
            out["failed"][name] = str(exc)
    return out


def _mapped_gpu_libraries() -> list[str]:
    """The CUDA, cuDNN and TensorRT libraries this process has mapped (Linux; [] elsewhere)."""
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    paths = {line.split(None, 5)[5] for line in lines if len(line.split(None, 5)) == 6}
    return sorted(p for p in paths if _GPU_LIBRARY.search(p))


def preload_libraries(ort: Any, provider: str) -> dict[str, Any]:
    """Make the libraries a GPU provider loads loadable before its first session (not yet run on a
    GPU). CUDA and cuDNN: ``onnxruntime.preload_dlls()`` (ONNX Runtime 1.21 and later; it loads the
    nvidia-* wheels' libraries, and what it prints about failures is kept). TensorRT provider: TensorRT
    10's libraries as well. The result is recorded in the effective settings."""
    out: dict[str, Any] = {}
    if provider == "cpu":
        return out
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        out["preload_dlls"] = "not in this ONNX Runtime (1.21 and later have it)"
    else:
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                preload()
            out["preload_dlls"] = "called"
        except Exception as exc:  # noqa: BLE001 - a failed preload shows as the session's own error
            out["preload_dlls"] = f"failed: {type(exc).__name__}: {exc}"
        messages = [_ANSI.sub("", line).strip() for line in printed.getvalue().splitlines() if line.strip()]
        if messages:
            out["preload_dlls_messages"] = messages
    if provider == "tensorrt":
        out["tensorrt"] = _preload_tensorrt()
    if sys.platform.startswith("linux"):
        out["mapped_libraries"] = _mapped_gpu_libraries()
    return out


def node_placement(session: Any) -> Optional[dict[str, dict[str, int]]]:
    """The op types each provider got, with their counts ({provider: {op_type: nodes}}), from ONNX
    Runtime's graph assignment report (1.23 and later, with the session entry
    ``session.record_ep_graph_assignment_info``: subgraphs with ``ep_name`` and ``get_nodes()``, nodes
    with ``op_type``). None when this ONNX Runtime cannot say: unknown, never "nothing"."""
    placement: dict[str, dict[str, int]] = {}
    try:
        for subgraph in session.get_provider_graph_assignment_info():
            ops = placement.setdefault(str(subgraph.ep_name), {})
            for node in subgraph.get_nodes():
                ops[str(node.op_type)] = ops.get(str(node.op_type), 0) + 1
    except Exception:  # noqa: BLE001 - a missing or failing report is "unknown", no reason to fail the run
        return None
    return placement or None  # a session has nodes: an empty report says nothing


def _ops(op_types: dict[str, int]) -> str:
    return ", ".join(f"{op} x{n}" if n > 1 else op for op, n in op_types.items())


def cpu_nodes(placement: Optional[dict[str, dict[str, int]]], version: str) -> dict[str, Any]:
    """What a GPU session left to the CPU provider, for the record: the count and op types, or that
    this ONNX Runtime cannot report placement."""
    if placement is None:
        return {"reported": False,
                "why": f"ONNX Runtime {version} does not report which provider runs each node "
                       "(get_provider_graph_assignment_info, 1.23 and later): whether nodes run on the CPU "
                       "is unknown"}
    ops = placement.get(CPU) or {}
    return {"reported": True, "count": sum(ops.values()), "op_types": dict(sorted(ops.items())),
            "total": sum(sum(p.values()) for p in placement.values())}


def check_cpu_nodes(session: Any, wanted: str, allow: bool, version: str) -> None:
    """With backend.allow_cpu_nodes=false (``allow`` false), a session of the GPU provider ``wanted``
    with any node on the CPU provider, or whose placement this ONNX Runtime cannot report, is an error
    (raised at prepare time). The CPU provider's own session is never refused its nodes."""
    if allow or wanted == CPU:
        return
    placed = cpu_nodes(node_placement(session), version)
    if not placed["reported"]:
        raise CpuNodesError(f"backend.allow_cpu_nodes=false cannot be checked: {placed['why']}. Fix: "
                            "pip install 'onnxruntime-gpu>=1.23', or set backend.allow_cpu_nodes=true")
    if placed["count"]:
        raise CpuNodesError(
            f"{placed['count']} of {placed['total']} nodes run on the CPU provider, not {wanted} "
            f"({_ops(placed['op_types'])}), and backend.allow_cpu_nodes=false. Fix: set "
            "backend.allow_cpu_nodes=true to measure this mixed placement (the record warns of it), or run "
            "the model where its ops have GPU kernels (another provider, backend=tensorrt, a newer "
            "onnxruntime-gpu or another opset at export)")
