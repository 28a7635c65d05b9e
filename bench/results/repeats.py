"""Several fresh worker processes of one work item, pooled into one record whose intervals include
the variation between processes.

Why: one process's figures vary far less than fresh processes' do (memory layout, thread placement,
frequency): on this project's 2-core machine eight runs of one ONNX model claimed ±0.1% each and
spread over 15.7%. A within-process interval is not the uncertainty of a result; ``repeats=N`` (as
pyperf's worker processes) measures the variation that matters.

The pooled interval of a figure is a 95% *prediction* interval: where the figure of a fresh process of
this item lands, computed from the N processes' own figures with Student's t (N - 1 degrees of
freedom, so a small N pays for its uncertain spread):

    point ± t(0.975, N-1) * s * sqrt(1 + 1/N)

and never narrower than any process's own interval. It answers "if I run this again, where will
the number land?", so another record of the same item (one process or several) falls inside it 95%
of the time or more; rankings that tie on overlapping intervals then never order two rows on
run-to-run noise. Latency percentiles take their point from all processes' samples together (per
request), so a percentile is bounded only when the pooled samples bound it (368 for p99).
"""

from __future__ import annotations

import math
from statistics import fmean
from typing import Any, Optional, Sequence

import numpy as np

from bench.results.records import RunRecord, new_id, utc_now
from bench.measurement.stats import Sample, t_quantile

__all__ = ["POOLED", "prediction_interval", "pool"]

# Figures pooled with a between-process interval: name -> (low key, high key) of its interval.
POOLED: dict[str, tuple[str, str]] = {
    "throughput_sps": ("throughput_ci_low_sps", "throughput_ci_high_sps"),
    **{f"latency_{p}_ms": (f"latency_{p}_ci_low_ms", f"latency_{p}_ci_high_ms") for p in ("p50", "p90", "p95", "p99")},
}
# scenario=continual: each phase's latency percentiles (the processes' mean, with the between-process
# prediction interval or the processes' own intervals, whichever is wider, as above).
POOLED.update({f"{phase}_latency_{p}_ms": (f"{phase}_latency_{p}_ci_low_ms", f"{phase}_latency_{p}_ci_high_ms")
               for phase in ("steady", "drifted", "adapting", "adapted") for p in ("p50", "p99")})
# Figures without an interval in a single record, pooled as a mean with the spread beside it.
MEANS = ("latency_mean_ms", "max_qps_at_slo", "max_streams_at_slo", "fit_s_per_image")
# Figures without an interval in a single record, pooled as a mean with the between-process prediction
# interval (<name>_ci_low / _ci_high before the unit): scenario=continual's time to adapt and its peak.
PREDICTED = ("time_to_adapt_s", "adapt_total_s", "detection_delay_s", "adapt_train_s", "max_qps_while_adapting")
# Counts over the whole record: summed across processes.
SUMMED = ("samples", "iterations", "measured_s", "train_steps", "energy_j", "energy_net_j", "energy_estimated_j")


def prediction_interval(values: Sequence[float], confidence: float = 0.95,
                        centre: Optional[float] = None) -> tuple[float, float]:
    """Where one more process's figure lands with probability ``confidence``, from N >= 2 processes'
    figures (normal theory: Student's t with N - 1 degrees of freedom, sqrt(1 + 1/N) for the
    uncertainty of the mean). ``centre`` moves the interval onto another point estimate."""
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    if n < 2:
        raise ValueError("a prediction interval needs the figures of at least 2 processes")
    mean = float(v.mean())
    half = t_quantile(0.5 + confidence / 2, n - 1) * float(v.std(ddof=1)) * math.sqrt(1.0 + 1.0 / n)
    point = mean if centre is None else centre
    return point - half, point + half


def _num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _per_request_ms(record: RunRecord) -> Optional[np.ndarray]:
    loop = (record.raw or {}).get("loop") or {}
    samples = loop.get("samples_ns")
    if not samples or (record.metrics or {}).get("latency_p50_ms") is None:
        return None
    return np.asarray(samples, dtype=np.float64) / int(loop.get("block") or 1) / 1e6


def _combine(between: tuple[float, float], own: Sequence[tuple[Optional[float], Optional[float]]],
             pooled: tuple[Optional[float], Optional[float]] = (0.0, 0.0)) -> tuple[Optional[float], Optional[float]]:
    """The widest of the between-process interval and each process's own interval (moved onto the
    pooled point): a fresh process varies at least as much as one process says it does. A side the
    pooled samples cannot bound (``pooled``, None) stays unbounded."""
    low = None if pooled[0] is None else min([between[0], *(lo for lo, _ in own if lo is not None)])
    high = None if pooled[1] is None else max([between[1], *(hi for _, hi in own if hi is not None)])
    return low, high


def _cv_name(key: str) -> str:
    """process_cv_throughput, process_cv_latency_p99, ...: the spread between processes, a fraction."""
    for unit in ("_sps", "_ms"):
        if key.endswith(unit):
            key = key[: -len(unit)]
    return f"process_cv_{key}"


def _cv(values: Sequence[float]) -> Optional[float]:
    mean = fmean(values)
    return float(np.std(values, ddof=1)) / mean if mean else None


