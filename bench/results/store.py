"""Where records land: one JSON file per record, and one row per record in a SQLAlchemy database
(SQLite under results/ by default, PostgreSQL by URL for teams whose runs come from many machines).

Both writes are atomic. The JSON file is written to a temporary name, flushed to disk and renamed
over its final name, so a killed run leaves either the whole file or none; the row is inserted in a
transaction. The JSON file is written first: it is the record, the row is its index.

Several runs may write at once. SQLite runs in WAL mode with a busy timeout, and every writing
transaction starts with BEGIN IMMEDIATE, so a writer waits for the lock instead of failing with
"database is locked" when a transaction that has read something then writes; readers begin deferred
and, in WAL mode, never wait for a writer. Switching a new connection to WAL is retried while locked
(SQLite refuses it without waiting while another store's last connection closes). PostgreSQL creates its tables under
an advisory lock, so that machines opening a fresh database at once do not race on CREATE TABLE.

Credentials stay in the URL: the write path masks the password of every database URL in a record's
config before anything is written, and error messages show URLs masked.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import sqlalchemy as sa

from bench.errors import StoreError
from bench.results.records import RunRecord
from bench.results.urls import check_url, mask_url, normalize_url, redact_record, url_password

__all__ = ["ResultsStore", "atomic_write_json", "mask_url", "normalize_url", "redact_record", "FILTER_COLUMNS",
           "DB_SCHEMA_VERSION"]

DB_SCHEMA_VERSION = 1
SQLITE_BUSY_TIMEOUT_MS = 60_000
PG_CONNECT_TIMEOUT_S = 10
_PG_SCHEMA_LOCK = 0x62656E6368  # pg_advisory_xact_lock key for creating the tables ("bench")

_metadata = sa.MetaData()
runs = sa.Table(
    "runs",
    _metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(32), index=True),
    sa.Column("sweep_id", sa.String(32), index=True),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("valid", sa.Boolean, nullable=False),
    sa.Column("tag", sa.String(200)),
    sa.Column("suite", sa.String(100), index=True),
    sa.Column("workload", sa.String(100), index=True),
    sa.Column("backend", sa.String(100)),
    sa.Column("device", sa.String(100)),
    sa.Column("precision", sa.String(16)),
    sa.Column("scenario", sa.String(32)),
    sa.Column("batch_size", sa.Integer),
    sa.Column("hardware", sa.String(300)),
    sa.Column("throughput_sps", sa.Float),
    sa.Column("latency_p50_ms", sa.Float),
    sa.Column("latency_p99_ms", sa.Float),
    sa.Column("record", sa.Text, nullable=False),
)
meta = sa.Table(
    "bench_meta",
    _metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)

# The columns a selection may filter on (key=value on the command line); the rest of a record is JSON.
FILTER_COLUMNS = ("id", "run_id", "sweep_id", "tag", "status", "valid", "suite", "workload", "backend", "device",
                  "precision", "scenario", "batch_size", "hardware")
_PREFIX_COLUMNS = ("id", "run_id")  # 32 hex digits: a shorter value matches as a prefix


def atomic_write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _set_wal(cursor: Any, timeout_s: float = SQLITE_BUSY_TIMEOUT_MS / 1000, sleep=time.sleep) -> None:
    """``PRAGMA journal_mode = WAL``, retried while the database is locked.

    SQLite answers this pragma "database is locked" at once, without calling the busy handler, while
    the last connection of another store closes (it checkpoints and removes the WAL under an
    exclusive lock): seen about once in 60 rounds of six threads that open, write and close a store.
    So wait here as the busy timeout would, with a growing pause, up to the same limit.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        sleep(pause)
        pause = min(pause * 2, 0.1)


