"""A load probe's statistics: latency percentiles with intervals that carry queueing's correlation,
achieved and offered rate, late and dropped requests, and the engine's own dispatch delay."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from bench.measurement.load.dispatch import ServeResult
from bench.measurement.stats import percentiles, quantile, quantile_ci, t_quantile

__all__ = ["LOAD_PERCENTILES", "latency_summary"]

# The percentiles a load record lists (bench.measurement.stats.PERCENTILES without p95).
LOAD_PERCENTILES = percentiles("p50", "p90", "p99")
# Batch-means intervals need this many contiguous blocks, each with 10 / (1 - q) requests at least.
BLOCKS = 10


def _batch_means_half_width(latencies: np.ndarray, q: float, confidence: float) -> Optional[float]:
    """Half-width of a batch-means interval of the q-quantile: the quantile in each of BLOCKS
    contiguous blocks (in arrival order), t-interval over them. Queueing correlates neighbouring
    requests' latencies, which order-statistics intervals ignore; contiguous blocks carry it."""
    per_block = latencies.size // BLOCKS
    if per_block < 10 / (1 - q):
        return None
    values = [quantile(np.sort(latencies[b * per_block:(b + 1) * per_block]), q) for b in range(BLOCKS)]
    sd = float(np.std(values, ddof=1))
    return t_quantile(0.5 + confidence / 2, BLOCKS - 1) * sd / math.sqrt(BLOCKS)


def latency_summary(result: ServeResult, confidence: float = 0.95) -> dict[str, Any]:
    """Latency percentiles (ms) with intervals, achieved and offered rate, late and dropped requests.

    Each interval is the wider of the distribution-free order-statistics interval (which assumes
    independent latencies) and, where the probe is long enough, a batch-means interval over
    contiguous blocks (which carries the correlation that queueing brings)."""
    lat = np.asarray(result.latencies_ns, dtype=np.float64)
    n = int(lat.size)
    m: dict[str, Any] = {"queries": n, "offered_qps": result.offered_qps, "late_queries": result.late,
                         "late_fraction": result.late / n if n else None, "dropped_queries": result.dropped,
                         "slo_ms": result.slo_ns / 1e6}
    served = n - result.dropped
    m["achieved_qps"] = served / (result.elapsed_ns / 1e9) if result.elapsed_ns > 0 else None
    m["throughput_sps"] = m["achieved_qps"]
    if n == 0:
        return m
    ordered = np.sort(lat)
    for name, q in LOAD_PERCENTILES.items():
        point = quantile(ordered, q)
        lo, hi = quantile_ci(ordered, q, confidence)
        half = _batch_means_half_width(lat, q, confidence)
        if half is not None:
            lo = min(lo, point - half) if lo is not None else point - half
            hi = max(hi, point + half) if hi is not None else point + half
        m[f"latency_{name}_ms"] = point / 1e6
        m[f"latency_{name}_ci_low_ms"] = None if lo is None else max(lo, 0.0) / 1e6
        m[f"latency_{name}_ci_high_ms"] = None if hi is None else hi / 1e6
    m["latency_mean_ms"] = float(lat.mean()) / 1e6
    m["latency_max_ms"] = float(ordered[-1]) / 1e6
    if result.service_ns:
        m["service_p50_ms"] = quantile(np.sort(np.asarray(result.service_ns, dtype=np.float64)), 0.5) / 1e6
        m["mean_batch_fill"] = float(np.mean(result.batch_sizes))
    m["censored_latencies"] = result.dropped  # their latency is a lower bound
    for key in ("engine_lag_p50_us", "engine_lag_p99_us", "engine_lag_max_us"):
        if key in result.extra:
            m[key] = result.extra[key]
    return m
