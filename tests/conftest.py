from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """Two test processes (xdist) run `bench run` at the same time on this one machine, which bench's
    machine lock (bench.cluster.lock) would refuse: each test process takes a lock folder of its own.
    The lock's own tests give theirs explicitly."""
    import tempfile

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    config._bench_lock_dir = tempfile.mkdtemp(prefix=f"bench-lock-{worker}-")
    os.environ["BENCH_LOCK_DIR"] = config._bench_lock_dir


def pytest_unconfigure(config):
    """The lock folder goes with the test process, so runs leave nothing in the temporary folder."""
    import shutil

    lock_dir = getattr(config, "_bench_lock_dir", None)
    if lock_dir:
        shutil.rmtree(lock_dir, ignore_errors=True)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder; workers still import tests.fakes from the repository."""
    monkeypatch.chdir(tmp_path)
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + path if path else ""))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL server for the whole session (tests/pgserver.py), or a skip that says why not."""
    from tests.pgserver import PostgresServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()
