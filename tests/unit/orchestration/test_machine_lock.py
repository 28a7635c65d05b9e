"""bench.cluster.lock: one measurement at a time on a machine, the holder named in the refusal."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.cluster.lock import HOLDER_NAME, MachineBusy, MachineLock

HOLD = """
import sys, time
from pathlib import Path
from bench.cluster.lock import MachineLock
lock = MachineLock("run-abc", command="bench run suite=anomaly", directory=Path(sys.argv[1]))
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def _holder(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_measurement_is_refused_with_the_holder_named(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(MachineBusy) as caught:
            MachineLock("run-2", directory=tmp_path).acquire()
        message = str(caught.value)
        assert f"pid {proc.pid}" in message and "`bench run suite=anomaly`" in message and "run run-abc" in message
        assert str(tmp_path / "bench-measure.lock") in message and "\n" not in message
        assert caught.value.exit_code == 2
    finally:
        proc.kill()
        proc.wait()
    # The kernel drops a dead holder's lock: nothing stale is left to refuse the next run.
    with MachineLock("run-3", directory=tmp_path) as lock:
        holder = json.loads((tmp_path / HOLDER_NAME).read_text())
        assert holder["run_id"] == "run-3" and holder["pid"] == lock.holder()["pid"]
    assert not (tmp_path / HOLDER_NAME).exists()


def test_the_lock_is_taken_again_after_release_and_is_per_folder(tmp_path):
    first = MachineLock("a", directory=tmp_path / "one")
    first.acquire()
    MachineLock("b", directory=tmp_path / "two").acquire()  # another folder: another machine's lock
    with pytest.raises(MachineBusy, match="another measurement is running on this machine"):
        MachineLock("c", directory=tmp_path / "one").acquire()
    first.release()
    second = MachineLock("c", directory=tmp_path / "one")
    second.acquire()
    second.release()


def test_bench_run_refuses_to_measure_beside_a_running_measurement(tmp_path, in_tmp, monkeypatch):
    """The real CLI: one line on stderr naming the holder, exit 2, nothing measured or stored."""
    from tests.conftest import ROOT

    monkeypatch.setenv("BENCH_LOCK_DIR", str(tmp_path / "locks"))
    proc = _holder(tmp_path / "locks")
    try:
        run = subprocess.run([sys.executable, "-m", "bench.cli.main", "run", "--config-dir", str(ROOT / "tests" / "conf"),
                              "suite=fake", "suite.only=[tiny]", "sensors.enabled=false"], cwd=in_tmp,
                             capture_output=True, text=True, timeout=300)
    finally:
        proc.kill()
        proc.wait()
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("bench: error:")]
    assert len(errors) == 1 and f"pid {proc.pid}" in errors[0] and "Traceback" not in run.stderr
    assert not list((in_tmp / "results").rglob("*.json"))
