"""The faults `bench` already survived when it was tried as an attacker would, kept end to end so that
none comes back: a worker that raises, segfaults, runs out of memory, exits or hangs; a database that
refuses connections; a read-only results folder; two runs and two imports at once on one folder;
kill -9 of the parent mid-sweep and its resume; Ctrl-C mid-sweep. After each, the JSON files and the database rows are compared (nothing lost, duplicated or corrupted)
and nothing of bench's is left in the temporary folder. (Ctrl-C and SIGTERM mid-item, SIGTERM mid-sweep,
a full disk and damaged records have their own files here.)
"""

from __future__ import annotations

import json
import signal
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.harness import (SECRET, TEST_CONF, TINY, assert_consistent, assert_no_secret, assert_refused, bench,
                                  env_for, leftovers, mounted_tmpfs, start)
from tests.recordfactory import make_record

pytestmark = pytest.mark.slow


def _records(results: Path) -> dict[str, dict]:
    """The stored records by workload name (one item each)."""
    return {r["workload"]["name"]: r for r in assert_consistent(results).files.values()}


def test_each_worker_fault_is_a_record_and_the_run_goes_on(in_tmp):
    # The timeout must leave the healthy items room to start torch on a loaded machine.
    proc = bench([*TINY, "suite.only=[raises,segfault,oom,exit,hang,tiny]", "worker.timeout_s=12",
                  "scenario.min_iterations=5"], in_tmp)
    assert proc.returncode == 1, proc.stderr  # some items failed
    assert "Traceback" not in proc.stderr
    assert "FAILED" in proc.stdout and "boom from the model builder" in proc.stdout  # the summary says why
    by_name = _records(in_tmp / "results")
    assert sorted(by_name) == ["exit", "hang", "oom", "raises", "segfault", "tiny"]
    raised = by_name["raises"]
    assert raised["status"] == "failed" and raised["error"]["kind"] == "exception"
    assert "ValueError: boom from the model builder" in raised["error"]["message"]
    assert "build_raises" in raised["error"]["traceback"]
    crashed = by_name["segfault"]
    assert crashed["status"] == "failed" and crashed["error"]["kind"] == "crash"
    assert "SIGSEGV" in crashed["error"]["message"]
    assert "Segmentation fault" in crashed["error"]["log_tail"]  # faulthandler's last words
    oom = by_name["oom"]
    assert oom["status"] == "oom" and oom["error"]["kind"] == "oom"
    assert "MemoryError" in oom["error"]["message"]
    exited = by_name["exit"]
    assert exited["error"]["kind"] == "crash" and "code 3" in exited["error"]["message"]
    hang = by_name["hang"]
    assert hang["status"] == "failed" and hang["error"]["kind"] == "timeout"
    assert "worker.timeout_s=12" in hang["error"]["message"]
    ok = by_name["tiny"]
    assert ok["status"] == "ok" and ok["parity"]["ok"] and ok["error"] is None
    assert ok["metrics"]["throughput_sps"] > 0
    assert ok["workload"]["params"] == 16 * 32 + 32 + 32 * 4 + 4
    assert len(ok["raw"]["loop"]["samples_ns"]) == ok["metrics"]["samples"]
    assert not leftovers(in_tmp)
    # No worker outlives its item (the hung one was killed with its whole process group).
    alive = subprocess.run(["pgrep", "-f", "bench.worker.process"], capture_output=True, text=True).stdout.split()
    assert not [pid for pid in alive if _cwd(pid) == in_tmp]


def _cwd(pid: str) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket goes


def test_a_database_that_refuses_connections_is_one_line_with_the_password_masked(in_tmp):
    pytest.importorskip("psycopg")
    url = f"postgresql://bench:{SECRET}@127.0.0.1:{_closed_port()}/bench"
    proc = bench([*TINY, f"results.url={url}"], in_tmp, timeout=120)
    assert_refused(proc, "bench:***@127.0.0.1", in_tmp)
    assert "cannot be opened" in proc.stderr
    assert_no_secret(SECRET, proc.stdout, proc.stderr, folders=[in_tmp])


@pytest.fixture
def tmpfs(in_tmp):
    """A small file system of its own under the test's folder (root only: mount)."""
    with mounted_tmpfs(in_tmp / "fs", "8m") as mount:
        yield mount


def _remount_read_only(mount: Path) -> None:
    """Remount read-only; the kernel refuses ("busy") while a file there is still open for writing,
    e.g. for the moment a finished process's last handles close."""
    for _ in range(50):
        done = subprocess.run(["mount", "-o", "remount,ro", str(mount)], capture_output=True, text=True)
        if done.returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"cannot remount {mount} read-only: {done.stderr.strip()}")


def test_a_read_only_results_folder_is_refused_and_what_it_holds_is_kept(tmpfs, in_tmp):
    results = tmpfs / "results"
    first = bench([*TINY, f"results.dir={results}"], in_tmp)
    assert first.returncode == 0, first.stderr
    before = assert_consistent(results)
    assert len(before.files) == 1
    _remount_read_only(tmpfs)
    proc = bench([*TINY, f"results.dir={results}"], in_tmp)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert f"results.dir={str(results)!r} is not writable (Read-only file system)" in lines[0]
    after = assert_consistent(results)
    assert after.files == before.files and after.rows == before.rows
    assert not leftovers(in_tmp)


