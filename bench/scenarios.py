"""The worker's drivers of the scenarios beyond the timed loop: load (server, multistream) through
bench.load, and MLPerf LoadGen through bench.loadgen_engine. Each takes the prepared session's
``run``/``synchronize`` and returns the raw result that the runner turns into metrics."""

from __future__ import annotations

import math
import time
from typing import Any, Callable

__all__ = ["run_load", "run_loadgen_item", "service_time_ns"]

Emit = Callable[[str, dict[str, Any]], None]


def service_time_ns(run_batch: Callable[[int], None], min_runs: int = 5, min_s: float = 0.5,
                    max_s: float = 5.0) -> float:
    """A full batch's service time, run back to back after the warm-up: the median of at least
    ``min_runs`` runs and ``min_s`` seconds (at most ``max_s``). It seeds the searches' brackets and
    sizes LoadGen's targets; it is not a reported figure."""
    times: list[int] = []
    start = time.perf_counter_ns()
    while True:
        t0 = time.perf_counter_ns()
        run_batch(0)
        t1 = time.perf_counter_ns()
        times.append(t1 - t0)
        spent = (t1 - start) / 1e9
        if (len(times) >= min_runs and spent >= min_s) or spent >= max_s:
            break
    times.sort()
    return float(times[len(times) // 2])


def run_load(sc: dict[str, Any], run: Callable[[], Any], synchronize: Callable[[], None], batch_size: int,
             workload_slo_ms: float, phase: Emit) -> dict[str, Any]:
    """One server or multistream measurement (a fixed rate or stream count, or the search)."""
    from bench import load

    slo_ms = float(sc.get("slo_ms") or workload_slo_ms)
    settings = load.LoadSettings(
        batch_size=batch_size, max_wait_ns=int(float(sc["max_wait_ms"]) * 1e6), slo_ns=int(slo_ms * 1e6),
        drain_ns=int(float(sc["drain_s"]) * 1e9), percentile=float(sc["percentile"]))
    seed = int(sc["seed"])
    min_s, max_s = float(sc["min_duration_s"]), float(sc["max_duration_s"])
    # A percentile of fewer than 1 / (1 - q) requests is their maximum: each probe holds at least that
    # many (and scenario.min_iterations), within [min_duration_s, max_duration_s] of arrivals.
    min_requests = max(int(sc["min_iterations"]), math.ceil(1.0 / (1.0 - settings.percentile)))

    def window_s(rate_qps: float) -> float:
        return min(max(min_s, min_requests / rate_qps), max_s)

    def run_batch(_k: int) -> None:
        run()
        synchronize()

    phase("service", {})
    service = service_time_ns(run_batch)
    capacity_qps = batch_size / (service / 1e9)

    info: dict[str, Any] = {"slo_ms": slo_ms, "slo_source": "scenario.slo_ms" if sc.get("slo_ms") else "workload",
                            "percentile": settings.percentile, "probe_min_requests": min_requests,
                            "service_ms": service / 1e6, "capacity_estimate_qps": capacity_qps,
                            "padded_batches": batch_size > 1}
    if sc["name"] == "server":
        rate = float(sc["rate_qps"])
        source = load.PoissonSource(seed)

        def probe_rate(qps: float, searching: bool = True) -> load.ServeResult:
            phase("probe", {"rate_qps": round(qps, 3)})
            probe_settings = settings if not searching else _stopping(settings)
            seconds = window_s(qps)
            return load.serve(source.arrivals(qps, seconds), run_batch, probe_settings, int(seconds * 1e9))

        if sc["find_peak"]:
            search = load.find_peak(lambda qps: probe_rate(qps), capacity_qps, settings.percentile,
                                    float(sc["peak_tolerance"]), int(sc["max_probes"]))
            info.update(search=search.to_dict(), max_qps_at_slo=search.best)
            result = search.best_result or _last_failed(search, probe_rate)
        else:
            result = probe_rate(rate, searching=False)
            info["rate_qps"] = rate
    else:
        fps = float(sc["fps"])

        def probe_streams(streams: int, searching: bool = True) -> load.ServeResult:
            phase("probe", {"streams": streams})
            seconds = window_s(streams * fps)
            arrivals = load.stream_arrivals(streams, fps, seconds, seed)
            probe_settings = settings if not searching else _stopping(settings)
            return load.serve(arrivals, run_batch, probe_settings, int(seconds * 1e9))

        info["fps"] = fps
        if sc.get("streams") is None:
            search = load.find_streams(lambda n: probe_streams(n), capacity_qps / fps, settings.percentile,
                                       int(sc["max_streams"]), int(sc["max_probes"]))
            info.update(search=search.to_dict(), max_streams_at_slo=search.best)
            result = search.best_result or _last_failed(
                search, lambda value, searching=True: probe_streams(int(value), searching))
        else:
            result = probe_streams(int(sc["streams"]), searching=False)
            info["streams"] = int(sc["streams"])
    return {"result": result.to_dict(), "info": info}


def _stopping(settings: Any) -> Any:
    """A search's probe stops as soon as its verdict is certain."""
    from dataclasses import replace

    return replace(settings, stop_when_failed=True)


def _last_failed(search: Any, probe: Callable[..., Any]) -> Any:
    """No probe met the requirement: measure the lowest value tried to completion, for the record."""
    lowest = min(p["value"] for p in search.probes)
    return probe(lowest, searching=False)


def run_loadgen_item(sc: dict[str, Any], run: Callable[[], Any], synchronize: Callable[[], None], batch_size: int,
                     workload_slo_ms: float, log_dir: str, phase: Emit) -> dict[str, Any]:
    """The scenario driven by MLPerf LoadGen (scenario.engine=loadgen). The server's rate and the
    load scenarios' latency bound come from the scenario; LoadGen's other targets (expected latency,
    expected offline rate) are sized by the engine from a few timed batches."""
    from bench.loadgen_engine import LoadGenSettings, run_loadgen

    lg = sc["loadgen"]
    load = sc["name"] in ("server", "multistream")
    settings = LoadGenSettings(
        scenario=sc["name"], min_duration_s=float(lg["min_duration_s"]), max_duration_s=float(lg["max_duration_s"]),
        min_query_count=int(lg["min_query_count"]),
        target_qps=float(sc["rate_qps"]) if sc["name"] == "server" else None,
        target_latency_ms=float(sc.get("slo_ms") or workload_slo_ms) if load else None,
        target_latency_percentile=float(sc.get("percentile", 0.99)), samples_per_query=int(lg["samples_per_query"]),
        preset=str(lg["preset"]), seed=int(sc.get("seed", 0)))

    def run_batch(_n: int) -> None:
        run()
        synchronize()

    start = time.monotonic_ns()
    out = run_loadgen(run_batch, batch_size, settings, log_dir, on_progress=lambda name, info: phase(name, info))
    out["start_monotonic_ns"], out["end_monotonic_ns"] = start, time.monotonic_ns()
    return out
