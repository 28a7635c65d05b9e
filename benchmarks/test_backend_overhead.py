"""What the harness reports for an ONNX Runtime session against a bare loop over the same session.

Run with:  python -m pytest benchmarks/test_backend_overhead.py -n 0 --benchmark-only -s
The workload is a real suite model at its real size (STFPM, 1x3x256x256, batch 1) on the CPU
provider with one intra-op thread. Each round measures both, in alternating order so that a drift of the machine's load
falls on both alike: the harness (bench.measurement.loop.warm_up, then measure in the throughput scenario on an
OrtSession, the throughput computed as bench.results.metrics does) and, twice, a bare loop
``for _ in range(n): sess.run(None, feeds)`` over the same InferenceSession and feeds. The ratio
harness / bare throughput (median of the rounds' ratios; goal >= 0.98), the control bare / bare (the
noise floor of this machine at this time) and the load average are printed and stored in the
benchmark's extra_info.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from bench.backends.base import PrepareContext  # noqa: E402
from bench.backends.onnxruntime_backend import OrtBackend, OrtSession  # noqa: E402
from bench.config.schema import OrtBackendConfig  # noqa: E402
from bench.measurement.loop import LoopSettings, measure, warm_up  # noqa: E402
from bench.orchestration.runner import default_cache_dir  # noqa: E402
from bench.measurement.stats import throughput_estimate  # noqa: E402

WORKLOAD = "stfpm"
ITERATIONS = 10  # per loop and round: under a second of STFPM on one core
ROUNDS = 15  # short, many, alternated rounds: a change of the machine's load hits both loops alike
GOAL = 0.98


def loop_settings() -> LoopSettings:
    # Exactly ITERATIONS measured requests (the stopping rule cannot converge on a target of 1e-12
    # and stops at max_iterations), so both loops do the same work.
    return LoopSettings(scenario="throughput", batch_size=1, warmup_iterations=2, warmup_s=0.05,
                        warmup_max_s=10.0, min_iterations=ITERATIONS, min_duration_s=1e-6,
                        max_duration_s=120.0, target_rel_ci=1e-12, confidence=0.95, max_iterations=ITERATIONS)


@pytest.fixture(scope="module")
def prepared() -> tuple[OrtSession, dict]:
    from bench.worker.process import model_key
    from bench.suites.base import load_suite

    item = {"suite_catalog": "bench.suites.anomaly:SUITE", "seed": 0,
            "suite_options": {"dataset": "mvtec_ad", "boundary": "model", "tile_size": 256, "data_path": None}}
    suite = load_suite(item["suite_catalog"])
    workload = suite.get(WORKLOAD)
    instance = suite.make(workload, 1, 0, item["suite_options"])
    # One intra-op thread: on a small shared machine, a parallel-for waiting on a descheduled peer
    # thread adds noise that has nothing to do with the harness, which is what this measures.
    settings = OrtBackendConfig(name="onnxruntime", impl="bench.backends.onnxruntime_backend:OrtBackend",
                                intra_op_threads=1)
    # The worker's cache key and folder: a run of `bench run backend=onnxruntime` reuses this export.
    context = PrepareContext(scenario="throughput", batch_size=1, max_batch_size=1, cache_dir=default_cache_dir(),
                             model_key=model_key(item["suite_catalog"], item["seed"], item["suite_options"],
                                                       workload, instance.inputs))
    session = OrtBackend(settings).prepare(instance.model, instance.inputs, context)
    return session, session.load_inputs(instance.inputs)


def harness_sps(session: OrtSession, loaded: dict) -> float:
    settings = loop_settings()

    def run() -> object:
        return session.run(loaded)

    warm = warm_up(run, session.synchronize, settings)
    loop = measure(run, session.synchronize, settings, warm)
    return throughput_estimate(loop.samples_ns, loop.batch_size * loop.block).samples_per_s


def bare_sps(session: OrtSession, feeds: dict) -> float:
    sess = session.session
    t0 = time.perf_counter_ns()
    for _ in range(ITERATIONS):
        sess.run(None, feeds)
    return ITERATIONS / ((time.perf_counter_ns() - t0) / 1e9)


def interleaved(session: OrtSession, loaded: dict) -> dict[str, float]:
    """Each round: the harness and two bare loops, in rotating order. The ratio is the harness over
    the mean of the round's bare loops; the control, one bare loop over the other, is the noise
    floor: a ratio within the control's spread of 1 is no measurable difference."""
    for _ in range(3):  # the first runs of a fresh session allocate: keep them out of every loop
        session.session.run(None, loaded)
    load_before = os.getloadavg()[0]
    loops = {"harness": lambda: harness_sps(session, loaded), "bare1": lambda: bare_sps(session, loaded),
             "bare2": lambda: bare_sps(session, loaded)}
    orders = [("bare1", "harness", "bare2"), ("harness", "bare2", "bare1"), ("bare2", "bare1", "harness")]
    ratios, controls, harness, bare = [], [], [], []
    for index in range(ROUNDS):
        got = {name: loops[name]() for name in orders[index % len(orders)]}
        mean_bare = (got["bare1"] + got["bare2"]) / 2
        ratios.append(got["harness"] / mean_bare)
        controls.append(got["bare2"] / got["bare1"])
        harness.append(got["harness"])
        bare.append(mean_bare)
    return {"harness_sps": statistics.median(harness), "bare_sps": statistics.median(bare),
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "control_ratio": statistics.median(controls), "control_min": min(controls),
            "control_max": max(controls), "load_avg_1m_before": load_before,
            "load_avg_1m_after": os.getloadavg()[0], "cpus": os.cpu_count() or 0}


def test_ort_session_throughput_vs_bare_loop(benchmark, prepared):
    session, loaded = prepared
    benchmark.group = "backend-overhead-onnxruntime"
    r = benchmark.pedantic(interleaved, args=(session, loaded), rounds=1, iterations=1)
    benchmark.extra_info.update({**r, "workload": WORKLOAD, "iterations": ITERATIONS, "rounds": ROUNDS, "goal": GOAL})
    print(f"\n{WORKLOAD} on onnxruntime cpu, batch 1: harness {r['harness_sps']:.2f} samples/s, bare loop "
          f"{r['bare_sps']:.2f} samples/s; ratio {r['ratio']:.4f} (rounds {r['ratio_min']:.4f}..{r['ratio_max']:.4f}, "
          f"goal >= {GOAL}); control bare/bare {r['control_ratio']:.4f} ({r['control_min']:.4f}.."
          f"{r['control_max']:.4f}); load average {r['load_avg_1m_before']:.2f} -> {r['load_avg_1m_after']:.2f} "
          f"on {r['cpus']} CPUs")
