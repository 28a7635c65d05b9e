"""Compare two result sets, workload by workload: the ratio candidate / baseline of throughput, p50 and
p99 latency, each with a bootstrap confidence interval computed from the records' raw samples.

Method (seeded, so the same records always give the same intervals):

- Records match on suite x workload x scenario x batch size x precision, less any of these keys on
  which the two selections themselves differ (``precision=fp32`` against ``precision=fp16`` matches
  across precisions). Where a side holds several records for one key, the newest is used (and said).
- Throughput: a block bootstrap. The samples of a run are cut into blocks of consecutive iterations
  (block length n^(1/3), at least 1), blocks are drawn with replacement, and throughput is the work
  of the drawn blocks over their time. Blocks keep the short-range correlation of consecutive
  iterations (warm caches, clock boosts, a neighbour's burst) that resampling single samples would
  wrongly treat as independent.
- Latency percentiles: resampling of single samples. It is computed exactly without materialising
  resamples: a resample of n values from the sample is x_(ceil(n U_i)) for independent uniforms U_i,
  so its r-th order statistic is x_(ceil(n U_(r))), where U_(r) ~ Beta(r, n + 1 - r), and the next one
  is U_(r+1) = U_(r) + (1 - U_(r)) Beta(1, n - r). Drawing those two gives the resample's percentile
  (linear interpolation between order statistics, as bench.stats) at O(1) cost per resample, the same
  distribution as sorting n resampled values.
- Baseline and candidate are resampled independently; the interval is the percentile interval of the
  ratio over the resamples (2000 by default). The difference is significant when it excludes 1.

What this interval does not hold: variation between runs (another boot, another thermal state). Each
side's record is one run; repeat runs and compare them with each other to see that variation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence, TextIO

import numpy as np

from bench.errors import ConfigError
from bench.records import RunRecord

__all__ = ["METRICS", "MATCH_KEYS", "Ratio", "Comparison", "CompareResult", "FailRule", "parse_fail_on",
           "compare", "bootstrap_throughput", "bootstrap_percentile", "check", "render", "speed_line"]

RESAMPLES = 2000
CONFIDENCE = 0.95
MATCH_KEYS = ("suite", "workload", "scenario", "batch_size", "precision")
# name -> (higher is better, short name for --fail-on)
METRICS = {"throughput_sps": (True, "throughput"), "latency_p50_ms": (False, "latency_p50"),
           "latency_p99_ms": (False, "latency_p99")}
_QUANTILE = {"latency_p50_ms": 0.50, "latency_p99_ms": 0.99}


@dataclass(frozen=True)
class Ratio:
    """candidate / baseline, with its bootstrap interval."""

    baseline: float
    candidate: float
    ratio: float
    low: float
    high: float
    higher_is_better: bool

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


@dataclass
class Comparison:
    key: dict[str, object]
    baseline: RunRecord
    candidate: RunRecord
    ratios: dict[str, Ratio]

    @property
    def name(self) -> str:
        k = self.key
        return " ".join(str(k[m]) if m != "batch_size" else f"b={k[m]}" for m in MATCH_KEYS if m in k)


@dataclass
class CompareResult:
    comparisons: list[Comparison]
    notes: list[str] = field(default_factory=list)
    match_keys: tuple[str, ...] = MATCH_KEYS


@dataclass(frozen=True)
class FailRule:
    metric: str
    threshold: float  # a fraction: 0.05 for 5%

    def __str__(self) -> str:
        return f"{METRICS[self.metric][1]}:{self.threshold * 100:g}%"


def parse_fail_on(text: str) -> list[FailRule]:
    """``throughput:5%``, ``latency_p99:10%`` (several joined by commas)."""
    rules = []
    names = {short: name for name, (_, short) in METRICS.items()} | {name: name for name in METRICS}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        metric, _, amount = part.partition(":")
        if metric not in names:
            raise ConfigError("--fail-on", part, f"name one of {', '.join(m[1] for m in METRICS.values())}, "
                              "e.g. --fail-on throughput:5%", "is not a metric")
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", amount)
        if not match:
            raise ConfigError("--fail-on", part, "give a percentage, e.g. --fail-on throughput:5%",
                              "has no threshold")
        rules.append(FailRule(names[metric], float(match.group(1)) / 100.0))
    if not rules:
        raise ConfigError("--fail-on", text, "e.g. --fail-on throughput:5%", "is empty")
    return rules


# ---------------------------------------------------------------- bootstrap


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


def _interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    lo, hi = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def ratios(baseline: RunRecord, candidate: RunRecord, rng: np.random.Generator, resamples: int = RESAMPLES,
           confidence: float = CONFIDENCE) -> Optional[dict[str, Ratio]]:
    b, c = _raw(baseline), _raw(candidate)
    if b is None or c is None:
        return None
    out = {}
    (bs, bblock, bbatch), (cs, cblock, cbatch) = b, c
    b_tp = bs.size * bblock * bbatch / (bs.sum() / 1e9)
    c_tp = cs.size * cblock * cbatch / (cs.sum() / 1e9)
    reps = bootstrap_throughput(cs, cblock * cbatch, rng, resamples) / \
        bootstrap_throughput(bs, bblock * bbatch, rng, resamples)
    out["throughput_sps"] = Ratio(b_tp, c_tp, c_tp / b_tp, *_interval(reps, confidence), True)
    for name, q in _QUANTILE.items():
        b_lat, c_lat = bs / bblock / 1e6, cs / cblock / 1e6  # per request, ms
        b_q = float(np.quantile(b_lat, q))
        c_q = float(np.quantile(c_lat, q))
        reps = bootstrap_percentile(c_lat, q, rng, resamples) / bootstrap_percentile(b_lat, q, rng, resamples)
        out[name] = Ratio(b_q, c_q, c_q / b_q, *_interval(reps, confidence), False)
    return out


# ---------------------------------------------------------------- matching


def _value(record: RunRecord, key: str) -> object:
    return {"suite": record.workload.get("suite"), "workload": record.workload.get("name"),
            "scenario": record.scenario.get("name"), "batch_size": record.workload.get("batch_size"),
            "precision": record.backend.get("precision")}[key]


def _newest(records: Sequence[RunRecord], keys: Sequence[str], side: str,
            notes: list[str]) -> dict[tuple[object, ...], RunRecord]:
    out: dict[tuple[object, ...], RunRecord] = {}
    counts: dict[tuple[object, ...], int] = {}
    for r in records:
        k = tuple(_value(r, m) for m in keys)
        counts[k] = counts.get(k, 0) + 1
        if k not in out or (r.created_at, r.id) > (out[k].created_at, out[k].id):
            out[k] = r
    for k, n in counts.items():
        if n > 1:
            notes.append(f"{side}: {n} records for {' '.join(map(str, k))}; the newest ({out[k].id[:8]}, "
                         f"{out[k].created_at}) is used")
    return out


def compare(baseline: Sequence[RunRecord], candidate: Sequence[RunRecord], differing: Sequence[str] = (),
            seed: int = 0, resamples: int = RESAMPLES, confidence: float = CONFIDENCE) -> CompareResult:
    """Match valid records of both sides and estimate every ratio; ``differing`` are selection keys
    on which the two sides differ on purpose (left out of the match)."""
    keys = tuple(k for k in MATCH_KEYS if k not in differing)
    notes: list[str] = []
    sides = []
    for side, records in (("baseline", baseline), ("candidate", candidate)):
        valid = [r for r in records if r.valid]
        if len(valid) < len(records):
            notes.append(f"{side}: {len(records) - len(valid)} record(s) left out: not valid (failed, skipped, "
                         "or outputs differ from the reference)")
        sides.append(_newest(valid, keys, side, notes))
    base, cand = sides
    rng = np.random.default_rng(seed)
    comparisons = []
    for k in sorted(set(base) & set(cand), key=lambda t: tuple(str(v) for v in t)):
        if base[k].id == cand[k].id:
            notes.append(f"{' '.join(map(str, k))}: the same record ({base[k].id[:8]}) is on both sides; skipped")
            continue
        r = ratios(base[k], cand[k], rng, resamples, confidence)
        if r is None:
            notes.append(f"{' '.join(map(str, k))}: no raw samples in a record; skipped")
            continue
        comparisons.append(Comparison(dict(zip(keys, k, strict=True)), base[k], cand[k], r))
    for side, only in (("baseline", set(base) - set(cand)), ("candidate", set(cand) - set(base))):
        for k in sorted(only, key=lambda t: tuple(str(v) for v in t)):
            notes.append(f"only in the {side}: {' '.join(map(str, k))}")
    if not comparisons:
        raise ConfigError("", "", "select result sets that hold the same workloads (match on "
                          f"{' x '.join(keys)})", "no workload can be compared")
    return CompareResult(comparisons, notes, keys)


def check(result: CompareResult, rules: Sequence[FailRule]) -> list[str]:
    """Failures: the candidate significantly worse than the baseline by more than a rule's threshold
    (throughput ratio below 1 - t, latency ratio above 1 + t, and the interval excluding 1)."""
    failures = []
    for comp in result.comparisons:
        for rule in rules:
            r = comp.ratios[rule.metric]
            worse_by = (1.0 - r.ratio) if r.higher_is_better else (r.ratio - 1.0)
            if r.significant and not r.better and worse_by > rule.threshold:
                failures.append(f"{comp.name}: {rule.metric} {worse_by:.1%} worse (ratio {r.ratio:.3f}, "
                                f"95% CI {r.low:.3f} … {r.high:.3f}), beyond --fail-on {rule}")
    return failures


# ---------------------------------------------------------------- output


def speed_line(comp: Comparison) -> str:
    """hyperfine's relative line, from the throughput ratio."""
    r = comp.ratios["throughput_sps"]
    if r.ratio >= 1.0:
        factor, lo, hi, word = r.ratio, r.low, r.high, "faster"
    else:
        factor, lo, hi, word = 1.0 / r.ratio, 1.0 / r.high, 1.0 / r.low, "slower"
    half = (hi - lo) / 2
    significance = "significant" if r.significant else "not significant"
    return (f"{comp.name}: candidate ran {factor:.2f} ± {half:.2f} times {word} than baseline "
            f"(95% CI {lo:.2f} … {hi:.2f}, {significance})")


