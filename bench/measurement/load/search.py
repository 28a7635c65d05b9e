"""The load scenarios' searches: the highest server rate (``find_peak``) and the most multistream
streams (``find_streams``) whose latency percentile meets the requirement, by bisection between a
value that meets it and one that does not. Each probe is a ``ServeResult`` from the caller."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

from bench.measurement.load.dispatch import ServeResult, allowed_late

__all__ = ["meets", "SearchResult", "find_peak", "find_streams"]


def meets(result: ServeResult, percentile: float) -> bool:
    """Whether the nearest-rank ``percentile`` of the latencies is within the requirement."""
    n = len(result.latencies_ns)
    return n > 0 and result.late <= allowed_late(n, percentile)


@dataclass
class SearchResult:
    best: Optional[float]  # the highest rate (or stream count) that met the requirement
    probes: list[dict[str, Any]]  # every probe: value, verdict, p99, late, stop reason
    best_result: Optional[ServeResult]
    stop_reason: str  # "converged", "max_probes", "none_meets", "upper_limit"

    def to_dict(self) -> dict[str, Any]:
        return {"best": self.best, "probes": self.probes, "stop_reason": self.stop_reason}


def _probe_record(value: float, result: ServeResult, ok: bool, percentile: float) -> dict[str, Any]:
    """One probe as the search saw it: its verdict, and the nearest-rank percentile the verdict is
    about (the value at rank ceil(q n): with 100 requests the 99th percentile is the 99th slowest)."""
    lat = sorted(result.latencies_ns)
    at = lat[max(0, math.ceil(percentile * len(lat)) - 1)] / 1e6 if lat else None
    return {"value": value, "meets": ok, "queries": len(lat), "late": result.late, "dropped": result.dropped,
            "percentile": percentile, "latency_at_percentile_ms": at, "stop_reason": result.stop_reason}


def find_peak(probe: Callable[[float], ServeResult], capacity_qps: float, percentile: float,
              rel_tolerance: float = 0.05, max_probes: int = 10,
              out_of_time: Optional[Callable[[], bool]] = None) -> SearchResult:
    """The highest arrival rate whose ``percentile`` latency meets the requirement, by bisection.

    ``capacity_qps`` (batch_size / service time) seeds the bracket: the first probe is at 90% of it;
    the bracket grows by doubling upward while probes pass and halves downward while they fail.
    Stops when the bracket is within ``rel_tolerance`` of its upper end, after ``max_probes``, or
    when ``out_of_time()`` says so (checked between probes)."""
    probes: list[dict[str, Any]] = []
    good: Optional[float] = None
    good_result: Optional[ServeResult] = None
    bad: Optional[float] = None
    rate = 0.9 * capacity_qps
    stop = "max_probes"
    for _ in range(max_probes):
        if probes and out_of_time is not None and out_of_time():
            stop = "time_limit"
            break
        result = probe(rate)
        ok = meets(result, percentile)
        probes.append(_probe_record(rate, result, ok, percentile))
        if ok:
            good, good_result = rate, result
        else:
            bad = rate
        if good is not None and bad is not None:
            if bad - good <= rel_tolerance * bad:
                return SearchResult(good, probes, good_result, "converged")
            rate = 0.5 * (good + bad)
        elif good is None:
            rate = rate / 2  # nothing passed yet: halve
        else:
            rate = rate * 2  # nothing failed yet: double
    if good is None:
        return SearchResult(None, probes, None, "none_meets")
    return SearchResult(good, probes, good_result, stop)


def find_streams(probe: Callable[[int], ServeResult], capacity_streams: float, percentile: float,
                 max_streams: int = 4096, max_probes: int = 16,
                 out_of_time: Optional[Callable[[], bool]] = None) -> SearchResult:
    """The most streams whose ``percentile`` latency meets the requirement: integers, bisection
    seeded at the capacity estimate, the bracket widened until it holds a pass and a fail."""
    probes: list[dict[str, Any]] = []
    good, bad = 0, max_streams + 1
    good_result: Optional[ServeResult] = None
    n = max(1, min(max_streams, int(capacity_streams * 0.9)))
    tried: set[int] = set()
    timed_out = False
    while len(probes) < max_probes:
        if probes and out_of_time is not None and out_of_time():
            timed_out = True
            break
        tried.add(n)
        result = probe(n)
        ok = meets(result, percentile)
        probes.append(_probe_record(float(n), result, ok, percentile))
        if ok:
            good, good_result = n, result
        else:
            bad = n
        if bad - good <= 1:
            break
        if bad > max_streams:
            n = min(max_streams, good * 2)
            if n in tried:  # max_streams itself passed
                return SearchResult(float(good), probes, good_result, "upper_limit")
        elif good == 0:
            n = max(1, bad // 2)
            if n in tried:
                break
        else:
            n = (good + bad) // 2
    if good == 0:
        return SearchResult(None, probes, None, "none_meets")
    reason = "converged" if bad - good <= 1 else ("time_limit" if timed_out else "max_probes")
    return SearchResult(float(good), probes, good_result, reason)
