"""The continual-learning timeline: requests are served by whichever model version is current while
the inputs drift, a detector watches them, and an adaptation (run by the caller, off the serving
path) swaps an adapted model in. One timeline, one adaptation.

``run_timeline`` serves scheduled arrivals through the one load dispatcher (bench.measurement.load);
each batch is served by the model the ``ModelSlot`` holds when the batch starts, so a batch runs on
one version from start to end, and a swap takes effect at the next batch (``ModelSlot.swap`` replaces
version and model together, under a lock: no request sees half of an update). A request's inputs are
the drifted ones when it arrives at or after the drift time. Before each batch runs, the drift
detector takes the batch's features (their computation and the test are timed, and part of the
batch's latency, as in a deployment that watches its inputs on the serving path); when it fires,
``on_detect`` starts the adaptation and returns at once.

The phases are cut by arrival time at the timeline's marks: ``steady`` until the drift, ``drifted``
until the detection, ``adapting`` until the swap, ``adapted`` to the end (a phase that never began is
absent). A detection before the drift is a false alarm: the timeline then has no ``drifted`` phase and
says so. ``phase_results`` cuts the raw result into one ServeResult per phase, whose
latency_summary gives each phase's percentiles with their intervals.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from bench.measurement.clock import REAL_CLOCK, Clock
from bench.measurement.load.dispatch import LoadSettings, ServeResult, dispatch
from bench.measurement.load.summary import latency_summary

__all__ = ["PHASES", "Marks", "ModelSlot", "ContinualResult", "run_timeline", "phase_bounds", "phase_results",
           "phase_summaries", "degradation"]

PHASES = ("steady", "drifted", "adapting", "adapted")


class Marks:
    """Named events of a timeline on its clock (thread-safe): the first mark of a name stands."""

    def __init__(self, clock: Optional[Clock] = None) -> None:
        self.clock = clock or REAL_CLOCK
        self._lock = threading.Lock()
        self._marks: dict[str, int] = {}

    def mark(self, name: str, at_ns: Optional[int] = None) -> int:
        t = self.clock.now() if at_ns is None else int(at_ns)
        with self._lock:
            return self._marks.setdefault(name, t)

    def get(self, name: str) -> Optional[int]:
        with self._lock:
            return self._marks.get(name)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._marks)


class ModelSlot:
    """The model being served and its version. ``current()`` is read once per batch; ``swap`` replaces
    both together and marks the time (``swapped``, the first swap)."""

    def __init__(self, model: Any, marks: Marks) -> None:
        self._lock = threading.Lock()
        self._current: tuple[int, Any] = (0, model)
        self.marks = marks

    def current(self) -> tuple[int, Any]:
        with self._lock:
            return self._current

    def swap(self, model: Any) -> int:
        with self._lock:
            version = self._current[0] + 1
            self._current = (version, model)
            self.marks.mark("swapped" if version == 1 else f"swapped_{version}")
        return version


@dataclass
class ContinualResult:
    """The raw timeline: the dispatcher's result, the model version that served each request (-1:
    dropped), whether its inputs were drifted, the marks as offsets (ns) from the window's start, the
    detector's summary and each batch's detector cost (ns)."""

    serve: ServeResult
    versions: list[int]
    drifted: list[bool]
    marks_ns: dict[str, int]
    detector: dict[str, Any]
    detector_ns: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["serve"] = self.serve.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ContinualResult":
        return cls(**{**data, "serve": ServeResult.from_dict(data["serve"])})


# run(model, first, k, drifted): serve requests first..first+k-1 on ``model`` to completion.
RunBatch = Callable[[Any, int, int, bool], None]


def run_timeline(arrivals_ns: np.ndarray, settings: LoadSettings, duration_ns: int, drift_at_ns: int,
                 slot: ModelSlot, run_batch: RunBatch, batch_features: Callable[[int, int, bool], np.ndarray],
                 detector: Any, on_detect: Callable[[dict[str, Any]], None],
                 submit: Optional[Callable[[Any, int, int, bool, Callable[[], None]], None]] = None,
                 capacity: int = 1, after_swap_ns: Optional[int] = None) -> ContinualResult:
    """Serve ``arrivals_ns`` (offsets within ``duration_ns``) with drift from ``drift_at_ns``; see the
    module docstring. ``batch_features(first, k, drifted)`` are the features of a batch's inputs;
    ``detector.update(features)`` returns the detection or None. ``submit`` (with ``capacity`` > 1)
    serves through an asynchronous API, ``submit(model, first, k, drifted, on_done)``. With
    ``after_swap_ns`` the arrivals end that long after the swap (or after the adaptation's failure,
    marked ``adaptation_failed`` or ``parity_failed``), ``duration_ns`` being the longest timeline."""
    clock = slot.marks.clock
    arrivals = np.asarray(arrivals_ns, dtype=np.int64)
    n = int(arrivals.size)
    versions = np.full(n, -1, dtype=np.int64)
    drifted_at = arrivals >= drift_at_ns
    detector_ns: list[int] = []
    cursor = [0]

    def before(k: int) -> tuple[int, Any, bool]:
        first = cursor[0]
        cursor[0] += k
        drifted = bool(drifted_at[first])
        t0 = clock.now()
        found = detector.update(batch_features(first, k, drifted)) if detector is not None else None
        detector_ns.append(clock.now() - t0)
        if found is not None:
            slot.marks.mark("detected")
            on_detect(found)
        version, model = slot.current()
        versions[first:first + k] = version
        return first, model, drifted

    def submit_sync(k: int, on_done: Callable[[], None]) -> None:
        first, model, drifted = before(k)
        run_batch(model, first, k, drifted)
        on_done()

    def submit_async(k: int, on_done: Callable[[], None]) -> None:
        first, model, drifted = before(k)
        submit(model, first, k, drifted, on_done)  # type: ignore[misc]

    origin = clock.now()
    slot.marks.mark("start", origin)
    slot.marks.mark("drift", origin + int(drift_at_ns))
    concurrent = submit is not None and capacity > 1
    def end_at() -> Optional[int]:
        for name in ("swapped", "parity_failed", "adaptation_failed"):
            t = slot.marks.get(name)
            if t is not None:
                return t + int(after_swap_ns)  # type: ignore[arg-type]
        return None

    result = dispatch(arrivals, submit_async if concurrent else submit_sync, capacity if concurrent else 1,
                      settings, duration_ns, clock, origin_ns=origin,
                      end_at=end_at if after_swap_ns is not None else None)
    versions = versions[:len(result.arrivals_ns)]
    drifted_at = drifted_at[:len(result.arrivals_ns)]
    for index in result.extra.get("unserved", []):
        versions[index] = -1
    marks = {name: t - origin for name, t in slot.marks.snapshot().items() if name != "start"}
    summary = detector.summary() if detector is not None else {}
    return ContinualResult(serve=result, versions=versions.tolist(), drifted=drifted_at.tolist(), marks_ns=marks,
                           detector=summary, detector_ns=detector_ns)


def phase_bounds(marks_ns: dict[str, int], duration_ns: int) -> dict[str, tuple[int, int]]:
    """Each phase's [start, end) in arrival offsets (see the module docstring); phases that never
    began are absent."""
    end = int(duration_ns)
    drift = min(int(marks_ns.get("drift", end)), end)
    detected = marks_ns.get("detected")
    swapped = marks_ns.get("swapped")
    bounds: dict[str, tuple[int, int]] = {}
    if detected is None:
        bounds["steady"] = (0, drift)
        bounds["drifted"] = (drift, end)
    else:
        detected = min(int(detected), end)
        finish = end if swapped is None else min(int(swapped), end)
        if detected >= drift:
            bounds["steady"] = (0, drift)
            bounds["drifted"] = (drift, detected)
        else:  # a false alarm: the adaptation began before the inputs drifted
            bounds["steady"] = (0, detected)
        bounds["adapting"] = (detected, finish)
        bounds["adapted"] = (finish, end)
    return {name: span for name, span in bounds.items() if span[1] > span[0]}


def phase_results(result: ContinualResult, duration_ns: Optional[int] = None) -> dict[str, ServeResult]:
    """One ServeResult per phase: the requests that arrived in it, their latencies, late and dropped.
    ``duration_ns``: the arrival window (default: the one that was served, ended early or not)."""
    serve = result.serve
    duration_ns = serve.duration_ns if duration_ns is None else duration_ns
    arrivals = np.asarray(serve.arrivals_ns, dtype=np.int64)
    latencies = np.asarray(serve.latencies_ns, dtype=np.int64)
    unserved = np.zeros(arrivals.size, dtype=bool)
    unserved[np.asarray(serve.extra.get("unserved", []), dtype=np.int64)] = True
    out: dict[str, ServeResult] = {}
    for name, (lo, hi) in phase_bounds(result.marks_ns, duration_ns).items():
        mask = (arrivals >= lo) & (arrivals < hi)
        lat = latencies[mask]
        dropped = int(np.count_nonzero(unserved[mask]))
        served_lat = lat[~unserved[mask]]
        late = int(np.count_nonzero(served_lat > serve.slo_ns)) + dropped
        span = hi - lo
        last = int((arrivals[mask] + lat).max()) if lat.size else hi
        out[name] = ServeResult(
            offered_qps=int(mask.sum()) / (span / 1e9), arrivals_ns=(arrivals[mask] - lo).tolist(),
            latencies_ns=lat.tolist(), dropped=dropped, batch_sizes=[], service_ns=[], duration_ns=span,
            elapsed_ns=max(last - lo, span), stop_reason=serve.stop_reason, late=late, slo_ns=serve.slo_ns)
    return out


def phase_summaries(result: ContinualResult, confidence: float,
                    duration_ns: Optional[int] = None) -> dict[str, dict[str, Any]]:
    """latency_summary of each phase, with its bounds (s from the window's start) and the model
    versions that served it."""
    duration_ns = result.serve.duration_ns if duration_ns is None else duration_ns
    bounds = phase_bounds(result.marks_ns, duration_ns)
    arrivals = np.asarray(result.serve.arrivals_ns, dtype=np.int64)
    versions = np.asarray(result.versions, dtype=np.int64)
    out: dict[str, dict[str, Any]] = {}
    for name, part in phase_results(result, duration_ns).items():
        lo, hi = bounds[name]
        mask = (arrivals >= lo) & (arrivals < hi)
        served_by = sorted({int(v) for v in versions[mask] if v >= 0})
        out[name] = {"start_s": lo / 1e9, "end_s": hi / 1e9, "versions": served_by,
                     **latency_summary(part, confidence)}
    return out


def degradation(steady: dict[str, Any], other: dict[str, Any], name: str) -> dict[str, Optional[float]]:
    """The ratio of a latency percentile (``name``: p50, p99) in a phase to the steady one, with a
    conservative interval from the two percentiles' intervals (low: the phase's low over steady's
    high; high: the phase's high over steady's low); None where an end is unbounded."""
    def get(summary: dict[str, Any], key: str) -> Optional[float]:
        value = summary.get(f"latency_{name}{key}_ms")
        return float(value) if value is not None else None

    point, base = get(other, ""), get(steady, "")
    lo_o, hi_o, lo_s, hi_s = get(other, "_ci_low"), get(other, "_ci_high"), get(steady, "_ci_low"), get(steady, "_ci_high")
    ratio = point / base if point is not None and base else None
    low = lo_o / hi_s if lo_o is not None and hi_s else None
    high = hi_o / lo_s if hi_o is not None and lo_s else None
    return {"ratio": ratio, "ci_low": low, "ci_high": high}
