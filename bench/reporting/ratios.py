"""The ratio candidate / baseline of one metric with its confidence interval, by one of two methods:
between processes (Welch's t on each process's figure, when both records hold repeats) or within one
process (a seeded bootstrap over the raw samples). The methods, and why, are described in
bench.reporting.compare, which matches records and gives the verdicts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from bench.results import support
from bench.results.records import RunRecord

__all__ = ["Ratio", "ratios", "bootstrap_throughput", "bootstrap_percentile", "welch_ratio", "METRICS", "RESAMPLES",
           "CONFIDENCE", "BOOTSTRAP", "WELCH"]

RESAMPLES = 2000
CONFIDENCE = 0.95
BOOTSTRAP = "bootstrap"  # within one process, over raw samples
WELCH = "welch"  # between processes, over each process's figure
# name -> (higher is better, short name for --fail-on)
METRICS = {"throughput_sps": (True, "throughput"), "latency_p50_ms": (False, "latency_p50"),
           "latency_p99_ms": (False, "latency_p99")}
_QUANTILE = {"latency_p50_ms": 0.50, "latency_p99_ms": 0.99}


@dataclass(frozen=True)
class Ratio:
    """candidate / baseline, with its interval and the method that gave it."""

    baseline: float
    candidate: float
    ratio: float
    low: float
    high: float
    higher_is_better: bool
    method: str = BOOTSTRAP
    processes: tuple[int, int] = (1, 1)  # baseline's and candidate's (for WELCH)

    @property
    def method_text(self) -> str:
        if self.method == WELCH:
            return f"between processes: Welch t, {self.processes[0]} v {self.processes[1]}"
        return "within one process: bootstrap"

    @property
    def significant(self) -> bool:
        return self.low > 1.0 or self.high < 1.0

    @property
    def better(self) -> bool:
        return self.ratio > 1.0 if self.higher_is_better else self.ratio < 1.0

    @property
    def verdict(self) -> str:
        if not self.significant:
            return "no significant difference"
        return "better" if self.better else "worse"


def _raw(record: RunRecord) -> Optional[tuple[np.ndarray, int, int]]:
    loop = (record.raw or {}).get("loop") or {}
    samples = np.asarray(loop.get("samples_ns") or [], dtype=np.float64)
    if samples.size < 2 or not np.all(np.isfinite(samples)) or np.any(samples <= 0):
        return None
    block = int(loop.get("block") or 1)
    batch = int(loop.get("batch_size") or record.workload.get("batch_size") or 1)
    return samples, block, batch


def _blocks(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per block of consecutive iterations: total time and number of samples."""
    n = samples.size
    length = max(1, round(n ** (1 / 3)))
    parts = np.array_split(samples, max(1, n // length))
    return np.array([p.sum() for p in parts]), np.array([p.size for p in parts], dtype=np.float64)


def bootstrap_throughput(samples_ns: np.ndarray, per_sample: int, rng: np.random.Generator,
                         resamples: int = RESAMPLES, chunk: int = 250) -> np.ndarray:
    """Bootstrap replicates of throughput (samples/s) by resampling blocks of consecutive iterations."""
    times, counts = _blocks(samples_ns)
    k = times.size
    out = np.empty(resamples)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, k, size=(stop - start, k))
        out[start:stop] = counts[idx].sum(axis=1) * per_sample / (times[idx].sum(axis=1) / 1e9)
    return out


def bootstrap_percentile(samples: np.ndarray, q: float, rng: np.random.Generator,
                         resamples: int = RESAMPLES) -> np.ndarray:
    """Bootstrap replicates of the q-quantile (type 7) of ``samples``, exactly, by order statistics."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = x.size
    h = (n - 1) * q
    lo = math.floor(h)
    frac = h - lo
    r = lo + 1  # 1-based rank of the lower order statistic
    u_r = rng.beta(r, n + 1 - r, size=resamples)
    if r < n:
        u_next = u_r + (1.0 - u_r) * rng.beta(1, n - r, size=resamples)
    else:
        u_next = u_r

    def value(u: np.ndarray) -> np.ndarray:
        return x[np.clip(np.ceil(n * u).astype(np.int64) - 1, 0, n - 1)]

    return value(u_r) + frac * (value(u_next) - value(u_r))


def welch_ratio(baseline: Sequence[float], candidate: Sequence[float], higher_is_better: bool,
                confidence: float = CONFIDENCE) -> Ratio:
    """The ratio of geometric means candidate / baseline of per-process figures, with Welch's
    t-interval of the difference of the mean logs (unequal variances; Welch-Satterthwaite degrees of
    freedom), mapped back by exp. Each side needs at least 2 positive figures."""
    from bench.measurement.stats import t_quantile

    x = np.log(np.asarray(baseline, dtype=np.float64))
    y = np.log(np.asarray(candidate, dtype=np.float64))
    if x.size < 2 or y.size < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("welch_ratio needs at least 2 positive, finite figures per side")
    diff = float(y.mean() - x.mean())
    vx, vy = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    se = math.sqrt(vx + vy)
    if se == 0.0:  # every process gave the same figure on both sides: nothing to widen the interval
        half = 0.0
    else:
        df = (vx + vy) ** 2 / (vx ** 2 / (x.size - 1) + vy ** 2 / (y.size - 1))
        half = t_quantile(0.5 + confidence / 2, df) * se
    return Ratio(math.exp(float(x.mean())), math.exp(float(y.mean())), math.exp(diff), math.exp(diff - half),
                 math.exp(diff + half), higher_is_better, WELCH, (int(x.size), int(y.size)))


def _per_process(record: RunRecord, metric: str) -> Optional[list[float]]:
    """Each process's own figure of ``metric``, where the record holds at least 2 processes that all
    have it (positive and finite)."""
    processes = support.process_metrics(record)
    values = [m.get(metric) for m in processes]
    if len(values) < 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                  and v > 0 for v in values):
        return None
    return [float(v) for v in values]  # type: ignore[arg-type]


def _interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    lo, hi = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def ratios(baseline: RunRecord, candidate: RunRecord, rng: np.random.Generator, resamples: int = RESAMPLES,
           confidence: float = CONFIDENCE) -> Optional[dict[str, Ratio]]:
    """Every metric's ratio: between processes where both records hold repeats with the metric,
    otherwise by the bootstrap over each record's loop samples (None if one has none)."""
    out: dict[str, Ratio] = {}
    for name, (higher, _) in METRICS.items():
        b_values, c_values = _per_process(baseline, name), _per_process(candidate, name)
        if b_values is not None and c_values is not None:
            out[name] = welch_ratio(b_values, c_values, higher, confidence)
    if len(out) == len(METRICS):
        return out
    b, c = _raw(baseline), _raw(candidate)
    if b is None or c is None:
        return None
    (bs, bblock, bbatch), (cs, cblock, cbatch) = b, c
    # The same draws in the same order whatever the other metrics used, so a record pair's
    # bootstrap intervals do not depend on which of its metrics had per-process figures.
    b_tp = bs.size * bblock * bbatch / (bs.sum() / 1e9)
    c_tp = cs.size * cblock * cbatch / (cs.sum() / 1e9)
    reps = bootstrap_throughput(cs, cblock * cbatch, rng, resamples) / \
        bootstrap_throughput(bs, bblock * bbatch, rng, resamples)
    boot = {"throughput_sps": Ratio(b_tp, c_tp, c_tp / b_tp, *_interval(reps, confidence), True)}
    for name, q in _QUANTILE.items():
        b_lat, c_lat = bs / bblock / 1e6, cs / cblock / 1e6  # per request, ms
        b_q = float(np.quantile(b_lat, q))
        c_q = float(np.quantile(c_lat, q))
        reps = bootstrap_percentile(c_lat, q, rng, resamples) / bootstrap_percentile(b_lat, q, rng, resamples)
        boot[name] = Ratio(b_q, c_q, c_q / b_q, *_interval(reps, confidence), False)
    return {name: out.get(name, boot[name]) for name in METRICS}