def test_two_runs_at_once_on_one_fresh_results_folder_lose_nothing(in_tmp):
    """Both open (and create) one SQLite store at the same moment, then each writes its record. Each
    has a machine lock of its own (as two machines writing one shared store would): this is about the
    store, and on one machine the second measurement would be refused (bench.cluster.lock)."""
    env = env_for(in_tmp)
    runs = [start([*TINY, f"tag=run{i}"], in_tmp, env={**env, "BENCH_LOCK_DIR": str(in_tmp / f"lock{i}")})
            for i in range(2)]
    outputs = [proc.communicate(timeout=300) for proc in runs]
    for proc, (_, err) in zip(runs, outputs):
        assert proc.returncode == 0, err
    state = assert_consistent(in_tmp / "results")
    assert sorted(r["tag"] for r in state.files.values()) == ["run0", "run1"]
    assert not leftovers(in_tmp)


def test_two_imports_at_once_store_each_record_once(in_tmp):
    from bench.results.store import ResultsStore

    source = ResultsStore(in_tmp / "source")
    records = [make_record(hardware=f"H{i}", seed=i) for i in range(6)]
    for record in records:
        source.write(record)
    source.close()
    env = env_for(in_tmp)
    imports = [subprocess.Popen([sys.executable, "-m", "bench.cli.main", "import", str(in_tmp / "source" / "records"),
                                 f"results.dir={in_tmp / 'team'}"], cwd=in_tmp, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outputs = [proc.communicate(timeout=120) for proc in imports]
    assert [proc.returncode for proc in imports] == [0, 0, 0], outputs
    added = sum(int(out.split("imported ")[1].split()[0]) for out, _ in outputs)
    assert added == len(records)  # each record stored by exactly one of the imports
    state = assert_consistent(in_tmp / "team")
    assert set(state.files) == {r.id for r in records}
    assert all(state.files[r.id] == json.loads(json.dumps(r.to_dict())) for r in records)  # stored as sent


# A sweep whose points do not converge in 0.3 s on a loaded machine must still reach the point under test.
SWEEP = ["run", "--config-dir", TEST_CONF, "suite=fake", "suite.only=[tiny]", "sweep=batch", "scenario=throughput",
         "sweep.min_gain=-1", "sweep.respect_latency_requirement=false", "scenario.warmup_iterations=1",
         "scenario.warmup_s=0.01", "scenario.min_iterations=3", "scenario.min_duration_s=0.05",
         "scenario.max_duration_s=0.3", "sensors.enabled=false", "sweep.require_converged=false"]


def _sweep_until(folder: Path, max_batch: int, points: int):
    """A sweep started in ``folder``, returned once ``points`` record files are written."""
    args = [*SWEEP, f"sweep.max_batch={max_batch}"]
    proc = start(args, folder)
    records = folder / "results" / "records"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(records.rglob("*.json"))) < points:
        time.sleep(0.05)
    return args, proc, records


def _parent_is_gone(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        return ppid == 1
    except (OSError, ValueError):
        return False


def test_resume_after_kill_9_measures_nothing_twice_and_indexes_what_the_kill_cut_off(in_tmp):
    args, proc, records = _sweep_until(in_tmp, max_batch=8, points=2)
    proc.send_signal(signal.SIGKILL)  # the parent dies mid-sweep, between or during points (or a file's row)
    proc.communicate()
    first = [json.loads(p.read_text()) for p in records.rglob("*.json")]
    assert len(first) >= 2
    sweep_id = first[0]["sweep_id"]
    assert sweep_id and all(r["sweep_id"] == sweep_id for r in first)
    time.sleep(0.5)
    # No worker is left measuring for a dead parent.
    alive = subprocess.run(["pgrep", "-f", "bench.worker.process"], capture_output=True, text=True).stdout.split()
    assert not [pid for pid in alive if _parent_is_gone(pid) and _cwd(pid) == in_tmp]
    resumed = bench([*args, f"resume={sweep_id}"], in_tmp)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr and f"sweep {sweep_id}" in resumed.stdout
    final = assert_consistent(in_tmp / "results")  # a file whose row the kill cut off is indexed now
    batches = sorted(r["workload"]["batch_size"] for r in final.files.values())
    assert batches == [1, 2, 4, 8]  # each point once: nothing lost, nothing measured twice
    assert {r["id"] for r in first} <= set(final.files)
    assert not leftovers(in_tmp)  # the dead parent's scratch folders went at the next start


def test_ctrl_c_mid_sweep_keeps_the_finished_points_and_prints_the_resume_command(in_tmp):
    _, proc, records = _sweep_until(in_tmp, max_batch=64, points=1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    kept = assert_consistent(in_tmp / "results").files.values()
    assert kept and all(r["status"] == "ok" for r in kept)  # the interrupted point is not recorded as failed
    sweep_id = next(iter(kept))["sweep_id"]
    assert f"resume={sweep_id}" in err and "Traceback" not in err + out
    assert not leftovers(in_tmp)