def _side(record: RunRecord) -> str:
    b = record.backend
    return f"{record.system.get('hardware')} {b.get('name')} {b.get('precision')}"


def render(result: CompareResult, baseline_desc: str, candidate_desc: str, stream: TextIO) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from bench.progress import use_plain_output
    from bench.fmt import fmt_num

    plain = use_plain_output(stream)
    console = Console(file=stream, no_color=plain, highlight=False, soft_wrap=False, width=240 if plain else None)
    console.print(Text(f"baseline:  {baseline_desc}\ncandidate: {candidate_desc}"))
    table = Table(box=box.SIMPLE_HEAD, title_justify="left",
                  title=Text("candidate / baseline, 95% bootstrap intervals (matched on "
                             f"{' x '.join(result.match_keys)})"))
    for name in ("workload", "baseline", "candidate", "metric", "baseline value", "candidate value",
                 "ratio [95% CI]", "verdict"):
        table.add_column(name)
    for comp in result.comparisons:
        for i, (metric, r) in enumerate(comp.ratios.items()):
            first = i == 0
            table.add_row(*(Text(c) for c in (
                comp.name if first else "", _side(comp.baseline) if first else "",
                _side(comp.candidate) if first else "", metric, fmt_num(r.baseline), fmt_num(r.candidate),
                f"{r.ratio:.3f} [{r.low:.3f}, {r.high:.3f}]", r.verdict)))
    console.print(table)
    for comp in result.comparisons:
        console.print(Text(speed_line(comp)))
    for note in result.notes:
        console.print(Text(f"note: {note}"))
