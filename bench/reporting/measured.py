"""What `bench list --measured` joins to the catalog: for each workload and scenario, the best
converged result of each hardware x backend in the store, ranked.

Nothing is ranked here that the leaderboard does not rank the same way: bench.reporting.leaderboard
builds its tables (valid records; per hardware x backend x precision x batch the best-supported
record; the scenario's ranking metric: throughput for throughput, p99 latency for latency, the
search's answer for server and multistream), and its ``rank_rows`` orders and ties them. This module
only folds a workload's tables over batch sizes and precisions: each hardware x backend (x device)
keeps its best row, rows whose record did not converge are left out (counted in a note), and the
rows kept are ranked again with ``rank_rows``, ties and unbounded intervals included.
"""

from __future__ import annotations

from typing import Any, Sequence

from bench.errors import ConfigError
from bench.reporting import leaderboard as lb
from bench.results import support
from bench.results.records import RunRecord

__all__ = ["best_per_workload"]


def _result(row: lb.Row, spec: lb.MetricSpec) -> dict[str, Any]:
    figure = row.figures[spec.name]
    return {"rank": row.rank, "tie": row.tie, "rank_text": row.rank_text, "hardware": row.hardware,
            "backend": row.backend, "device": row.device, "backend_text": row.backend_text,
            "precision": row.precision, "batch_size": row.record.workload.get("batch_size"),
            "value": figure.value, "ci_low": figure.low if figure.has_ci else None,
            "ci_high": figure.high if figure.has_ci else None, "has_ci": figure.has_ci,
            "converged": support.converged(row.record), "record_id": row.record.id,
            "created_at": row.record.created_at}


def best_per_workload(records: Sequence[RunRecord]) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], list[str]]:
    """``{(suite, workload): [{scenario, metric, unit, higher_is_better, results: [...]}, ...]}`` and
    notes. ``results`` holds one entry per hardware x backend, best first, with the leaderboard's rank."""
    notes: list[str] = []
    try:
        board = lb.build(records)
    except ConfigError:  # no valid record: nothing to join
        return {}, [f"{len(records)} stored record(s), none valid (failed, skipped, or outputs differ from the "
                    "reference)"] if records else []
    tables: dict[tuple[str, str, str, str], list[lb.Row]] = {}
    specs: dict[str, lb.MetricSpec] = {}
    unconverged = 0
    for group in board.groups:
        specs[group.metric.name] = group.metric
        for row in group.rows:
            if support.converged(row.record) is False:
                unconverged += 1
                continue
            # A continual table's load stays in its scenario: times to adapt at two loads are not ranked together.
            scenario = f"{group.scenario} at {group.load}" if group.load else group.scenario
            tables.setdefault((group.suite, group.workload, scenario, group.metric.name), []).append(row)
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (suite, workload, scenario, metric), rows in tables.items():
        spec = specs[metric]
        best: dict[tuple[str, str, str], lb.Row] = {}
        for row in lb.rank_rows(rows, spec):  # best first: the first row of a combination is its best
            best.setdefault((row.hardware, row.backend, row.device), row)
        ranked = [r for r in lb.rank_rows(list(best.values()), spec) if r.figures[spec.name].value is not None]
        if ranked:
            out.setdefault((suite, workload), []).append({
                "scenario": scenario, "metric": metric, "unit": spec.unit, "higher_is_better": spec.higher_is_better,
                "results": [_result(r, spec) for r in ranked]})
    if unconverged:
        notes.append(f"{unconverged} best-supported result(s) left out: they did not converge (bench leaderboard "
                     "shows them)")
    return out, notes
