"""Cluster multiruns with the launchers' own local modes, into the tests' PostgreSQL server: submitit's
local processes and a Ray cluster started here on 127.0.0.1. Each checks that every record arrived
once, that no two jobs measured at the same time on this machine (the records' measuring windows), how
a killed job is reported, and that the database password is in no file the launchers wrote."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the cluster extra: pip install -e '.[cluster]'")

FAST = ["scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=3",
        "scenario.min_duration_s=0.2", "scenario.max_duration_s=1"]
TINY = ["--config-dir", str(ROOT / "tests" / "conf"), "suite=fake", "suite.only=[tiny]", "sensors.enabled=false"]


@pytest.fixture
def shared(pg_server, in_tmp):
    """A fresh database of the tests' server: its URL without the password, the environment that
    carries the password (PGPASSWORD), and a store to read it back."""
    from bench.results.store import ResultsStore
    from tests.pgserver import PASSWORD

    url = pg_server.create_database()
    bare = url.replace(f":{PASSWORD}@", "@")
    assert PASSWORD not in bare
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    store = ResultsStore(in_tmp / "read", url)
    yield bare, env, store
    store.close()


def _bench(args, cwd, env, timeout=600):
    return subprocess.run([sys.executable, "-m", "bench.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)


def _windows(records):
    return sorted((dt.datetime.fromisoformat(r.setup["measured_from"]), dt.datetime.fromisoformat(r.setup["measured_to"]))
                  for r in records)


def _never_overlap(records):
    spans = _windows(records)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])), spans


def _no_password_in(folder: Path, password: str) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    leaked = [p for p in files if password.encode() in p.read_bytes()]
    assert files and not leaked, leaked


def _jobs(store, run_id):
    from bench.cluster.jobs import jobs_of

    return jobs_of(store.engine, run_id)


def _run_id(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith("multirun "))
    return line.split("(run_id=")[1].rstrip(")")


def test_submitit_local_multirun_lands_every_record_once_in_the_shared_store(shared, in_tmp):
    from tests.pgserver import PASSWORD

    url, env, store = shared
    proc = _bench(["run", "-m", "hydra/launcher=submitit_local", *TINY, "batch_size=1,2", f"results.url={url}", *FAST],
                  in_tmp, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id = _run_id(proc.stdout)
    assert f"through submitit_local: 2 job(s), 2 record(s) in {url}" in proc.stdout
    records = store.select({"run_id": [run_id]})
    assert sorted(r.workload["batch_size"] for r in records) == [1, 2] and len({r.id for r in records}) == 2
    _never_overlap(records)
    jobs = _jobs(store, run_id)
    assert [(j.job, j.state, j.records) for j in jobs] == [(0, "done", 1), (1, "done", 1)]
    assert all(j.launcher == "submitit_local" and j.host and j.machine for j in jobs)
    _no_password_in(in_tmp / "results", PASSWORD)  # submitit's pickles and logs, Hydra's multirun.yaml
    assert PASSWORD not in proc.stdout + proc.stderr


def test_a_job_killed_on_its_node_is_reported_failed_with_its_reason(shared, in_tmp):
    """Job 0 measures for a long while and is killed (SIGKILL, as an OOM killer or a node failure would);
    job 1 still runs, and the command's summary, from the store, says which failed and why."""
    import signal

    url, env, store = shared
    # Job 0 cannot reach its precision target and would measure for 60 s; job 1 stops at its loose one.
    args = ["run", "-m", "hydra/launcher=submitit_local", *TINY, *FAST, "scenario.max_duration_s=60",
            "scenario.target_rel_ci=0.000001,0.5", f"results.url={url}"]
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli.main", *args], cwd=in_tmp, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    import sqlalchemy as sa

    from bench.cluster.jobs import ensure_table, jobs

    ensure_table(store.engine)
    pid, deadline = None, time.monotonic() + 120
    while pid is None and time.monotonic() < deadline and proc.poll() is None:
        with store.engine.connect() as conn:
            row = conn.execute(sa.select(jobs.c.pid).where(jobs.c.job == 0, jobs.c.state == "running")).first()
        pid = row[0] if row else None
        time.sleep(0.3)
    assert pid, "job 0 never said it started"
    time.sleep(3)  # well inside its 60 s of measuring
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err
    run_id = _run_id(out)
    jobs_now = {j.job: j for j in _jobs(store, run_id)}
    assert jobs_now[0].state == "failed" and "ended without a result" in jobs_now[0].reason
    assert jobs_now[1].state == "done" and jobs_now[1].records == 1
    assert f"job 0 [" in out and ": failed, no record: job " in out and "ended without a result" in out
    records = store.select({"run_id": [run_id]})
    assert len(records) == 1 and records[0].scenario["target_rel_ci"] == 0.5


