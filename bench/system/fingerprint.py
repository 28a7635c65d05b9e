"""The system fingerprint stored with every result: which machine, OS, CPU, GPUs and versions.

Two results can only be compared when their fingerprints say they ran on comparable systems, so
every probe here must give an answer on any Linux host, container or VM: an unreadable file or a
failing tool yields ``None`` (or ``[]``), never an exception. Nothing here imports an ML runtime;
package versions come from installed metadata so that ``bench sysinfo`` works without torch.

Paths are module-level constants and all file access goes through :func:`_read_text`, so tests can
point the probes at a temporary folder or replace the reader.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
from collections import Counter
from typing import Any

import psutil

from bench.system.parsers import (ISA_FLAGS, isa_flags, parse_cfs_quota, parse_cgroup_v2_path, parse_cpu_max,
                                   parse_cpuinfo, parse_nvidia_smi, parse_os_release)

__all__ = [
    "fingerprint",
    "machine_id",
    "render",
    "hardware_label",
    "parse_os_release",
    "parse_cpuinfo",
    "parse_cpu_max",
    "parse_cfs_quota",
    "parse_cgroup_v2_path",
    "parse_nvidia_smi",
    "isa_flags",
    "cgroup_cpu_limit",
    "probe_gpus",
    "PACKAGES",
    "ISA_FLAGS",
]

OS_RELEASE = "/etc/os-release"
PROC_CPUINFO = "/proc/cpuinfo"
PROC_1_CGROUP = "/proc/1/cgroup"
PROC_SELF_CGROUP = "/proc/self/cgroup"
CGROUP_ROOT = "/sys/fs/cgroup"
CPUFREQ_DIR = "/sys/devices/system/cpu/cpu0/cpufreq"
DOCKERENV = "/.dockerenv"
# Podman's counterpart of /.dockerenv.
CONTAINERENV = "/run/.containerenv"
NVIDIA_SMI = "nvidia-smi"
GPU_PROBE_TIMEOUT_S = 5.0

# Distribution names, as importlib.metadata knows them; looked up, never imported.
PACKAGES: tuple[str, ...] = (
    "bench",
    "torch",
    "numpy",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "tensorrt",
    "tensorrt-cu12",  # the gpu-cu12 and gpu-cu13 extras' TensorRT; "tensorrt" is NVIDIA's meta-package
    "tensorrt-cu13",
    "nvidia-ml-py",
    "hydra-core",
    "omegaconf",
    "SQLAlchemy",
    "psutil",
)

_CONTAINER_MARKERS = ("docker", "kubepods", "containerd")
_GPU_FIELDS = "name,driver_version,memory.total,power.limit,pci.bus_id"


def _read_text(path: str) -> str | None:
    """Contents of a text file, or None when it is missing, unreadable or not text."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError, ValueError):
        return None


# ---------------------------------------------------------------- probes (never raise)


def _distro() -> str | None:
    text = _read_text(OS_RELEASE)
    if text is None:
        return None
    return parse_os_release(text).get("PRETTY_NAME") or None


def cgroup_cpu_limit() -> float | None:
    """CPUs this process may use per its cgroup's CPU quota, or None when unlimited or unknown.

    In cgroup v2 a limit anywhere up the hierarchy applies, so the tightest one from this
    process's own cgroup up to the root of the mount wins. v1 is read at the mount root only, which
    is the container's own cgroup when run inside one.
    """
    limits: list[float] = []
    self_cgroup = _read_text(PROC_SELF_CGROUP)
    rel = parse_cgroup_v2_path(self_cgroup) if self_cgroup is not None else None
    if rel is not None:
        parts = [p for p in rel.split("/") if p and p != ".."]
        for depth in range(len(parts), -1, -1):
            text = _read_text(os.path.join(CGROUP_ROOT, *parts[:depth], "cpu.max"))
            limit = parse_cpu_max(text) if text is not None else None
            if limit is not None:
                limits.append(limit)
    else:
        text = _read_text(os.path.join(CGROUP_ROOT, "cpu.max"))
        limit = parse_cpu_max(text) if text is not None else None
        if limit is not None:
            limits.append(limit)
    if limits:
        return min(limits)
    for controller in ("cpu", "cpu,cpuacct"):
        quota = _read_text(os.path.join(CGROUP_ROOT, controller, "cpu.cfs_quota_us"))
        period = _read_text(os.path.join(CGROUP_ROOT, controller, "cpu.cfs_period_us"))
        if quota is not None and period is not None:
            return parse_cfs_quota(quota, period)
    return None


