"""The harness on OpenVINO against OpenVINO's own ``benchmark_app`` and a bare loop.

Run with:  python -m pytest benchmarks/test_openvino_vs_benchmark_app.py -n 0 --benchmark-only -s
One real suite workload (STFPM, 256x256, batch 1) exported to ONNX once; the same device (CPU), hint
(the scenario's) and inference precision (f32) everywhere. Each round runs, in a rotating order:
- benchmark_app (a subprocess: ``-m model.onnx -d CPU -hint H -infer_precision f32 -t T -shape [...]``;
  its "Throughput: X FPS" line),
- the harness: bench.measurement.loop's warm_up + measure on an OpenVinoSession of that scenario,
- a bare loop over the same compiled model (``infer()``, or ``start_async()`` on the same
  AsyncInferQueue and one ``wait_all()`` at the end).
The medians over rounds give the ratios harness/benchmark_app and harness/bare (goal >= 0.98 each),
printed and stored in the benchmark's extra_info with the machine's load. In the throughput scenario
the harness runs its pipelined loop (the session keeps several requests in flight), as the worker
does.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openvino")
torch = pytest.importorskip("torch")

from bench.backends.artifacts import cached_onnx  # noqa: E402
from bench.backends.base import PrepareContext  # noqa: E402
from bench.backends.openvino_backend import OpenVinoBackend  # noqa: E402
from bench.config.schema import OpenVinoBackendConfig  # noqa: E402
from bench.measurement.loop import LoopSettings, measure, warm_up  # noqa: E402

WORKLOAD = "stfpm"
BATCH = 1
SECONDS = float(os.environ.get("OV_BENCH_SECONDS", "5"))  # per measurement
ROUNDS = int(os.environ.get("OV_BENCH_ROUNDS", "4"))
FPS_LINE = re.compile(r"Throughput:\s+([0-9.]+)\s+FPS")


@pytest.fixture(scope="module")
def workload(tmp_path_factory) -> dict[str, Any]:
    from bench.suites.base import load_suite

    suite = load_suite("bench.suites.anomaly:SUITE")
    options = {"dataset": "", "boundary": "model", "tile_size": 256, "data_path": None}
    instance = suite.make(suite.get(WORKLOAD), BATCH, 0, options)
    cache = str(tmp_path_factory.mktemp("ov-bench-cache"))
    context = PrepareContext(batch_size=BATCH, max_batch_size=BATCH, cache_dir=cache, model_key=WORKLOAD)
    onnx_path, _ = cached_onnx(instance.model, instance.inputs, context)
    return {"model": instance.model, "inputs": instance.inputs, "onnx": onnx_path, "cache": cache}


def session_for(workload: dict[str, Any], scenario: str) -> Any:
    settings = OpenVinoBackendConfig(name="openvino", impl="bench.backends.openvino_backend:OpenVinoBackend",
                                     device="CPU", precision="fp32", hint=scenario)
    context = PrepareContext(scenario=scenario, batch_size=BATCH, max_batch_size=BATCH,
                             cache_dir=workload["cache"], model_key=WORKLOAD)
    return OpenVinoBackend(settings).prepare(workload["model"], workload["inputs"], context)


def benchmark_app(onnx: Path, scenario: str) -> float:
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    shape = "[" + ",".join(str(d) for d in (BATCH, 3, 256, 256)) + "]"
    cmd = [exe, "-m", str(onnx), "-d", "CPU", "-hint", scenario, "-infer_precision", "f32",
           "-t", str(int(SECONDS)), "-shape", shape]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300 + 4 * SECONDS)
    match = FPS_LINE.search(out.stdout + out.stderr)
    assert out.returncode == 0 and match, (out.returncode, (out.stdout + out.stderr)[-2000:])
    return float(match.group(1))


def harness(session: Any, loaded: Any, scenario: str) -> float:
    """Samples per second as the harness reports it: batch x iterations over the summed samples
    (which tile the window in the throughput scenario; 1 / mean latency in the latency scenario)."""
    settings = LoopSettings(scenario=scenario, batch_size=BATCH, warmup_iterations=5, warmup_s=1.0,
                            warmup_max_s=10.0, min_iterations=10, min_duration_s=SECONDS,
                            max_duration_s=SECONDS, target_rel_ci=1e-9, confidence=0.95, max_iterations=10**7)

    def run() -> Any:
        return session.run(loaded)

    warm = warm_up(run, session.synchronize, settings)
    loop = measure(run, session.synchronize, settings, warm, in_flight=session.in_flight)
    return BATCH * loop.iterations * 1e9 / sum(loop.samples_ns)


def bare(session: Any, loaded: Any, scenario: str) -> float:
    """The same compiled model driven directly, the way benchmark_app does: no per-request wait in
    the throughput case, only one wait_all at the end."""
    if scenario == "throughput":
        queue = session._queue
        step = queue.start_async
        finish = queue.wait_all
    else:
        request = session._request
        step = request.infer
        finish = lambda: None  # noqa: E731
    clock = time.perf_counter
    end = clock() + 1.0
    while clock() < end:  # warm-up
        step()
    finish()
    n = 0
    t0 = clock()
    end = t0 + SECONDS
    while clock() < end:
        step()
        n += 1
    finish()
    return BATCH * n / (clock() - t0)


def interleaved(workload: dict[str, Any], scenario: str) -> dict[str, Any]:
    session = session_for(workload, scenario)
    loaded = session.load_inputs(workload["inputs"])
    runs = {"benchmark_app": lambda: benchmark_app(workload["onnx"], scenario),
            "harness": lambda: harness(session, loaded, scenario),
            "bare": lambda: bare(session, loaded, scenario)}
    names = list(runs)
    results: dict[str, list[float]] = {name: [] for name in names}
    load_before = os.getloadavg()
    for r in range(ROUNDS):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate so no method always runs first
            results[name].append(runs[name]())
    load_after = os.getloadavg()
    med = {name: statistics.median(values) for name, values in results.items()}
    eff = session.effective_settings()
    return {
        "workload": WORKLOAD, "batch_size": BATCH, "scenario": scenario, "seconds": SECONDS, "rounds": ROUNDS,
        "fps": results, "median_fps": med,
        "harness_over_benchmark_app": med["harness"] / med["benchmark_app"],
        "harness_over_bare": med["harness"] / med["bare"],
        "bare_over_benchmark_app": med["bare"] / med["benchmark_app"],
        "infer_requests": eff["infer_requests"], "num_streams": eff["num_streams"],
        "inference_precision": eff["inference_precision"], "performance_hint": eff["performance_hint"],
        "openvino": eff["openvino_version"], "cpus": os.cpu_count(),
        "loadavg_before": load_before, "loadavg_after": load_after,
    }


@pytest.mark.parametrize("scenario", ["latency", "throughput"])
def test_harness_vs_benchmark_app(benchmark, workload, scenario):
    r = interleaved(workload, scenario)
    benchmark.extra_info.update(r)
    print(f"\n{WORKLOAD} b{BATCH} {scenario} (f32, {r['infer_requests']} request(s), {r['num_streams']} stream(s)); "
          f"FPS per round: " + "; ".join(f"{k} {', '.join(f'{v:.2f}' for v in vs)}" for k, vs in r["fps"].items()))
    print(f"  medians: benchmark_app {r['median_fps']['benchmark_app']:.2f}, harness {r['median_fps']['harness']:.2f}, "
          f"bare {r['median_fps']['bare']:.2f} FPS; harness/benchmark_app x{r['harness_over_benchmark_app']:.3f}, "
          f"harness/bare x{r['harness_over_bare']:.3f}, bare/benchmark_app x{r['bare_over_benchmark_app']:.3f}; "
          f"loadavg {r['loadavg_before'][0]:.2f} -> {r['loadavg_after'][0]:.2f} on {r['cpus']} CPUs")
    benchmark.group = f"openvino-{scenario}"
    session = session_for(workload, scenario)
    loaded = session.load_inputs(workload["inputs"])

    def four_batches() -> None:
        for _ in range(4):
            session.run(loaded)
        session.synchronize()

    benchmark.pedantic(four_batches, rounds=3, iterations=1)
