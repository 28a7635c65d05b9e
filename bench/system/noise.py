"""Evidence of noise, recorded with each result: what else ran on the host, and how fast it was.

A benchmark on a shared machine is only as good as the quiet it ran in. Rather than assume quiet,
each measurement window is bracketed by two :class:`HostSnapshot` readings and a short
:func:`compute_speed_check`; :func:`window_noise` turns the pair into numbers a warning rule can
judge (foreign CPU load, hypervisor steal, pressure). Thresholds live with the warnings, not here.

Parsers take text and arithmetic takes snapshots, so all of it is testable on made-up inputs;
file paths are module-level constants and every read goes through :func:`_read_text`.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import psutil

# The one reader of host files (a module attribute here too, so tests can replace it for this module).
from bench.system.fingerprint import _read_text

__all__ = [
    "HostSnapshot",
    "WindowNoise",
    "CpuTimes",
    "snapshot",
    "own_cpu_seconds",
    "window_noise",
    "compute_speed_check",
    "cpu_times",
    "parse_cpu_pressure",
    "SPEED_KERNEL",
]

PROC_PRESSURE_CPU = "/proc/pressure/cpu"

# Bump the version whenever the kernel's work changes: ops/s are comparable only within one version.
SPEED_KERNEL = "numpy-sort-20000-float64/v2"
# One chunk sorts this many float64 values (about 0.6 ms on a current core): compiled, single-threaded
# code with no BLAS. A pure-Python kernel (v1) drifted by 12% within one process for reasons of the
# interpreter's own (allocation state), not of the host, and raised false speed-drift warnings.
_SPEED_CHUNK_ITERATIONS = 20_000
_SPEED_DATA: list[Any] = []


class CpuTimes(NamedTuple):
    """System-wide CPU time since boot, in seconds, summed over all CPUs."""

    busy_s: float
    total_s: float
    steal_s: float


def cpu_times() -> CpuTimes | None:
    """The host's CPU times now, from psutil (on Linux, /proc/stat's aggregate ``cpu`` line); None where
    psutil cannot read them.

    busy = user + nice + system + irq + softirq + steal; total = busy + idle + iowait. guest and
    guest_nice are left out because the kernel already counts them inside user and nice. Steal is
    counted as busy: it is CPU this host wanted and someone else (another VM) got. A field the platform
    lacks (steal outside Linux) counts as zero.
    """
    try:
        t = psutil.cpu_times()
    except Exception:  # noqa: BLE001 - no reading rather than no measurement
        return None
    field = lambda name: float(getattr(t, name, 0.0) or 0.0)  # noqa: E731
    busy = sum(field(n) for n in ("user", "nice", "system", "irq", "softirq", "steal"))
    return CpuTimes(busy, busy + field("idle") + field("iowait"), field("steal"))


def parse_cpu_pressure(text: str) -> float | None:
    """The ``some avg10`` of /proc/pressure/cpu, in percent of time some task waited for a CPU."""
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] != "some":
            continue
        for field in fields[1:]:
            key, _, value = field.partition("=")
            if key == "avg10":
                try:
                    return float(value)
                except ValueError:
                    return None
    return None


@dataclass(frozen=True)
class HostSnapshot:
    """One reading of the host's load; two of them bracket a measurement window.

    Any reading the host does not offer (no PSI on older kernels, no CPU times where psutil cannot read them) is
    None rather than zero, so "quiet" and "unknown" stay apart.
    """

    time_ns: int
    loadavg: tuple[float, float, float] | None
    cpu_pressure_some_avg10: float | None
    cpu_busy_s: float | None
    cpu_total_s: float | None
    steal_s: float | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["loadavg"] = list(self.loadavg) if self.loadavg is not None else None
        return data


def snapshot() -> HostSnapshot:
    """Read the host's load now. Cheap (a few small /proc reads), never raises."""
    time_ns = time.monotonic_ns()
    try:
        load: tuple[float, float, float] | None = os.getloadavg()
    except (OSError, AttributeError):
        load = None
    pressure_text = _read_text(PROC_PRESSURE_CPU)
    pressure = parse_cpu_pressure(pressure_text) if pressure_text is not None else None
    times = cpu_times()
    return HostSnapshot(
        time_ns=time_ns,
        loadavg=load,
        cpu_pressure_some_avg10=pressure,
        cpu_busy_s=times.busy_s if times else None,
        cpu_total_s=times.total_s if times else None,
        steal_s=times.steal_s if times else None,
    )


def _cpu_seconds(proc: psutil.Process, with_reaped_children: bool) -> float:
    times = proc.cpu_times()
    seconds = times.user + times.system
    if with_reaped_children:
        # Children that already exited and were waited for live on here; without them a worker
        # that ends inside the window would make the own-CPU delta shrink.
        seconds += getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0)
    return seconds


