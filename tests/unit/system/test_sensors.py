"""Sensors without the hardware: a fake powercap tree, a fake NVML module, the real sampler process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.system.sensors import make_sensors, probe_all
from bench.system.sensors.memory import ProcessMemorySensor
from bench.system.sensors.nvml import NvmlSensor
from bench.system.sensors.powercap import PowercapSensor, discover_zones
from bench.system.sensors.sampler import Sampler, read_samples
from tests.conftest import ROOT


def zone(root: Path, name: str, label: str, energy_uj: int = 1_000_000, wrap_uj: int = 2**32) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "name").write_text(label + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{wrap_uj}\n")
    return path


@pytest.fixture
def powercap(tmp_path):
    root = tmp_path / "powercap"
    zone(root, "intel-rapl:0", "package-0", 5_000_000)
    zone(root, "intel-rapl:0:0", "core", 3_000_000)
    zone(root, "intel-rapl:0:1", "dram", 1_000_000)
    zone(root, "intel-rapl:1", "package-1", 7_000_000)
    zone(root, "intel-rapl-mmio:0", "package-0", 5_000_000)  # the same package again, through MMIO
    zone(root, "intel-rapl:2", "psys", 9_000_000)  # the whole platform: overlaps the packages
    return root


def test_zones_never_counted_twice(powercap):
    zones, skipped = discover_zones(powercap)
    assert sorted(z.domain for z in zones) == ["cpu_package0", "cpu_package1", "dram0"]
    assert any("intel-rapl-mmio:0" in s and "duplicate" in s for s in skipped)
    assert any("intel-rapl:0:0" in s and "inside its package" in s for s in skipped)
    assert any("psys" in s for s in skipped)


def test_powercap_probe_and_read(powercap):
    sensor = PowercapSensor(str(powercap))
    probe = sensor.probe()
    assert probe.available
    counters = {c.name: c for c in probe.channels}
    assert counters["cpu_package0_energy"].kind == "counter" and counters["cpu_package0_energy"].unit == "J"
    assert counters["dram0_energy"].wrap == pytest.approx(2**32 / 1e6)
    assert sensor.read() == {"cpu_package0_energy": 5.0, "dram0_energy": 1.0, "cpu_package1_energy": 7.0}


def test_powercap_missing_root_and_missing_file(tmp_path):
    assert "does not exist" in PowercapSensor(str(tmp_path / "nope")).probe().reason
    root = tmp_path / "pc"
    path = zone(root, "intel-rapl:0", "package-0")
    (path / "energy_uj").unlink()
    probe = PowercapSensor(str(root)).probe()
    assert not probe.available and "cannot be read" in probe.reason


def test_powercap_permission_error_is_explained(powercap):
    def read(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied")  # root ignores file modes: inject it
        return path.read_text().strip()

    probe = PowercapSensor(str(powercap), read=read).probe()
    assert not probe.available and "root-only" in probe.reason


class FakeNVMLError(Exception):
    pass


def fake_nvml(energy_supported: bool = True, init_fails: bool = False):
    state = {"energy_mj": 1_000_000, "power_mw": 250_000}

    def energy(handle):
        if not energy_supported:
            raise FakeNVMLError("Not Supported")
        return state["energy_mj"]

    def init():
        if init_fails:
            raise FakeNVMLError("Driver Not Loaded")

    return SimpleNamespace(
        NVMLError=FakeNVMLError, nvmlInit=init, nvmlShutdown=lambda: None, nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: f"h{i}", nvmlDeviceGetTotalEnergyConsumption=energy,
        nvmlDeviceGetPowerUsage=lambda h: state["power_mw"], nvmlDeviceGetName=lambda h: b"Fake GPU",
        nvmlDeviceGetEnforcedPowerLimit=lambda h: 300_000, nvmlMemory_v2=2,
        nvmlDeviceGetMemoryInfo=lambda h, version=None: SimpleNamespace(used=512 * 2**20),
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=97), NVML_CLOCK_SM=1,
        nvmlDeviceGetClockInfo=lambda h, kind: 1980, NVML_TEMPERATURE_GPU=0,
        nvmlDeviceGetTemperature=lambda h, kind: 61, nvmlDeviceGetCurrentClocksEventReasons=lambda h: 0,
    ), state


def test_nvml_init_failure_says_why():
    module, _ = fake_nvml(init_fails=True)
    probe = NvmlSensor(module).probe()
    assert not probe.available and "Driver Not Loaded" in probe.reason


def test_nvml_energy_counter_path():
    module, state = fake_nvml()
    sensor = NvmlSensor(module)
    probe = sensor.probe()
    assert probe.available and probe.info["gpus"][0]["name"] == "Fake GPU"
    assert probe.info["gpus"][0]["power_limit_w"] == 300.0
    kinds = {c.name: c.kind for c in probe.channels}
    assert kinds["gpu0_energy"] == "counter" and kinds["gpu0_power"] == "gauge"
    values = sensor.read()
    assert values["gpu0_energy"] == 1000.0 and values["gpu0_power"] == 250.0
    assert values["gpu0_memory_used"] == 512.0 and values["gpu0_utilization"] == 97.0
    assert values["gpu0_sm_clock_mhz"] == 1980.0 and values["gpu0_temperature_c"] == 61.0


def test_nvml_without_energy_counter_polls_power():
    module, _ = fake_nvml(energy_supported=False)
    sensor = NvmlSensor(module)
    probe = sensor.probe()
    assert "gpu0_energy" not in {c.name for c in probe.channels}
    values = sensor.read()
    assert "gpu0_energy" not in values and values["gpu0_power"] == 250.0


def test_nvml_missing_library_on_this_machine():
    probe = NvmlSensor().probe()
    if probe.available:
        pytest.skip("this machine has an NVIDIA GPU")
    assert probe.reason


_PEAK_RESET = """
from bench.system.sensors.memory import peak_rss_mib, read_status_kib, reset_peak_rss
block = bytearray(64 * 2**20)  # raise the peak by 64 MiB, then free it
block[:: 4096] = b"x" * len(block[:: 4096])
high = peak_rss_mib()
del block
assert reset_peak_rss()
low = peak_rss_mib()
assert low < high - 32, (high, low, read_status_kib("self", "VmRSS"))
"""


def test_process_memory_and_peak_reset():
    sensor = ProcessMemorySensor(os.getpid())
    assert sensor.probe().available
    values = sensor.read()
    assert values["host_rss"] > 0 and values["host_rss_peak"] >= values["host_rss"]
    # The peak's reset in a fresh, small process: this test process's own history (a test runner's
    # worker that ran other tests: their allocations and threads) must not decide what it sees.
    done = subprocess.run([sys.executable, "-c", _PEAK_RESET], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_sampler_process_samples_and_stops(tmp_path, powercap):
    sampler = Sampler({"powercap_root": str(powercap), "nvml": False, "pid": os.getpid(),
                       "power_hz": 50, "memory_hz": 50})
    sampler.start()
    time.sleep(0.3)
    pid = sampler.proc.pid
    data = sampler.stop()
    assert sampler.proc.returncode == 0
    names = {p["name"]: p["available"] for p in data["probes"]}
    assert names == {"powercap": True, "process_memory": True}
    power = [s for s in data["samples"] if s["s"] == "powercap"]
    memory = [s for s in data["samples"] if s["s"] == "process_memory"]
    assert len(power) >= 5 and len(memory) >= 5
    times = [s["t"] for s in power]
    assert times == sorted(times)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_sampler_leaves_no_process_behind_when_the_worker_dies(tmp_path):
    """A stand-in worker starts a sampler and is killed with SIGKILL: the sampler must go too."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import os, sys, time\n"
        "from bench.system.sensors.sampler import Sampler\n"
        "s = Sampler({'powercap_root': '/nonexistent', 'nvml': False, 'pid': os.getpid()})\n"
        "s.start()\n"
        "print(s.proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    worker = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    sampler_pid = int(worker.stdout.readline())
    os.kill(sampler_pid, 0)  # alive
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(sampler_pid, 0)
        except ProcessLookupError:
            break
        try:  # reap it if it became our child
            os.waitpid(sampler_pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    else:
        pytest.fail("the sampler outlived its worker")


def test_probe_all_on_this_machine_is_honest():
    probes = {p.name: p for p in probe_all({"nvml": True, "pid": os.getpid()})}
    for name in ("powercap", "nvml"):
        assert probes[name].available or probes[name].reason
    assert probes["process_memory"].available
    assert [s.name for s in make_sensors({})] == ["powercap", "nvml"]


def test_read_samples_ignores_a_cut_last_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"probes": []}) + "\n" + json.dumps({"t": 1, "s": "x", "v": {}}) + "\n{\"t\": 2, ")
    assert read_samples(path)["samples"] == [{"t": 1, "s": "x", "v": {}}]
