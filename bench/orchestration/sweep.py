"""The batch-size sweep: for each workload, batch sizes start, start*factor, ... up to a cap,
stopping early when the next size runs out of memory, breaks the workload's latency requirement, or
adds less than min_gain throughput `patience` times in a row. Every point is an ordinary RunRecord
tagged with the sweep's id, so a sweep interrupted by Ctrl-C, kill -9 or a power cut resumes from
what the store holds: completed points are not measured again.

The search is a pure function of a ``measure(batch) -> SweepPoint`` callback, so its stopping rules
are tested without running anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

__all__ = ["SweepPoint", "SweepResult", "batch_sweep", "point_from_record", "sweep_batches", "conversion_of"]


def sweep_batches(start: int, factor: int, cap: int) -> list[int]:
    """Every batch size the sweep may measure: start, start*factor, ... up to the cap. Its last is
    the largest batch a conversion must cover (the work item's ``max_batch_size``)."""
    sizes, batch = [], max(1, int(start))
    while batch <= cap:
        sizes.append(batch)
        batch *= max(2, int(factor))
    return sizes or [max(1, int(start))]


@dataclass(frozen=True)
class SweepPoint:
    batch_size: int
    status: str  # ok, failed, oom (as the record says)
    throughput_sps: Optional[float] = None
    latency_p99_ms: Optional[float] = None
    record_id: str = ""
    reused: bool = False  # taken from the store on resume, not measured again
    converged: bool = True  # the record's stopping rule held (its figures are within their targets)
    remeasured: bool = False  # a second measurement with a longer window, after one that did not converge
    # The conversion stages this point built (() when the cache served all of them); None when the
    # record says nothing of conversions (a backend without any, or a failed point).
    converted: Optional[tuple[str, ...]] = None


@dataclass(frozen=True)
class SweepResult:
    points: list[SweepPoint]
    stop_reason: str
    last_fitting_batch: Optional[int]


def conversion_of(record: Any) -> Optional[tuple[str, ...]]:
    """The stages a record's setup built rather than took from the conversion cache (its
    ``setup.conversion``, bench.backends.artifacts.describe_conversion's shape); None when unknown."""
    conversion = (getattr(record, "setup", None) or {}).get("conversion") or {}
    if "cache_hit" not in conversion:
        return None
    stages = conversion.get("stages") or {}
    return tuple(name for name, stage in stages.items() if not stage.get("cache_hit", False))


def point_from_record(record: Any, reused: bool = False, remeasured: bool = False) -> SweepPoint:
    m = record.metrics or {}
    status = record.status if record.status != "ok" or record.valid else "failed"
    return SweepPoint(int(record.workload.get("batch_size") or 0), status, m.get("throughput_sps"),
                      m.get("latency_p99_ms"), record.id, reused, bool(m.get("converged", True)), remeasured,
                      conversion_of(record))


def batch_sweep(measure: Callable[[int], SweepPoint], start: int, factor: int, cap: int, min_gain: float,
                patience: int, latency_budget_ms: Optional[float],
                remeasure: Optional[Callable[[int], SweepPoint]] = None, require_converged: bool = True) -> SweepResult:
    """With ``require_converged``, the saturation and latency-requirement stops decide on converged
    points only: a point that did not converge is measured once more by ``remeasure`` (a longer
    window); if it still does not, the sweep stops there and says so, rather than deciding on noise."""
    points: list[SweepPoint] = []
    best_prev: Optional[float] = None
    last_fit: Optional[int] = None
    small_gains = 0
    batch = start
    while batch <= cap:
        point = measure(batch)
        points.append(point)
        if require_converged and point.status == "ok" and not point.converged:
            if remeasure is not None:
                point = remeasure(batch)
                points.append(point)
            if point.status == "ok" and not point.converged:
                again = " even measured again with a longer window" if remeasure is not None else ""
                return SweepResult(points, f"batch {batch} did not converge{again}: its figures cannot decide where "
                                           "the sweep stops (see the record's warnings; a quieter machine or a "
                                           "larger scenario.max_duration_s)", last_fit)
        if point.status == "oom":
            fit = f"the last size that fit is {last_fit}" if last_fit else "no size fit"
            return SweepResult(points, f"out of memory at batch {batch}; {fit}", last_fit)
        if point.status == "ok" and point.throughput_sps is not None:
            last_fit = batch
            if latency_budget_ms is not None and point.latency_p99_ms is not None \
                    and point.latency_p99_ms > latency_budget_ms:
                return SweepResult(points, f"p99 latency {point.latency_p99_ms:.3g} ms at batch {batch} breaks the "
                                           f"{latency_budget_ms:g} ms requirement", last_fit)
            if best_prev is not None:
                gain = point.throughput_sps / best_prev - 1.0
                small_gains = small_gains + 1 if gain < min_gain else 0
                if small_gains >= patience:
                    return SweepResult(points, f"throughput grew less than {min_gain:.0%} {patience} times in a row "
                                               f"(at batch {batch})", last_fit)
            best_prev = point.throughput_sps if best_prev is None else max(best_prev, point.throughput_sps)
        # A crash or an exception at one size never stops the others: go on to the next size.
        batch *= factor
    return SweepResult(points, f"reached the cap of batch {cap}", last_fit)


def sweep_records(store: Any, sweep_id: str) -> list[Any]:
    """The records of one sweep: the store's rows, and JSON files a crash left without a row
    (the JSON file is written first), without duplicates."""
    import json

    from bench.results.records import RunRecord, SchemaError

    found = {r.id: r for r in store.select({"sweep_id": [sweep_id]})}
    folder = store.directory / "records"
    if folder.is_dir():
        for path in folder.rglob("*.json"):
            try:
                text = path.read_text(encoding="utf-8")
                if sweep_id not in text:
                    continue
                record = RunRecord.from_dict(json.loads(text))
            except (OSError, ValueError, SchemaError, TypeError):
                continue
            if record.sweep_id == sweep_id:
                found.setdefault(record.id, record)
    return sorted(found.values(), key=lambda r: (r.created_at, r.id))


__all__ += ["sweep_records"]
