"""Uniform metrics, derived from raw samples (never stored instead of them). Units live in the names."""

from __future__ import annotations

import math
from typing import Any, Optional

from bench.measurement.loop import LoopResult
from bench.measurement.stats import PERCENTILES, Sample, throughput_estimate

__all__ = ["PERCENTILES", "loop_metrics", "load_metrics", "loadgen_metrics", "training_metrics", "fit_metrics",
           "continual_metrics", "continual_run", "adaptation_window", "ADAPT_STAGES", "METRIC_UNITS"]

METRIC_UNITS = {
    "_ms": "milliseconds",
    "_s": "seconds",
    "_sps": "samples per second",
    "_mib": "mebibytes",
}


def _ms(ns: Optional[float], per: int) -> Optional[float]:
    return None if ns is None else ns / per / 1e6


def loop_metrics(loop: LoopResult, confidence: float) -> dict[str, Any]:
    """Latency percentiles with their distribution-free intervals, and the measured throughput.

    Latency figures are per request (one batch): a sample's time divided by the requests it holds.
    In the throughput scenario they are the mean request time within a block of back-to-back requests.
    """
    per = loop.block
    sample = Sample(loop.samples_ns, confidence)
    m: dict[str, Any] = {}
    if loop.extra.get("pipelined"):
        # Samples are times between submissions with several requests in flight, not request
        # latencies: report throughput only, and say why the latencies are absent.
        m["latency_note"] = (f"throughput with {loop.extra.get('in_flight')} requests in flight: "
                             "per-request latency is not measured in this scenario")
        return _throughput_metrics(m, loop, sample, confidence)
    for name, q in PERCENTILES.items():
        lo, hi = sample.percentile_ci(q)
        m[f"latency_{name}_ms"] = _ms(sample.percentile(q), per)
        m[f"latency_{name}_ci_low_ms"] = _ms(lo, per)
        m[f"latency_{name}_ci_high_ms"] = _ms(hi, per)
    m["latency_mean_ms"] = _ms(sample.mean, per)
    m["latency_std_ms"] = _ms(sample.std, per)
    m["latency_min_ms"] = _ms(sample.min, per)
    m["latency_max_ms"] = _ms(sample.max, per)
    m["latency_cv"] = sample.cv
    m["latency_robust_cv"] = sample.robust_cv
    m["outliers"] = sample.outlier_count
    if loop.tail_quantile is not None:
        # What backs the tail the stopping rule watched: bounded or not, and the samples that bound it.
        name = f"p{round(loop.tail_quantile * 100)}"
        m["tail_percentile"] = loop.tail_quantile
        m["tail_bounded"] = m[f"latency_{name}_ci_high_ms"] is not None and m[f"latency_{name}_ci_low_ms"] is not None
        m["tail_min_samples"] = loop.tail_min_samples
        m["rel_ci_tail"] = loop.final_rel_ci_tail if loop.final_rel_ci_tail != float("inf") else None
    return _throughput_metrics(m, loop, sample, confidence)


def _throughput_metrics(m: dict[str, Any], loop: LoopResult, sample: Sample, confidence: float) -> dict[str, Any]:
    per = loop.block
    m["samples"] = sample.n
    m["iterations"] = loop.iterations
    tp = throughput_estimate(loop.samples_ns, loop.batch_size * per, confidence)
    m["throughput_sps"] = tp.samples_per_s
    m["throughput_ci_low_sps"] = tp.ci_low
    m["throughput_ci_high_sps"] = tp.ci_high
    m["measured_s"] = tp.window_s
    m["warmup_iterations"] = len(loop.warmup_ns)
    m["warmup_s"] = sum(loop.warmup_ns) / 1e9
    m["converged"] = loop.converged
    m["stop_reason"] = loop.stop_reason
    m["rel_ci"] = loop.final_rel_ci if loop.final_rel_ci != float("inf") else None
    # One process's intervals hold the noise within it, not the variation between fresh processes
    # (bench.results.repeats pools several processes into intervals that do).
    m["ci_scope"] = "process"
    return m


