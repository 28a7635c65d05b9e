"""Plugins end to end: a package declaring a `bench.backends` entry point, found on PYTHONPATH, adds
a backend that `bench list` shows, `bench run --help` lists and `bench run backend=...` runs; the same
config folder given with -cd works without the entry point; a broken plugin is one warning line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FAST = ["scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=3",
        "scenario.min_duration_s=0.2", "scenario.max_duration_s=1", "sensors.enabled=false"]
TEST_CONF = str(ROOT / "tests" / "conf")

BACKEND_PY = '''from bench.backends.torch_eager import TorchBackend


class TinyAccelBackend(TorchBackend):
    """PyTorch eager on the CPU, under a plugin's name."""
'''
BACKEND_YAML = """defaults:
  - /schema/backend/torch@_here_
name: tinyaccel
impl: tinyaccel_bench.backend:TinyAccelBackend
device: cpu
"""



def _group_line(help_text: str, group: str) -> str:
    """The options of ``group`` in `bench run --help`, whose line wraps at the terminal's width."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{group}:"))
    lead = len(lines[start]) - len(lines[start].lstrip())
    tail = []
    for line in lines[start + 1:]:
        if not line.strip() or len(line) - len(line.lstrip()) <= lead:
            break
        tail.append(line.strip())
    return " ".join([lines[start].strip(), *tail])

def write_plugin(root: Path, entry_points: str = "[bench.backends]\ntinyaccel = tinyaccel_bench\n",
                 dist_info: bool = True) -> Path:
    """The tinyaccel_bench package under ``root`` (and its dist-info, which importlib.metadata finds on
    sys.path); returns the package's conf/ folder."""
    package = root / "tinyaccel_bench"
    (package / "conf" / "backend").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "backend.py").write_text(BACKEND_PY)
    (package / "conf" / "backend" / "tinyaccel.yaml").write_text(BACKEND_YAML)
    if dist_info:
        info = root / "tinyaccel_bench-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyaccel-bench\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(entry_points)
    return package / "conf"


def _bench(args, cwd, pythonpath):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(pythonpath)]),
               XDG_CACHE_HOME=str(Path(cwd) / "cache"))
    return subprocess.run([sys.executable, "-m", "bench.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.slow
def test_entry_point_plugin_is_listed_and_runs(tmp_path):
    plugins = tmp_path / "site"
    write_plugin(plugins)
    work = tmp_path / "work"
    work.mkdir()

    listed = _bench(["list", "--json", "suite=custom", "-cd", TEST_CONF], work, plugins)
    assert listed.returncode == 0, listed.stderr
    backends = {b["name"]: b for b in json.loads(listed.stdout)["backends"]}
    assert backends["tinyaccel"]["available"] is True
    assert backends["tinyaccel"]["impl"] == "tinyaccel_bench.backend:TinyAccelBackend"
    assert "cpu" in backends and "fake_oom" in backends  # the others stay, -cd's included
    assert "warning" not in listed.stderr

    helped = _bench(["run", "--help"], work, plugins)
    assert helped.returncode == 0, helped.stderr
    backend_line = _group_line(helped.stdout, "backend")
    assert "tinyaccel" in backend_line and "cpu" in backend_line

    ran = _bench(["run", "--config-dir", TEST_CONF, "suite=fake", "suite.only=[tiny]", "backend=tinyaccel", *FAST],
                 work, plugins)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    records = [json.loads(p.read_text()) for p in (work / "results" / "records").rglob("*.json")]
    assert len(records) == 1
    assert records[0]["backend"]["name"] == "tinyaccel" and records[0]["status"] == "ok"
    assert records[0]["workload"]["name"] == "tiny"


@pytest.mark.slow
def test_config_folder_plugin_without_entry_point(tmp_path):
    """-cd / --config-dir / hydra.searchpath with the plugin's conf/ folder: impl importable by PYTHONPATH."""
    code = tmp_path / "code"
    conf = write_plugin(code, dist_info=False)
    work = tmp_path / "work"
    work.mkdir()

    plain = _bench(["run", "--help"], work, code)
    assert plain.returncode == 0 and "tinyaccel" not in plain.stdout  # no entry point: not found by itself

    for folder in (["-cd", str(conf)], ["--config-dir", str(conf)], [f"hydra.searchpath=[file://{conf}]"]):
        listed = _bench(["list", "--json", "suite=custom", *folder], work, code)
        assert listed.returncode == 0, (folder, listed.stderr)
        backends = {b["name"]: b for b in json.loads(listed.stdout)["backends"]}
        assert backends["tinyaccel"]["available"] is True, folder
        helped = _bench(["run", *folder, "--help"], work, code)
        assert helped.returncode == 0, (folder, helped.stderr)
        backend_line = _group_line(helped.stdout, "backend")
        assert "tinyaccel" in backend_line, folder
    # Composed and checked as any other option (nothing runs: --cfg job).
    cfg = _bench(["run", "-cd", str(conf), "backend=tinyaccel", "--cfg", "job"], work, code)
    assert cfg.returncode == 0, cfg.stderr
    assert "impl: tinyaccel_bench.backend:TinyAccelBackend" in cfg.stdout


def test_broken_plugins_are_one_warning_line_each(tmp_path):
    site = tmp_path / "site"
    write_plugin(site, entry_points="[bench.backends]\ntinyaccel = tinyaccel_bench\n"
                                    "ghost = ghost_bench_not_installed\n"
                                    "[bench.suites]\nbare = bare_bench\n")
    (site / "bare_bench").mkdir()
    (site / "bare_bench" / "__init__.py").write_text("")  # a package without conf/
    work = tmp_path / "work"
    work.mkdir()
    helped = _bench(["run", "--help"], work, site)
    assert helped.returncode == 0, helped.stderr
    warnings = helped.stderr.strip().splitlines()
    assert len(warnings) == 2, helped.stderr
    ghost = next(w for w in warnings if "'ghost'" in w)
    bare = next(w for w in warnings if "'bare'" in w)
    assert ghost.startswith("bench: warning: plugin 'ghost' ignored: cannot find package 'ghost_bench_not_installed'")
    assert "install it or fix the entry point ghost" in ghost and "tinyaccel-bench" in ghost
    assert bare.startswith("bench: warning: plugin 'bare' ignored: package 'bare_bench' has no conf/ folder")
    assert "Traceback" not in helped.stderr
    # The working plugin's option and the built-in ones stay.
    backend_line = _group_line(helped.stdout, "backend")
    assert "tinyaccel" in backend_line and "cpu" in backend_line
