"""The worker: one work item in a freshly spawned process (``python -m bench.worker.process FD``).

It reads the item as JSON on stdin and writes JSON lines to the file descriptor FD: progress
events, then exactly one ``result`` or ``error`` message. Its own stdout and stderr go to a log file
the parent keeps, so a library that prints cannot corrupt the protocol, and a crash leaves its last
words (faulthandler's traceback) for the failure record. The worker never decides what the user sees.

This is the one place where a suite and a backend meet: the suite builds the model and its inputs,
the backend prepares it, and the loop measures it.
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import signal
import sys
import time
import traceback
from typing import Any, Callable

__all__ = ["PROTOCOL_VERSION", "run_item", "main", "classify_exception"]

PROTOCOL_VERSION = 1


def classify_exception(exc: BaseException) -> str:
    """'oom' for running out of host or device memory, else 'exception'."""
    if isinstance(exc, MemoryError):
        return "oom"
    text = str(exc).lower()
    if isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text):
        return "oom"
    return "exception"


def parity_check(outputs: list[Any], reference: list[Any], precision: str,
                 reference_name: str = "PyTorch eager fp32 on the CPU") -> dict[str, Any]:
    """Largest relative error per output, as max |out - ref| / max |ref|, against the fp32 reference."""
    import numpy as np

    from bench.backends.base import PARITY_TOLERANCE

    tolerance = PARITY_TOLERANCE[precision]
    result: dict[str, Any] = {"reference": reference_name, "tolerance": tolerance,
                              "precision": precision}
    if len(outputs) != len(reference):
        return {**result, "ok": False, "max_rel_error": float("inf"),
                "detail": f"{len(outputs)} outputs, reference has {len(reference)}"}
    errors = []
    for out, ref in zip(outputs, reference):
        if out.shape != ref.shape:
            return {**result, "ok": False, "max_rel_error": None,
                    "detail": f"output shape {list(out.shape)} != reference {list(ref.shape)}"}
        if not np.isfinite(out).all():
            return {**result, "ok": False, "max_rel_error": None, "detail": "non-finite values in the output"}
        scale = float(np.abs(ref).max()) if ref.size else 0.0
        diff = float(np.abs(out.astype(np.float64) - ref.astype(np.float64)).max()) if ref.size else 0.0
        errors.append(diff / scale if scale > 0 else diff)
    worst = max(errors, default=0.0)
    return {**result, "ok": worst <= tolerance, "max_rel_error": worst, "per_output": errors}


def model_key(item: dict[str, Any], workload: Any, inputs: Any) -> str:
    """A hash of what defines the model and its inputs: suite, workload, seed, suite options, the
    model code, and the input shapes and dtypes."""
    import hashlib

    from bench.suites.base import code_hash

    spec = {
        "suite": item["suite_catalog"], "workload": workload.name, "seed": item["seed"],
        "options": item.get("suite_options") or {}, "code": code_hash(workload),
        "inputs": [[list(t.shape), str(t.dtype)] for t in inputs],
        "user_model": _user_model_hash((item.get("suite_options") or {}).get("model") or {}),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _user_model_hash(model: dict[str, Any]) -> str:
    """The content of a model the user brings (its ONNX file, or the source of the module that builds
    it): a changed model must never be served a conversion cached for the old one."""
    import hashlib
    import importlib.util

    digest = hashlib.sha256()
    path = model.get("path")
    if not path and model.get("target"):
        spec = importlib.util.find_spec(str(model["target"]).partition(":")[0])
        path = spec.origin if spec else None
    if path and os.path.isfile(path):
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16] if path else ""


def run_item(item: dict[str, Any], emit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Build, check, warm up and measure one work item; return its raw result."""
    from bench.backends.base import PrepareContext
    from bench.measurement.loop import measure, warm_up
    from bench.suites.base import load_suite, resolve

    if item["scenario"]["name"] == "training":
        from bench.worker.scenarios import run_training_item

        return run_training_item(item, emit)

    def phase(name: str, **info: Any) -> None:
        emit({"type": "progress", "phase": name, "info": info})

    batch_size = int(item["batch_size"])
    seed = int(item["seed"])
    phase("build")
    t0 = time.perf_counter()
    suite = load_suite(item["suite_catalog"])
    workload = suite.get(item["workload"])
    instance = suite.make(workload, batch_size, seed, item.get("suite_options") or {})
    model, inputs = instance.model, instance.inputs
    build_s = time.perf_counter() - t0

    phase("reference")
    import torch

    from bench.backends.torch_eager import flatten_outputs
    from bench.suites.cost import workload_cost

    # Parameters and FLOPs of one model run; a pipeline may run the model several times per sample
    # (tiles), which the FLOPs per sample include.
    if workload.builder:
        cost = workload_cost(workload, seed)
    elif model is not None:  # a user's torch module: count it as it is, at one sample
        from bench.suites.cost import model_cost

        counted = model_cost(model, tuple(t[:1] for t in inputs))
        cost = {"params": counted["params"], "flops_per_sample": counted["flops"]}
    else:  # a user's ONNX file: parameters from its initializers, FLOPs not counted
        cost = {"params": instance.info.get("params"), "flops_per_sample": None}
    runs_per_sample = int(instance.info.get("model_runs_per_sample", 1))
    if instance.reference is not None:
        reference = instance.reference(inputs)
    else:
        with torch.inference_mode():
            reference = [t.detach().float().numpy() for t in flatten_outputs(model(*inputs))]

    phase("prepare")
    settings_cls = resolve(item["backend_settings_type"])
    settings = settings_cls(**item["backend"])
    backend = resolve(item["backend"]["impl"])(settings)
    t0 = time.perf_counter()
    context = PrepareContext(
        scenario=item["scenario"]["name"], batch_size=batch_size,
        max_batch_size=int(item.get("max_batch_size") or batch_size),
        cache_dir=item.get("cache_dir"), cache_enabled=bool(item.get("cache_enabled", True)),
        model_key=model_key(item, workload, inputs), onnx_path=instance.onnx_path,
    )
    session = backend.prepare(model, inputs, context)
    loaded = session.load_inputs(inputs)
    prepare_s = time.perf_counter() - t0

    phase("first")
    t0_ns = time.perf_counter_ns()
    outputs = session.run(loaded)
    session.synchronize()
    first_ns = time.perf_counter_ns() - t0_ns
    parity = parity_check(session.to_numpy(outputs), reference, settings.precision, instance.reference_name)
    del outputs, reference

    def run() -> Any:
        return session.run(loaded)

    sc = item["scenario"]
    loop_settings = loop_settings_of(sc, batch_size)

    def warm() -> Any:
        return warm_up(run, session.synchronize, loop_settings)

    def measure_it(warm_result: Any) -> dict[str, Any]:
        measured: dict[str, Any] = {"warmup_ns": warm_result[0]}
        if sc.get("engine", "native") == "loadgen":
            from bench.worker.scenarios import run_loadgen_item

            log_dir = item.get("loadgen_log_dir") or os.path.join(os.getcwd(), "loadgen-logs")
            measured["loadgen"] = run_loadgen_item(sc, run, session.synchronize, batch_size,
                                                   float(workload.latency_tier_ms), log_dir,
                                                   lambda name, info: phase(name, **info))
        elif sc["name"] in ("server", "multistream"):
            from bench.worker.scenarios import run_load

            submit = getattr(session, "submit", None)
            measured["load"] = run_load(sc, run, session.synchronize, batch_size, float(workload.latency_tier_ms),
                                        lambda name, info: phase(name, **info),
                                        submit=(lambda on_done: submit(loaded, on_done)) if submit else None,
                                        in_flight=int(session.in_flight))
        else:
            loop = measure(run, session.synchronize, loop_settings, warm_result,
                           on_progress=lambda name, info: phase(name, **info), in_flight=int(session.in_flight))
            measured["loop"] = loop.to_dict()
        return measured

    window = measured_window(item, phase, warm, measure_it)
    return {
        "workload": {
            **workload.catalog(),
            **instance.info,
            "suite": suite.name,
            "batch_size": batch_size,
            "seed": seed,
            "input_shapes": [list(t.shape) for t in inputs],
            "input_dtypes": [str(t.dtype).replace("torch.", "") for t in inputs],
            "params": cost["params"],
            "flops_per_model_run": cost["flops_per_sample"],
            "flops_per_sample": cost["flops_per_sample"] * runs_per_sample if cost["flops_per_sample"] else None,
        },
        "backend": {
            "name": settings.name,
            "device": settings.device,
            "precision": settings.precision,
            "effective": session.effective_settings(),
            "device_memory": session.device_memory(),
        },
        "setup": {"build_s": build_s, "prepare_s": prepare_s, "first_inference_ms": first_ns / 1e6},
        "parity": parity,
        **window,
    }


