"""Do the published intervals hold across fresh runs, and what do they cost?

Run with:  python -m pytest benchmarks/test_intervals.py -n 0 --benchmark-only -s
(about an hour on a 2-core machine with BENCH_BASELINE_REF; run it on a quiet machine, nothing else busy).

- ``test_calibration``: RUNS fresh records of one item per backend (PyTorch eager and ONNX Runtime
  on the CPU) and scenario (latency at batch 1, throughput at batch 8), first single-process records
  (their intervals hold the noise within one process) and then records of REPEATS processes each
  (``repeats=N``: intervals that include the variation between processes). For each set it counts
  the ordered pairs (a, b), a != b, in which b's figure (p50 latency, or throughput) lies inside a's
  95% interval; a calibrated interval holds at least 95% of them. It prints the fraction, the spread
  of the figures (max / min - 1), the median claimed half-width, and the wall time per record.
- ``test_default_run_wall_time``: the default ``bench run`` (five anomaly workloads, latency, CPU)
  from start to exit; with BENCH_BASELINE_REF=<git ref> the same command from a worktree of that
  ref runs alternately with it (A, B, A, B), so the before/after ratio is measured side by side.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from itertools import permutations
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_CALIBRATION_RUNS", "8"))
REPEATS = int(os.environ.get("BENCH_CALIBRATION_REPEATS", "3"))
WORKLOAD = os.environ.get("BENCH_CALIBRATION_WORKLOAD", "autoencoder")
CASES = [("cpu", "latency", 1), ("onnxruntime", "latency", 1), ("cpu", "throughput", 8),
         ("onnxruntime", "throughput", 8)]
FIGURE = {"latency": ("latency_p50_ms", "latency_p50_ci_low_ms", "latency_p50_ci_high_ms"),
          "throughput": ("throughput_sps", "throughput_ci_low_sps", "throughput_ci_high_sps")}


def _load() -> float:
    return os.getloadavg()[0]


def _bench(args: list[str], cwd: Path, root: Path = ROOT) -> float:
    env = dict(os.environ, PYTHONPATH=str(root))
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "bench.cli.main", "run", *args], cwd=cwd, env=env, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def _records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "records").rglob("*.json"))]


def _fraction_inside(records: list[dict], scenario: str) -> tuple[float, float, float]:
    key, low, high = FIGURE[scenario]
    figures = [(r["metrics"][key], r["metrics"].get(low), r["metrics"].get(high)) for r in records]
    inside = sum(1 for (_, lo, hi), (v, _, _) in permutations(figures, 2)
                 if lo is not None and hi is not None and lo <= v <= hi)
    values = [v for v, _, _ in figures]
    halves = [max(v - lo, hi - v) / v for v, lo, hi in figures if lo is not None and hi is not None]
    pairs = len(figures) * (len(figures) - 1)
    return inside / pairs, max(values) / min(values) - 1, statistics.median(halves) if halves else float("nan")


@pytest.fixture
def trees(tmp_path):
    """{"current": this tree}, and with BENCH_BASELINE_REF a worktree of that ref as "baseline"
    (first, so that A/B rounds alternate baseline, current); the worktree is removed after the test."""
    baseline = os.environ.get("BENCH_BASELINE_REF")
    if not baseline:
        yield {"current": ROOT}
        return
    tree = tmp_path / "baseline"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), baseline], check=True,
                   capture_output=True)
    try:
        yield {"baseline": tree, "current": ROOT}
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)


@pytest.mark.parametrize("backend, scenario, batch", CASES)
def test_calibration(benchmark, tmp_path, backend, scenario, batch):
    rows = {}

    def measure() -> None:
        for mode, repeats in (("single", 1), (f"repeats={REPEATS}", REPEATS)):
            results = tmp_path / mode.replace("=", "")
            load_before = _load()
            wall = _bench(["-m", f"tag={','.join(f'r{i}' for i in range(RUNS))}", f"backend={backend}",
                           f"scenario={scenario}", f"batch_size={batch}", f"suite.only=[{WORKLOAD}]",
                           f"repeats={repeats}", f"results.dir={results}"], tmp_path)
            records = [r for r in _records(results) if r["status"] == "ok"]
            assert len(records) == RUNS, f"{mode}: {len(records)} of {RUNS} records succeeded"
            rows[mode] = (*_fraction_inside(records, scenario), wall / RUNS, load_before, _load(),
                          sum(not r["metrics"].get("converged", True) for r in records))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    print(f"\n{WORKLOAD} {backend} {scenario} b={batch}, {RUNS} records per mode")
    for mode, (inside, spread, half, per_record, load0, load1, unconverged) in rows.items():
        print(f"  {mode:>10}: {inside:6.1%} of pairs inside the other's interval; figures spread {spread:.1%}; "
              f"median claimed ±{half:.2%}; {per_record:.1f} s per record; {unconverged} not converged; "
              f"load {load0:.2f} -> {load1:.2f}")
        benchmark.extra_info[mode] = {"inside": inside, "spread": spread, "half_width": half,
                                      "s_per_record": per_record, "unconverged": unconverged,
                                      "load": [load0, load1]}


def test_default_run_wall_time(benchmark, tmp_path, trees):
    baseline = "baseline" in trees
    walls: dict[str, list[float]] = {name: [] for name in trees}

    def measure() -> None:
        for round_ in range(2 if baseline else 1):
            for name, root in trees.items():
                folder = tmp_path / f"{name}{round_}"
                folder.mkdir()
                walls[name].append(_bench([], folder, root))
                records = _records(folder / "results")
                assert len(records) == 5 and all(r["status"] == "ok" for r in records)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    for name, values in walls.items():
        print(f"\ndefault bench run, {name}: " + ", ".join(f"{v:.0f} s" for v in values))
        benchmark.extra_info[name] = values
    if baseline:
        ratio = statistics.mean(walls["current"]) / statistics.mean(walls["baseline"])
        print(f"current / baseline wall time: {ratio:.2f}")
        benchmark.extra_info["ratio"] = ratio


def test_throughput_point_wall_time(benchmark, tmp_path, trees):
    """A ViT-S/6 ONNX model (benchmarks/vit.py) at batch 8 on ONNX Runtime, throughput scenario: wall
    time per point from start to exit, the stop reason and the claimed interval, and the spread of the
    figures over the runs; with BENCH_BASELINE_REF, alternately against that ref (A, B, A, B, ...)."""
    runs = int(os.environ.get("BENCH_THROUGHPUT_RUNS", "4"))
    args = ["suite=custom", "model.target=benchmarks.vit:build", "model.input_shape=[3,224,224]",
            "backend=onnxruntime", "scenario=throughput", "batch_size=8"]
    out: dict[str, list[tuple[float, dict]]] = {name: [] for name in trees}

    def measure() -> None:
        for i in range(runs):
            for name, root in trees.items():
                folder = tmp_path / f"{name}{i}"
                folder.mkdir()
                env_root = f"{root}{os.pathsep}{ROOT}"  # the baseline's bench, this tree's model module
                wall = _bench([*args, f"results.dir={folder}"], folder, env_root)  # type: ignore[arg-type]
                (record,) = _records(folder)
                out[name].append((wall, record))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    for name, rows in out.items():
        values = [r["metrics"]["throughput_sps"] for _, r in rows]
        print(f"\nViT-S/6 onnxruntime b=8 throughput, {name}:")
        for wall, r in rows:
            m = r["metrics"]
            print(f"  {wall:5.1f} s per point, {m['throughput_sps']:.2f} samples/s ±{(m.get('rel_ci') or 0):.2%}, "
                  f"{m.get('stop_reason', 'converged' if m.get('converged') else 'max_duration')}, "
                  f"measured {m['measured_s']:.1f} s")
        print(f"  spread of the figures over {len(values)} runs: {max(values) / min(values) - 1:.1%}")
        benchmark.extra_info[name] = {"wall_s": [w for w, _ in rows], "throughput_sps": values}