def _governor() -> str | None:
    text = _read_text(os.path.join(CPUFREQ_DIR, "scaling_governor"))
    if text is None:
        return None
    return text.strip() or None


def _max_mhz() -> float | None:
    # cpuinfo_max_freq is the hardware maximum in kHz; VMs usually lack cpufreq entirely.
    text = _read_text(os.path.join(CPUFREQ_DIR, "cpuinfo_max_freq"))
    if text is not None:
        try:
            khz = float(text.strip())
            if khz > 0:
                return khz / 1000.0
        except ValueError:
            pass
    try:
        freq = psutil.cpu_freq()
    except Exception:  # psutil raises assorted errors on odd /sys layouts
        return None
    if freq is None or not freq.max:
        return None
    return float(freq.max)


def _usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        # Not Linux: no affinity API, the logical count is the best we know.
        return os.cpu_count()


def _physical_cores() -> int | None:
    try:
        return psutil.cpu_count(logical=False)
    except Exception:
        return None


def _memory_total_mib() -> int | None:
    try:
        return int(psutil.virtual_memory().total // 2**20)
    except Exception:
        return None


def _in_container() -> bool:
    if os.path.exists(DOCKERENV) or os.path.exists(CONTAINERENV):
        return True
    text = _read_text(PROC_1_CGROUP)
    return text is not None and any(marker in text for marker in _CONTAINER_MARKERS)


def _hostname() -> str | None:
    try:
        return socket.gethostname() or platform.node() or None
    except OSError:
        return platform.node() or None


def _package_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        except Exception:
            # A broken dist-info must not cost us the whole fingerprint.
            continue
    return versions


def probe_gpus() -> tuple[list[dict[str, Any]], str | None]:
    """NVIDIA GPUs as (gpus, error). No nvidia-smi is a normal CPU host: ([], None).

    Ran on an NVIDIA H200 (2026-11-28); the parser is tested here on recorded output. Driver errors, MIG
    and [N/A] fields have not been seen on a real host.
    """
    exe = shutil.which(NVIDIA_SMI)
    if exe is None:
        return [], None
    try:
        proc = subprocess.run(
            [exe, f"--query-gpu={_GPU_FIELDS}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=GPU_PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [], f"nvidia-smi did not answer within {GPU_PROBE_TIMEOUT_S:g} s"
    except (OSError, ValueError) as exc:
        return [], f"nvidia-smi could not be run: {exc}"
    if proc.returncode != 0:
        # nvidia-smi prints its "failed to communicate with the driver" message on stdout.
        message = (proc.stderr.strip() or proc.stdout.strip())[:300]
        return [], f"nvidia-smi exited with status {proc.returncode}: {message}"
    try:
        return parse_nvidia_smi(proc.stdout), None
    except ValueError as exc:
        return [], str(exc)


def hardware_label(cpu_model: str | None, usable_cpus: int | None, gpus: list[dict[str, Any]]) -> str:
    """A short label for leaderboards: ``<cpu model> x<usable cpus>[ + <n>x <gpu name>]...``."""
    label = f"{cpu_model or 'unknown CPU'} x{usable_cpus if usable_cpus is not None else '?'}"
    # Counter keeps first-seen order, so a mixed host reads in PCI order.
    for name, count in Counter(str(g.get("name") or "unknown GPU") for g in gpus).items():
        label += f" + {count}x {name}"
    return label


def fingerprint() -> dict[str, Any]:
    """The system fingerprint: JSON-serialisable, always the same keys (unknown values are None)."""
    cpuinfo_text = _read_text(PROC_CPUINFO)
    cpuinfo = parse_cpuinfo(cpuinfo_text) if cpuinfo_text is not None else None
    model = cpuinfo["model"] if cpuinfo else None
    if model is None:
        # platform.processor() is often "" or just the arch on Linux; keep it only if it says more.
        processor = platform.processor().strip()
        model = processor if processor and processor != platform.machine() else None
    usable = _usable_cpus()
    gpus, gpu_error = probe_gpus()
    return {
        "hostname": _hostname(),
        "os": {
            "platform": platform.platform(),
            "distro": _distro(),
            "kernel": platform.release() or None,
        },
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
        },
        "cpu": {
            "model": model,
            "vendor": cpuinfo["vendor"] if cpuinfo else None,
            "arch": platform.machine() or None,
            "physical_cores": _physical_cores(),
            "logical_cpus": os.cpu_count(),
            "usable_cpus": usable,
            "cgroup_cpu_limit": cgroup_cpu_limit(),
            "governor": _governor(),
            "max_mhz": _max_mhz(),
            "isa": isa_flags(cpuinfo["flags"]) if cpuinfo else [],
        },
        "memory_total_mib": _memory_total_mib(),
        "container": _in_container(),
        "virtualized": ("hypervisor" in cpuinfo["flags"]) if cpuinfo else None,
        "gpus": gpus,
        "gpu_probe_error": gpu_error,
        "packages": _package_versions(),
        "hardware": hardware_label(model, usable, gpus),
    }


def machine_id(system: dict[str, Any]) -> str:
    """A machine's identity in a fleet: 12 hex digits hashed from what stays the same between runs on
    one machine and differs between machines (host name, CPU model and count, memory, each GPU's
    name, bus id and memory), never from what a run changes (packages, governor, usable CPUs). A
    record made before the fields existed hashes its Nones alike: machines then differ by host name."""
    import hashlib
    import json

    cpu = system.get("cpu") if isinstance(system.get("cpu"), dict) else {}
    gpus = [g for g in (system.get("gpus") or []) if isinstance(g, dict)]
    memory = system.get("memory_total_mib")
    identity = {
        "host": system.get("hostname"),
        "cpu": [cpu.get("model"), cpu.get("logical_cpus")],
        # MemTotal moves by a few MiB between kernels: whole GiB are the machine's.
        "memory_gib": round(memory / 1024) if isinstance(memory, (int, float)) else None,
        "gpus": [[g.get("name"), g.get("pci_bus_id"), g.get("memory_mib")] for g in gpus],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


# ---------------------------------------------------------------- rendering


def _show(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value) if value else "none"
    return str(value)


def _gpu_line(gpu: dict[str, Any]) -> str:
    parts = [str(gpu.get("name") or "unknown GPU")]
    if gpu.get("memory_mib") is not None:
        parts.append(f"{gpu['memory_mib']} MiB")
    if gpu.get("power_limit_w") is not None:
        parts.append(f"{gpu['power_limit_w']:g} W limit")
    if gpu.get("driver"):
        parts.append(f"driver {gpu['driver']}")
    if gpu.get("pci_bus_id"):
        parts.append(f"bus {gpu['pci_bus_id']}")
    return ", ".join(parts)


def render(info: dict[str, Any]) -> str:
    """The fingerprint as plain text for ``bench sysinfo``: sections of aligned ``key: value`` lines.

    Tolerates missing keys, so fingerprints stored by older versions still render.
    """
    os_info = info.get("os") or {}
    py = info.get("python") or {}
    cpu = info.get("cpu") or {}
    gpus = info.get("gpus") or []
    sections: list[tuple[str, list[tuple[str, Any]]]] = [
        (
            "System",
            [
                ("hardware", info.get("hardware")),
                ("hostname", info.get("hostname")),
                ("container", info.get("container")),
                ("virtualized", info.get("virtualized")),
                ("memory", f"{info['memory_total_mib']} MiB" if info.get("memory_total_mib") else None),
            ],
        ),
        (
            "OS",
            [
                ("distro", os_info.get("distro")),
                ("kernel", os_info.get("kernel")),
                ("platform", os_info.get("platform")),
            ],
        ),
        ("Python", [("version", py.get("version")), ("implementation", py.get("implementation"))]),
        (
            "CPU",
            [
                ("model", cpu.get("model")),
                ("vendor", cpu.get("vendor")),
                ("arch", cpu.get("arch")),
                ("physical cores", cpu.get("physical_cores")),
                ("logical cpus", cpu.get("logical_cpus")),
                ("usable cpus", cpu.get("usable_cpus")),
                ("cgroup cpu limit", cpu.get("cgroup_cpu_limit")),
                ("governor", cpu.get("governor")),
                ("max MHz", cpu.get("max_mhz")),
                ("isa", cpu.get("isa")),
            ],
        ),
    ]
    gpu_rows: list[tuple[str, Any]] = [(f"gpu{i}", _gpu_line(g)) for i, g in enumerate(gpus)]
    if not gpu_rows:
        gpu_rows.append(("gpus", "none"))
    if info.get("gpu_probe_error"):
        gpu_rows.append(("probe error", info["gpu_probe_error"]))
    sections.append(("GPU", gpu_rows))
    packages = info.get("packages") or {}
    sections.append(("Packages", list(packages.items()) or [("packages", "none found")]))

    width = max(len(key) for _, rows in sections for key, _ in rows) + 1
    lines: list[str] = []
    for title, rows in sections:
        if lines:
            lines.append("")
        lines.append(title)
        lines.extend(f"  {key + ':':<{width}} {_show(value)}" for key, value in rows)
    return "\n".join(lines)
