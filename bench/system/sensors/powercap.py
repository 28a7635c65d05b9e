"""CPU package and DRAM energy through Linux powercap (RAPL), Intel's and AMD's alike.

Zones live under /sys/class/powercap: ``intel-rapl:N`` is package N, with sub-zones such as
``intel-rapl:N:M`` named core, uncore or dram; some platforms also expose the same packages again
through ``intel-rapl-mmio:N``, and a top-level ``psys`` zone that covers the whole platform. To never
count a joule twice, only top-level package zones and dram zones (top-level or nested) are read;
core and uncore are inside their package, an MMIO zone that names a package already read is a
duplicate, and psys overlaps everything. Counters (energy_uj) wrap at max_energy_range_uj; the
sampler reads them often enough that at most one wrap falls between two readings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from bench.system.sensors import Channel, Probe, Sensor

__all__ = ["PowercapSensor", "Zone", "discover_zones"]

# RAPL counters refresh about every millisecond.
UPDATE_PERIOD_S = 0.001


def _read(path: Path) -> str:
    return path.read_text().strip()


class Zone:
    def __init__(self, path: Path, name: str, domain: str, wrap_uj: float) -> None:
        self.path, self.name, self.domain, self.wrap_uj = path, name, domain, wrap_uj


def discover_zones(root: Path, read: Callable[[Path], str] = _read) -> tuple[list[Zone], list[str]]:
    """The zones to read and, for each one left out, why."""
    zones: list[Zone] = []
    skipped: list[str] = []
    seen_names: set[str] = set()
    if not root.is_dir():
        return zones, skipped
    # Plain RAPL first so that an MMIO zone naming the same package is the one recognised as a duplicate.
    entries = sorted((p for p in root.iterdir() if ":" in p.name), key=lambda p: ("mmio" in p.name, p.name))
    for entry in entries:
        parts = entry.name.split(":")
        try:
            name = read(entry / "name")
        except OSError as exc:
            skipped.append(f"{entry.name}: name unreadable ({exc.strerror or exc})")
            continue
        nested = len(parts) > 2
        if name.startswith("package") and not nested:
            domain = "cpu_package" + name.rsplit("-", 1)[-1]  # package-0 -> cpu_package0
        elif name == "dram":
            domain = "dram" + parts[1]  # the package it belongs to (its parent's index, or its own)
        else:
            skipped.append(f"{entry.name} ({name}): {'inside its package' if nested else 'overlaps the packages'}")
            continue
        if domain in seen_names:
            skipped.append(f"{entry.name} ({name}): duplicate of a zone already read")
            continue
        try:
            wrap = float(read(entry / "max_energy_range_uj"))
        except (OSError, ValueError):
            wrap = float("inf")
        seen_names.add(domain)
        zones.append(Zone(entry, name, domain, wrap))
    return zones, skipped


class PowercapSensor(Sensor):
    name = "powercap"
    group = "power"

    def __init__(self, root: str = "/sys/class/powercap", read: Callable[[Path], str] = _read) -> None:
        self.root = Path(root)
        self._read = read
        self.zones: Optional[list[Zone]] = None

    def probe(self) -> Probe:
        if not self.root.is_dir():
            return Probe(self.name, False, f"{self.root} does not exist (no powercap/RAPL driver, or a VM "
                                           "that does not expose it)")
        zones, skipped = discover_zones(self.root, self._read)
        if not zones:
            return Probe(self.name, False, f"no package or dram zone under {self.root}", info={"skipped": skipped})
        for zone in zones:
            try:
                int(self._read(zone.path / "energy_uj"))
            except PermissionError:
                return Probe(self.name, False, f"{zone.path / 'energy_uj'} is not readable: since Linux 5.10 "
                             "RAPL counters are root-only; run as root or grant read access (chmod o+r)")
            except (OSError, ValueError) as exc:
                return Probe(self.name, False, f"{zone.path / 'energy_uj'} cannot be read ({exc})")
        self.zones = zones
        channels = tuple(
            Channel(f"{z.domain}_energy", "J", "counter", z.domain,
                    "one CPU package" if z.domain.startswith("cpu_") else "the DRAM of one package",
                    UPDATE_PERIOD_S, z.wrap_uj / 1e6 if z.wrap_uj != float("inf") else None)
            for z in zones)
        return Probe(self.name, True, channels=channels, info={"zones": [str(z.path) for z in zones],
                                                               "skipped": skipped})

    def read(self) -> dict[str, float]:
        if self.zones is None:
            self.probe()
        values = {}
        for zone in self.zones or []:
            values[f"{zone.domain}_energy"] = int(self._read(zone.path / "energy_uj")) / 1e6
        return values
