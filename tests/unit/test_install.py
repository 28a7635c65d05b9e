"""The install files agree: every requirement of the GPU extras (gpu-cu12, gpu-cu13) is pinned, by a
version its range admits; onnxruntime-gpu's pin is per CUDA major; the README's keep-torch command
drops the torch pin and nothing else; a preinstalled CUDA build of torch satisfies pyproject.toml."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from bench.system.cuda_libs import EXTRAS, gpu_install_command
from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRA_REQS = PYPROJECT["project"]["optional-dependencies"]


def pins(path: Path) -> dict[str, Version]:
    """name -> pinned version of a constraints file; any line that is no `name==version` pin fails."""
    found: dict[str, Version] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        assert match, f"{path.name}:{number}: {raw!r} is not a name==version pin"
        name = canonicalize_name(match.group(1))
        assert name not in found, f"{path.name}:{number}: {name} pinned twice"
        found[name] = Version(match.group(2))
    return found


def test_one_extra_per_cuda_major_and_no_gpu_alias() -> None:
    assert {f"gpu-cu{major}" for major in EXTRAS} == {name for name in EXTRA_REQS if name.startswith("gpu")}
    assert set(EXTRAS.values()) == {"gpu-cu12", "gpu-cu13"}


@pytest.mark.parametrize("major", sorted(EXTRAS))
def test_constraints_pin_every_requirement_of_the_gpu_extra(major: int) -> None:
    common, own = pins(ROOT / "constraints.txt"), pins(ROOT / f"constraints-cu{major}.txt")
    assert not set(common) & set(own), "a pin in both files makes pip refuse or pick one silently"
    pinned = {**common, **own}
    for text in EXTRA_REQS[f"gpu-cu{major}"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} of gpu-cu{major} has no pin"
        assert req.specifier.contains(pinned[name]), f"{name}=={pinned[name]} is outside {req} (gpu-cu{major})"
    # TensorRT of this major, and the -libs and -bindings it requires at exactly its own version.
    trt = pinned[f"tensorrt-cu{major}"]
    assert trt.major == 10
    assert pinned[f"tensorrt-cu{major}-libs"] == trt == pinned[f"tensorrt-cu{major}-bindings"]


def test_onnxruntime_gpu_is_pinned_per_cuda_major() -> None:
    assert "onnxruntime-gpu" not in pins(ROOT / "constraints.txt")
    # PyPI's onnxruntime-gpu is a CUDA 12 build up to 1.26 and a CUDA 13 build from 1.27.
    assert pins(ROOT / "constraints-cu12.txt")["onnxruntime-gpu"] < Version("1.27")
    assert pins(ROOT / "constraints-cu13.txt")["onnxruntime-gpu"] >= Version("1.27")


def test_a_preinstalled_cuda_torch_satisfies_the_torch_requirement() -> None:
    (torch,) = [Requirement(r) for r in PYPROJECT["project"]["dependencies"] if Requirement(r).name == "torch"]
    for preinstalled in ("2.11.0+cu130", "2.8.0+cu128", "2.13.0+cpu"):
        assert torch.specifier.contains(preinstalled), f"pip would replace torch {preinstalled} ({torch})"


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return sorted(set(re.findall(r"grep -v '\^torch==' constraints\.txt \| pip install [^\n`]*'", text)))


def test_the_readme_gives_the_commands_the_hints_give() -> None:
    assert _readme_commands() == sorted(gpu_install_command(f"{major}.0") for major in EXTRAS)


def test_the_keep_torch_command_drops_the_torch_pin_and_nothing_else() -> None:
    command = _readme_commands()[0]
    derive = command.split(" | ", 1)[0]
    out = subprocess.run(["sh", "-c", derive], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    assert len([line for line in lines if line.startswith("torch==")]) == 1
    assert out.splitlines() == [line for line in lines if not line.startswith("torch==")]


def test_a_checkout_on_pythonpath_runs_its_own_suites(tmp_path):
    """A checkout used through PYTHONPATH beside an editable install of another checkout (a second
    worktree, say) gets its own suites/, not the installed one's: bench.suites follows bench."""
    import os
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    checkout = tmp_path / "checkout"
    (checkout / "bench").mkdir(parents=True)
    shutil.copy(ROOT / "bench" / "__init__.py", checkout / "bench" / "__init__.py")
    shutil.copy(ROOT / "setup.py", checkout / "setup.py")
    (checkout / "suites").mkdir()
    (checkout / "suites" / "__init__.py").write_text("WHERE = 'the checkout'\n")
    code = "import bench.suites as s; print(s.WHERE if hasattr(s, 'WHERE') else s.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(checkout)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "the checkout"
    # Without setup.py beside it (a wheel's site-packages), the finder does not answer.
    (checkout / "setup.py").unlink()
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(checkout)}, timeout=60)
    assert done.stdout.strip() != "the checkout", done.stdout
