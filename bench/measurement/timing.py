"""Bounded timing of a call repeated back to back: "time it until N runs and T seconds, but never
longer than T_max". The warm-up (bench.measurement.loop.warm_up), the load scenarios' service time,
LoadGen's calibration and the fit's repeats all time their calls through ``timed_runs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

from bench.measurement.clock import REAL_CLOCK, Clock, reader

__all__ = ["TimedRuns", "timed_runs"]


@dataclass
class TimedRuns:
    durations_ns: list[int]  # each call (and its synchronize), timed alone
    elapsed_ns: int  # from the first clock read to the last
    # "runs_and_time": min_runs calls and min_s seconds; "max_time": max_s passed first
    stop: str


def timed_runs(fn: Callable[[], Any], sync: Optional[Callable[[], None]] = None, min_runs: int = 1,
               min_s: float = 0.0, max_s: float = math.inf, clock: Clock = REAL_CLOCK) -> TimedRuns:
    """Call ``fn`` (then ``sync``, inside the clock pair) back to back until at least ``min_runs``
    calls and ``min_s`` seconds have passed, or ``max_s`` has, whichever comes first. At least one
    call; the bounds are checked after each call, never inside one."""
    clock = reader(clock)
    durations: list[int] = []
    min_ns = int(min_s * 1e9)
    max_ns = int(max_s * 1e9) if math.isfinite(max_s) else None
    start = clock()
    while True:
        t0 = clock()
        fn()
        if sync is not None:
            sync()
        t1 = clock()
        durations.append(t1 - t0)
        spent = t1 - start
        if len(durations) >= min_runs and spent >= min_ns:
            return TimedRuns(durations, spent, "runs_and_time")
        if max_ns is not None and spent >= max_ns:
            return TimedRuns(durations, spent, "max_time")
