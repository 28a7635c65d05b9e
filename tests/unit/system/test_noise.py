"""Noise evidence: /proc parsers on fixed text, window arithmetic on made-up snapshots."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from bench.system import noise
from bench.system.noise import HostSnapshot

# psutil.cpu_times() of Linux (seconds): /proc/stat's aggregate cpu line, guest already inside user.
LINUX_TIMES = dict(user=24.16, nice=0.10, system=13.74, idle=514.56, iowait=10.26, irq=0.03, softirq=0.17, steal=0.07,
                   guest=0.50, guest_nice=0.0)

PRESSURE = """\
some avg10=1.25 avg60=0.23 avg300=0.32 total=2546126
full avg10=0.00 avg60=0.00 avg300=0.00 total=0
"""


def snap(
    t_s: float,
    busy: float | None = 10.0,
    total: float | None = 100.0,
    steal: float | None = 0.0,
    load: tuple[float, float, float] | None = (0.5, 0.4, 0.3),
    psi: float | None = 0.0,
) -> HostSnapshot:
    return HostSnapshot(
        time_ns=round(t_s * 1e9),
        loadavg=load,
        cpu_pressure_some_avg10=psi,
        cpu_busy_s=busy,
        cpu_total_s=total,
        steal_s=steal,
    )


def _fake_times(monkeypatch: pytest.MonkeyPatch, **fields: float) -> None:
    import collections

    times = collections.namedtuple("scputimes", list(fields))(**fields)
    monkeypatch.setattr(noise.psutil, "cpu_times", lambda: times)


def test_cpu_times_from_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_times(monkeypatch, **LINUX_TIMES)
    # busy = user+nice+system+irq+softirq+steal; guest (0.50) is already inside user.
    busy = 24.16 + 0.10 + 13.74 + 0.03 + 0.17 + 0.07
    times = noise.cpu_times()
    assert times.busy_s == pytest.approx(busy) and times.total_s == pytest.approx(busy + 514.56 + 10.26)
    assert times.steal_s == pytest.approx(0.07)


def test_cpu_times_without_linuxs_fields_and_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_times(monkeypatch, user=1.0, nice=0.0, system=0.5, idle=8.5)  # macOS: no iowait, irq, steal
    assert noise.cpu_times() == noise.CpuTimes(1.5, 10.0, 0.0)

    def broken() -> None:
        raise OSError("no /proc")

    monkeypatch.setattr(noise.psutil, "cpu_times", broken)
    assert noise.cpu_times() is None


def test_parse_cpu_pressure() -> None:
    assert noise.parse_cpu_pressure(PRESSURE) == 1.25
    # Kernels before 5.13 have only the "some" line for CPU.
    assert noise.parse_cpu_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n") == 0.0
    assert noise.parse_cpu_pressure("full avg10=3.00\n") is None
    assert noise.parse_cpu_pressure("some avg10=abc\n") is None
    assert noise.parse_cpu_pressure("") is None


def test_snapshot_reads_tmp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cpu").write_text(PRESSURE)
    _fake_times(monkeypatch, **LINUX_TIMES)
    monkeypatch.setattr(noise, "PROC_PRESSURE_CPU", str(tmp_path / "cpu"))
    s = noise.snapshot()
    assert s.cpu_pressure_some_avg10 == 1.25
    assert s.cpu_busy_s == pytest.approx(38.27)
    assert s.steal_s == pytest.approx(0.07)
    assert s.loadavg is not None and len(s.loadavg) == 3
    json.dumps(s.to_dict())


def test_snapshot_unreadable_files_give_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(noise, "_read_text", lambda path: None)
    monkeypatch.setattr(noise.psutil, "cpu_times", lambda: (_ for _ in ()).throw(OSError("no /proc")))
    s = noise.snapshot()
    assert s.cpu_pressure_some_avg10 is None
    assert s.cpu_busy_s is None and s.cpu_total_s is None and s.steal_s is None
    assert s.time_ns > 0


def test_snapshot_real_host_does_not_raise() -> None:
    a = noise.snapshot()
    b = noise.snapshot()
    assert b.time_ns >= a.time_ns


def test_window_noise_foreign_cores_exact() -> None:
    # Busy grew 3 s in a 2 s window, 1 s of it ours: others used 2 s / 2 s = 1 core.
    w = noise.window_noise(snap(10.0, busy=10.0), snap(12.0, busy=13.0), own_cpu_s=1.0, usable_cpus=4)
    assert w.window_s == 2.0
    assert w.foreign_cpu_cores == 1.0
    assert w.foreign_cpu_fraction == 0.25
    assert w.own_cpu_s == 1.0 and w.usable_cpus == 4


def test_window_noise_never_negative() -> None:
    # Own CPU read a tick higher than the system counter moved: rounding, not negative load.
    w = noise.window_noise(snap(0.0, busy=10.0), snap(1.0, busy=10.5), own_cpu_s=0.51, usable_cpus=1)
    assert w.foreign_cpu_cores == 0.0
    assert w.foreign_cpu_fraction == 0.0


def test_window_noise_steal_load_and_pressure() -> None:
    before = snap(0.0, total=100.0, steal=1.0, load=(0.5, 0.4, 0.3), psi=0.0)
    after = snap(1.0, total=104.0, steal=2.0, load=(1.5, 0.6, 0.4), psi=12.5)
    w = noise.window_noise(before, after, own_cpu_s=0.0, usable_cpus=2)
    assert w.steal_fraction == 0.25
    assert (w.loadavg_1m_before, w.loadavg_1m_after) == (0.5, 1.5)
    assert (w.cpu_pressure_before, w.cpu_pressure_after) == (0.0, 12.5)


def test_window_noise_unknown_stays_unknown() -> None:
    before = snap(0.0, busy=None, total=None, steal=None, load=None, psi=None)
    after = snap(1.0, busy=None, total=None, steal=None, load=None, psi=None)
    w = noise.window_noise(before, after, own_cpu_s=0.3, usable_cpus=2)
    assert w.foreign_cpu_cores is None and w.foreign_cpu_fraction is None and w.steal_fraction is None
    assert w.loadavg_1m_before is None and w.cpu_pressure_after is None
    assert json.loads(json.dumps(w.to_dict())) == w.to_dict()


def test_window_noise_zero_total_delta_has_no_steal_fraction() -> None:
    w = noise.window_noise(snap(0.0), snap(0.001), own_cpu_s=0.0, usable_cpus=1)
    assert w.steal_fraction is None and w.foreign_cpu_cores == 0.0


@pytest.mark.parametrize(("t_after", "cpus"), [(1.0, 1), (2.0, 0)])
def test_window_noise_rejects_bad_input(t_after: float, cpus: int) -> None:
    with pytest.raises(ValueError):
        noise.window_noise(snap(1.0), snap(t_after), own_cpu_s=0.0, usable_cpus=cpus)


def test_own_cpu_seconds_counts_self_and_children() -> None:
    start = noise.own_cpu_seconds()
    assert start >= 0.0
    assert noise.own_cpu_seconds(os.getpid(), include_children=False) <= noise.own_cpu_seconds(os.getpid())
    # A child that burns a little CPU and exits is still counted (reaped-children counters).
    subprocess.run([sys.executable, "-c", "sum(range(2_000_000))"], check=True)
    assert noise.own_cpu_seconds() > start


def test_own_cpu_seconds_tolerates_vanishing_child(monkeypatch: pytest.MonkeyPatch) -> None:
    class Gone:
        def cpu_times(self) -> None:
            raise psutil.NoSuchProcess(pid=999999)

    monkeypatch.setattr(psutil.Process, "children", lambda self, recursive=False: [Gone()])
    assert noise.own_cpu_seconds() >= 0.0


def test_own_cpu_seconds_missing_root_raises() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with pytest.raises(psutil.NoSuchProcess):
        noise.own_cpu_seconds(proc.pid)


def test_compute_speed_check_shape() -> None:
    result = noise.compute_speed_check(0.01)
    assert result["ops_per_s"] > 0 and math.isfinite(result["ops_per_s"])
    assert result["best_ops_per_s"] > 0
    assert result["duration_s"] > 0 and result["chunks"] >= 1
    assert result["kernel"].startswith(noise.SPEED_KERNEL)
    json.dumps(result)


def test_compute_speed_check_zero_duration_still_measures() -> None:
    result = noise.compute_speed_check(0.0)
    assert result["chunks"] == 1 and result["ops_per_s"] > 0


def test_speed_kernel_work_is_deterministic() -> None:
    assert noise._speed_chunk(1000) == noise._speed_chunk(1000)