def own_cpu_seconds(pid: int | None = None, include_children: bool = True) -> float:
    """CPU seconds (user + system) used so far by a process and, if asked, all its descendants.

    Descendants count whether still running (walked now) or already exited and reaped (their
    times are in the parent's children_* counters), so the difference of two calls is the CPU the
    whole process tree used in between. A descendant that vanishes mid-walk is skipped; the process
    ``pid`` itself not existing raises ``psutil.NoSuchProcess``, since a silent 0 would corrupt the
    caller's delta.
    """
    root = psutil.Process(pid)
    total = _cpu_seconds(root, include_children)
    if not include_children:
        return total
    try:
        descendants = root.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return total
    for child in descendants:
        try:
            total += _cpu_seconds(child, True)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return total


@dataclass(frozen=True)
class WindowNoise:
    """What the host did besides our work during one measurement window.

    ``foreign_cpu_cores``: CPU used by other processes (and stolen by the hypervisor), in cores,
    averaged over the window. ``foreign_cpu_fraction`` relates it to the CPUs this process may use;
    /proc/stat counts every CPU of the host, so when affinity restricts us to a subset this is an
    upper bound (the foreign load may sit on CPUs we never touch).
    """

    window_s: float
    own_cpu_s: float
    usable_cpus: int
    foreign_cpu_cores: float | None
    foreign_cpu_fraction: float | None
    steal_fraction: float | None
    loadavg_1m_before: float | None
    loadavg_1m_after: float | None
    cpu_pressure_before: float | None
    cpu_pressure_after: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def window_noise(
    before: HostSnapshot, after: HostSnapshot, own_cpu_s: float, usable_cpus: int
) -> WindowNoise:
    """Noise of the window between two snapshots. ``own_cpu_s`` is the CPU our process tree used
    in that window (a difference of two :func:`own_cpu_seconds`), subtracted so that only other
    load remains. Pure: same snapshots in, same numbers out.
    """
    window_s = (after.time_ns - before.time_ns) / 1e9
    if window_s <= 0:
        raise ValueError(f"window_noise: 'after' must be later than 'before' (window {window_s} s)")
    if usable_cpus < 1:
        raise ValueError(f"window_noise: usable_cpus must be at least 1, got {usable_cpus}")

    foreign: float | None = None
    if before.cpu_busy_s is not None and after.cpu_busy_s is not None:
        busy = after.cpu_busy_s - before.cpu_busy_s
        # Clamped: /proc/stat ticks (10 ms) and psutil's own-CPU reading round differently, so on
        # a quiet host the difference can dip just below zero.
        foreign = max(0.0, (busy - own_cpu_s) / window_s)

    steal: float | None = None
    if None not in (before.steal_s, after.steal_s, before.cpu_total_s, after.cpu_total_s):
        total = after.cpu_total_s - before.cpu_total_s  # type: ignore[operator]
        if total > 0:
            steal = max(0.0, (after.steal_s - before.steal_s) / total)  # type: ignore[operator]

    return WindowNoise(
        window_s=window_s,
        own_cpu_s=own_cpu_s,
        usable_cpus=usable_cpus,
        foreign_cpu_cores=foreign,
        foreign_cpu_fraction=foreign / usable_cpus if foreign is not None else None,
        steal_fraction=steal,
        loadavg_1m_before=before.loadavg[0] if before.loadavg else None,
        loadavg_1m_after=after.loadavg[0] if after.loadavg else None,
        cpu_pressure_before=before.cpu_pressure_some_avg10,
        cpu_pressure_after=after.cpu_pressure_some_avg10,
    )


def _speed_chunk(n: int) -> float:
    """Sort the same ``n`` seeded float64 values (a copy each time); returns a checksum."""
    import numpy as np

    if not _SPEED_DATA or len(_SPEED_DATA[0]) != n:
        _SPEED_DATA[:] = [np.random.default_rng(1234).random(n)]
    out = np.sort(_SPEED_DATA[0])
    return float(out[0] + out[-1])


def compute_speed_check(duration_s: float = 0.1) -> dict[str, Any]:
    """Single-threaded speed of this host now, to compare just before and just after a measurement.

    Repeats one fixed chunk of work (always the same operations) until ``duration_s`` has passed,
    after one untimed chunk (data created, caches warm). ``ops_per_s`` (values sorted per second) is
    over the whole duration (it drops with contention); ``best_ops_per_s`` is the fastest chunk (it
    drops with frequency throttling but not with a brief preemption). The kernel string names the
    kernel and the Python version: figures compare only under the same ones.
    """
    _speed_chunk(_SPEED_CHUNK_ITERATIONS)
    chunks = 0
    best = float("inf")
    start = time.perf_counter()
    now = start
    while chunks == 0 or now - start < duration_s:
        t0 = now
        _speed_chunk(_SPEED_CHUNK_ITERATIONS)
        now = time.perf_counter()
        best = min(best, now - t0)
        chunks += 1
    elapsed = now - start
    ops = chunks * _SPEED_CHUNK_ITERATIONS
    # A clock that did not move (coarse timer) would divide by zero; report no number then.
    return {
        "ops_per_s": ops / elapsed if elapsed > 0 else float("nan"),
        "best_ops_per_s": _SPEED_CHUNK_ITERATIONS / best if best > 0 else float("nan"),
        "duration_s": elapsed,
        "chunks": chunks,
        "kernel": f"{SPEED_KERNEL} {platform.python_implementation().lower()}-{platform.python_version()}",
    }
