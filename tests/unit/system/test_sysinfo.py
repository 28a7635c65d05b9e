"""The system fingerprint: complete, serialisable, and never raising on an odd host."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench.system import fingerprint as sysinfo
EXPECTED_KEYS = {
    "hostname", "os", "python", "cpu", "memory_total_mib", "container", "virtualized",
    "gpus", "gpu_probe_error", "packages", "hardware",
}  # fmt: skip
EXPECTED_CPU_KEYS = {
    "model", "vendor", "arch", "physical_cores", "logical_cpus", "usable_cpus",
    "cgroup_cpu_limit", "governor", "max_mhz", "isa",
}  # fmt: skip

CPUINFO_X86 = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags\t\t: fpu sse2 avx avx2 fma hypervisor avx512f avx512_vnni amx_tile amx_int8 sha_ni

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags\t\t: fpu sse2 avx avx2 fma hypervisor avx512f avx512_vnni amx_tile amx_int8 sha_ni
"""

CPUINFO_ARM = """\
processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp sve i8mm bf16
CPU implementer\t: 0x41
CPU architecture: 8
"""

NVIDIA_SMI_OUTPUT = """\
NVIDIA H200, 550.54.15, 143771, 700.00, 00000000:19:00.0
NVIDIA H200, 550.54.15, 143771, [N/A], 00000000:3B:00.0
"""


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysinfo.shutil, "which", lambda name: None)


