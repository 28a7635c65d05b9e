"""Faults around the worker processes: Ctrl-C and SIGTERM in the middle of a run or a sweep, a worker
killed with SIGKILL while another process runs out of memory, and the files of a run that died
without cleaning up. After each: the right exit code and message, no temporary file left, the store
consistent, and a sweep's resume command that works."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.config.compose import compose, to_config
from bench.orchestration.runner import Runner, WorkItem, run_worker
from bench.system.oom import KernelLog, OomWatch
from tests.faults.harness import TEST_CONF, TINY, assert_consistent, bench, leftovers, start

pytestmark = pytest.mark.slow

# The tiny item, then one that hangs (worker.timeout_s keeps it running): a signal sent once the
# first record is written and the second worker's scratch folder exists lands mid-item.
TINY_THEN_HANG = [*[a for a in TINY if not a.startswith("suite.only=")], "suite.only=[tiny,hang]",
                  "worker.timeout_s=300"]
# One item measured for a minute with the sensor sampler on: a signal sent once the sampler writes
# its samples lands mid-measurement.
SAMPLED = [*[a for a in TINY if not a.startswith(("suite.only=", "sensors.", "scenario.m"))], "suite.only=[sleepy]",
           "sensors.enabled=true", "scenario.min_iterations=3", "scenario.min_duration_s=60",
           "scenario.max_duration_s=120", "worker.timeout_s=300"]
# A sweep of three short points (the FAST overrides of tests/integration/test_sweep.py).
SWEEP = ["run", "--config-dir", TEST_CONF, "suite=fake", "suite.only=[tiny]", "sweep=batch", "scenario=throughput",
         "sweep.max_batch=4", "sweep.min_gain=-1", "sweep.respect_latency_requirement=false",
         "scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=3",
         "scenario.min_duration_s=0.05", "scenario.max_duration_s=0.3", "sensors.enabled=false",
         "sweep.require_converged=false"]


def _records(folder: Path) -> list[Path]:
    records = folder / "results" / "records"
    return list(records.rglob("*.json")) if records.is_dir() else []


def _wait_for(proc: subprocess.Popen[str], folder: Path, records: int, worker_running: bool, pid: int,
              sampling: bool = False, timeout: float = 120) -> None:
    """Until ``records`` records are written (and, with ``worker_running``, a worker of the run
    ``pid`` has its scratch folder; with ``sampling``, the sensor sampler writes its samples there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        scratch = [name for name in leftovers(folder) if name.startswith(f"bench-worker-{pid}-")]
        samples = [p for name in scratch for p in (folder / "tmp" / name).glob("bench-samples-*.jsonl")]
        if len(_records(folder)) >= records and (scratch or not worker_running) and (samples or not sampling):
            return
        time.sleep(0.05)
    out, err = proc.communicate(timeout=30) if proc.poll() is not None else ("", "")
    raise AssertionError(f"the run did not get there (exit {proc.returncode}): {err[-2000:]}")


def _processes_in(folder: Path) -> list[int]:
    """The live processes working in ``folder`` (the run and its workers start there)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/cwd") == str(folder):
                    with open(f"/proc/{name}/stat") as handle:
                        if handle.read().rsplit(")", 1)[1].split()[0] != "Z":
                            found.append(int(name))
            except OSError:
                continue
    return found


def _no_process_left(folder: Path) -> None:
    deadline = time.monotonic() + 10
    while _processes_in(folder) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_in(folder), "a worker outlived its run"


def _dead_runs_files(folder: Path) -> list[str]:
    """What a run killed with SIGKILL leaves in the temporary folder: its worker's scratch folder (a
    log, samples), and loose files of versions before scratch folders."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    tmp = folder / "tmp"
    tmp.mkdir(exist_ok=True)
    scratch = tmp / f"bench-worker-{gone.pid}-x1y2"
    scratch.mkdir()
    (scratch / "worker.log").write_text("Fatal Python error: killed\n")
    (scratch / "bench-samples-a1.jsonl").write_text('{"probes": []}\n')
    then = time.time() - 3600  # an hour ago
    for name, text in (("bench-worker-k3j4.log", "old log\n"), ("bench-samples-m5n6.jsonl", "{}\n")):
        (tmp / name).write_text(text)
        os.utime(tmp / name, (then, then))
    return leftovers(folder)


