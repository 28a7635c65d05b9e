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
from pathlib import Path
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

    from bench.errors import StoreError
    from bench.results.records import RunRecord, SchemaError

    try:
        found = {r.id: r for r in store.select({"sweep_id": [sweep_id]})}
    except StoreError:
        if not _no_database(store):
            raise
        found = {}  # a store opened for reading that has no database yet: the JSON files alone
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


def _no_database(store: Any) -> bool:
    """``store`` is opened for reading only (nothing created) and its SQLite file does not exist."""
    import sqlalchemy as sa

    if store.create or not store.is_sqlite:
        return False
    database = sa.engine.make_url(store.url).database
    return bool(database) and database != ":memory:" and not Path(database).is_file()


# What a resumed sweep may change: the keys that decide where records go, how they are labelled, and
# which points are measured, but not how a point is measured. batch_size and suite.only are set per
# point in a record's config. results.*: where records are stored (results.url is masked in records);
# resume and tag: the sweep's id and a label; worker.timeout_s: when a hung worker is killed;
# cache.*: whether a conversion is rebuilt or taken from the cache (the setup time differs, not the
# measured figures); sweep.min_gain, patience, respect_latency_requirement, require_converged: where
# the sweep stops. sweep.start, factor and max_batch choose the sizes too, but their largest size
# (sweep_batches(...)[-1]) is the largest batch every point's conversion covers, and TensorRT tunes
# its profile for it (bench.orchestration.protocol's max_batch_size): they may change only while that
# size stays the same. Everything else (suite, backend, scenario, sensors, model, data, repeats,
# worker.memory_limit_mib) changes what a point measures: a resume with another value would mix two
# experiments in one sweep.
RESUME_MAY_CHANGE = ("batch_size", "suite.only", "results.", "resume", "tag", "worker.timeout_s", "cache.",
                     "sweep.min_gain", "sweep.patience", "sweep.respect_latency_requirement",
                     "sweep.require_converged")
_SWEEP_SIZES = ("sweep.start", "sweep.factor", "sweep.max_batch")


def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(config, dict):
        return {prefix[:-1]: config}
    out: dict[str, Any] = {}
    for key, value in config.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) and value else {f"{prefix}{key}": value})
    return out


def _largest(flat: dict[str, Any]) -> Optional[int]:
    try:
        return sweep_batches(*(int(flat[k]) for k in _SWEEP_SIZES))[-1]
    except (KeyError, TypeError, ValueError):
        return None


def resume_conflicts(recorded: dict[str, Any], current: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, the sweep's value, this command's value) for every key of a sweep's record config
    (``recorded``) that ``current`` (bench.config.schema.as_plain of the resuming config) sets otherwise,
    beyond RESUME_MAY_CHANGE (and sweep.start, factor, max_batch while the largest size is the same).
    A key the record lacks (written by an older bench) is not compared."""
    old, new = _flat(recorded or {}), _flat(current)
    same_largest = _largest(old) == _largest(new)
    differ = []
    for key in sorted(old):
        if any(key == k or k.endswith(".") and key.startswith(k) for k in RESUME_MAY_CHANGE):
            continue
        if key in _SWEEP_SIZES and same_largest:
            continue
        if old.get(key) != new.get(key):
            differ.append((key, old.get(key), new.get(key)))
    return differ


__all__ += ["sweep_records", "resume_conflicts", "RESUME_MAY_CHANGE"]
