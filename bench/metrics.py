"""Uniform metrics, derived from raw samples (never stored instead of them). Units live in the names."""

from __future__ import annotations

from typing import Any, Optional

from bench.loop import LoopResult
from bench.stats import Sample, throughput_estimate

__all__ = ["PERCENTILES", "loop_metrics", "METRIC_UNITS"]

PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}

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
    m["rel_ci"] = loop.final_rel_ci if loop.final_rel_ci != float("inf") else None
    return m
