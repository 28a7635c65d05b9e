"""The measured window of a work item, the same for every scenario (inference and training): the
loop's settings from the typed scenario, and what brackets the measurement (the sensor sampler and its
idle baseline, the peak-memory reset, the warm-up, the noise evidence). Used by the worker's
bench.worker.process and bench.worker.scenarios, so neither imports the other back."""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from bench.config.schema import ScenarioConfig, as_plain
from bench.orchestration.protocol import ItemRequest

__all__ = ["loop_settings_of", "measured_window"]


def loop_settings_of(sc: ScenarioConfig, batch_size: int, scenario: str | None = None) -> Any:
    from bench.measurement.loop import LoopSettings

    return LoopSettings(
        scenario=scenario or sc.name, batch_size=batch_size, warmup_iterations=sc.warmup_iterations,
        warmup_s=sc.warmup_s, warmup_max_s=sc.warmup_max_s, min_iterations=sc.min_iterations,
        min_duration_s=sc.min_duration_s, max_duration_s=sc.max_duration_s,
        target_rel_ci=sc.target_rel_ci, confidence=sc.confidence, max_iterations=sc.max_iterations,
        # The tail rule is the latency scenario's (training steps are timed as latency but rank by rate).
        tail_quantile=sc.tail_percentile if sc.name == "latency" else None,
        target_rel_ci_tail=sc.target_rel_ci_tail, stop_when_noise_limited=sc.stop_when_noise_limited,
    )


def measured_window(item: ItemRequest, phase: Callable[..., None], warm: Callable[[], Any],
                    measure_it: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Around the measurement, the same for every scenario: the sensor sampler (and its idle
    baseline), the peak-memory reset, the warm-up, and the noise evidence that brackets the measured
    window only. Returns what ``measure_it`` measured plus noise, memory and sensors."""
    from bench.system import noise
    from bench.system.sensors.memory import peak_rss_mib, reset_peak_rss

    setup_peak_rss = peak_rss_mib()
    sensors = item.sensors
    sampler = None
    idle_window = None
    if sensors.enabled:
        from bench.system.sensors.sampler import Sampler

        phase("sensors")
        sampler = Sampler({**as_plain(sensors), "pid": os.getpid()}, directory=item.scratch_dir or None)
        sampler.start()
        idle_s = float(sensors.idle_s)
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
