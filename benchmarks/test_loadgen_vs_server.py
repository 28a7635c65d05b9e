"""LoadGen's Server scenario against bench's own server engine, on a fake model that behaves like eager
PyTorch on a GPU, and against M/D/1 queueing theory: the CPU reproduction of the disagreement seen on
an NVIDIA H200 (LoadGen p50 16.4 ms / p99 38.8 ms at 300/s where bench's engine had 3.9 / 17.4 ms).

Run with:  python -m pytest benchmarks/test_loadgen_vs_server.py -n 0 --benchmark-only -s
The fake model's launch is PIECES operations, each PIECE_US of Python that holds the GIL followed by
a ~5 us C call that releases it (an eager op: Python dispatch, then the kernel launch without the
GIL); its "GPU" finishes GPU_MS after the launch began, and synchronize sleeps until then (the GIL
released, like cudaDeviceSynchronize). Launch 1.3 ms, service 2.6 ms: rho = 0.78 at RATE = 300/s
(LOADGEN_BENCH_RATE_QPS sets another).
Three engines in interleaved rounds, each round a fresh Poisson draw at RATE for DURATION_S:
bench's dispatcher (load.serve), LoadGen through bench's SUT (run on LoadGen's issuing thread), and
LoadGen through a worker thread behind a queue (the SUT's first design, kept here as the control).
Printed and stored in extra_info: each engine's median p50, p99 and mean latency over the rounds, the
M/D/1 mean, the load average, and for the threaded control the launch time of the launches that an
IssueQuery landed in against the others (the GIL hand-over's cost). Timings only: nothing asserted.
"""

from __future__ import annotations

import bisect
import collections
import hashlib
import os
import statistics
import tempfile
import threading
import time
from typing import Any, Callable

import numpy as np
import pytest

pytest.importorskip("mlperf_loadgen")

import bench.measurement.loadgen.run as lg_run  # noqa: E402
from bench.measurement import load  # noqa: E402
from bench.measurement.loadgen import LoadGenSettings, run_loadgen  # noqa: E402

PIECES, PIECE_US, GPU_MS = 100, 10.0, 2.5
# 300/s: rho 0.78 on a quiet machine; on a loaded one (the service time grows) set a lower rate.
RATE = float(os.environ.get("LOADGEN_BENCH_RATE_QPS", "300"))
DURATION_S, ROUNDS = 5.0, 3
_RELEASE = os.urandom(4096)  # hashlib releases the GIL for 2 KiB or more: ~5 us here


class FakeEagerGPU:
    """``run_batch`` of an eager model on an asynchronous device, with the launch spans recorded."""

    def __init__(self) -> None:
        self.done_at = 0
        self.spans: list[tuple[int, int]] = []
        self.batches_ns: list[int] = []

    def run_batch(self, _n: int) -> None:
        t0 = time.perf_counter_ns()
        for _ in range(PIECES):
            end = time.perf_counter_ns() + int(PIECE_US * 1e3)
            while time.perf_counter_ns() < end:  # the op's Python side: the GIL held
                pass
            hashlib.sha256(_RELEASE)  # the kernel launch: the GIL released
        t1 = time.perf_counter_ns()
        self.spans.append((t0, t1))
        self.done_at = max(self.done_at, t0) + int(GPU_MS * 1e6)  # the device queues behind earlier work
        if self.done_at > t1:
            time.sleep((self.done_at - t1) / 1e9)  # synchronize: the GIL released
        self.batches_ns.append(time.perf_counter_ns() - t0)


class ThreadedSUT:
    """The SUT's first design, the control: issue_query queues, one worker thread runs and completes."""

    def __init__(self, lg: Any, run_batch: Callable[[int], None], batch_size: int, progress: Any, clock: Any) -> None:
        self._lg, self._run_batch = lg, run_batch
        self._queue: collections.deque[int] = collections.deque()
        self._cv = threading.Condition()
        self._stopping = False
        self.error = None
        self.issued_ns: list[int] = []
        self.completed = self.batches = 0
        self._thread = threading.Thread(target=self._work, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def issue_query(self, samples: list[Any]) -> None:
        self.issued_ns.append(time.perf_counter_ns())
        with self._cv:
            self._queue.extend(s.id for s in samples)
            self._cv.notify()

    def flush_queries(self) -> None:
        pass

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                if not self._queue:
                    return
                sample = self._queue.popleft()
            self._run_batch(1)
            self._lg.QuerySamplesComplete([self._lg.QuerySampleResponse(sample, 0, 0)])
            self.completed += 1
            self.batches += 1

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join()

    def stats(self) -> dict[str, int]:
        return {"samples_completed": self.completed, "batches": self.batches}


def _bench_engine(model: FakeEagerGPU, seed: int) -> dict[str, float]:
    arrivals = load.PoissonSource(seed).arrivals(RATE, DURATION_S)
    result = load.serve(arrivals, model.run_batch, load.LoadSettings(1, 0, 10**10, 10 * 10**9),
                        int(DURATION_S * 1e9))
    lat = np.asarray(result.latencies_ns, dtype=np.float64) / 1e6
    return {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)), "mean": float(lat.mean())}