def _sqlite_pragmas(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling would BEGIN (deferred) only before a write; we begin
        # ourselves, IMMEDIATE, so that the lock is taken (or waited for) when the transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _set_wal(cursor)
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        # Readers (bench_readonly) begin deferred: in WAL mode they never wait for a writer.
        deferred = connection.get_execution_options().get("bench_readonly", False)
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


class ResultsStore:
    """JSON files under ``directory``/records and their index in the database at ``url``.

    ``create=False`` opens for reading only: a missing SQLite file or a database without bench's
    tables is an error (nothing is created), so `bench leaderboard` at a wrong path changes nothing.
    """

    def __init__(self, directory: str | Path, url: Optional[str] = None, create: bool = True) -> None:
        self.directory = Path(directory)
        self.url = url or f"sqlite:///{(self.directory / 'bench.db').as_posix()}"
        self.create = create
        self._engine: Optional[sa.Engine] = None
        self._lock = threading.Lock()

    @property
    def display_url(self) -> str:
        return mask_url(self.url)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def _fail(self, reason: str, fix: str) -> StoreError:
        password = url_password(self.url)
        if password:
            reason = reason.replace(password, "***")
        return StoreError(f"results.url={self.display_url!r} cannot be opened ({reason}): {fix}")

    @property
    def engine(self) -> sa.Engine:
        with self._lock:  # threads sharing one store open it once
            if self._engine is None:
                self._engine = self._open()
            return self._engine

    def _open(self) -> sa.Engine:
        check_url(self.url)  # a dialect bench does not support is refused before any driver is imported
        url = normalize_url(self.url)
        try:
            parsed = sa.engine.make_url(url)
        except Exception:
            raise self._fail("not a database URL", "write it as postgresql://USER@HOST:PORT/DB or "
                             "sqlite:///PATH") from None
        sqlite = parsed.get_backend_name() == "sqlite"
        if sqlite and parsed.database and parsed.database != ":memory:":
            db_file = Path(parsed.database)
            if not self.create and not db_file.is_file():
                raise StoreError(f"no results at {db_file} (results.dir={str(self.directory)!r}): "
                                 "point results.dir or results.url at the results of a `bench run`")
            if self.create:
                db_file.parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql":
            kwargs["pool_pre_ping"] = True  # a long run outlives idle connections
            if "connect_timeout" not in parsed.query:
                kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        try:
            engine = sa.create_engine(url, **kwargs)
        except ImportError as exc:
            raise self._fail(f"driver missing: {exc}", "pip install 'bench[postgres]'  (in a checkout: pip install -c "
                             "constraints.txt -e '.[postgres]')") from None
        except Exception as exc:  # noqa: BLE001 - a bad URL of any kind
            raise self._fail(str(exc).splitlines()[0], "check the URL") from None
        if sqlite:
            _sqlite_pragmas(engine)
        try:
            with engine.begin() as conn:
                if parsed.get_backend_name() == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SCHEMA_LOCK})
                inspector = sa.inspect(conn)
                if self.create:
                    _metadata.create_all(conn)
                elif not inspector.has_table("runs"):
                    raise StoreError(f"results.url={self.display_url!r} holds no bench results: point "
                                     "results.dir or results.url at the results of a `bench run`")
                row = None
                if inspector.has_table("bench_meta") or self.create:
                    row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first()
                if row is None and self.create:
                    conn.execute(meta.insert().values(key="schema_version", value=str(DB_SCHEMA_VERSION)))
                elif row is not None and int(row[0]) > DB_SCHEMA_VERSION:
                    raise StoreError(f"results.url={self.display_url!r} holds database schema {row[0]}, "
                                     f"newer than this bench ({DB_SCHEMA_VERSION}): upgrade bench")
        except StoreError:
            engine.dispose()
            raise
        except sa.exc.SQLAlchemyError as exc:
            engine.dispose()
            reason = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
            raise self._fail(reason, "check the URL, the server and the credentials") from None
        return engine

    def json_path(self, record: RunRecord) -> Path:
        day = record.created_at[:10]
        return self.directory / "records" / day / f"{record.id}.json"

    def write(self, record: RunRecord) -> Path:
        record = redact_record(record)
        data = record.to_dict()
        path = self.json_path(record)
        atomic_write_json(path, data)
        self._insert(record, data)
        return path

    @staticmethod
    def _row(record: RunRecord, data: dict[str, Any]) -> dict[str, Any]:
        w, b, m = record.workload, record.backend, record.metrics
        return {
            "id": record.id,
            "run_id": record.run_id,
            "sweep_id": record.sweep_id,
            "schema_version": record.schema_version,
            "created_at": record.created_at,
            "status": record.status,
            "valid": record.valid,
            "tag": record.tag,
            "suite": w.get("suite"),
            "workload": w.get("name"),
            "backend": b.get("name"),
            "device": b.get("device"),
            "precision": b.get("precision"),
            "scenario": record.scenario.get("name"),
            "batch_size": w.get("batch_size"),
            "hardware": record.system.get("hardware"),
            "throughput_sps": m.get("throughput_sps"),
            "latency_p50_ms": m.get("latency_p50_ms"),
            "latency_p99_ms": m.get("latency_p99_ms"),
            "record": json.dumps(data, allow_nan=False),
        }

    def _insert(self, record: RunRecord, data: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs.insert().values(**self._row(record, data)))

    def merge(self, records: Sequence[RunRecord]) -> tuple[list[RunRecord], list[RunRecord]]:
        """Store the records whose id is not stored yet: (added, already stored).

        Rows go in one transaction (all or none); a JSON file written for a row that then could not be
        inserted is removed again. A record that another writer stores at the same moment counts as
        already stored (INSERT ... ON CONFLICT DO NOTHING), never as an error.
        """
        records = [redact_record(r) for r in records]
        present = self.present_ids([r.id for r in records])
        fresh: list[RunRecord] = []
        seen: set[str] = set()
        for r in records:
            if r.id not in present and r.id not in seen:
                fresh.append(r)
                seen.add(r.id)
        created: list[Path] = []
        added: list[RunRecord] = []
        try:
            for r in fresh:
                path = self.json_path(r)
                if not path.exists():
                    atomic_write_json(path, r.to_dict())
                    created.append(path)
            dialect = self.engine.dialect.name
            if dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            elif dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:  # pragma: no cover - other databases: plain inserts after the check above
                dialect_insert = None
            with self.engine.begin() as conn:
                for r in fresh:
                    row = self._row(r, r.to_dict())
                    if dialect_insert is not None:
                        result = conn.execute(dialect_insert(runs).values(**row).on_conflict_do_nothing())
                    else:
                        result = conn.execute(runs.insert().values(**row))
                    if result.rowcount:
                        added.append(r)
        except BaseException:
            for path in created:
                path.unlink(missing_ok=True)
            raise
        added_ids = {r.id for r in added}
        return added, [r for r in records if r.id not in added_ids]

    def _reader(self) -> sa.Connection:
        return self.engine.connect().execution_options(bench_readonly=True)

    def present_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(ids))
        found: set[str] = set()
        with self._reader() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                found.update(row[0] for row in conn.execute(sa.select(runs.c.id).where(runs.c.id.in_(chunk))))
        return found

    def records(self, ids: Optional[Iterable[str]] = None) -> list[RunRecord]:
        query = sa.select(runs.c.record).order_by(runs.c.created_at, runs.c.id)
        if ids is not None:
            query = query.where(runs.c.id.in_(list(ids)))
        with self._reader() as conn:
            return [RunRecord.from_dict(json.loads(row[0])) for row in conn.execute(query)]

    def select(self, filters: Mapping[str, Sequence[str]]) -> list[RunRecord]:
        """Records matching every key (any of its values), oldest first.

        Keys are FILTER_COLUMNS; an id or run_id shorter than 32 characters matches as a prefix.
        """
        query = sa.select(runs.c.record).order_by(runs.c.created_at, runs.c.id)
        for key, values in filters.items():
            if key not in FILTER_COLUMNS:
                raise KeyError(key)
            column = runs.c[key]
            terms = []
            for value in values:
                if key in _PREFIX_COLUMNS and len(value) < 32:
                    terms.append(column.startswith(value, autoescape=True))
                elif key == "batch_size":
                    terms.append(column == int(value))
                elif key == "valid":
                    terms.append(column == (value.lower() in ("1", "true", "yes")))
                else:
                    terms.append(column == value)
            query = query.where(sa.or_(*terms))
        with self._reader() as conn:
            return [RunRecord.from_dict(json.loads(row[0])) for row in conn.execute(query)]

    def count(self) -> int:
        with self._reader() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one())

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
