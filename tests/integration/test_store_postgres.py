"""The store on SQLite and on a real PostgreSQL server (started here on 127.0.0.1, stopped at the end):
round trips, masked credentials, concurrent writers, schema versions, and bad URLs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.cli.main import main
from bench.errors import StoreError
from bench.results.store import DB_SCHEMA_VERSION, ResultsStore, _set_wal, normalize_url
from tests.conftest import ROOT
from tests.pgserver import PASSWORD
from tests.recordfactory import make_record

WRITERS = 4
PER_WRITER = 15


@pytest.fixture
def pg_url(pg_server):
    """A fresh database on the session's server, as a plain postgresql:// URL with a password."""
    return pg_server.create_database()


def _config(url: str) -> dict:
    return {"results": {"name": "team", "dir": "results", "url": url}, "tag": "x"}


def _everything_written(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------- URLs


def test_plain_postgresql_urls_use_psycopg():
    assert normalize_url("postgresql://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"
    assert normalize_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    store = ResultsStore(tmp_path)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
    store.close()


def test_the_password_of_a_results_url_is_never_stored(tmp_path):
    url = f"postgresql://bench:{PASSWORD}@db.example:5432/bench"
    record = make_record(config=_config(url))
    store = ResultsStore(tmp_path)
    path = store.write(record)
    stored = store.records()[0]
    assert stored.config["results"]["url"] == "postgresql://bench:***@db.example:5432/bench"
    assert PASSWORD not in path.read_text()
    with store.engine.connect() as conn:
        assert PASSWORD not in conn.execute(sa.text("SELECT record FROM runs")).scalar_one()
    store.close()
    assert PASSWORD not in _everything_written(tmp_path)


def test_a_read_only_open_creates_nothing(tmp_path):
    with pytest.raises(StoreError, match="no results at"):
        ResultsStore(tmp_path / "none", create=False).engine  # noqa: B018
    assert not (tmp_path / "none").exists()


def test_a_newer_database_schema_is_refused(tmp_path):
    store = ResultsStore(tmp_path)
    store.write(make_record())
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE bench_meta SET value = :v WHERE key = 'schema_version'"),
                     {"v": str(DB_SCHEMA_VERSION + 1)})
    store.close()
    with pytest.raises(StoreError, match="newer than this bench"):
        ResultsStore(tmp_path).engine  # noqa: B018


# ---------------------------------------------------------------- concurrent writers


def write_batch(directory: str, url: str | None, writer: int, start_at: float) -> list[str]:
    """One writer (a process or a thread): opens its own store at the same moment as the others, so
    that creating the tables races too, then writes PER_WRITER records."""
    while time.time() < start_at:
        time.sleep(0.005)
    store = ResultsStore(directory, url)
    ids = []
    try:
        for i in range(PER_WRITER):
            record = make_record(record_id=f"{writer:04d}{i:04d}" + "ab" * 12, tag=f"w{writer}",
                                 raw_samples=[1_000_000 + i, 1_000_100, 1_000_200])
            store.write(record)
            ids.append(record.id)
    finally:
        store.close()
    return ids


def _expect_all(directory: Path, url: str | None, ids: list[str]) -> None:
    store = ResultsStore(directory, url, create=False)
    try:
        assert store.count() == WRITERS * PER_WRITER
        assert sorted(r.id for r in store.records()) == sorted(ids)
    finally:
        store.close()
    files = list((directory / "records").rglob("*.json"))
    assert len(files) == WRITERS * PER_WRITER


def _processes(directory: Path, url: str | None) -> list[str]:
    start_at = time.time() + 3.0  # after the spawned interpreters have imported bench
    with ProcessPoolExecutor(WRITERS, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(write_batch, str(directory), url, w, start_at) for w in range(WRITERS)]
        return [i for f in futures for i in f.result(timeout=180)]


def _threads(directory: Path, url: str | None) -> list[str]:
    start_at = time.time() + 0.2
    with ThreadPoolExecutor(WRITERS) as pool:
        futures = [pool.submit(write_batch, str(directory), url, w, start_at) for w in range(WRITERS)]
        return [i for f in futures for i in f.result(timeout=180)]


@pytest.mark.slow
def test_concurrent_processes_write_to_sqlite_and_lose_nothing(tmp_path):
    _expect_all(tmp_path, None, _processes(tmp_path, None))


def test_concurrent_threads_write_to_sqlite_and_lose_nothing(tmp_path):
    _expect_all(tmp_path, None, _threads(tmp_path, None))


class _LockedCursor:
    """A cursor whose WAL switch is refused `locked` times, as SQLite refuses it while another store's
    last connection closes."""

    def __init__(self, locked: int, message: str = "database is locked") -> None:
        self.locked, self.message, self.calls = locked, message, 0

    def execute(self, sql: str) -> None:
        assert sql == "PRAGMA journal_mode = WAL"
        self.calls += 1
        if self.calls <= self.locked:
            raise sqlite3.OperationalError(self.message)


def test_switching_to_wal_waits_while_the_database_is_locked():
    cursor, pauses = _LockedCursor(locked=5), []
    _set_wal(cursor, timeout_s=60, sleep=pauses.append)
    assert cursor.calls == 6
    assert pauses == [0.001, 0.002, 0.004, 0.008, 0.016]


def test_switching_to_wal_gives_up_at_the_busy_timeout_and_other_errors_at_once():
    cursor = _LockedCursor(locked=10**9)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _set_wal(cursor, timeout_s=0.05, sleep=time.sleep)
    assert 3 <= cursor.calls < 100
    other = _LockedCursor(locked=1, message="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _set_wal(other, timeout_s=60, sleep=lambda s: pytest.fail("retried a non-lock error"))
    assert other.calls == 1


@pytest.mark.slow
def test_stores_opened_and_closed_by_racing_threads_lose_nothing(tmp_path):
    """Each thread opens, writes one record and closes a store of its own, three times: a store opens
    while another store's last connection closes (where SQLite refused the WAL switch at once)."""
    ids = []
    ROUNDS = 30  # noqa: N806 - before the fix, about one round in 60 lost a writer to "database is locked"

    def writer(w: int) -> None:
        for i in range(3):
            store = ResultsStore(tmp_path)
            try:
                record = make_record(record_id=f"{w:04d}{i:04d}" + "cd" * 12, raw_samples=[1_000_000, 1_000_100])
                store.write(record)
                ids.append(record.id)
            finally:
                store.close()

    for _ in range(ROUNDS):
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(writer, range(6)))
        (tmp_path / "bench.db").unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{tmp_path / 'bench.db'}{suffix}").unlink(missing_ok=True)
    assert len(ids) == ROUNDS * 6 * 3
    assert len(list((tmp_path / "records").rglob("*.json"))) == 6 * 3


def test_threads_sharing_one_sqlite_store(tmp_path):
    store = ResultsStore(tmp_path)
    records = [make_record(raw_samples=[1_000_000, 1_000_100]) for _ in range(40)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(store.write, records))
    assert store.count() == 40
    store.close()


# ---------------------------------------------------------------- PostgreSQL


def test_postgresql_round_trip_with_the_password_masked(pg_url, tmp_path):
    assert pg_url.startswith("postgresql://") and PASSWORD in pg_url
    record = make_record(config=_config(pg_url))
    store = ResultsStore(tmp_path, pg_url)
    store.write(record)
    assert store.engine.dialect.name == "postgresql"
    (stored,) = store.records()
    assert stored.id == record.id and stored.metrics == record.metrics
    assert stored.config["results"]["url"] == pg_url.replace(PASSWORD, "***")
    with store.engine.connect() as conn:
        assert PASSWORD not in conn.execute(sa.text("SELECT record FROM runs")).scalar_one()
        version = conn.execute(sa.text("SELECT value FROM bench_meta WHERE key = 'schema_version'")).scalar_one()
        assert int(version) == DB_SCHEMA_VERSION
    store.close()
    assert PASSWORD not in _everything_written(tmp_path)


@pytest.mark.slow
def test_concurrent_processes_write_to_postgresql_and_lose_nothing(pg_url, tmp_path):
    _expect_all(tmp_path, pg_url, _processes(tmp_path, pg_url))


def test_concurrent_threads_write_to_postgresql_and_lose_nothing(pg_url, tmp_path):
    _expect_all(tmp_path, pg_url, _threads(tmp_path, pg_url))


def test_leaderboard_compare_export_import_on_postgresql(pg_url, tmp_path, capsys):
    source = tmp_path / "elsewhere"
    other = ResultsStore(source)
    other.write(make_record(hardware="Box A", median_ms=1.0, seed=1, tag="before"))
    other.write(make_record(hardware="Box A", median_ms=0.5, seed=2, tag="after"))
    other.close()
    location = [f"results.dir={tmp_path / 'local'}", f"results.url={pg_url}"]
    assert main(["import", str(source / "records"), *location]) == 0
    out = capsys.readouterr().out
    assert "imported 2 record(s), skipped 0" in out and PASSWORD not in out
    assert main(["import", str(source / "records"), *location]) == 0
    assert "imported 0 record(s), skipped 2" in capsys.readouterr().out
    assert main(["leaderboard", "--format", "csv", *location]) == 0
    assert "Box A" in capsys.readouterr().out
    assert main(["compare", "tag=before", "tag=after", *location]) == 0
    out = capsys.readouterr().out
    assert "times faster than baseline" in out and PASSWORD not in out
    assert main(["export", "--format", "csv", *location]) == 0
    assert capsys.readouterr().out.count("Box A") == 2


@pytest.mark.parametrize("collation", [None, "und-x-icu"])
def test_the_leaderboards_choice_on_postgresql_is_builds_whatever_the_collation(pg_url, tmp_path, collation):
    """ResultsStore.choices compares times and ids in byte order, as Python does, also where the
    columns sort by a locale's rules (ICU's root collation puts ".5+00:00" before "+00:00")."""
    import io

    from bench.reporting import leaderboard as lb
    from bench.reporting import leaderboard_render as lr
    from bench.results.query import shown_records
    from tests.recordfactory import make_continual_record

    records = [make_record(hardware=hw, created_at=f"2026-12-0{i + 1}T00:00:00+00:00", median_ms=1.0 + i / 10, seed=i,
                           **({"warnings": ["outliers", "foreign_cpu"]} if i == 2 else {}))
               for i, hw in enumerate(("Box A", "Box A", "Box A", "Box B"))]
    records += [make_record(hardware="Edge box", created_at="2026-12-29", median_ms=1.2, seed=91),
                make_record(hardware="Edge box", created_at="2026-12-29T00:00:00+00:00", median_ms=1.0, seed=92),
                make_record(hardware="Edge box", created_at="2026-12-29T00:00:00.5+00:00", median_ms=1.1, seed=93,
                            warnings=["outliers", "foreign_cpu"]),
                make_continual_record("within", created_at="2026-12-30T00:00:00+00:00"),
                make_record(hardware="Box B", created_at="2026-12-31T00:00:00+00:00", parity_ok=False)]
    store = ResultsStore(tmp_path, pg_url)
    try:
        for r in records:
            store.write(r)
        if collation:
            with store.engine.begin() as conn:
                available = conn.execute(sa.text("SELECT count(*) FROM pg_collation WHERE collname = :c"),
                                         {"c": collation}).scalar_one()
                if not available:
                    pytest.skip(f"this PostgreSQL has no {collation} collation (built without ICU)")
                for column, size in (("created_at", 40), ("id", 32)):
                    conn.execute(sa.text(f'ALTER TABLE runs ALTER COLUMN {column} TYPE VARCHAR({size}) '
                                         f'COLLATE "{collation}"'))
                assert not conn.execute(sa.text("SELECT '2026-12-29T00:00:00+00:00' < "
                                                "'2026-12-29T00:00:00.5+00:00'::varchar COLLATE \"und-x-icu\"")
                                        ).scalar_one()  # the locale's order is not Python's
        for newest in (False, True):
            old = lb.build(store.records(), None, {}, source="s", selection="x", newest=newest)
            new = lb.build_indexed(lambda exclude: store.choices({}, exclude), shown_records(store), None, {},
                                   source="s", selection="x", newest=newest)
            rendered = [(lr.render_terminal(b, stream := io.StringIO()), stream.getvalue(), lr.render_csv(b))[1:]
                        for b in (old, new)]
            assert rendered[0] == rendered[1]
            shown = {row.hardware: row.record.created_at for g in new.groups for row in g.rows}
            assert shown["Edge box"] == ("2026-12-29T00:00:00.5+00:00" if newest else "2026-12-29T00:00:00+00:00")
            assert shown["Box A"] == ("2026-12-03T00:00:00+00:00" if newest else "2026-12-02T00:00:00+00:00")
        total, _ = store.choices({})
        assert total == len(records)
    finally:
        store.close()


def test_store_check_finds_and_repairs_damage_on_postgresql(pg_url, tmp_path, capsys):
    store = ResultsStore(tmp_path, pg_url)
    records = [make_record(tag=f"c{i}") for i in range(3)]
    paths = [store.write(r) for r in records]
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM runs WHERE id = :id"), {"id": records[0].id})  # file without row
        conn.execute(sa.text("UPDATE runs SET record = 'x' WHERE id = :id"), {"id": records[1].id})  # broken row
    store.close()
    paths[2].unlink()  # row without file
    location = [f"results.dir={tmp_path}", f"results.url={pg_url}"]
    assert main(["store", "check", *location]) == 1
    out = capsys.readouterr().out
    assert out.count("problem: ") == 3 and PASSWORD not in out
    assert main(["store", "check", "--repair", *location]) == 0
    assert capsys.readouterr().out.count("repaired: ") == 3
    assert main(["store", "check", *location]) == 0
    assert capsys.readouterr().out.rstrip().endswith("consistent")
    store = ResultsStore(tmp_path, pg_url, create=False)
    assert sorted(r.id for r in store.records()) == sorted(r.id for r in records)
    store.close()
    assert json.loads(paths[2].read_text())["id"] == records[2].id


def test_a_fresh_postgresql_database_is_created_once_by_racing_openers(pg_url):
    errors = []

    def open_store() -> None:
        try:
            store = ResultsStore("unused", pg_url)
            store.engine  # noqa: B018 - opening creates the tables
            store.close()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# ---------------------------------------------------------------- bad URLs


def _free_closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [["leaderboard"], ["export", "--format", "csv"], ["compare", "tag=a", "tag=b"],
                                     ["import", str(ROOT / "tests" / "golden")]])
