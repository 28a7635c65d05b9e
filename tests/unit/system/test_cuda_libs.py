"""The CUDA libraries of one process (bench.system.cuda_libs): /proc/self/maps parsed, each file's
package and CUDA major, the verdict (two majors, one, none), the extra that matches PyTorch's CUDA,
and the probe end to end in a fresh process with fake GPU packages that map fake library files."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from bench.system import cuda_libs
from bench.system.cuda_libs import LoadedLibrary, assess, classify, gpu_extra, gpu_install_command, parse_maps

SITE = "/venv/lib/python3.12/site-packages"
# A process that imported a CUDA 13 torch and a CUDA 12 TensorRT: each file is mapped several times
# (one line per segment), among anonymous memory, the heap, the vdso and unrelated libraries.
MAPS_TWO_MAJORS = f"""\
5581a0000000-5581a0001000 r--p 00000000 fd:01 1048601                    /usr/bin/python3.12
7f1c00000000-7f1c00021000 rw-p 00000000 00:00 0
7f1c10000000-7f1c10028000 r--p 00000000 fd:01 2097233                    /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c20000000-7f1c20010000 r--p 00000000 fd:01 3145801                    {SITE}/nvidia/cu13/lib/libcudart.so.13
7f1c20010000-7f1c20080000 r-xp 00010000 fd:01 3145801                    {SITE}/nvidia/cu13/lib/libcudart.so.13
7f1c20080000-7f1c20090000 rw-p 00080000 fd:01 3145801                    {SITE}/nvidia/cu13/lib/libcudart.so.13
7f1c30000000-7f1c30100000 r-xp 00000000 fd:01 3145900                    {SITE}/nvidia/cu13/lib/libcublasLt.so.13
7f1c38000000-7f1c38100000 r-xp 00000000 fd:01 3145950                    {SITE}/nvidia/cudnn/lib/libcudnn_graph.so.9
7f1c40000000-7f1c40100000 r-xp 00000000 fd:01 3146001                    {SITE}/tensorrt_libs/libnvinfer.so.10
7f1c48000000-7f1c48100000 r-xp 00000000 fd:01 3146050                    {SITE}/nvidia/cuda_runtime/lib/libcudart.so.12
7f1c48100000-7f1c48110000 rw-p 00100000 fd:01 3146050                    {SITE}/nvidia/cuda_runtime/lib/libcudart.so.12
7f1c50000000-7f1c50100000 r-xp 00000000 fd:01 2097500        /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.95.05
7f1c58000000-7f1c58001000 r--p 00000000 fd:01 4000000                    /opt/my libs/libcudart_static.a
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
7ffd10000000-7ffd10002000 r-xp 00000000 00:00 0                          [vdso]
"""
OWNERS = {
    f"{SITE}/nvidia/cu13/lib/libcudart.so.13": ("nvidia-cuda-runtime", "13.0.96"),
    f"{SITE}/nvidia/cu13/lib/libcublasLt.so.13": ("nvidia-cublas", "13.1.0.3"),
    f"{SITE}/nvidia/cudnn/lib/libcudnn_graph.so.9": ("nvidia-cudnn-cu13", "9.13.0.50"),
    f"{SITE}/tensorrt_libs/libnvinfer.so.10": ("tensorrt_cu12_libs", "10.16.1.11"),
    f"{SITE}/nvidia/cuda_runtime/lib/libcudart.so.12": ("nvidia-cuda-runtime-cu12", "12.9.79"),
}
# The same process without TensorRT and the CUDA 12 runtime; a replaced file ends in "(deleted)".
MAPS_ONE_MAJOR = "\n".join(
    line for line in MAPS_TWO_MAJORS.splitlines() if "tensorrt_libs" not in line and "cuda_runtime/" not in line
).replace("libcublasLt.so.13", "libcublasLt.so.13 (deleted)")
MAPS_NONE = "\n".join(line for line in MAPS_TWO_MAJORS.splitlines() if "nvidia/" not in line and "tensorrt" not in line)


def _libs(text: str) -> list[LoadedLibrary]:
    return classify(parse_maps(text), OWNERS)


def test_parse_maps_lists_each_cuda_library_once_in_order() -> None:
    assert parse_maps(MAPS_TWO_MAJORS) == [
        f"{SITE}/nvidia/cu13/lib/libcudart.so.13",
        f"{SITE}/nvidia/cu13/lib/libcublasLt.so.13",
        f"{SITE}/nvidia/cudnn/lib/libcudnn_graph.so.9",
        f"{SITE}/tensorrt_libs/libnvinfer.so.10",
        f"{SITE}/nvidia/cuda_runtime/lib/libcudart.so.12",
        "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.95.05",
    ]
    assert parse_maps("") == [] and parse_maps("garbage\n\n7f-7f r-xp 0 0:0 0\n") == []


def test_each_library_gets_its_family_major_package_and_cuda_major() -> None:
    libs = {lib.file: lib for lib in _libs(MAPS_TWO_MAJORS)}
    cudart13, cublas, cudnn = libs["libcudart.so.13"], libs["libcublasLt.so.13"], libs["libcudnn_graph.so.9"]
    assert (cudart13.family, cudart13.major, cudart13.cuda_major, cudart13.package) == (
        "libcudart", 13, 13, "nvidia-cuda-runtime")
    assert (cublas.family, cublas.cuda_major) == ("libcublas", 13)
    # cuDNN's own major is 9; its CUDA major comes from the package's name.
    assert (cudnn.family, cudnn.major, cudnn.cuda_major) == ("libcudnn", 9, 13)
    trt = libs["libnvinfer.so.10"]
    assert (trt.family, trt.major, trt.cuda_major, trt.package) == ("libnvinfer", 10, 12, "tensorrt_cu12_libs")
    nvml = libs["libnvidia-ml.so.580.95.05"]
    # The driver's library: no package, no CUDA major, its full version kept.
    assert (nvml.family, nvml.version, nvml.cuda_major, nvml.package) == ("libnvidia-ml", "580.95.05", None, None)
    # Without owners, a CUDA 13 wheel's folder (nvidia/cu13/lib) still says its major.
    (bare,) = classify([f"{SITE}/nvidia/cu13/lib/libcudnn.so.9"])
    assert bare.cuda_major == 13 and bare.package is None


def test_two_cuda_majors_give_one_warning_naming_both() -> None:
    verdict = assess(_libs(MAPS_TWO_MAJORS), torch_cuda="13.0")
    assert verdict["cuda_majors"] == [12, 13]
    assert verdict["status"] == "CUDA 12 and 13 loaded in one process"
    (warning,) = verdict["warnings"]
    assert "two CUDA majors" in warning
    assert "libcudart.so.12 from nvidia-cuda-runtime-cu12" in warning
    assert "libnvinfer.so.10 from tensorrt_cu12_libs" in warning and "libcudart.so.13" in warning
    # The fix is the install of PyTorch's major.
    assert ".[gpu-cu13]" in warning and "constraints-cu13.txt" in warning


def test_one_cuda_major_gives_no_warning() -> None:
    libs = _libs(MAPS_ONE_MAJOR)
    assert "libcublasLt.so.13" in [lib.file for lib in libs]  # "(deleted)" stripped
    verdict = assess(libs, torch_cuda="13.0", onnxruntime_cuda="13.0")
    assert verdict == {"cuda_majors": [13], "status": "CUDA 13 only", "warnings": []}


def test_no_cuda_library_says_no_cuda_runtime_loaded() -> None:
    libs = _libs(MAPS_NONE)
    assert [lib.family for lib in libs] == ["libnvidia-ml"]  # the driver's library is no runtime
    assert assess(libs) == {"cuda_majors": [], "status": "no CUDA runtime loaded", "warnings": []}
    assert assess([])["status"] == "no CUDA runtime loaded"


def test_torch_and_onnxruntime_built_for_different_majors_warn() -> None:
    (warning,) = assess([], torch_cuda="13.0", onnxruntime_cuda="12.8")["warnings"]
    assert "CUDA 13.0" in warning and "CUDA 12.8" in warning and ".[gpu-cu13]" in warning


@pytest.mark.parametrize("cuda, extra", [("12.8", "gpu-cu12"), ("13.0", "gpu-cu13"), ("11.8", None),
                                         (None, None), ("", None)])
def test_gpu_extra_follows_torch_cuda_major(cuda: str | None, extra: str | None) -> None:
    assert gpu_extra(cuda) == extra


def test_install_command_names_the_extra_and_keeps_torch() -> None:
    for major in (12, 13):
        command = gpu_install_command(f"{major}.1")
        assert command == (f"grep -v '^torch==' constraints.txt | pip install -c /dev/stdin "
                           f"-c constraints-cu{major}.txt -e '.[gpu-cu{major}]'")
    assert gpu_install_command("13.0", first="pip uninstall -y onnxruntime && ").startswith(
        "pip uninstall -y onnxruntime && grep -v '^torch=='")
    for cuda in (None, "11.8"):
        hint = gpu_install_command(cuda)
        assert "install a CUDA 12 or 13 build of PyTorch" in hint and "'.[gpu-cuNN]'" in hint
    assert "CUDA 11.8" in gpu_install_command("11.8")


def _fake_torch(root: Path, cuda_line: str) -> None:
    (root / "torch").mkdir(parents=True)
    (root / "torch" / "__init__.py").write_text("raise RuntimeError('torch must not be imported')\n")
    (root / "torch" / "version.py").write_text(f"from typing import Optional\n__version__ = '2.11.0'\n{cuda_line}\n")


def test_torch_cuda_version_reads_version_py_without_importing_torch(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    cu13, cpu, none = tmp_path / "cu13", tmp_path / "cpu", tmp_path / "none"
    _fake_torch(cu13, "cuda: Optional[str] = '13.0'")
    _fake_torch(cpu, "cuda: Optional[str] = None")
    none.mkdir()
    for folder, expected in ((cu13, "13.0"), (cpu, None), (none, None)):
        monkeypatch.setattr(sys, "path", [str(folder)])
        assert cuda_libs.torch_cuda_version() == expected
    monkeypatch.setattr(sys, "path", [str(cu13)])
    assert gpu_install_command().endswith("-e '.[gpu-cu13]'")


# ---------------------------------------------------------------- the probe in a fresh process

FAKE_TORCH = """\
import ctypes, os
from . import version
ctypes.CDLL(os.path.join(os.path.dirname(__file__), '..', 'nvidia', 'cu13', 'lib', 'libcudart.so.13'))
"""
FAKE_TENSORRT = """\
import ctypes, os
__version__ = '10.16.1.11'
ctypes.CDLL(os.path.join(os.path.dirname(__file__), '..', 'tensorrt_libs', 'libcudart.so.12'))
ctypes.CDLL(os.path.join(os.path.dirname(__file__), '..', 'tensorrt_libs', 'libnvinfer.so.10'))
"""
FAKE_ORT = """\
def get_available_providers():
    return ['CUDAExecutionProvider', 'CPUExecutionProvider']