def load_metrics(load_out: dict[str, Any], confidence: float) -> tuple[dict[str, Any], tuple[int, int], int]:
    """A server or multistream result: latency from arrival to completion with intervals, achieved
    rate, late and dropped requests, and the search's answer. Returns the metrics, the reported
    probe's window (for energy) and the requests it served."""
    from bench.measurement.load import ServeResult, latency_summary

    result = ServeResult.from_dict(load_out["result"])
    info = load_out.get("info") or {}
    m = latency_summary(result, confidence)
    for key in ("max_qps_at_slo", "max_qps_target", "max_streams_at_slo", "rate_qps", "streams", "fps",
                "capacity_estimate_qps"):
        if info.get(key) is not None:
            m[key] = info[key]
    served = len(result.latencies_ns) - result.dropped
    m["samples"] = served
    m["iterations"] = len(result.batch_sizes)
    m["measured_s"] = result.elapsed_ns / 1e9
    m["warmup_iterations"] = None
    return m, (result.start_monotonic_ns, result.end_monotonic_ns), served


def loadgen_metrics(out: dict[str, Any]) -> tuple[dict[str, Any], tuple[int, int], int]:
    """LoadGen's own figures (its result, percentiles, VALID), under bench's uniform names where
    they mean the same, and all of them under loadgen_*. No intervals: LoadGen reports none.
    MultiStream's latencies are per query (samples_per_query samples), the others' per sample."""
    result = out.get("result") or {}
    m: dict[str, Any] = {f"loadgen_{k}": v for k, v in result.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool)}
    m["loadgen_valid"] = bool(out.get("valid"))
    for prefix in ("latency_", "query_latency_"):
        for name in ("p50", "p90", "p95", "p97", "p99", "p99_9", "mean", "min", "max"):
            value = result.get(f"{prefix}{name}_ns")
            if value is not None and f"latency_{name}_ms" not in m:
                m[f"latency_{name}_ms"] = value / 1e6
    for key in ("result_samples_per_s", "result_completed_samples_per_s"):
        if result.get(key) is not None:
            m["throughput_sps"] = result[key]
            break
    else:
        qps = result.get("qps_with_loadgen_overhead")
        if qps is not None:
            m["throughput_sps"] = qps * float(result.get("samples_per_query") or 1)
    sut = out.get("sut") or {}
    processed = int(sut.get("samples_completed") or 0)
    m["samples"] = processed
    m["iterations"] = sut.get("batches")
    return m, (int(out.get("start_monotonic_ns") or 0), int(out.get("end_monotonic_ns") or 0)), processed


def training_metrics(training: dict[str, Any]) -> dict[str, Any]:
    """Besides the loop's figures (a sample is one training step of batch_size samples, so
    throughput_sps is training samples per second): the loss at the first and last step."""
    m: dict[str, Any] = {"train_steps": training.get("steps")}
    for key in ("loss_first", "loss_last"):
        if training.get(key) is not None:
            m[f"train_{key}"] = training[key]
    return m


def fit_metrics(training: dict[str, Any]) -> tuple[dict[str, Any], tuple[int, int], int]:
    """The fit of a method that does not train by backpropagation: seconds per training image (the
    median over repeats, with the range), and training images per second."""
    fit = training["fit"]
    per_image = fit["per_image_s_all"]
    m: dict[str, Any] = {"fit_s_per_image": fit["per_image_s"], "fit_s_per_image_min": min(per_image),
                         "fit_s_per_image_max": max(per_image), "fit_images": fit["images"],
                         "fit_repeats": fit["repeats"], "throughput_sps": 1.0 / fit["per_image_s"],
                         "iterations": fit["repeats"], "measured_s": sum(fit["total_s_all"])}
    window = training.get("window_ns") or [0, 0]
    return m, (int(window[0]), int(window[1])), int(fit["images"]) * int(fit["repeats"])