def test_an_unreachable_database_is_one_line_exit_2_password_masked(command, tmp_path, capsys, monkeypatch):
    pytest.importorskip("psycopg")
    monkeypatch.chdir(tmp_path)
    url = f"postgresql://bench:{PASSWORD}@127.0.0.1:{_free_closed_port()}/bench"
    assert main([*command, f"results.url={url}"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: results.url=")
    assert "cannot be opened" in lines[0] and "bench:***@127.0.0.1" in lines[0]
    assert PASSWORD not in captured.err + captured.out
    assert list(tmp_path.iterdir()) == []


def test_a_postgresql_url_with_a_wrong_password_is_refused_masked(pg_server, capsys, tmp_path):
    url = pg_server.url().replace(PASSWORD, "wrong-Pw-123")
    assert main(["leaderboard", f"results.url={url}", f"results.dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "wrong-Pw-123" not in err and "bench:***@" in err and len(err.strip().splitlines()) == 1


def test_store_json_stays_readable(tmp_path):
    store = ResultsStore(tmp_path)
    path = store.write(make_record())
    assert json.loads(path.read_text())["schema_version"] == 1
    store.close()


@pytest.mark.slow
def test_bench_run_stores_into_postgresql_with_the_password_masked(pg_url, in_tmp):
    """A real `bench run` of the fake suite: the record lands in PostgreSQL, its resolved config holds
    results.url with the password masked, and nothing bench writes or prints holds the password."""
    proc = subprocess.run([sys.executable, "-m", "bench.cli.main", "run", "--config-dir", str(ROOT / "tests" / "conf"),
                           "suite=fake", "suite.only=[tiny]", "scenario.min_duration_s=0.05",
                           "scenario.max_duration_s=0.2", f"results.url={pg_url}", "tag=pg"],
                          cwd=in_tmp, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    store = ResultsStore(in_tmp / "results", pg_url, create=False)
    (record,) = store.records()
    store.close()
    assert record.tag == "pg" and record.valid
    assert record.config["results"]["url"] == pg_url.replace(PASSWORD, "***")
    assert PASSWORD not in _everything_written(in_tmp / "results")


def test_without_postgresql_binaries_the_tests_say_why(monkeypatch):
    import tests.pgserver as pgserver

    monkeypatch.setattr(pgserver, "INITDB_GLOB", "/nonexistent/postgresql/*/bin/initdb")
    monkeypatch.setattr(pgserver.shutil, "which", lambda name: None)
    reason = pgserver.unavailable_reason()
    assert reason and "PostgreSQL server binaries not found" in reason and "apt-get install postgresql" in reason