def _ray_start(tmp: Path, env: dict, port: int, head: bool) -> None:
    resources = '{"bench_machine": 1}'
    args = ["ray", "start", f"--num-cpus=1", f"--resources={resources}", "--disable-usage-stats"]
    if head:
        args += ["--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--include-dashboard=false",
                 f"--temp-dir={tmp}"]
    else:
        args += [f"--address=127.0.0.1:{port}"]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ray_multirun_measures_one_job_per_machine_into_the_shared_store(shared, in_tmp):
    """A head node and a second node process on this one machine: Ray sees two nodes each offering one
    bench_machine and may start both jobs at once; bench's machine lock then refuses the one that would
    measure beside the other. Either way no two measuring windows overlap, and a refused job says why."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="the cluster extra: pip install -e '.[cluster]'")
    import socket

    from tests.pgserver import PASSWORD

    url, env, store = shared
    if shutil.which("ray") is None:
        pytest.skip("the ray command is not on PATH")
    tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay short
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_env = {**env, "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        _ray_start(tmp, ray_env, port, head=True)
        _ray_start(tmp, ray_env, port, head=False)
        proc = _bench(["run", "-m", "hydra/launcher=ray", f"hydra.launcher.ray.init.address=127.0.0.1:{port}", *TINY,
                       "batch_size=1,2", f"results.url={url}", *FAST], in_tmp, env)
    finally:
        subprocess.run(["ray", "stop", "--force"], env=ray_env, capture_output=True, timeout=120)
    run_id = _run_id(proc.stdout)
    jobs = _jobs(store, run_id)
    assert [j.job for j in jobs] == [0, 1], proc.stdout + proc.stderr
    refused = [j for j in jobs if j.state == "failed"]
    assert all("another measurement is running on this machine" in j.reason for j in refused), jobs
    assert len(refused) <= 1
    records = store.select({"run_id": [run_id]})
    assert len(records) == 2 - len(refused) and len({r.id for r in records}) == len(records)
    _never_overlap(records)
    assert proc.returncode == (1 if refused else 0), proc.stdout + proc.stderr
    _no_password_in(in_tmp / "results", PASSWORD)
    _no_password_in(tmp, PASSWORD)  # Ray's session folder: logs, spilled objects
    assert PASSWORD not in proc.stdout + proc.stderr
    shutil.rmtree(tmp, ignore_errors=True)


def test_a_password_in_the_url_is_refused_before_anything_is_launched(in_tmp):
    proc = _bench(["run", "-m", "hydra/launcher=submitit_local", *TINY, "batch_size=1,2",
                   "results.url=postgresql://bench:hunter2@127.0.0.1:1/x"], in_tmp, dict(os.environ))
    assert proc.returncode == 2
    assert proc.stderr.count("bench: error:") == 1 and "PGPASSWORD" in proc.stderr and "hunter2" not in proc.stderr
    assert not (in_tmp / "results").exists()


def test_a_launcher_without_its_packages_gets_one_line_saying_how_to_install_them(in_tmp, monkeypatch, capsys):
    import builtins

    from bench.cli.main import main

    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray.") or name.startswith("hydra_plugins.hydra_ray_launcher"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    monkeypatch.delitem(sys.modules, "hydra_plugins.hydra_ray_launcher.ray_launcher", raising=False)
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    assert main(["run", "-m", "hydra/launcher=ray", *TINY, "batch_size=1,2"]) == 2
    err = capsys.readouterr().err
    assert err.count("bench: error:") == 1 and "pip install 'bench[cluster]'" in err and "Traceback" not in err
    assert not (in_tmp / "results").exists()


def test_a_ray_address_where_no_cluster_listens_is_refused_in_one_line(in_tmp):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="the cluster extra: pip install -e '.[cluster]'")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    proc = _bench(["run", "-m", "hydra/launcher=ray", f"hydra.launcher.ray.init.address=127.0.0.1:{port}", *TINY,
                   "batch_size=1,2"], in_tmp, dict(os.environ), timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("bench: error:")]
    assert len(errors) == 1 and "reaches no Ray cluster" in errors[0] and "bench_machine" in errors[0]
    assert "Traceback" not in proc.stderr