def _pool_metrics(records: Sequence[RunRecord], confidence: float) -> dict[str, Any]:
    per = [r.metrics or {} for r in records]
    n = len(records)
    m: dict[str, Any] = {}
    # Every other figure: the mean where all processes have a number, all() of flags, else the first's.
    for key, first in per[0].items():
        values = [p.get(key) for p in per]
        if all(isinstance(v, bool) for v in values):
            m[key] = all(values)
        elif all(_num(v) is not None for v in values):
            m[key] = sum(values) if key in SUMMED else fmean(values)
        else:
            m[key] = first
    pooled_ms = [_per_request_ms(r) for r in records]
    have_samples = all(x is not None for x in pooled_ms)
    pooled = Sample(np.concatenate(pooled_ms), confidence) if have_samples else None  # type: ignore[arg-type]
    for key, (low_key, high_key) in POOLED.items():
        values = [_num(p.get(key)) for p in per]
        if any(v is None for v in values):
            continue
        bounds: tuple[Optional[float], Optional[float]] = (0.0, 0.0)
        if key.startswith("latency_") and pooled is not None:
            q = int(key.split("_")[1][1:]) / 100
            point = pooled.percentile(q)
            bounds = pooled.percentile_ci(q)
        else:
            point = fmean(values)  # type: ignore[arg-type]
        # Each process's own interval, moved onto the pooled point by its relative distances.
        own = [(None if (lo := _num(p.get(low_key))) is None else point * lo / v,
                None if (hi := _num(p.get(high_key))) is None else point * hi / v)
               for p, v in zip(per, values)]  # type: ignore[operator]
        m[key] = point
        m[low_key], m[high_key] = _combine(prediction_interval(values, confidence, point), own, bounds)  # type: ignore[arg-type]
        m[_cv_name(key)] = _cv(values)  # type: ignore[arg-type]
    for key in MEANS:
        values = [_num(p.get(key)) for p in per]
        if values and all(v is not None for v in values):
            m[key] = fmean(values)  # type: ignore[arg-type]
            m[_cv_name(key)] = _cv(values)  # type: ignore[arg-type]
    for key in PREDICTED:
        values = [_num(p.get(key)) for p in per]
        if values and all(v is not None for v in values):
            stem, _, unit = key.rpartition("_") if key.endswith("_s") else (key, "", "")
            low, high = prediction_interval(values, confidence)  # type: ignore[arg-type]
            m[key] = fmean(values)  # type: ignore[arg-type]
            m[f"{stem}_ci_low{'_' + unit if unit else ''}"] = max(low, 0.0)
            m[f"{stem}_ci_high{'_' + unit if unit else ''}"] = high
            m[_cv_name(key)] = _cv(values)  # type: ignore[arg-type]
    if pooled is not None and per[0].get("tail_percentile") is not None:
        tail = f"latency_p{round(per[0]['tail_percentile'] * 100)}"
        m["tail_bounded"] = m.get(f"{tail}_ci_low_ms") is not None and m.get(f"{tail}_ci_high_ms") is not None
    if pooled is not None:
        m["latency_std_ms"] = pooled.std
        m["latency_min_ms"] = pooled.min
        m["latency_max_ms"] = pooled.max
        m["outliers"] = pooled.outlier_count
    m["converged"] = all(bool(p.get("converged", True)) for p in per)
    reasons = sorted({str(p.get("stop_reason")) for p in per if p.get("stop_reason")})
    if reasons:
        m["stop_reason"] = ", ".join(reasons)
    m["rel_ci"] = max((v for v in (_num(p.get("rel_ci")) for p in per) if v is not None), default=None)
    m["repeats"] = n
    m["ci_scope"] = "repeats"
    return m


def _pool_warnings(records: Sequence[RunRecord], metrics: dict[str, Any]) -> list[dict[str, str]]:
    """Each warning code once, saying in how many processes it arose (its first message kept). A
    tail that no single process bounded but the pooled samples do is no longer unbounded."""
    n = len(records)
    seen: dict[str, tuple[dict[str, str], int, int]] = {}
    for index, r in enumerate(records, 1):
        for w in r.warnings:
            if w["code"] == "tail_unbounded" and metrics.get("tail_bounded"):
                continue
            first, count, at = seen.get(w["code"], (w, 0, index))
            seen[w["code"]] = (first, count + 1, at)
    out = []
    for code, (w, count, at) in seen.items():
        where = f"in {count} of {n} processes" if count > 1 else f"in process {at} of {n}"
        out.append({"code": code, "message": f"{w['message']} ({where})", "hint": w["hint"]})
    return out


def pool(records: Sequence[RunRecord], confidence: float = 0.95) -> RunRecord:
    """One record from N >= 2 successful records of the same work item, each from its own process.

    The per-process metrics and raw loops stay in ``raw["repeats"]``; ``raw["loop"]`` is the first
    process's, as in a single record."""
    if len(records) < 2:
        raise ValueError("pooling needs at least 2 records")
    if any(r.status != "ok" for r in records):
        raise ValueError("pooling takes successful records only")
    first = records[0]
    parity = next((r.parity for r in records if not r.parity.get("ok", False)), first.parity)
    per_process = [{"metrics": r.metrics, "loop": (r.raw or {}).get("loop"),
                    "noise": {k: v for k, v in (r.noise or {}).items() if not k.startswith("snapshot_")},
                    "setup": r.setup, "warnings": r.warnings}
                   for r in records]
    raw = {**(first.raw or {}), "repeats": per_process}
    metrics = _pool_metrics(records, confidence)
    return RunRecord(
        id=new_id(), created_at=utc_now(), status="ok", config=first.config, system=first.system,
        workload=first.workload, backend=first.backend, scenario=first.scenario,
        metrics=metrics, setup=first.setup, parity=parity, noise=first.noise,
        energy=first.energy, warnings=_pool_warnings(records, metrics), raw=raw, tag=first.tag, run_id=first.run_id,
        sweep_id=first.sweep_id,
    )