def _loadgen(model: FakeEagerGPU, seed: int, threaded: bool) -> tuple[dict[str, float], Any]:
    settings = LoadGenSettings(scenario="server", min_duration_s=DURATION_S, target_qps=RATE,
                               target_latency_ms=1000.0, min_query_count=100, seed=seed)
    made: list[ThreadedSUT] = []
    original = lg_run._BatchingSUT
    if threaded:
        lg_run._BatchingSUT = lambda *args: made.append(ThreadedSUT(*args)) or made[-1]
    try:
        out = run_loadgen(model.run_batch, 1, settings, tempfile.mkdtemp(prefix="loadgen-bench-"))
    finally:
        lg_run._BatchingSUT = original
        for sut in made:
            sut.stop()
    r = out["result"]
    return ({"p50": r["latency_p50_ns"] / 1e6, "p99": r["latency_p99_ns"] / 1e6, "mean": r["latency_mean_ns"] / 1e6},
            made[0] if made else None)


def _launch_hit_cost_us(model: FakeEagerGPU, issued_ns: list[int]) -> tuple[float, float, int]:
    """Median launch time (us) of the launches an IssueQuery landed in, of the others, and their count."""
    issued = sorted(issued_ns)
    hit, miss = [], []
    for start, end in model.spans:
        i = bisect.bisect_left(issued, start)
        (hit if i < len(issued) and issued[i] <= end else miss).append((end - start) / 1e3)
    return (statistics.median(hit) if hit else float("nan")), statistics.median(miss), len(hit)


def test_loadgen_server_against_bench_server_engine(benchmark):
    model = FakeEagerGPU()
    for _ in range(20):
        model.run_batch(1)
    service_ms = statistics.median(model.batches_ns) / 1e6
    rho = RATE * service_ms / 1e3
    mdl_mean = service_ms + rho * service_ms / (2 * (1 - rho)) if rho < 1 else float("inf")
    figures: dict[str, list[dict[str, float]]] = {"bench": [], "loadgen": [], "loadgen_threaded": []}
    hits: list[tuple[float, float, int]] = []
    load_before = os.getloadavg()[0]
    for seed in range(ROUNDS):
        figures["bench"].append(_bench_engine(model, seed))
        figures["loadgen"].append(_loadgen(model, seed, threaded=False)[0])
        model.spans.clear()
        threaded, sut = _loadgen(model, seed, threaded=True)
        figures["loadgen_threaded"].append(threaded)
        hits.append(_launch_hit_cost_us(model, sut.issued_ns))
    m: dict[str, float] = {"service_ms": service_ms, "rho": rho, "mdl_mean_ms": mdl_mean, "rate_qps": RATE,
                           "load_before": load_before, "load_after": os.getloadavg()[0]}
    for name, rows in figures.items():
        for key in ("p50", "p99", "mean"):
            m[f"{name}_{key}_ms"] = statistics.median(row[key] for row in rows)
    m["threaded_launch_hit_us"] = statistics.median(h[0] for h in hits)
    m["threaded_launch_other_us"] = statistics.median(h[1] for h in hits)
    benchmark.extra_info.update(m)
    print(f"\nservice {service_ms:.2f} ms at {RATE:.0f}/s: rho {rho:.2f}, M/D/1 mean {mdl_mean:.2f} ms; "
          f"load {load_before:.1f} -> {m['load_after']:.1f}")
    for name in figures:
        print(f"{name:>17}: p50 {m[name + '_p50_ms']:.2f} ms, p99 {m[name + '_p99_ms']:.2f} ms, "
              f"mean {m[name + '_mean_ms']:.2f} ms")
    print(f"threaded control: launches an IssueQuery landed in {m['threaded_launch_hit_us']:.0f} us, "
          f"the others {m['threaded_launch_other_us']:.0f} us")
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
