"""The rules of the layout, checked on the source so that they hold without anyone watching:

- each package of bench/ imports only the packages below it (ALLOWED), function-level imports included;
- no module imports another that imports it back, however long the way round (no import cycle);
- nothing outside bench/backends and bench/suites imports an ML runtime, so that `bench list`, config
  validation, the parent process and every report run where torch, ONNX Runtime, OpenVINO or TensorRT
  are missing;
- nothing imports the repository's top-level `backends`/`suites` folders by those names: installed,
  they exist only as bench.backends and bench.suites.

The checks read the AST of every module (bench.backends and bench.suites read from the repository's
backends/ and suites/ folders) and import every core module in a process where
the runtimes cannot be imported.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import ROOT

FOUNDATION = {"bench", "bench.errors", "bench.fmt", "bench.plugins", "bench.precision"}
# What each package may import, besides itself and the foundation. Read top to bottom: the CLI over
# reporting and orchestration, the worker beside them (a separate process: the parent never imports
# it and reaches it only through the work-item protocol), then config, results, system, measurement.
# backends and suites are plugins: only the worker imports them; the rest reaches them by name through
# bench.plugins.
ALLOWED: dict[str, set[str]] = {
    "bench.api": {"bench.cli", "bench.config", "bench.reporting", "bench.results"},  # bench.run & co.
    "bench.cli": {"bench.config", "bench.orchestration", "bench.reporting", "bench.results", "bench.system",
                  "bench.measurement", "bench.cluster"},
    # The cluster launchers run beside orchestration: Hydra's plugins on the launching side, the machine
    # lock and the jobs' rows on the nodes.
    "bench.cluster": {"bench.config", "bench.results", "bench.system"},
    "bench.reporting": {"bench.config", "bench.results", "bench.system", "bench.measurement"},
    "bench.orchestration": {"bench.config", "bench.results", "bench.system", "bench.measurement"},
    "bench.worker": {"bench.orchestration.protocol", "bench.config", "bench.results", "bench.system",
                     "bench.measurement", "bench.backends", "bench.suites"},
    "bench.config": {"bench.results"},
    "bench.results": {"bench.system", "bench.measurement"},
    "bench.system": {"bench.measurement"},
    "bench.measurement": set(),
    # cuda_libs: the install hint names the GPU extra of torch's CUDA major (read without importing torch).
    "bench.backends": {"bench.measurement", "bench.system.cuda_libs"},
    "bench.suites": set(),
}
FOUNDATION_ALLOWED = {"bench.errors"}  # bench.plugins may raise bench's errors
RUNTIMES = ("torch", "onnxruntime", "openvino", "tensorrt", "onnx", "pycuda", "pynvml")
PLUGIN_DIRS = {"bench.backends": ROOT / "backends", "bench.suites": ROOT / "suites"}


def _modules() -> dict[str, Path]:
    found = {}
    roots = [("bench", ROOT / "bench")] + list(PLUGIN_DIRS.items())
    for prefix, folder in roots:
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("").parts
            if prefix == "bench" and rel[0] in {"backends", "suites"}:
                continue  # the symlinks to the plugin folders, read from the folders themselves
            parts = [p for p in rel if p != "__init__"]
            found[".".join([prefix, *parts])] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.append((node.lineno, full if full in MODULES else node.module))
    return out


def package_of(module: str) -> str:
    parts = module.split(".")
    if module in FOUNDATION or len(parts) < 2:
        return module
    return ".".join(parts[:2])


def allowed(source: str, target: str) -> bool:
    src, dst = package_of(source), package_of(target)
    if src == dst or dst == "bench":
        return True
    if source == "bench" and dst == "bench.api":
        return True  # the package's lazy facade: bench.run, bench.leaderboard, ... are bench.api's
    if src in FOUNDATION:
        return dst in FOUNDATION_ALLOWED
    if dst in FOUNDATION:
        return True
    rules = ALLOWED[src]
    return any(target == r or target.startswith(r + ".") or dst == r for r in rules)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def layer_violations(modules: dict[str, Path] = MODULES) -> list[str]:
    bad = []
    for name, path in sorted(modules.items()):
        for line, target in _imports(path):
            top = target.split(".")[0]
            if top in {"backends", "suites"}:
                bad.append(f"{_shown(path)}:{line} imports {target}: write bench.{target}")
            elif top == "bench" and not allowed(name, target):
                bad.append(f"{_shown(path)}:{line} {package_of(name)} imports {target}, "
                           f"which {package_of(name)} may not import")
    return bad


def import_cycles(modules: dict[str, Path] = MODULES) -> list[list[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for _, target in _imports(path):
            # a module's import of its own package's __init__ is how Python loads it, not a dependency
            if target in modules and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(modules):
        if node not in state:
            visit(node)
    return cycles


def test_every_package_imports_only_the_layers_below_it():
    assert layer_violations() == []


def test_no_module_imports_itself_back():
    assert import_cycles() == []


def test_the_checks_see_a_forbidden_import_and_a_cycle(tmp_path):
    """The two checks above on a copy of the rules' subjects with one bad import each: they must fail."""
    results = tmp_path / "store.py"
    results.write_text("from bench.cli.main import compose\n")
    worker = tmp_path / "loop.py"
    worker.write_text("import torch\nfrom bench.measurement.stats import quantile\nimport suites.base\n")
    stats = tmp_path / "stats.py"
    stats.write_text("def quantile(): from bench.measurement.loop import measure\n")
    fake = {"bench.results.store": results, "bench.measurement.loop": worker,
            "bench.measurement.stats": stats, "bench.cli.main": ROOT / "bench" / "cli" / "main.py"}
    bad = "\n".join(layer_violations(fake))
    assert "bench.results imports bench.cli.main" in bad
    assert "imports suites.base: write bench.suites.base" in bad
    assert import_cycles({k: v for k, v in fake.items() if k.startswith("bench.measurement")}) == [
        ["bench.measurement.loop", "bench.measurement.stats", "bench.measurement.loop"]]


CORE = sorted(m for m in MODULES if package_of(m) not in PLUGIN_DIRS and not m.endswith("__main__"))


def test_the_core_imports_without_any_ml_runtime():
    """Every module outside the plugins imports with the runtimes made unimportable, and none of them
    (nor the libraries they use) loads a runtime behind the scenes."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {RUNTIMES!r}: sys.modules[name] = None\n"
        "failed = {}\n"
        f"for module in {CORE!r}:\n"
        "    try:\n"
        "        importlib.import_module(module)\n"
        "    except ImportError as exc:\n"
        "        failed[module] = f'{type(exc).__name__}: {exc}'\n"
        f"loaded = [n for n in {RUNTIMES!r} if sys.modules.get(n) is not None]\n"
        "print(json.dumps({'failed': failed, 'loaded': loaded}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # A module that needs a runtime fails here, and so does every core module that imports it.
    assert report["failed"] == {}
    assert report["loaded"] == []
    assert len(CORE) >= 40


@pytest.mark.parametrize("bad", ["import torch", "from onnxruntime import InferenceSession"])
def test_the_runtime_check_fails_on_a_core_module_that_imports_a_runtime(tmp_path, bad):
    (tmp_path / "leaky.py").write_text(f"{bad}\n")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
            f"for name in {RUNTIMES!r}: sys.modules[name] = None\n"
            "import leaky\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0
    assert "ModuleNotFoundError" in done.stderr or "ImportError" in done.stderr
