"""Host memory of a process: the resident set now (VmRSS) and its peak (VmHWM) from /proc, and a
reset of the peak between phases (writing 5 to /proc/PID/clear_refs), so that the measured phase's
peak is not the build's."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from bench.system.sensors import Channel, Probe, Sensor

__all__ = ["ProcessMemorySensor", "read_status_kib", "reset_peak_rss", "peak_rss_mib"]


def read_status_kib(pid: int | str, field: str) -> Optional[int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def peak_rss_mib(pid: int | str = "self") -> Optional[float]:
    kib = read_status_kib(pid, "VmHWM")
    return None if kib is None else kib / 1024.0


def reset_peak_rss(pid: int | str = "self") -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+); False where the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class ProcessMemorySensor(Sensor):
    name = "process_memory"
    group = "memory"

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def probe(self) -> Probe:
        if read_status_kib(self.pid, "VmRSS") is None:
            return Probe(self.name, False, f"/proc/{self.pid}/status has no VmRSS (not Linux, or the process is gone)")
        return Probe(self.name, True, channels=(
            Channel("host_rss", "MiB", "gauge", "host_rss", "the worker process", 0.0),
            Channel("host_rss_peak", "MiB", "gauge", "host_rss", "the worker process", 0.0),
        ))

    def read(self) -> dict[str, float]:
        rss = read_status_kib(self.pid, "VmRSS")
        peak = read_status_kib(self.pid, "VmHWM")
        values = {}
        if rss is not None:
            values["host_rss"] = rss / 1024.0
        if peak is not None:
            values["host_rss_peak"] = peak / 1024.0
        return values