@pytest.mark.parametrize("sig, code, said, args, kept", [
    (signal.SIGINT, 130, "bench: interrupted; the records of finished work items are kept", TINY_THEN_HANG,
     ["tiny"]),
    (signal.SIGTERM, 143, "bench: interrupted by SIGTERM; the records of finished work items are kept", SAMPLED,
     []),
])
def test_a_signal_mid_item_exits_cleanly_and_leaves_nothing(tmp_path, sig, code, said, args, kept):
    """Ctrl-C while a worker builds, SIGTERM while it measures with the sensor sampler writing its
    samples: the worker's group is killed, its scratch folder (log, samples) removed, the finished
    record kept, and the files a dead run left before are gone too (cleaned when this run started)."""
    assert len(_dead_runs_files(tmp_path)) == 3
    proc = start(args, tmp_path)
    _wait_for(proc, tmp_path, records=len(kept), worker_running=True, pid=proc.pid, sampling=args is SAMPLED)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.rstrip().endswith(said) and "Traceback" not in err + out
    assert leftovers(tmp_path) == []
    _no_process_left(tmp_path)
    state = assert_consistent(tmp_path / "results")
    assert [r["workload"]["name"] for r in state.files.values()] == kept
    assert all(r["status"] == "ok" for r in state.files.values())  # the interrupted item is not a failure


def test_a_sweep_under_sigterm_prints_a_resume_command_that_works(tmp_path):
    proc = start(SWEEP, tmp_path)
    _wait_for(proc, tmp_path, records=1, worker_running=False, pid=proc.pid)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "bench: interrupted by SIGTERM; the finished points are kept. Resume with:" in err
    assert "Traceback" not in err + out
    assert leftovers(tmp_path) == []
    first = assert_consistent(tmp_path / "results")
    assert first.files and all(r["status"] == "ok" for r in first.files.values())
    command = err.rstrip().splitlines()[-1].strip()
    sweep_id = next(iter(first.files.values()))["sweep_id"]
    assert command.startswith("bench run ") and command.endswith(f"resume={sweep_id}")
    resumed = bench(shlex.split(command)[1:], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    final = assert_consistent(tmp_path / "results")
    assert sorted(r["workload"]["batch_size"] for r in final.files.values()) == [1, 2, 4]  # each point once
    assert set(first.files) <= set(final.files)
    assert leftovers(tmp_path) == []


class _Watched(OomWatch):
    """The host's kernel log, with the host's OOM count faked to rise during the item (another
    process was OOM-killed meanwhile); remembers the worker's pid."""

    pid = 0

    def started(self, pid: int) -> None:
        type(self).pid = pid
        super().started(pid)


def test_a_worker_killed_while_another_process_runs_out_of_memory_is_failed_not_oom(in_tmp, monkeypatch):
    tmp_path = in_tmp
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    counts = iter(range(100, 200))
    cfg = to_config(compose(["suite=fake", f"results.dir={tmp_path / 'results'}", "sensors.enabled=false"],
                            config_dirs=[TEST_CONF]))
    item = Runner(cfg, None, {}, None).item_request(WorkItem("hang", 1, "latency"))

    def kill_it(event: dict) -> None:  # the worker's first word: it runs
        os.kill(_Watched.pid, signal.SIGKILL)

    outcome = run_worker(item, 60.0, on_event=kill_it,
                         oom_watch=lambda: _Watched(log=KernelLog(), vmstat=lambda: next(counts)).begin())
    assert outcome.returncode == -signal.SIGKILL
    assert outcome.error["kind"] == "crash"
    assert outcome.error["message"].startswith("worker killed by SIGKILL; an out-of-memory kill happened on this host")
    record = Runner(cfg, None, {}, None).make_record(WorkItem("hang", 1, "latency"), outcome, {})
    assert record.status == "failed"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("bench-")]  # its scratch folder is gone