"""
FAKE_PYNVML = """\
import ctypes, os
def nvmlInit():
    ctypes.CDLL(os.path.join(os.path.dirname(__file__), 'driver', 'libnvidia-ml.so.1'))
def nvmlSystemGetDriverVersion():
    return b'580.95.05'
def nvmlSystemGetCudaDriverVersion():
    return 13000
def nvmlShutdown():
    pass
"""


def _shared_object() -> Path:
    """A real shared object that loads anywhere this test runs: the _ctypes extension (its undefined
    symbols are Python's, already in the process). Copies of it stand in for the CUDA libraries."""
    import _ctypes

    path = Path(getattr(_ctypes, "__file__", "") or "")
    if not path.is_file():
        pytest.skip("this Python has _ctypes built in: no shared object to copy as a fake CUDA library")
    return path


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))


def _fake_site(root: Path, tensorrt: str = FAKE_TENSORRT) -> None:
    """Fake torch (CUDA 13), onnxruntime-gpu (CUDA 12.8 build), TensorRT (CUDA 12) and pynvml, whose
    imports map copies of a real shared object named as the CUDA libraries, and the dist-info RECORD
    files that say which package installed which file."""
    so = _shared_object()
    _write(root, {
        "torch/__init__.py": FAKE_TORCH,
        "torch/version.py": "cuda = '13.0'\n",
        "tensorrt/__init__.py": tensorrt,
        "onnxruntime/__init__.py": FAKE_ORT,
        "onnxruntime/capi/__init__.py": "",
        "onnxruntime/capi/build_and_package_info.py": "package_name = 'onnxruntime-gpu'\ncuda_version = '12.8'\n",
        "pynvml/__init__.py": FAKE_PYNVML,
        "nvidia_cuda_runtime-13.0.96.dist-info/METADATA":
            "Metadata-Version: 2.1\nName: nvidia-cuda-runtime\nVersion: 13.0.96\n",
        "nvidia_cuda_runtime-13.0.96.dist-info/RECORD": "nvidia/cu13/lib/libcudart.so.13,,\n",
        "tensorrt_cu12_libs-10.16.1.11.dist-info/METADATA":
            "Metadata-Version: 2.1\nName: tensorrt_cu12_libs\nVersion: 10.16.1.11\n",
        "tensorrt_cu12_libs-10.16.1.11.dist-info/RECORD":
            "tensorrt_libs/libcudart.so.12,,\ntensorrt_libs/libnvinfer.so.10,,\n",
    })
    for rel in ("nvidia/cu13/lib/libcudart.so.13", "tensorrt_libs/libcudart.so.12", "tensorrt_libs/libnvinfer.so.10",
                "pynvml/driver/libnvidia-ml.so.1", "onnxruntime/capi/libonnxruntime_providers_shared.so",
                "onnxruntime/capi/libonnxruntime_providers_cuda.so"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(so, root / rel)


def _use_site(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The probe's process finds the fakes before the real packages, and bench from this checkout.
    repo = Path(__file__).resolve().parents[3]
    monkeypatch.setenv("PYTHONPATH", f"{root}:{repo}")


def test_probe_reports_two_majors_loaded_by_fake_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_site(tmp_path)
    _use_site(tmp_path, monkeypatch)
    report = cuda_libs.probe(timeout_s=120)
    assert report["error"] is None, report
    assert report["imports"] == {name: "imported" for name in cuda_libs.PROBED_MODULES}
    assert (report["torch_cuda"], report["onnxruntime_cuda"], report["extra"]) == ("13.0", "12.8", "gpu-cu13")
    assert report["onnxruntime_cuda_provider"] == "loaded"
    assert (report["tensorrt"], report["nvml_driver"], report["driver_cuda"]) == ("10.16.1.11", "580.95.05", "13.0")
    by_file = {lib["file"]: lib for lib in report["libraries"]}
    assert set(by_file) == {"libcudart.so.13", "libcudart.so.12", "libnvinfer.so.10", "libnvidia-ml.so.1"}
    assert by_file["libcudart.so.13"]["package"] == "nvidia-cuda-runtime"
    assert by_file["libcudart.so.12"]["package"] == "tensorrt_cu12_libs"
    assert by_file["libnvinfer.so.10"]["cuda_major"] == 12 and by_file["libnvidia-ml.so.1"]["package"] is None
    assert report["cuda_majors"] == [12, 13]
    assert len(report["warnings"]) == 2  # two majors loaded; torch and onnxruntime-gpu built apart
    assert "two CUDA majors" in report["warnings"][0]
    text = cuda_libs.render_cuda_runtime(report)
    assert "status:" in text and "CUDA 12 and 13 loaded in one process" in text
    assert text.count("warning:") == 2 and "libcudart.so.12:" in text and "tensorrt_cu12_libs 10.16.1.11" in text


def test_probe_survives_a_library_that_crashes_on_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_site(tmp_path, tensorrt="import os\nos.abort()\n")
    _use_site(tmp_path, monkeypatch)
    report = cuda_libs.probe(timeout_s=120)
    assert report["error"].startswith("the probe process was killed by signal 6 while importing tensorrt")
    assert "CUDA libraries" in cuda_libs.render_cuda_runtime(report)
    assert "probe error:" in cuda_libs.render_cuda_runtime(report)


def test_probe_says_which_packages_are_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A sitecustomize in the probe's process makes the four packages unfindable, as on a machine
    # without them (torch and onnxruntime are installed here).
    _write(tmp_path, {"sitecustomize.py": """\
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('torch', 'onnxruntime', 'tensorrt', 'pynvml'):
                    raise ModuleNotFoundError(name)
                return None
        sys.meta_path.insert(0, Block())
        """})
    _use_site(tmp_path, monkeypatch)
    report = cuda_libs.probe(timeout_s=120)
    assert report["error"] is None, report
    assert set(report["imports"].values()) == {"not installed"}
    assert report["libraries"] == [] and report["status"] == "no CUDA runtime loaded"
