"""CUDA builds: the `gpu-cuNN` extra that matches this PyTorch, and the CUDA libraries that the GPU
packages load into one process (``bench sysinfo``).

A CUDA 12 library and a CUDA 13 library in one process each bring their own runtime
(libcudart.so.12 and libcudart.so.13): both load, nothing says so, and the one whose runtime is
missing fails later with a message about a provider or a plugin. So the extras are per CUDA major
(``gpu-cu12``, ``gpu-cu13``, picked by ``torch.version.cuda``), and ``bench sysinfo`` imports the GPU
libraries that are installed (torch, onnxruntime, tensorrt, pynvml) in a fresh process, reads that
process's /proc/self/maps and says which libcudart/libcublas/libcudnn/libnvinfer/libnvidia-ml files
are mapped, the package each came from, and whether two CUDA majors are loaded at once.

Not yet run on a GPU: the parsing and the verdict are tested on sample /proc/self/maps text, the
probe end to end on a CPU-only machine (CPU builds of torch and onnxruntime, which map no CUDA
library). Which files a CUDA torch, onnxruntime-gpu, TensorRT and NVML map on a GPU host, and loading
ONNX Runtime's CUDA provider library the way ONNX Runtime does, have not been seen.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

__all__ = [
    "EXTRAS",
    "LIBRARY_FAMILIES",
    "PROBED_MODULES",
    "LoadedLibrary",
    "torch_cuda_version",
    "cuda_major",
    "gpu_extra",
    "gpu_install_command",
    "parse_maps",
    "classify",
    "assess",
    "package_owners",
    "probe",
    "render_cuda_runtime",
]

# The extra for each CUDA major of PyTorch (pyproject.toml), and the constraints file with the
# onnxruntime-gpu build of that major (one constraints file cannot pin two versions of one package).
EXTRAS: dict[int, str] = {12: "gpu-cu12", 13: "gpu-cu13"}
# The order the probe imports in: torch first, as the worker does (it builds every model in torch),
# so a library that would reuse torch's CUDA runtime finds it loaded, as it would in a run.
PROBED_MODULES: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt", "pynvml")
# Library file stem -> the family it is reported under. cuBLAS, like the runtime, carries the CUDA
# major in its soname (libcublas.so.12 ships with CUDA 12); cuDNN (9) and TensorRT (10) do not.
LIBRARY_FAMILIES: dict[str, str] = {
    "libcudart": "libcudart",
    "libcublas": "libcublas",
    "libcublasLt": "libcublas",
    "libcudnn": "libcudnn",
    "libnvinfer": "libnvinfer",
    "libnvidia-ml": "libnvidia-ml",
}
_RUNTIME_FAMILIES = ("libcudart", "libcublas")
# libcudnn_graph.so.9, libnvinfer_plugin.so.10, libcudart.so.12.8.90 (a system CUDA's real file).
_LIB_FILE = re.compile(r"(?P<stem>libcudart|libcublasLt|libcublas|libcudnn|libnvinfer|libnvidia-ml)"
                       r"(?:_[A-Za-z0-9_]+)?\.so(?:\.(?P<version>\d+(?:\.\d+)*))?")
# tensorrt-cu12-libs, nvidia-cudnn-cu13: the CUDA major in a package's name.
_PACKAGE_CUDA = re.compile(r"[-_]cu(\d+)(?:[-_]|$)")
# nvidia/cu13/lib/: where NVIDIA's CUDA 13 wheels (nvidia-cuda-runtime 13.x, ...) put their files.
_FOLDER_CUDA = re.compile(r"/cu(\d+)/")
PROBE_TIMEOUT_S = 180.0
PROC_SELF_MAPS = "/proc/self/maps"
_PROBE_MARK = "bench-cuda-probe:"


# ---------------------------------------------------------------- which extra


def torch_cuda_version() -> Optional[str]:
    """``torch.version.cuda`` of the installed PyTorch (None: a CPU build, or no torch), without
    importing torch: torch/version.py is a generated file of literals, read with ``ast``.

    Importing torch costs seconds and, in a CUDA build, maps the CUDA libraries; an install hint
    must be cheap.
    """
    if "torch" in sys.modules:
        version = getattr(sys.modules["torch"], "version", None)
        return getattr(version, "cuda", None)
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        try:
            tree = ast.parse(Path(folder, "version.py").read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
            continue
        for node in tree.body:
            # `cuda: Optional[str] = '13.0'` (an annotated assignment) or `cuda = None`.
            if isinstance(node, ast.AnnAssign):
                targets, value = [node.target], node.value
            elif isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            else:
                continue
            if any(isinstance(t, ast.Name) and t.id == "cuda" for t in targets) and isinstance(value, ast.Constant):
                return value.value if isinstance(value.value, str) else None
        return None
    return None


def cuda_major(version: Optional[str]) -> Optional[int]:
    """12 for '12.8', None for None or text that is no version."""
    match = re.match(r"\s*(\d+)", version or "")
    return int(match.group(1)) if match else None


def gpu_extra(cuda: Optional[str]) -> Optional[str]:
    """The extra for PyTorch's CUDA version ('13.0' -> 'gpu-cu13'); None for a CPU build or a major
    bench has no extra for."""
    major = cuda_major(cuda)
    return EXTRAS.get(major) if major is not None else None


def _command(major: int) -> str:
    # The torch pin is dropped so that a GPU machine's own CUDA build of PyTorch stays installed;
    # pip reads the remaining pins from stdin.
    return (f"grep -v '^torch==' constraints.txt | pip install -c /dev/stdin -c constraints-cu{major}.txt "
            f"-e '.[{EXTRAS[major]}]'")


_MISSING: Any = object()


def gpu_install_command(cuda: Optional[str] = _MISSING, first: str = "") -> str:
    """The install command for the GPU extra that matches this machine's PyTorch (``cuda`` is
    ``torch.version.cuda``, read here when not given), or what to do first when PyTorch has no CUDA
    build bench has an extra for. ``first`` goes before the pip command (e.g. an uninstall)."""
    if cuda is _MISSING:
        cuda = torch_cuda_version()
    major = cuda_major(cuda)
    if major is not None and major in EXTRAS:
        return first + _command(major)
    choose = ("then the extra of its CUDA major, NN = 12 or 13 as "
              "python -c \"import torch; print(torch.version.cuda)\" "
              f"says: {first}grep -v '^torch==' constraints.txt | pip install -c /dev/stdin -c constraints-cuNN.txt "
              "-e '.[gpu-cuNN]'")
    if cuda is None:
        return f"install a CUDA 12 or 13 build of PyTorch (this one has no CUDA), {choose}"
    return f"this PyTorch is built for CUDA {cuda}: install a CUDA 12 or 13 build of PyTorch, {choose}"


# ---------------------------------------------------------------- what a process maps (pure)


@dataclass(frozen=True)
class LoadedLibrary:
    """One mapped CUDA-related library file."""

    file: str  # libcudart.so.12
    family: str  # libcudart
    version: Optional[str]  # the numbers after .so: 12, or 12.8.90, or a driver's 580.95.05
    major: Optional[int]  # the first of them
    cuda_major: Optional[int]  # the CUDA major it belongs to, where something says it
    path: str
    package: Optional[str]  # the installed distribution the file came from, None: not from one
    package_version: Optional[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_maps(text: str) -> list[str]:
    """Paths of the CUDA-related libraries in /proc/PID/maps text, each once, in first-seen order.

    A maps line is ``address perms offset dev inode [path]``; the path may hold spaces and ends in
    ' (deleted)' when the file was replaced after it was mapped.
    """
    paths: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        fields = line.split(None, 5)
        if len(fields) < 6 or not fields[5].startswith("/"):
            continue  # anonymous memory, [heap], [stack], [vdso]
        path = fields[5].removesuffix(" (deleted)").rstrip()
        if path in seen or not _LIB_FILE.fullmatch(os.path.basename(path)):
            continue
        seen.add(path)
        paths.append(path)
    return paths


def classify(paths: Iterable[str],
             owners: Mapping[str, tuple[str, str]] | None = None) -> list[LoadedLibrary]:
    """LoadedLibrary for each path; ``owners`` maps a path to the (distribution, version) that
    installed it (see :func:`package_owners`)."""
    owners = owners or {}
    libraries: list[LoadedLibrary] = []
    for path in paths:
        file = os.path.basename(path)
        match = _LIB_FILE.fullmatch(file)
        if match is None:
            continue
        family = LIBRARY_FAMILIES[match.group("stem")]
        version = match.group("version")
        major = int(version.split(".")[0]) if version else None
        package, package_version = owners.get(path, (None, None))
        cuda: Optional[int] = major if family in _RUNTIME_FAMILIES else None
        if cuda is None and package is not None:
            named = _PACKAGE_CUDA.search(package)
            cuda = int(named.group(1)) if named else None
        if cuda is None and family != "libnvidia-ml":  # the driver's library belongs to no CUDA major
            folder = _FOLDER_CUDA.search(path)
            cuda = int(folder.group(1)) if folder else None
        libraries.append(LoadedLibrary(file, family, version, major, cuda, path, package, package_version))
    return libraries


def _where(lib: LoadedLibrary) -> str:
    return f"{lib.file} from {lib.package}" if lib.package else f"{lib.file} ({os.path.dirname(lib.path)})"


def assess(libraries: Iterable[LoadedLibrary], torch_cuda: Optional[str] = None,
           onnxruntime_cuda: Optional[str] = None) -> dict[str, Any]:
    """The verdict on one process's CUDA libraries: the CUDA majors loaded (each with the files that
    say so), a status line, and warnings: two CUDA majors at once, or torch and onnxruntime-gpu built
    for different majors (then one of them fails to load its runtime or loads a second one)."""
    libraries = list(libraries)
    majors: dict[int, list[str]] = {}
    for lib in libraries:
        if lib.cuda_major is not None:
            majors.setdefault(lib.cuda_major, []).append(_where(lib))
    warnings: list[str] = []
    if not majors:
        status = "no CUDA runtime loaded"
    elif len(majors) == 1:
        status = f"CUDA {next(iter(majors))} only"
    else:
        status = f"CUDA {' and '.join(str(m) for m in sorted(majors))} loaded in one process"
        listed = "; ".join(f"CUDA {m}: {', '.join(files)}" for m, files in sorted(majors.items()))
        fix = (f"install the extra of PyTorch's CUDA {torch_cuda}: {gpu_install_command(torch_cuda)}"
               if gpu_extra(torch_cuda) else "install the GPU packages of one CUDA major (README, GPU installs)")
        warnings.append(f"two CUDA majors are loaded in one process ({listed}): {fix}")
    torch_major, ort_major = cuda_major(torch_cuda), cuda_major(onnxruntime_cuda)
    if torch_major is not None and ort_major is not None and torch_major != ort_major:
        warnings.append(f"PyTorch is built for CUDA {torch_cuda} and onnxruntime-gpu for CUDA {onnxruntime_cuda}: "
                        f"install the onnxruntime-gpu of PyTorch's major: {gpu_install_command(torch_cuda)}")
    return {"cuda_majors": sorted(majors), "status": status, "warnings": warnings}


# ---------------------------------------------------------------- the probe (a fresh process)


def package_owners(paths: Iterable[str]) -> dict[str, tuple[str, str]]:
    """The installed distribution (name, version) that holds each of ``paths``, from the packages'
    RECORD files; a path no distribution lists (a system CUDA, the driver's libnvidia-ml) is left out."""
    wanted: dict[str, set[str]] = {}
    for path in paths:
        wanted.setdefault(os.path.basename(path), set()).add(os.path.realpath(path))
    owners: dict[str, tuple[str, str]] = {}
    if not wanted:
        return owners
    real_to_path = {os.path.realpath(p): p for p in paths}
    for dist in importlib.metadata.distributions():
        try:
            files = dist.files or []
            for file in files:
                if file.name not in wanted:
                    continue
                real = os.path.realpath(str(dist.locate_file(file)))
                if real in wanted[file.name] and real in real_to_path:
                    owners[real_to_path[real]] = (str(dist.metadata["Name"]), str(dist.version))
        except Exception:  # noqa: BLE001 - a broken dist-info costs its own attribution, nothing more
            continue
    return owners


def _probe_here() -> dict[str, Any]:
    """Import each installed GPU library in this process, note what each says about its CUDA build,
    and read which CUDA libraries are mapped now. Runs in the probe's own process (``main``)."""
    found: dict[str, Any] = {"imports": {}, "torch_cuda": None, "onnxruntime_cuda": None,
                             "onnxruntime_providers": None, "onnxruntime_cuda_provider": None,
                             "tensorrt": None, "nvml_driver": None, "driver_cuda": None}
    for name in PROBED_MODULES:
        try:
            installed = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            installed = False
        if not installed:
            found["imports"][name] = "not installed"
            continue
        # Said before each import, so that a crash inside one (a segfault) is attributed by the parent.
        print(f"{_PROBE_MARK} importing {name}", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(name)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - ImportError, OSError of a missing .so
            found["imports"][name] = f"fails: {type(exc).__name__}: {str(exc).strip()[:300]}"
            continue
        found["imports"][name] = "imported"
        try:
            _ask(name, module, found)
        except Exception as exc:  # noqa: BLE001 - what a library says about itself is extra
            found["imports"][name] = f"imported; asking it failed: {type(exc).__name__}: {exc}"
    try:
        with open(PROC_SELF_MAPS, encoding="utf-8", errors="replace") as f:
            found["paths"] = parse_maps(f.read())
    except OSError as exc:
        found["paths"] = []
        found["maps_error"] = f"{PROC_SELF_MAPS} is not readable: {exc}"
    # Attributed here, where sys.path is the one the libraries were imported from.
    found["owners"] = package_owners(found["paths"])
    return found


def _ask(name: str, module: Any, found: dict[str, Any]) -> None:
    if name == "torch":
        found["torch_cuda"] = getattr(getattr(module, "version", None), "cuda", None)
    elif name == "onnxruntime":
        build = importlib.import_module("onnxruntime.capi.build_and_package_info")
        found["onnxruntime_cuda"] = getattr(build, "cuda_version", None) or None  # GPU builds only
        providers = list(module.get_available_providers())
        found["onnxruntime_providers"] = providers
        if "CUDAExecutionProvider" in providers:
            # Importing onnxruntime maps no CUDA library: its CUDA provider is a library that a session
            # loads. Loaded here as ONNX Runtime loads it (the shared bridge global, then the provider),
            # its CUDA dependencies resolve as in a run, or the error names the one that is missing.
            import ctypes

            capi = Path(module.__file__).parent / "capi"
            try:
                ctypes.CDLL(str(capi / "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
                ctypes.CDLL(str(capi / "libonnxruntime_providers_cuda.so"))
                found["onnxruntime_cuda_provider"] = "loaded"
            except OSError as exc:
                found["onnxruntime_cuda_provider"] = f"fails to load: {exc}"
    elif name == "tensorrt":
        found["tensorrt"] = str(getattr(module, "__version__", "")) or None
    elif name == "pynvml":
        # pynvml loads libnvidia-ml only in nvmlInit.
        module.nvmlInit()
        try:
            driver = module.nvmlSystemGetDriverVersion()
            found["nvml_driver"] = driver.decode() if isinstance(driver, bytes) else str(driver)
            get_cuda = getattr(module, "nvmlSystemGetCudaDriverVersion", None)
            if get_cuda is not None:
                value = int(get_cuda())  # e.g. 13000: the newest CUDA this driver runs
                found["driver_cuda"] = f"{value // 1000}.{value % 1000 // 10}"
        finally:
            module.nvmlShutdown()


def _last_import(stderr: str) -> Optional[str]:
    marks = [line.split(_PROBE_MARK, 1)[1].strip() for line in stderr.splitlines() if _PROBE_MARK in line]
    return marks[-1] if marks else None


def probe(timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """The CUDA libraries the installed GPU packages load, from a fresh process
    (``python -m bench.system.cuda_libs``), so that a library that crashes on import, or two that
    clash, cost that process and not ``bench sysinfo``. Never raises: a failed probe is its ``error``."""
    report: dict[str, Any] = {"error": None, "extra": gpu_extra(torch_cuda_version())}
    try:
        proc = subprocess.run([sys.executable, "-m", "bench.system.cuda_libs"], capture_output=True, text=True,
                              timeout=timeout_s, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        where = _last_import(stderr)
        report["error"] = f"the probe did not finish within {timeout_s:g} s" + (f" ({where})" if where else "")
        return report
    except OSError as exc:
        report["error"] = f"the probe could not be started: {exc}"
        return report
    lines = proc.stdout.strip().splitlines()
    try:
        found = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
    except ValueError:
        found = None
    if not isinstance(found, dict):
        where = _last_import(proc.stderr)
        died = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
                else f"exited with status {proc.returncode}")
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        report["error"] = f"the probe process {died}" + (f" while {where}" if where else "") + f": {tail[0][:300]}"
        return report
    paths = [str(p) for p in found.pop("paths", None) or []]
    owners = {str(path): (str(owner[0]), str(owner[1])) for path, owner in (found.pop("owners", None) or {}).items()}
    libraries = classify(paths, owners)
    report.update(found)
    # The probe's own torch (the parent's answer stands where the probe could not import torch).
    if found.get("imports", {}).get("torch") == "imported":
        report["extra"] = gpu_extra(found.get("torch_cuda"))
    report["libraries"] = [lib.to_dict() for lib in libraries]
    report.update(assess(libraries, found.get("torch_cuda"), found.get("onnxruntime_cuda")))
    provider = str(found.get("onnxruntime_cuda_provider") or "")
    if provider.startswith("fails"):
        report["warnings"].append(f"ONNX Runtime's CUDA provider library {provider}")
    return report


# ---------------------------------------------------------------- rendering


def render_cuda_runtime(report: Mapping[str, Any]) -> str:
    """The probe's report as the ``CUDA libraries`` section of ``bench sysinfo``."""
    rows: list[tuple[str, str]] = []
    if report.get("error"):
        rows.append(("probe error", str(report["error"])))
    imports = report.get("imports") or {}
    if imports:
        rows.append(("imports", ", ".join(f"{name} {state}" for name, state in imports.items())))
    if imports.get("torch") == "imported" or report.get("torch_cuda"):
        rows.append(("torch CUDA", report.get("torch_cuda") or "none (a CPU build)"))
    if imports.get("onnxruntime") == "imported" or report.get("onnxruntime_cuda"):
        rows.append(("onnxruntime CUDA", report.get("onnxruntime_cuda") or "none (a CPU build)"))
    if report.get("onnxruntime_cuda_provider"):
        rows.append(("onnxruntime CUDA provider", str(report["onnxruntime_cuda_provider"])))
    if report.get("tensorrt"):
        rows.append(("TensorRT", str(report["tensorrt"])))
    if report.get("nvml_driver"):
        driver = str(report["nvml_driver"])
        if report.get("driver_cuda"):
            driver += f" (runs CUDA up to {report['driver_cuda']})"
        rows.append(("driver", driver))
    if report.get("maps_error"):
        rows.append(("maps", str(report["maps_error"])))
    order = list(dict.fromkeys(LIBRARY_FAMILIES.values()))
    libraries = sorted(report.get("libraries") or [],  # maps list by address; shown by family, then path
                       key=lambda lib: (order.index(lib["family"]) if lib.get("family") in order else len(order),
                                        str(lib.get("path"))))
    for lib in libraries:
        cuda = f"CUDA {lib['cuda_major']}" if lib.get("cuda_major") is not None else "no CUDA major"
        origin = (f"{lib['package']} {lib.get('package_version') or ''}".rstrip() if lib.get("package")
                  else "not from a Python package")
        rows.append((str(lib["file"]), f"{cuda}, {origin}, {os.path.dirname(str(lib['path']))}"))
    if "status" in report:
        rows.append(("status", str(report["status"])))
    for warning in report.get("warnings") or []:
        rows.append(("warning", str(warning)))
    extra = report.get("extra")
    rows.append(("GPU extra", f"{extra} (matches torch.version.cuda)" if extra
                 else "none: this PyTorch is no CUDA 12 or 13 build"))
    width = max(len(key) for key, _ in rows) + 1
    lines = ["CUDA libraries (mapped after importing torch, onnxruntime, tensorrt, pynvml in a fresh process)"]
    lines.extend(f"  {key + ':':<{width}} {value}" for key, value in rows)
    return "\n".join(lines)


def main() -> int:
    """The probe's process: one JSON line on stdout."""
    print(json.dumps(_probe_here()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