def loop_settings_of(sc: dict[str, Any], batch_size: int, scenario: str | None = None) -> Any:
    from bench.measurement.loop import LoopSettings

    return LoopSettings(
        scenario=scenario or sc["name"], batch_size=batch_size, warmup_iterations=sc["warmup_iterations"],
        warmup_s=sc["warmup_s"], warmup_max_s=sc["warmup_max_s"], min_iterations=sc["min_iterations"],
        min_duration_s=sc["min_duration_s"], max_duration_s=sc["max_duration_s"],
        target_rel_ci=sc["target_rel_ci"], confidence=sc["confidence"], max_iterations=sc["max_iterations"],
        # The tail rule is the latency scenario's (training steps are timed as latency but rank by rate).
        tail_quantile=sc.get("tail_percentile") if sc["name"] == "latency" else None,
        target_rel_ci_tail=sc.get("target_rel_ci_tail", 0.05),
        stop_when_noise_limited=sc.get("stop_when_noise_limited", True),
    )


def measured_window(item: dict[str, Any], phase: Callable[..., None], warm: Callable[[], Any],
                    measure_it: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Around the measurement, the same for every scenario: the sensor sampler (and its idle
    baseline), the peak-memory reset, the warm-up, and the noise evidence that brackets the measured
    window only. Returns what ``measure_it`` measured plus noise, memory and sensors."""
    from bench.system import noise
    from bench.system.sensors.memory import peak_rss_mib, reset_peak_rss

    setup_peak_rss = peak_rss_mib()
    sensor_options = dict(item.get("sensors") or {})
    sampler = None
    idle_window = None
    if sensor_options.get("enabled", True):
        from bench.system.sensors.sampler import Sampler

        phase("sensors")
        sampler = Sampler({**sensor_options, "pid": os.getpid()})
        sampler.start()
        idle_s = float(sensor_options.get("idle_s") or 0.0)
        if idle_s > 0:
            # The idle baseline: the same machine and process, doing nothing, for idle_s seconds.
            phase("idle")
            idle_start = time.monotonic_ns()
            time.sleep(idle_s)
            idle_window = [idle_start, time.monotonic_ns()]
    # The measured phase's own peak, not the build's.
    rss_reset = reset_peak_rss()
    phase("warmup")
    try:
        warm_result = warm()
        speed_before = noise.compute_speed_check()
        before = noise.snapshot()
        own_before = noise.own_cpu_seconds()
        measured = measure_it(warm_result)
        own_after = noise.own_cpu_seconds()
        after = noise.snapshot()
        # Under the same conditions as the check before (the sampler still running).
        speed_after = noise.compute_speed_check()
    finally:
        sensors_raw = sampler.stop() if sampler is not None else {"probes": [], "samples": [], "disabled": True}
    usable = len(os.sched_getaffinity(0))
    try:
        window = noise.window_noise(before, after, own_after - own_before, usable).to_dict()
    except ValueError as exc:
        window = {"error": str(exc)}
    noise_info = {**window, "speed_before": speed_before, "speed_after": speed_after,
                  "snapshot_before": before.to_dict(), "snapshot_after": after.to_dict()}
    return {
        **measured,
        "noise": noise_info,
        "memory": {"peak_rss_mib": peak_rss_mib(), "setup_peak_rss_mib": setup_peak_rss,
                   "peak_reset_between_phases": rss_reset},
        "sensors": {**sensors_raw, "idle_window_ns": idle_window},
    }


def _limit_memory(mib: int | None) -> None:
    if mib:
        limit = int(mib) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    channel = os.fdopen(int(argv[0]), "w", buffering=1, encoding="utf-8")
    faulthandler.enable(file=sys.stderr, all_threads=True)
    from bench.system.sensors.sampler import die_with_parent

    # A parent killed with SIGKILL cannot kill us: the kernel does, so no measurement runs on unseen.
    die_with_parent(signal.SIGKILL)

    def emit(message: dict[str, Any]) -> None:
        channel.write(json.dumps({"v": PROTOCOL_VERSION, **message}, allow_nan=False, default=str) + "\n")
        channel.flush()

    request = json.loads(sys.stdin.read())
    if request.get("v") != PROTOCOL_VERSION:
        emit({"type": "error", "kind": "exception", "message": f"protocol version {request.get('v')} unknown"})
        return 3
    item = request["item"]
    try:
        _limit_memory(item.get("memory_limit_mib"))
        result = run_item(item, emit)
        emit({"type": "result", "data": _json_safe(result)})
        return 0
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent as a record
        if isinstance(exc, KeyboardInterrupt):
            raise
        kind = classify_exception(exc)
        try:
            emit({"type": "error", "kind": kind, "message": f"{type(exc).__name__}: {exc}".strip(),
                  "traceback": traceback.format_exc(limit=20)})
        except MemoryError:
            os.write(2, b"worker: out of memory while reporting an error\n")
            return 4
        return 1


def _json_safe(value: Any) -> Any:
    """Infinities and NaN as None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