@pytest.fixture
def unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file the module reads is missing."""
    monkeypatch.setattr(sysinfo, "_read_text", lambda path: None)


def test_fingerprint_has_all_keys_and_serialises(no_gpu: None) -> None:
    info = sysinfo.fingerprint()
    assert set(info) == EXPECTED_KEYS
    assert set(info["cpu"]) == EXPECTED_CPU_KEYS
    assert set(info["os"]) == {"platform", "distro", "kernel"}
    assert set(info["python"]) == {"version", "implementation"}
    assert info["gpus"] == [] and info["gpu_probe_error"] is None
    assert info["cpu"]["logical_cpus"] == os.cpu_count()
    assert info["cpu"]["isa"] == sorted(info["cpu"]["isa"])
    assert "numpy" in info["packages"] and "psutil" in info["packages"]
    assert isinstance(info["hardware"], str) and info["hardware"]
    # Round trip through JSON must not change anything (no tuples, sets or odd types).
    assert json.loads(json.dumps(info)) == info


def test_fingerprint_keys_are_stable(no_gpu: None) -> None:
    a, b = sysinfo.fingerprint(), sysinfo.fingerprint()
    assert list(a) == list(b) and list(a["cpu"]) == list(b["cpu"])


def test_unreadable_files_give_none(no_gpu: None, unreadable: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysinfo, "DOCKERENV", "/nonexistent/.dockerenv")
    monkeypatch.setattr(sysinfo, "CONTAINERENV", "/nonexistent/.containerenv")
    monkeypatch.setattr(sysinfo.psutil, "cpu_freq", lambda: None)
    info = sysinfo.fingerprint()
    assert info["os"]["distro"] is None
    assert info["cpu"]["vendor"] is None
    assert info["cpu"]["cgroup_cpu_limit"] is None
    assert info["cpu"]["governor"] is None
    assert info["cpu"]["max_mhz"] is None
    assert info["cpu"]["isa"] == []
    assert info["virtualized"] is None
    assert info["container"] is False
    json.dumps(info)


def test_reader_returns_none_for_missing_and_directory(tmp_path: Path) -> None:
    assert sysinfo._read_text(str(tmp_path / "missing")) is None
    assert sysinfo._read_text(str(tmp_path)) is None
    (tmp_path / "f").write_text("x\n")
    assert sysinfo._read_text(str(tmp_path / "f")) == "x\n"


def test_paths_point_at_tmp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_gpu: None) -> None:
    (tmp_path / "os-release").write_text('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    (tmp_path / "cpuinfo").write_text(CPUINFO_X86)
    cpufreq = tmp_path / "cpufreq"
    cpufreq.mkdir()
    (cpufreq / "scaling_governor").write_text("performance\n")
    (cpufreq / "cpuinfo_max_freq").write_text("3500000\n")
    cgroup = tmp_path / "cgroup"
    (cgroup / "app.slice").mkdir(parents=True)
    (cgroup / "cpu.max").write_text("max 100000\n")
    (cgroup / "app.slice" / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "self_cgroup").write_text("0::/app.slice\n")
    (tmp_path / "pid1_cgroup").write_text("0::/kubepods/burstable/pod1234\n")
    monkeypatch.setattr(sysinfo, "OS_RELEASE", str(tmp_path / "os-release"))
    monkeypatch.setattr(sysinfo, "PROC_CPUINFO", str(tmp_path / "cpuinfo"))
    monkeypatch.setattr(sysinfo, "CPUFREQ_DIR", str(cpufreq))
    monkeypatch.setattr(sysinfo, "CGROUP_ROOT", str(cgroup))
    monkeypatch.setattr(sysinfo, "PROC_SELF_CGROUP", str(tmp_path / "self_cgroup"))
    monkeypatch.setattr(sysinfo, "PROC_1_CGROUP", str(tmp_path / "pid1_cgroup"))
    monkeypatch.setattr(sysinfo, "DOCKERENV", str(tmp_path / "no-dockerenv"))
    monkeypatch.setattr(sysinfo, "CONTAINERENV", str(tmp_path / "no-containerenv"))

    info = sysinfo.fingerprint()
    cpu = info["cpu"]
    assert info["os"]["distro"] == "Debian GNU/Linux 12 (bookworm)"
    assert cpu["model"] == "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
    assert cpu["vendor"] == "GenuineIntel"
    assert cpu["governor"] == "performance"
    assert cpu["max_mhz"] == 3500.0
    assert cpu["cgroup_cpu_limit"] == 1.5
    assert cpu["isa"] == ["amx_int8", "amx_tile", "avx", "avx2", "avx512_vnni", "avx512f", "fma"]
    assert info["virtualized"] is True
    assert info["container"] is True
    assert info["hardware"] == f"Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz x{cpu['usable_cpus']}"


def test_cgroup_takes_tightest_ancestor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "a" / "cpu.max").write_text("50000 100000\n")
    (tmp_path / "a" / "b" / "cpu.max").write_text("max 100000\n")
    (tmp_path / "self").write_text("0::/a/b\n")
    monkeypatch.setattr(sysinfo, "CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(sysinfo, "PROC_SELF_CGROUP", str(tmp_path / "self"))
    assert sysinfo.cgroup_cpu_limit() == 0.5


def test_cgroup_v1_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    monkeypatch.setattr(sysinfo, "CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(sysinfo, "PROC_SELF_CGROUP", str(tmp_path / "missing"))
    assert sysinfo.cgroup_cpu_limit() == 2.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert sysinfo.cgroup_cpu_limit() is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("max 100000\n", None), ("200000 100000\n", 2.0), ("50000 100000", 0.5), ("garbage", None), ("", None)],
)
def test_parse_cpu_max(text: str, expected: float | None) -> None:
    assert sysinfo.parse_cpu_max(text) == expected


def test_parse_os_release_strips_quotes_and_comments() -> None:
    fields = sysinfo.parse_os_release("# comment\nPRETTY_NAME='Ubuntu 22.04.4 LTS'\nID=ubuntu\n\nbad line\n")
    assert fields == {"PRETTY_NAME": "Ubuntu 22.04.4 LTS", "ID": "ubuntu"}


def test_parse_cpuinfo_arm() -> None:
    parsed = sysinfo.parse_cpuinfo(CPUINFO_ARM)
    assert parsed["model"] is None
    assert parsed["vendor"] == "ARM"
    assert sysinfo.isa_flags(parsed["flags"]) == ["asimd", "asimddp", "bf16", "i8mm", "sve"]


def test_parse_cpuinfo_reads_first_block_only() -> None:
    text = CPUINFO_X86 + "\nprocessor\t: 2\nmodel name\t: Other CPU\nflags\t\t: sse2\n"
    parsed = sysinfo.parse_cpuinfo(text)
    assert parsed["model"] == "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
    assert "avx512f" in parsed["flags"]


def test_nvidia_smi_missing_gives_no_gpus(no_gpu: None) -> None:
    assert sysinfo.probe_gpus() == ([], None)
    assert sysinfo.fingerprint()["gpus"] == []


def test_parse_nvidia_smi() -> None:
    gpus = sysinfo.parse_nvidia_smi(NVIDIA_SMI_OUTPUT)
    assert gpus == [
        {
            "name": "NVIDIA H200",
            "driver": "550.54.15",
            "memory_mib": 143771,
            "power_limit_w": 700.0,
            "pci_bus_id": "00000000:19:00.0",
        },
        {
            "name": "NVIDIA H200",
            "driver": "550.54.15",
            "memory_mib": 143771,
            "power_limit_w": None,
            "pci_bus_id": "00000000:3B:00.0",
        },
    ]
    assert sysinfo.parse_nvidia_smi("\n") == []


@pytest.mark.parametrize("bad", ["NVIDIA-SMI has failed because it couldn't communicate", "A, 1, lots, 2, bus"])
def test_parse_nvidia_smi_rejects_unexpected_output(bad: str) -> None:
    with pytest.raises(ValueError):
        sysinfo.parse_nvidia_smi(bad)


def _fake_run(stdout: str = "", returncode: int = 0, exc: Exception | None = None) -> Any:
    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert kwargs["timeout"] == sysinfo.GPU_PROBE_TIMEOUT_S
        if exc is not None:
            raise exc
        return subprocess.CompletedProcess(args, returncode, stdout=stdout, stderr="")

    return run


def test_probe_gpus_with_fake_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysinfo.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(sysinfo.subprocess, "run", _fake_run(NVIDIA_SMI_OUTPUT))
    gpus, error = sysinfo.probe_gpus()
    assert error is None and len(gpus) == 2
    info = sysinfo.fingerprint()
    assert info["hardware"].endswith(" + 2x NVIDIA H200")
    assert "NVIDIA H200, 143771 MiB, 700 W limit" in sysinfo.render(info)


@pytest.mark.parametrize(
    "fake",
    [
        _fake_run(exc=subprocess.TimeoutExpired(["nvidia-smi"], 5)),
        _fake_run(exc=PermissionError("denied")),
        _fake_run("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", 9),
        _fake_run("not, csv\n"),
    ],
)
def test_probe_gpus_failure_is_recorded_not_raised(monkeypatch: pytest.MonkeyPatch, fake: Any) -> None:
    monkeypatch.setattr(sysinfo.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(sysinfo.subprocess, "run", fake)
    info = sysinfo.fingerprint()
    assert info["gpus"] == []
    assert isinstance(info["gpu_probe_error"], str) and info["gpu_probe_error"]
    assert "probe error" in sysinfo.render(info)


def test_hardware_label() -> None:
    gpus = [{"name": "NVIDIA H200"}, {"name": "NVIDIA L4"}, {"name": "NVIDIA H200"}]
    assert sysinfo.hardware_label("AMD EPYC 9654", 8, gpus) == "AMD EPYC 9654 x8 + 2x NVIDIA H200 + 1x NVIDIA L4"
    assert sysinfo.hardware_label(None, None, []) == "unknown CPU x?"


def test_render_mentions_cpu_model_and_aligns(no_gpu: None) -> None:
    info = sysinfo.fingerprint()
    info["cpu"]["model"] = "Test CPU Model 9000"
    text = sysinfo.render(info)
    assert "Test CPU Model 9000" in text
    assert "CPU" in text.splitlines() and "Packages" in text.splitlines()
    rows = [line for line in text.splitlines() if line.startswith("  ")]
    # Values start in one column, so the text reads as a table.
    columns = {len(line) - len(line.split(":", 1)[1].lstrip()) for line in rows if ":" in line}
    assert len(columns) == 1


def test_render_tolerates_partial_info() -> None:
    text = sysinfo.render({"cpu": {"model": "Old CPU"}})
    assert "Old CPU" in text and "n/a" in text
