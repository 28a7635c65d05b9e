"""The worker's drivers of the scenarios beyond the timed loop: load (server, multistream) through
bench.measurement.load and MLPerf LoadGen through bench.measurement.loadgen, each on the prepared session's
``run``/``synchronize``; and training, whose task the backend prepares (Backend.prepare_training) instead
of a session. Each returns the raw result that the runner turns into metrics."""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional

__all__ = ["run_load", "run_loadgen_item", "run_training_item", "service_time_ns"]

Emit = Callable[[str, dict[str, Any]], None]


def service_time_ns(run_batch: Callable[[int], None], min_runs: int = 5, min_s: float = 0.5,
                    max_s: float = 5.0) -> float:
    """A full batch's service time, run back to back after the warm-up: the median of at least
    ``min_runs`` runs and ``min_s`` seconds (at most ``max_s``). It seeds the searches' brackets (the
    capacity estimate); it is recorded, not ranked."""
    from bench.measurement.timing import timed_runs

    times = sorted(timed_runs(lambda: run_batch(0), min_runs=min_runs, min_s=min_s, max_s=max_s).durations_ns)
    return float(times[len(times) // 2])


def run_load(sc: dict[str, Any], run: Callable[[], Any], synchronize: Callable[[], None], batch_size: int,
             workload_slo_ms: float, phase: Emit, submit: Optional[Callable[[Callable[[], None]], None]] = None,
             in_flight: int = 1) -> dict[str, Any]:
    """One server or multistream measurement (a fixed rate or stream count, or the search).

    A session with an asynchronous API (``submit(on_done)``, ``in_flight`` > 1: OpenVINO's request
    queue) is served with up to ``in_flight`` batches at once; any other runs one batch at a time."""
    from bench.measurement import load
    slo_ms = float(sc["slo_ms"] or workload_slo_ms)
    settings = load.LoadSettings(
        batch_size=batch_size, max_wait_ns=int(float(sc["max_wait_ms"]) * 1e6), slo_ns=int(slo_ms * 1e6),
        drain_ns=int(float(sc["drain_s"]) * 1e9), percentile=float(sc["percentile"]))
    seed = int(sc["seed"])
    min_s, max_s = float(sc["min_duration_s"]), float(sc["max_duration_s"])
    # A percentile of fewer than 1 / (1 - q) requests is their maximum: each probe holds at least that
    # many (and scenario.min_iterations), within [min_duration_s, max_duration_s] of arrivals.
    min_requests = max(int(sc["min_iterations"]), math.ceil(1.0 / (1.0 - settings.percentile)))

    def window_s(rate_qps: float) -> float:  # periodic streams: the count is known in advance
        return min(max(min_s, min_requests / rate_qps), max_s)

    def run_batch(_k: int) -> None:
        run()
        synchronize()

    phase("service", {})
    service = service_time_ns(run_batch)
    concurrent = submit is not None and in_flight > 1
    capacity_qps = batch_size / (service / 1e9) * (in_flight if concurrent else 1)

    def serve(arrivals: Any, probe_settings: Any, seconds: float) -> Any:
        if concurrent:
            return load.serve_async(arrivals, lambda _k, on_done: submit(on_done), in_flight, probe_settings,
                                    int(seconds * 1e9))
        return load.serve(arrivals, run_batch, probe_settings, int(seconds * 1e9))

    info: dict[str, Any] = {"slo_ms": slo_ms, "slo_source": "scenario.slo_ms" if sc["slo_ms"] else "workload",
                            "percentile": settings.percentile, "probe_min_requests": min_requests,
                            "service_ms": service / 1e6, "capacity_estimate_qps": capacity_qps,
                            "padded_batches": batch_size > 1,
                            "serving": (f"asynchronous, up to {in_flight} batches in flight" if concurrent
                                        else "one batch at a time")}
    if sc["name"] == "server":
        rate = float(sc["rate_qps"])
        source = load.PoissonSource(seed)

        def probe_rate(qps: float, searching: bool = True) -> load.ServeResult:
            phase("probe", {"rate_qps": round(qps, 3)})
            probe_settings = settings if not searching else _stopping(settings)
            arrivals, seconds = source.probe(qps, min_s, max_s, min_requests)
            return serve(arrivals, probe_settings, seconds)

        if sc["find_peak"]:
            search = load.find_peak(lambda qps: probe_rate(qps), capacity_qps, settings.percentile,
                                    float(sc["peak_tolerance"]), int(sc["max_probes"]))
            # The rate that met the requirement is the one that arrived: a probe's Poisson draw lands
            # above or below its target (every probe shares one draw), so the target is kept beside it.
            info.update(search=search.to_dict(), max_qps_target=search.best,
                        max_qps_at_slo=search.best_result.offered_qps if search.best_result else None)
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
            return serve(arrivals, probe_settings, seconds)

        info["fps"] = fps
        if sc["streams"] is None:
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
    from bench.measurement.loadgen import LoadGenSettings, run_loadgen

    lg = sc["loadgen"]
    load = sc["name"] in ("server", "multistream")
    settings = LoadGenSettings(
        scenario=sc["name"], min_duration_s=float(lg["min_duration_s"]), max_duration_s=float(lg["max_duration_s"]),
        min_query_count=int(lg["min_query_count"]),
        target_qps=float(sc["rate_qps"]) if sc["name"] == "server" else None,
        target_latency_ms=float(sc["slo_ms"] or workload_slo_ms) if load else None,
        samples_per_query=int(lg["samples_per_query"]), preset=str(lg["preset"]),
        # The load scenarios' percentile and arrival seed; the others keep LoadGenSettings' own.
        **({"target_latency_percentile": float(sc["percentile"]), "seed": int(sc["seed"])} if load else {}))

    def run_batch(_n: int) -> None:
        run()
        synchronize()

    start = time.monotonic_ns()
    out = run_loadgen(run_batch, batch_size, settings, log_dir, on_progress=lambda name, info: phase(name, info))
    out["start_monotonic_ns"], out["end_monotonic_ns"] = start, time.monotonic_ns()
    return out


def run_training_item(item: Any, emit: Callable[[Any], None]) -> dict[str, Any]:
    """scenario=training: timed training steps of a backprop method (the loop, one step per sample:
    the anomaly methods, the time series models, the vision classifiers), or the timed fit of
    PatchCore and PaDiM (time per training image); sensors and noise as for inference. The backend
    prepares the task (Backend.prepare_training; PyTorch's: AMP for fp16 and bf16 over fp32 master
    weights, tf32 as fp32 with TF32 products on NVIDIA GPUs, the compiled backends compile the
    forward and loss)."""
    from bench.backends.base import TrainingContext
    from bench.measurement.loop import measure, warm_up
    from bench.orchestration.protocol import Progress
    from bench.suites.base import load_suite, resolve
    from bench.suites.training import training_task
    from bench.worker.window import loop_settings_of, measured_window

    def phase(name: str, **info: Any) -> None:
        emit(Progress(name, info))

    # item: a bench.orchestration.protocol.ItemRequest (typed config sections).
    sc, backend = item.scenario, item.backend
    batch_size, seed = item.batch_size, item.suite.seed
    device, precision = str(backend.device), str(backend.precision)
    phase("build")
    t0 = time.perf_counter()
    suite = load_suite(item.suite.catalog)
    # As the options make it (Suite.adapt: a time series model's channels and window follow the data set).
    workload = suite.adapted(suite.get(item.workload), item.suite_options)
    task = training_task(item.workload, batch_size, seed, item.suite_options)
    build_s = time.perf_counter() - t0
    runtime = resolve(backend.impl)(backend)
    phase("prepare")
    t0 = time.perf_counter()
    session = runtime.prepare_training(task, TrainingContext(precision=precision))
    info: dict[str, Any] = {"kind": task.kind, "method": task.info, "fp32_math": session.fp32_math}
    if task.kind == "fit":
        images, repeats = int(sc.fit_images), int(sc.fit_repeats)
        info["note"] = "the fit runs in fp32 (PatchCore's coreset and PaDiM's covariance have no AMP path)"

        def warm() -> Any:  # CUDA context, cuDNN's algorithm choice, allocator: outside the timing
            return session.fit_cost(min(2, images), 1)

        def measure_it(_warm: Any) -> dict[str, Any]:
            phase("fit", images=images, repeats=repeats)
            start = time.monotonic_ns()
            fit = session.fit_cost(images, repeats)
            return {"training": {**info, "fit": fit, "window_ns": [start, time.monotonic_ns()]}}

        prepare_s = time.perf_counter() - t0
        first_ms = None
    else:
        prepare_s = time.perf_counter() - t0
        t1 = time.perf_counter_ns()
        session.step()  # the first step (compiles when compiled): reported apart
        session.synchronize()
        first_ms = (time.perf_counter_ns() - t1) / 1e6
        loop_settings = loop_settings_of(sc, batch_size, scenario="latency")

        def warm() -> Any:
            return warm_up(session.step, session.synchronize, loop_settings)

        def measure_it(warm_result: Any) -> dict[str, Any]:
            loop = measure(session.step, session.synchronize, loop_settings, warm_result,
                           on_progress=lambda name, progress: phase(name, **progress))
            return {"loop": loop.to_dict(), "training": info}

    window = measured_window(item, phase, warm, measure_it)
    if task.kind != "fit":
        losses = session.losses
        info.update(steps=len(losses), loss_first=losses[0] if losses else None,
                    loss_last=losses[-1] if losses else None, losses_head=losses[:10], losses_tail=losses[-10:],
                    effective=session.effective_settings())
        bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
        # Training's counterpart of the inference parity check: a step that diverged measured nothing.
        check = {"reference": "training: the loss of every step is finite", "precision": precision,
                 "ok": bool(losses) and not bad, "max_rel_error": None, "tolerance": None,
                 "detail": f"non-finite loss at step {bad[0]} of {len(losses)}" if bad else ""}
    else:
        fit = window["training"]["fit"]
        check = {"reference": "fit: completed on every repeat", "precision": "fp32", "ok": bool(fit["total_s_all"]),
                 "max_rel_error": None, "tolerance": None, "detail": ""}
    return {
        "workload": {**workload.catalog(), "suite": suite.name, "batch_size": batch_size, "seed": seed,
                     "input_shapes": [list(t.shape) for t in task.batch],
                     "params": task.info.get("trainable_params") or sum(p.numel() for p in task.parameters),
                     "flops_per_sample": None},
        # A fit runs in fp32 whatever was asked: the record says what ran, and what was asked.
        "backend": {"name": backend.name, "device": device, "precision": "fp32" if task.kind == "fit" else precision,
                    "requested_precision": precision,
                    "effective": info.get("effective") or {"device": device, "fp32_math": session.fp32_math},
                    "device_memory": session.device_memory()},
        "setup": {"build_s": build_s, "prepare_s": prepare_s, "first_inference_ms": first_ms},
        "parity": check,
        **window,
    }
