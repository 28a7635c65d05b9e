"""Sensors as plugins: power and energy (NVIDIA GPUs through NVML, CPU package and DRAM through
Linux powercap/RAPL) and memory (the worker's resident set).

Each sensor says whether it can run here and, if not, why (``probe``), reads one time-stamped
sample (``read``), and describes its readings (``channels``: unit, scope, counter or gauge, update
period, wrap range). The sampler process (bench.system.sensors.sampler) reads them on a schedule; the
worker marks the measured window; bench.results.energy turns samples into figures with their provenance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

__all__ = ["Channel", "Probe", "Sensor", "SENSOR_KINDS", "make_sensors", "probe_all"]


@dataclass(frozen=True)
class Channel:
    """One reading a sensor gives. ``kind`` "counter" (monotonic energy, may wrap at ``wrap``) or
    "gauge" (instantaneous power or memory). ``domain`` names what it measures (gpu0, cpu_package0,
    dram0, host_rss)."""

    name: str
    unit: str  # "J" for counters, "W" or "MiB" for gauges
    kind: str
    domain: str
    scope: str  # what the reading covers: "the whole GPU", "one CPU package", "the worker process"
    update_period_s: float  # how often the source itself refreshes the value
    wrap: Optional[float] = None  # a counter's range, in its unit, after which it starts again at 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Probe:
    name: str
    available: bool
    reason: str = ""
    channels: tuple[Channel, ...] = field(default_factory=tuple)
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "available": self.available, "reason": self.reason,
                "channels": [c.to_dict() for c in self.channels], "info": self.info}


class Sensor:
    """Base of every sensor. ``read`` returns {channel name: value} for one instant."""

    name = "sensor"
    group = "power"  # "power" or "memory": which sampling rate applies

    def probe(self) -> Probe:
        raise NotImplementedError

    def read(self) -> dict[str, float]:
        raise NotImplementedError

    def close(self) -> None:
        pass


SENSOR_KINDS = ("powercap", "nvml", "process_memory")


def make_sensors(options: dict[str, Any]) -> list[Sensor]:
    """The sensors the options ask for (all by default), available or not."""
    from bench.system.sensors.memory import ProcessMemorySensor
    from bench.system.sensors.nvml import NvmlSensor
    from bench.system.sensors.powercap import PowercapSensor

    sensors: list[Sensor] = [PowercapSensor(options.get("powercap_root", "/sys/class/powercap"))]
    if options.get("nvml", True):
        sensors.append(NvmlSensor())
    pid = options.get("pid")
    if pid:
        sensors.append(ProcessMemorySensor(int(pid)))
    return sensors


def probe_all(options: dict[str, Any]) -> list[Probe]:
    probes = []
    for sensor in make_sensors(options):
        try:
            probes.append(sensor.probe())
        finally:
            sensor.close()
    return probes
