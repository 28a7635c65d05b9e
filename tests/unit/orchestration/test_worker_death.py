"""Why a worker died without a word, and what is left of it: SIGKILL is an out-of-memory only on
evidence that names the worker, a crash stays a crash in a sweep, and the scratch folders of dead
runs are removed at the next start while a live run's are kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from bench.config.compose import compose, to_config
from bench.orchestration.runner import Runner, WorkerOutcome, WorkItem, _death_reason
from bench.orchestration.scratch import make_scratch, remove_scratch, remove_stale
from bench.orchestration.sweep import SweepPoint, batch_sweep, point_from_record
from bench.system.oom import OomEvidence
from tests.conftest import ROOT

SIGKILL = -signal.SIGKILL


def test_sigkill_without_evidence_is_a_crash_even_when_the_host_counted_an_oom():
    quiet = _death_reason(SIGKILL, OomEvidence(), 4242)
    assert quiet == {"kind": "crash", "message": "worker killed by SIGKILL"}
    elsewhere = _death_reason(SIGKILL, OomEvidence(elsewhere=True), 4242)
    assert elsewhere["kind"] == "crash" and elsewhere["message"].startswith("worker killed by SIGKILL; ")
    assert "out-of-memory kill happened on this host during the item" in elsewhere["message"]
    assert "no kernel record names this worker (pid 4242)" in elsewhere["message"]
    blind = _death_reason(SIGKILL, OomEvidence(elsewhere=True, unreadable="/dev/kmsg: Permission denied"), 4242)
    assert blind["kind"] == "crash" and "could not be read to tell whose (/dev/kmsg: Permission denied)" \
        in blind["message"]


def test_sigkill_named_by_the_kernel_is_an_oom():
    reason = _death_reason(SIGKILL, OomEvidence(named="the kernel's log: Out of memory: Killed process 4242"), 4242)
    assert reason["kind"] == "oom"
    assert reason["message"] == ("worker killed by the kernel's out-of-memory killer (the kernel's log: Out of "
                                 "memory: Killed process 4242)")


def test_other_deaths_are_crashes():
    assert _death_reason(-signal.SIGSEGV, None) == {"kind": "crash", "message": "worker crashed with SIGSEGV"}
    # Evidence is only asked for SIGKILL: a SIGSEGV with an OOM named elsewhere is still a crash.
    assert _death_reason(-signal.SIGSEGV, OomEvidence(named="x"))["kind"] == "crash"
    assert _death_reason(3, None) == {"kind": "crash", "message": "worker exited with code 3 without a result"}


def test_a_killed_point_is_a_crash_that_does_not_stop_the_sweep(tmp_path):
    cfg = to_config(compose(["suite=fake", "sweep=batch", f"results.dir={tmp_path / 'results'}"],
                            config_dirs=[str(ROOT / "tests" / "conf")]))
    runner = Runner(cfg, None, {}, None)
    killed = runner.make_record(WorkItem("tiny", 2, "latency"),
                                WorkerOutcome(error=_death_reason(SIGKILL, OomEvidence(elsewhere=True), 1)), {})
    assert killed.status == "failed" and killed.error["kind"] == "crash"
    assert point_from_record(killed).status == "failed"

    def measure(batch: int) -> SweepPoint:
        return point_from_record(killed) if batch == 2 else SweepPoint(batch, "ok", 10.0 * batch, 1.0)

    result = batch_sweep(measure, 1, 2, 8, 0.02, 2, None)
    assert [p.batch_size for p in result.points] == [1, 2, 4, 8] and "cap" in result.stop_reason
    oom = runner.make_record(WorkItem("tiny", 2, "latency"),
                             WorkerOutcome(error=_death_reason(SIGKILL, OomEvidence(named="log"), 1)), {})
    assert oom.status == "oom" and point_from_record(oom).status == "oom"


def _age(path, seconds: float = 120.0) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_scratch_folders_of_dead_runs_go_and_a_live_runs_stay(tmp_path):
    dead = _dead_pid()
    for name in (f"bench-worker-{dead}-abc", f"bench-worker-{os.getpid()}-def"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "worker.log").write_text("last words")
        (tmp_path / name / "bench-samples-x.jsonl").write_text("{}")
    # Loose files of versions before the scratch folder: removed unless a process holds them open.
    for name in ("bench-worker-old1.log", "bench-samples-old2.jsonl", "bench-worker-held.log", "bench-worker-new.log"):
        (tmp_path / name).write_text("x")
        if name != "bench-worker-new.log":  # written a minute ago: its run may still read it
            _age(tmp_path / name)
    (tmp_path / "bench-pg-keep").mkdir()  # another bench folder: not the worker's
    (tmp_path / "unrelated.log").write_text("x")
    held = {str(tmp_path / "bench-worker-held.log")}
    removed = remove_stale(str(tmp_path), held_open=lambda: held)
    assert sorted(removed) == sorted([f"bench-worker-{dead}-abc", "bench-worker-old1.log", "bench-samples-old2.jsonl"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"bench-worker-{os.getpid()}-def", "bench-worker-held.log", "bench-worker-new.log", "bench-pg-keep",
         "unrelated.log"])
    # When it cannot be known who holds the loose files open, they stay.
    (tmp_path / "bench-worker-old3.log").write_text("x")
    _age(tmp_path / "bench-worker-old3.log")
    assert remove_stale(str(tmp_path), held_open=lambda: None) == []


@pytest.mark.skipif(os.getuid() != 0, reason="giving a folder to another user needs root")
def test_another_users_scratch_folder_stays(tmp_path):
    folder = tmp_path / f"bench-worker-{_dead_pid()}-abc"
    folder.mkdir()
    os.chown(folder, 4321, -1)
    assert remove_stale(str(tmp_path)) == [] and folder.exists()


def test_the_real_open_files_of_this_process_count_as_held(tmp_path):
    path = tmp_path / "bench-worker-mine.log"
    with open(path, "w"):
        _age(path)
        assert remove_stale(str(tmp_path)) == [] and path.exists()
    assert remove_stale(str(tmp_path)) == ["bench-worker-mine.log"]


def test_a_scratch_folder_is_removed_with_its_content(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    folder = make_scratch()
    assert folder.parent == tmp_path and folder.name.startswith(f"bench-worker-{os.getpid()}-")
    (folder / "sub").mkdir()
    (folder / "sub" / "f").write_text("x")
    remove_scratch(folder)
    assert list(tmp_path.iterdir()) == []
