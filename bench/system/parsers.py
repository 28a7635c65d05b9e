"""Parsers of what the system fingerprint reads (/etc/os-release, /proc/cpuinfo, cgroup files,
nvidia-smi's CSV): pure functions, text in, values out, that never raise on odd input.
"""

from __future__ import annotations

from typing import Any

__all__ = ["parse_os_release", "parse_cpuinfo", "parse_cpu_max", "parse_cfs_quota", "parse_cgroup_v2_path",
           "parse_nvidia_smi", "isa_flags", "ISA_FLAGS"]

# The instruction-set extensions that decide which kernels an inference runtime can use (x86
# vector/matrix units; ARM's asimd is NEON on aarch64, asimddp/i8mm/bf16 its int8 and bf16 dot
# products). Everything else in /proc/cpuinfo is noise for a leaderboard.
ISA_FLAGS: frozenset[str] = frozenset(
    {
        "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
        "amx_bf16", "amx_int8", "amx_tile", "avx_vnni",
        "neon", "asimd", "asimddp", "i8mm", "bf16", "sve", "sve2",
    }
)  # fmt: skip

# ARM cores report an implementer code instead of a vendor string.
_ARM_IMPLEMENTERS: dict[int, str] = {
    0x41: "ARM",
    0x42: "Broadcom",
    0x43: "Cavium",
    0x48: "HiSilicon",
    0x4E: "NVIDIA",
    0x50: "APM",
    0x51: "Qualcomm",
    0x61: "Apple",
    0xC0: "Ampere",
}

_NOT_AVAILABLE = {"", "[n/a]", "n/a", "[not supported]", "[unknown error]"}


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value pairs of os-release(5), with shell quotes removed."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[key.strip()] = value
    return fields


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model, vendor and flags of the first processor in /proc/cpuinfo.

    Only the first block is read: a mixed-model host is rare and every block repeats the same keys.
    x86 names them ``model name``/``vendor_id``/``flags``; aarch64 ``Features`` and
    ``CPU implementer``, often with no model name at all.
    """
    model: str | None = None
    vendor: str | None = None
    flags: set[str] = set()
    seen_processor = False
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            if seen_processor and (model or flags):
                break
            seen_processor = True
        elif key == "model name" and model is None:
            model = value or None
        elif key == "vendor_id" and vendor is None:
            vendor = value or None
        elif key == "CPU implementer" and vendor is None:
            try:
                code = int(value, 0)
            except ValueError:
                continue
            vendor = _ARM_IMPLEMENTERS.get(code, f"implementer {value}")
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return {"model": model, "vendor": vendor, "flags": flags}


def isa_flags(flags: set[str] | frozenset[str]) -> list[str]:
    """The inference-relevant subset of a CPU's flags, sorted for stable comparisons."""
    return sorted(ISA_FLAGS & set(flags))


def parse_cpu_max(text: str) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` ("quota period"); None when unlimited ("max")."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs_quota(quota_text: str, period_text: str) -> float | None:
    """CPUs allowed by cgroup v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us``; -1 means unlimited."""
    try:
        quota, period = float(quota_text.strip()), float(period_text.strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_cgroup_v2_path(text: str) -> str | None:
    """This process's cgroup v2 path from /proc/self/cgroup (the ``0::/path`` line)."""
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:].strip() or "/"
    return None


def _optional_number(text: str, kind: type[int] | type[float]) -> int | float | None:
    text = text.strip()
    if text.lower() in _NOT_AVAILABLE:
        return None
    # memory.total is an integer in MiB but some driver versions print "81920.0".
    value = float(text)
    return int(value) if kind is int else value


def parse_nvidia_smi(text: str) -> list[dict[str, Any]]:
    """GPUs from ``nvidia-smi --query-gpu=<_GPU_FIELDS> --format=csv,noheader,nounits``.

    Raises ValueError on a line that does not have the five fields asked for, so that a changed
    output format shows up as a probe error instead of a silently wrong fingerprint.
    """
    gpus: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5:
            raise ValueError(f"nvidia-smi line has {len(parts)} fields, expected 5: {line!r}")
        name, driver, memory, power, bus_id = parts
        try:
            memory_mib = _optional_number(memory, int)
            power_w = _optional_number(power, float)
        except ValueError:
            raise ValueError(f"nvidia-smi line has a non-numeric memory or power: {line!r}") from None
        gpus.append(
            {
                "name": name,
                "driver": driver or None,
                "memory_mib": memory_mib,
                "power_limit_w": power_w,
                "pci_bus_id": bus_id or None,
            }
        )
    return gpus