# The stages of one adaptation, in order, as the worker times them (bench.worker.continual): their sum
# is the time from detection to swap.
ADAPT_STAGES = ("samples_written_s", "train_s", "save_s", "reference_s", "convert_s", "trainer_overhead_s", "load_s",
                "parity_s", "swap_s")


def continual_run(out: dict[str, Any]) -> dict[str, Any]:
    """The timeline a continual record reports: the only one, or with scenario.find_peak the probe at
    the highest rate that met the requirement while adapting (else the last probe)."""
    runs = out["runs"]
    search = out.get("search") or {}
    best = search.get("best")
    if best is not None:
        for run in runs:
            if run.get("rate_qps") == best:
                return run
    return runs[-1]


def continual_metrics(out: dict[str, Any], confidence: float) -> tuple[dict[str, Any], tuple[int, int], int]:
    """scenario=continual: each phase's latency with intervals (steady_, drifted_, adapting_, adapted_
    latency_p50_ms ...), late and dropped; the degradation while adapting (ratio to steady, with a
    conservative interval); the time to adapt and its stages; training throughput co-located and alone;
    the verdict against the latency requirement while adapting. Returns the metrics, the timeline's
    window (for energy) and the requests served."""
    from bench.measurement.continual import ContinualResult, degradation, phase_summaries

    run = continual_run(out)
    result = ContinualResult.from_dict(run["timeline"])
    phases = phase_summaries(result, confidence)
    m: dict[str, Any] = {"slo_ms": out.get("slo_ms"), "percentile": out.get("percentile")}
    for name, summary in phases.items():
        for key in ("queries", "late_queries", "dropped_queries", "achieved_qps", "latency_p50_ms",
                    "latency_p50_ci_low_ms", "latency_p50_ci_high_ms", "latency_p99_ms", "latency_p99_ci_low_ms",
                    "latency_p99_ci_high_ms", "latency_max_ms"):
            if summary.get(key) is not None:
                m[f"{name}_{key}"] = summary[key]
        m[f"{name}_start_s"], m[f"{name}_end_s"] = summary["start_s"], summary["end_s"]
    if "steady" in phases:
        for name in ("adapting", "drifted", "adapted"):
            if name in phases:
                for q in ("p50", "p99"):
                    ratio = degradation(phases["steady"], phases[name], q)
                    if ratio["ratio"] is not None:
                        m[f"{name}_degradation_{q}"] = ratio["ratio"]
                        m[f"{name}_degradation_{q}_ci_low"] = ratio["ci_low"]
                        m[f"{name}_degradation_{q}_ci_high"] = ratio["ci_high"]
    marks = result.marks_ns
    adaptation = run.get("adaptation") or {}
    stages = adaptation.get("stages_s") or {}
    if marks.get("detected") is not None:
        m["false_alarm"] = marks["detected"] < marks.get("drift", 0)
        m["detection_delay_s"] = (marks["detected"] - marks["drift"]) / 1e9
    detection = (result.detector or {}).get("detection") or {}
    if result.detector:
        m["detector_checks"] = result.detector.get("checks")
        m["detector_check_ms"] = result.detector.get("check_cost_ms_median")
    if result.detector_ns:
        ordered = sorted(result.detector_ns)
        m["detector_ms_per_batch"] = ordered[len(ordered) // 2] / 1e6
    if detection:
        m["detection_p_value"] = detection.get("p_value")
    m["adapted"] = bool(adaptation.get("swapped"))
    if adaptation.get("error"):
        m["adaptation_error"] = adaptation["error"]
    if marks.get("swapped") is not None:
        m["time_to_adapt_s"] = (marks["swapped"] - marks["drift"]) / 1e9
        m["adapt_total_s"] = (marks["swapped"] - marks["detected"]) / 1e9
        m["adapted_within_run"] = not adaptation.get("finished_after_serving")
    for key in ADAPT_STAGES:
        if stages.get(key) is not None:
            m[f"adapt_{key}"] = stages[key]
    reply = adaptation.get("trainer_reply") or {}
    trainer = out.get("trainer") or {}
    alone = (trainer.get("alone") or {}).get("samples_per_s")
    if reply.get("ok") and reply.get("train_s"):
        m["adapt_steps"] = reply.get("steps")
        m["adapt_samples"] = reply.get("samples")
        m["train_sps_colocated"] = reply["samples"] / reply["train_s"]
        m["trainer_peak_rss_mib"] = reply.get("peak_rss_mib")
        device = reply.get("device_memory") or {}
        if device.get("torch_max_reserved_mib") is not None:
            m["trainer_peak_device_mib"] = device["torch_max_reserved_mib"]
        if alone:
            m["train_sps_alone"] = alone
            m["train_slowdown"] = alone / m["train_sps_colocated"]
    # The verdict: the adapting phase's percentile within the requirement (late requests, dropped
    # included, within what the percentile allows), and the adaptation finished while serving.
    adapting = phases.get("adapting")
    if adapting is not None and m["adapted"]:
        from bench.measurement.load.dispatch import allowed_late

        n = adapting["queries"]
        q = float(out.get("percentile") or 0.99)
        # No request arrived while adapting (an adaptation shorter than the gap between arrivals): nothing
        # to judge, which is not a "yes".
        m["serves_within_budget_while_adapting"] = adapting["late_queries"] <= allowed_late(n, q) if n else None
        m["adapting_requests_bound_percentile"] = n >= math.ceil(1.0 / (1.0 - q))
    elif m["adapted"] is False:
        m["serves_within_budget_while_adapting"] = None
    steady = phases.get("steady")
    if steady is not None and steady["queries"]:
        from bench.measurement.load.dispatch import allowed_late

        q = float(out.get("percentile") or 0.99)
        m["serves_within_budget_steady"] = steady["late_queries"] <= allowed_late(steady["queries"], q)
    serve = result.serve
    # The rate that arrived (a Poisson draw lands near, not at, its target: rate_qps is the target).
    m["arrived_qps"] = len(serve.arrivals_ns) / (serve.duration_ns / 1e9) if serve.duration_ns else None
    search = out.get("search")
    if search:
        m["max_qps_while_adapting"] = search.get("best")
        m["capacity_estimate_qps"] = search.get("capacity_estimate_qps")
    colocation = out.get("colocation") or {}
    if "shared" in colocation:
        m["colocated"] = colocation["shared"]
    m["rate_qps"] = run.get("rate_qps")
    if run.get("streams"):
        m["streams"], m["fps"] = run["streams"], run["fps"]
    served = len(serve.latencies_ns) - serve.dropped
    m["samples"] = served
    m["iterations"] = len(serve.batch_sizes)
    m["measured_s"] = serve.elapsed_ns / 1e9
    m["throughput_sps"] = served / (serve.elapsed_ns / 1e9) if serve.elapsed_ns > 0 else None
    origin = int(run["origin_monotonic_ns"])
    return m, (origin, origin + int(serve.elapsed_ns)), served


def adaptation_window(out: dict[str, Any]) -> Optional[tuple[tuple[int, int], tuple[int, int]]]:
    """(the adaptation's window, the steady phase's window) in monotonic ns, for its energy; None
    when there was no swap."""
    run = continual_run(out)
    marks = run["timeline"]["marks_ns"]
    if marks.get("swapped") is None or marks.get("detected") is None:
        return None
    origin = int(run["origin_monotonic_ns"])
    steady_end = min(marks.get("drift", 0), marks["detected"])
    return (origin + marks["detected"], origin + marks["swapped"]), (origin, origin + steady_end)
