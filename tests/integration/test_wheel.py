"""The wheel holds the bench package only (its backends, suites and conf/ included), and installed in a
fresh virtual environment it runs from a folder outside the checkout, with no PYTHONPATH.

No network: the wheel is built without build isolation, and installed without its dependencies into a
venv that sees this interpreter's site-packages (torch, hydra, ...). That site-packages also holds the
editable install of the checkout; the test checks that the venv's installed bench is the one imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

FAST = ["scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=3",
        "scenario.min_duration_s=0.2", "scenario.max_duration_s=1"]


def _build_wheel(tmp: Path) -> Path:
    # A copy of the checkout (symlinks kept): an in-tree build would leave build/ and *.egg-info in it,
    # and a stale build/lib could slip old files into the wheel.
    src = tmp / "src"
    anywhere = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = {".git", "results", "build", "dist", ".benchmarks", ".venv"} if Path(folder) == ROOT else set()
        return set(anywhere(folder, names)) | (top & set(names))

    shutil.copytree(ROOT, src, symlinks=True, ignore=ignore)
    out = tmp / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out),
                           "."], cwd=src, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PIP_NO_INDEX": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("bench-*.whl")
    return wheel


def test_wheel_holds_bench_only_and_runs_installed_outside_the_checkout(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    files = set(names)
    top = {n.split("/")[0] for n in names}
    # no tests/, benchmarks/, backends/, suites/; hydra_plugins/bench_cluster: the cluster launchers for Hydra
    assert top == {"bench", "hydra_plugins", "bench-0.1.0.dist-info"}, top
    assert {n for n in names if n.startswith("hydra_plugins/")} == {"hydra_plugins/bench_cluster/__init__.py"}
    conf = [p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml")]
    assert "config.yaml" in conf and len(conf) > 10
    assert {f"bench/conf/{c}" for c in conf} <= files
    for folder, pattern in (("backends", "*.py"), ("suites", "*.py"), ("suites/models", "*.py")):
        expected = {f"bench/{folder}/{p.name}" for p in (ROOT / folder).glob(pattern)}
        assert expected and expected <= files, expected - files
    assert "bench/plugins.py" in files and "bench/cli/main.py" in files
    assert "bench = bench.cli.main:main" in zipfile.ZipFile(wheel).read("bench-0.1.0.dist-info/entry_points.txt").decode()

    venv = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], capture_output=True,
                          text=True, timeout=300)
    if made.returncode != 0:
        pytest.skip(f"cannot create a virtual environment here: {made.stderr.strip()[-300:]}")
    python, bench = venv / "bin" / "python", venv / "bin" / "bench"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PIP_NO_INDEX="1", XDG_CACHE_HOME=str(tmp_path / "cache"))
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", str(wheel)], capture_output=True,
                               text=True, timeout=300, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    work = tmp_path / "work"
    work.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*args], cwd=work, capture_output=True, text=True, timeout=600, env=env)

    where = run(str(python), "-c", "import bench, bench.config.schema as s; print(bench.__file__); print(s.CONF_DIR)")
    assert where.returncode == 0, where.stderr
    bench_file, conf_dir = where.stdout.split()
    site = venv / "lib"
    assert Path(bench_file).is_relative_to(site), f"bench imported from {bench_file}, not from the venv"
    assert Path(conf_dir).is_relative_to(site) and (Path(conf_dir) / "config.yaml").is_file()

    cfg = run(str(bench), "run", "--cfg", "job")
    assert cfg.returncode == 0, cfg.stderr
    assert "catalog: bench.suites.anomaly:SUITE" in cfg.stdout and "impl: bench.backends.torch_eager" in cfg.stdout

    listed = run(str(bench), "list")
    assert listed.returncode == 0, listed.stderr
    assert "autoencoder" in listed.stdout and "backends:" in listed.stdout and "openvino" in listed.stdout

    done = run(str(bench), "run", "suite.only=[autoencoder]", "sensors.enabled=false", "tag=wheel", *FAST)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    records = list((work / "results" / "records").rglob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["tag"] == "wheel" and record["status"] == "ok" and record["workload"]["name"] == "autoencoder"
