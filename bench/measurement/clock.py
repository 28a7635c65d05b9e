"""The clock every measurement reads: monotonic nanoseconds, and waits until a given time.

A clock is read by calling it (``clock()`` or ``clock.now()``); ``reader(clock)`` is the plain
function to call inside a timed region (``time.perf_counter_ns`` itself for the real clock). The
timed loops only read it, so any zero-argument callable returning nanoseconds stands in for one
there (a test's fake). The load dispatcher also waits on it: ``sleep_until`` a time, and
``wait_until`` a time or a notification (an asynchronous batch's completion). ``RealClock`` is
``time.perf_counter_ns`` with real sleeps; tests use a fake clock whose time jumps.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

__all__ = ["Clock", "RealClock", "REAL_CLOCK", "reader"]


class Clock:
    """Monotonic nanoseconds (call it, or ``now()``), and waits until a given time."""

    # A waiter on a condition looks at this clock again at least this often (a fake clock's time moves
    # only when something moves it).
    POLL_S = 0.001

    def now(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self) -> int:
        return self.now()

    def sleep_until(self, t_ns: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def wait_until(self, cond: threading.Condition, t_ns: int) -> None:
        """Wait on ``cond`` (held by the caller) for a notification, or until ``t_ns``; it may return
        early (the caller checks its own predicate and the time again)."""
        cond.wait(timeout=self.POLL_S)


class RealClock(Clock):
    """``time.perf_counter_ns``. ``sleep_until`` sleeps, then spins the last stretch (sleep overshoots
    by tens of microseconds)."""

    SPIN_NS = 200_000
    # Reading it is the builtin itself, with nothing in between: it stands inside timed regions.
    now = staticmethod(time.perf_counter_ns)  # type: ignore[assignment]
    __call__ = staticmethod(time.perf_counter_ns)  # type: ignore[assignment]

    def sleep_until(self, t_ns: int) -> None:
        while True:
            left = t_ns - time.perf_counter_ns()
            if left <= 0:
                return
            if left > self.SPIN_NS:
                time.sleep((left - self.SPIN_NS) / 1e9)

    def wait_until(self, cond: threading.Condition, t_ns: int) -> None:
        left = t_ns - time.perf_counter_ns()
        if left > 0:
            cond.wait(timeout=left / 1e9)


REAL_CLOCK = RealClock()


def reader(clock: "Clock | Callable[[], int]") -> Callable[[], int]:
    """The function that reads ``clock``: its ``now`` (for the real clock, ``time.perf_counter_ns``
    itself, so a timed region holds nothing but the builtin), or a plain callable as it is."""
    return clock.now if isinstance(clock, Clock) else clock
