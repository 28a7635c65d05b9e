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

Nothing measured is lost to the environment. When a write is refused (a full disk, a read-only file
system, no permission, a quota, a database that refuses the row), ``write`` keeps the record in
whichever of the file and the row could be written, or else in a recovery file outside the results
folder that `bench import` reads, and raises StoreWriteError saying where and what brings it back.
A row that cannot be read back (not JSON, not a record) is skipped by the readers with a warning;
`bench store check --repair` (bench.results.check) rewrites it from its file.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import functools
import gc
import json
import operator
import os
import shlex
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import sqlalchemy as sa

from bench.errors import StoreError, StoreWriteError
from bench.results.records import RunRecord, SchemaError, parse_record, slim
from bench.results.urls import check_url, mask_url, normalize_url, redact_record, url_password

__all__ = ["ResultsStore", "atomic_write_json", "mask_url", "normalize_url", "redact_record", "FILTER_COLUMNS",
           "DB_SCHEMA_VERSION", "INDEX_COLUMNS", "CHOICE_KEY", "Choice", "bulk_read", "REPORT_COLUMNS", "V2_COLUMNS",
           "index_columns", "recovery_folders", "write_recovery", "free_space"]

DB_SCHEMA_VERSION = 2
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
    # Schema 2: what the reports choose by, so that they read columns and load only the records they show.
    sa.Column("machine", sa.String(12), index=True),  # bench.system.fingerprint.machine_id
    sa.Column("host", sa.String(255)),
    sa.Column("converged", sa.Boolean),  # support.converged: True, False, or NULL (no stopping rule)
    sa.Column("ci_scope", sa.String(16)),  # support.ci_scope: "repeats" or "process"
    sa.Column("warning_count", sa.Integer),
    sa.Column("load_key", sa.String(200)),  # scenario=continual's load (repr of continual.load_key), else ""
    sa.Column("summary", sa.Text),  # the record slimmed (records.slim): no sample arrays
    # Last: SQLite lays a row's columns out in this order, so that reading the summary (a few KB) of a
    # database created so never walks the record's overflow pages (raw samples: up to MBs). A schema 1
    # database migrated to 2 has its new columns after the record, as ALTER TABLE appends them.
    sa.Column("record", sa.Text, nullable=False),
    sa.Index("ix_runs_table", "suite", "workload", "scenario", "batch_size"),
    # Covering the leaderboard's and compare's choice (REPORT_COLUMNS): SQLite answers it from this index
    # alone, never reading a row (tens of KB with its summary and record).
    sa.Index("ix_runs_report", "suite", "workload", "scenario", "batch_size", "load_key", "hardware", "backend",
             "device", "precision", "valid", "converged", "ci_scope", "warning_count", "created_at", "id", "status",
             "tag", "run_id", "sweep_id"),
)
# The columns schema 2 added, in order; a schema 1 database gets them when it is opened.
V2_COLUMNS = ("machine", "host", "converged", "ci_scope", "warning_count", "load_key", "summary")
# The columns of index(): a record's identity and what a report chooses by, never its JSON.
INDEX_COLUMNS = ("id", "created_at", "status", "valid", "suite", "workload", "scenario", "batch_size", "load_key",
                 "hardware", "backend", "device", "precision", "machine", "host", "converged", "ci_scope",
                 "warning_count", "run_id", "sweep_id", "tag", "throughput_sps", "latency_p50_ms", "latency_p99_ms")
# What the leaderboard and compare choose by: all in ix_runs_report.
REPORT_COLUMNS = ("id", "created_at", "valid", "suite", "workload", "scenario", "batch_size", "load_key", "hardware",
                  "backend", "device", "precision", "converged", "ci_scope", "warning_count")
MIGRATE_CHUNK = 500
_BY_AGE = operator.attrgetter("created_at", "id")  # an index row's place, oldest first
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


def recovery_folders() -> list[Path]:
    """Where a record goes that neither its results folder nor its database could take, in order:
    the user's state folder ($XDG_STATE_HOME, else ~/.local/state), then the temporary folder."""
    folders = []
    state = os.environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(state):
        folders.append(Path(state) / "bench" / "recovery")
    try:
        folders.append(Path.home() / ".local" / "state" / "bench" / "recovery")
    except RuntimeError:  # no home folder to be found
        pass
    folders.append(Path(tempfile.gettempdir()) / "bench-recovery")
    return list(dict.fromkeys(folders))


def write_recovery(record_id: str, data: Any) -> tuple[Optional[Path], list[str]]:
    """``data`` written as ID.json (a record file, as `bench import` reads) into the first recovery
    folder that takes it: (its path or None, the folders that refused it, each with its reason)."""
    refused = []
    for folder in recovery_folders():
        path = folder / f"{record_id}.json"
        try:
            atomic_write_json(path, data)
            return path, refused
        except OSError as exc:
            refused.append(f"{folder} ({_os_reason(exc)})")
    return None, refused


def _os_reason(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or str(exc)
    return f"{text} [{name}]" if name else text


def _db_reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.4g} {unit}"
        n /= 1024
    return f"{n:.4g} TiB"


def free_space(directory: Path) -> str:
    """The free space of the file system that holds ``directory`` (or its nearest existing parent)."""
    path = Path(os.path.abspath(directory))
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return "free space unknown"
    return f"{_size(usage.free)} free of {_size(usage.total)}"


# SQLite's primary result codes of a file system that refuses: SQLITE_PERM, SQLITE_READONLY,
# SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
_SQLITE_REFUSED = {3, 8, 10, 13, 14}


def _sqlite_environment_fault(exc: BaseException) -> bool:
    code = getattr(getattr(exc, "orig", None) or exc, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in _SQLITE_REFUSED


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


def index_columns(record: RunRecord) -> dict[str, Any]:
    """Schema 2's columns of ``record``: what the reports choose by (support's rules, the leaderboard's
    key, the fleet's machine) and its slim summary."""
    from bench.results import support
    from bench.system.fingerprint import machine_id

    system = record.system if isinstance(record.system, dict) else {}
    host = system.get("hostname")
    return {
        "machine": machine_id(system),
        "host": str(host)[:255] if host is not None else None,
        "converged": support.converged(record),
        "ci_scope": support.ci_scope(record),
        "warning_count": len(record.warnings),
        "load_key": repr(support.load_key(record)) if record.scenario.get("name") == "continual" else "",
        "summary": json.dumps(slim(record).to_dict(), allow_nan=False),
    }


# ResultsStore.choices: a combination of these columns is one row of a leaderboard.
CHOICE_KEY = ("suite", "workload", "scenario", "batch_size", "load_key", "hardware", "backend", "device", "precision")
Choice = collections.namedtuple("Choice", (*CHOICE_KEY, "count", "first", "newest", "best", "best_rank"))
_CHOICE_SEP = "\x01"  # between created_at and id in the database's (created_at, id): sorts before any character
_WARNINGS_CAP = 2_000_000_000  # less a warning count (up to 10^9): as text, fewer warnings sort later
_RANK_WIDTH = 12  # converged, repeats, then the 10 digits of that difference


def _split_age(text: str) -> tuple[str, str]:
    """(created_at, id) of their joining in ResultsStore.choices."""
    created_at, _, rid = text.partition(_CHOICE_SEP)
    return created_at, rid


@functools.lru_cache(maxsize=None)
def _index_row(columns: tuple[str, ...]) -> Any:
    """The light row type of ResultsStore.index for ``columns``."""
    return collections.namedtuple("IndexRow", columns)


@contextlib.contextmanager
def bulk_read() -> Any:
    """Python's cyclic garbage collector paused while many rows or records are read: none of them holds
    a reference cycle (refcounting frees them), but each of the collections their allocations trigger
    walks every object read so far, which made reading 100,000 index rows 2-3x slower."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _migrate(conn: sa.Connection, older: bool) -> None:
    """Bring a schema 1 database to schema 2 inside the opening transaction (which holds SQLite's write
    lock, or PostgreSQL's advisory lock, so that two processes opening at once migrate once): add the
    missing columns and indexes, then fill the new columns of every row from its ``record`` column, in
    chunks. A row that cannot be read keeps its new columns NULL (the readers fall back to its record)."""
    inspector = sa.inspect(conn)
    present = {c["name"] for c in inspector.get_columns("runs")}
    missing = [name for name in V2_COLUMNS if name not in present]
    for name in missing:
        column = runs.c[name]
        kind = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE runs ADD COLUMN {name} {kind}"))
    indexes = {ix["name"] for ix in inspector.get_indexes("runs")}
    for index in runs.indexes:
        if index.name not in indexes:
            index.create(conn)
    if not (missing or older):
        return
    todo = int(conn.execute(sa.select(sa.func.count()).select_from(runs).where(runs.c.summary.is_(None)))
               .scalar_one())
    if not todo:
        return
    sys.stderr.write(f"bench: indexing {todo} records for schema {DB_SCHEMA_VERSION} (once)\n")
    update = (runs.update().where(runs.c.id == sa.bindparam("b_id"))
              .values(**{name: sa.bindparam(f"b_{name}") for name in V2_COLUMNS}))
    last = ""
    while True:
        chunk = conn.execute(sa.select(runs.c.id, runs.c.record).where(runs.c.id > last)
                             .where(runs.c.summary.is_(None)).order_by(runs.c.id).limit(MIGRATE_CHUNK)).all()
        if not chunk:
            return
        last = chunk[-1][0]
        params = []
        for rid, text in chunk:
            try:
                columns = index_columns(parse_record(text, rid))
            except (SchemaError, ValueError, TypeError, AttributeError):
                continue  # unreadable: kept as it is, its new columns NULL
            params.append({"b_id": rid, **{f"b_{k}": v for k, v in columns.items()}})
        if params:
            conn.execute(update, params)


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
                try:
                    db_file.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise self._refused(_os_reason(exc)) from None
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
                if row is not None and int(row[0]) > DB_SCHEMA_VERSION:
                    raise StoreError(f"results.url={self.display_url!r} holds database schema {row[0]}, "
                                     f"newer than this bench ({DB_SCHEMA_VERSION}): upgrade bench")
                _migrate(conn, row is None or int(row[0]) < DB_SCHEMA_VERSION)
                if row is None:
                    meta.create(conn, checkfirst=True)
                    conn.execute(meta.insert().values(key="schema_version", value=str(DB_SCHEMA_VERSION)))
                elif int(row[0]) < DB_SCHEMA_VERSION:
                    conn.execute(meta.update().where(meta.c.key == "schema_version")
                                 .values(value=str(DB_SCHEMA_VERSION)))
        except StoreError:
            engine.dispose()
            raise
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            engine.dispose()
            reason = _db_reason(exc)
            if sqlite and _sqlite_environment_fault(exc):
                raise self._refused(reason) from None
            raise self._fail(reason, "check the URL, the server and the credentials") from None
        return engine

    def _refused(self, reason: str) -> StoreWriteError:
        """The file system refuses the SQLite database (full, read-only, no permission): the
        environment's fault, named with the folder's free space."""
        return StoreWriteError(f"results.url={self.display_url!r} cannot be opened ({reason}; results.dir="
                               f"{str(os.path.abspath(self.directory))!r} has {free_space(self.directory)}): free "
                               "space there, or make it writable, and run again")

    def json_path(self, record: RunRecord) -> Path:
        day = record.created_at[:10]
        return self.directory / "records" / day / f"{record.id}.json"

    def location_args(self) -> str:
        """This store as the results arguments of a bench command (the password masked)."""
        args = [f"results.dir={shlex.quote(str(self.directory))}"]
        if self.url != f"sqlite:///{(self.directory / 'bench.db').as_posix()}":
            args.append(f"results.url={shlex.quote(self.display_url)}")
        return " ".join(args)

    def write(self, record: RunRecord) -> Path:
        """The JSON file, then the row. Should the environment refuse either (a full disk, a
        read-only file system, no permission, a quota, a database that refuses the row), the other is
        still tried, a record neither took goes to a recovery file, and StoreWriteError says where
        the record is and which command brings it back: the caller stops (the next record would
        meet the same fault)."""
        record = redact_record(record)
        data = record.to_dict()
        path = self.json_path(record)
        file_error: Optional[OSError] = None
        row_error: Optional[BaseException] = None
        try:
            atomic_write_json(path, data)
        except OSError as exc:
            file_error = exc
        try:
            self._insert(record, data)
        except (sa.exc.SQLAlchemyError, sqlite3.Error, StoreError) as exc:  # StoreError: it could not be opened
            row_error = exc
        if file_error is None and row_error is None:
            return path
        raise self._write_failed(record, data, path, file_error, row_error)

    def _write_failed(self, record: RunRecord, data: dict[str, Any], path: Path, file_error: Optional[OSError],
                      row_error: Optional[BaseException]) -> StoreWriteError:
        folder = f"results.dir={str(os.path.abspath(self.directory))!r}"
        row_reason = self.masked(_db_reason(row_error)) if row_error is not None else ""
        check = f"`bench store check --repair {self.location_args()}`"
        if row_error is None:
            assert file_error is not None
            text = (f"{folder} cannot be written ({_os_reason(file_error)}; {free_space(self.directory)}): record "
                    f"{record.id} is kept in its database row only; once it can be written again, {check} writes "
                    "its JSON file")
        elif file_error is None:
            text = (f"results.url={self.display_url!r} refused the row of record {record.id} ({row_reason}; {folder} "
                    f"has {free_space(self.directory)}): the record is kept in its JSON file {path} only; once it can "
                    f"be written again, {check} indexes it")
        else:
            head = (f"{folder} cannot be written ({_os_reason(file_error)}; {free_space(self.directory)}), nor "
                    f"results.url={self.display_url!r} ({row_reason})")
            recovery, refused = write_recovery(record.id, data)
            if recovery is not None:
                text = (f"{head}: record {record.id} is kept in {recovery}; once it can be written again, "
                        f"`bench import {shlex.quote(str(recovery))} {self.location_args()}` stores it")
            else:
                text = (f"{head}: record {record.id} could not be kept in a recovery file either "
                        f"({'; '.join(refused)}) and is lost; free space and run it again")
        return StoreWriteError(text, record.id)

    def masked(self, text: str) -> str:
        password = url_password(self.url)
        return text.replace(password, "***") if password else text

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
            **index_columns(record),
        }

    def _insert_statement(self, row: dict[str, Any]) -> Any:
        """INSERT of ``row`` that does nothing when its id is stored already (ON CONFLICT DO NOTHING,
        where the dialect has it): a record another writer stored at the same moment (an import,
        `bench store check --repair` indexing the file just written) is stored, not an error."""
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:  # pragma: no cover - other databases: a plain insert
            return runs.insert().values(**row)
        return dialect_insert(runs).values(**row).on_conflict_do_nothing()

    def _insert(self, record: RunRecord, data: dict[str, Any]) -> None:
        row = self._row(record, data)
        with self.engine.begin() as conn:
            if conn.execute(self._insert_statement(row)).rowcount:
                return
            stored = conn.execute(sa.select(runs.c.record).where(runs.c.id == record.id)).scalar_one_or_none()
        if stored is None or json.loads(stored) != json.loads(row["record"]):
            raise StoreError(f"record {record.id} is stored already with other contents: the stored row is kept")

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
            self._merge(fresh, created, added)
        except OSError as exc:
            raise StoreWriteError(f"results.dir={str(os.path.abspath(self.directory))!r} cannot be written "
                                  f"({_os_reason(exc)}; {free_space(self.directory)}): nothing was imported; "
                                  "free space (or fix the permissions) and import again") from None
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            raise StoreWriteError(f"results.url={self.display_url!r} refused the rows ({self.masked(_db_reason(exc))}; "
                                  f"results.dir has {free_space(self.directory)}): nothing was imported; free space "
                                  "(or fix the database) and import again") from None
        added_ids = {r.id for r in added}
        return added, [r for r in records if r.id not in added_ids]

    def _merge(self, fresh: list[RunRecord], created: list[Path], added: list[RunRecord]) -> None:
        try:
            for r in fresh:
                path = self.json_path(r)
                if not path.exists():
                    atomic_write_json(path, r.to_dict())
                    created.append(path)
            with self.engine.begin() as conn:
                for r in fresh:
                    result = conn.execute(self._insert_statement(self._row(r, r.to_dict())))
                    if result.rowcount:
                        added.append(r)
        except BaseException:
            for path in created:
                path.unlink(missing_ok=True)
            raise

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

    def _readable(self, rows: Iterable[Any]) -> list[RunRecord]:
        """The records of (id, record) rows; a row that is not a readable record is skipped with a
        warning, so that one damaged row does not hide all the others."""
        out = []
        for rid, text in rows:
            try:
                out.append(parse_record(text, rid))
            except SchemaError as exc:
                sys.stderr.write(f"bench: warning: record {rid} in {self.display_url} is skipped, its database row "
                                 f"is unreadable ({exc}): `bench store check --repair {self.location_args()}` "
                                 "rewrites it from its JSON file\n")
        return out

    def records(self, ids: Optional[Iterable[str]] = None) -> list[RunRecord]:
        """Whole records (raw samples included), oldest first: all of them, or those of ``ids``."""
        if ids is None:
            query = sa.select(runs.c.id, runs.c.record).order_by(runs.c.created_at, runs.c.id)
            with bulk_read(), self._reader() as conn:
                return self._readable(conn.execute(query))
        out = self._by_ids(ids, lambda conn, chunk: self._readable(conn.execute(
            sa.select(runs.c.id, runs.c.record).where(runs.c.id.in_(chunk)))))
        return sorted(out, key=lambda r: (r.created_at, r.id))

    def _by_ids(self, ids: Iterable[str], fetch: Any) -> list[Any]:
        wanted = list(dict.fromkeys(ids))
        out: list[Any] = []
        with bulk_read(), self._reader() as conn:
            for start in range(0, len(wanted), MIGRATE_CHUNK):
                out.extend(fetch(conn, wanted[start:start + MIGRATE_CHUNK]))
        return out

    def summaries(self, ids: Iterable[str]) -> list[RunRecord]:
        """The slim records (records.slim: raw without its sample arrays) of ``ids``, oldest first,
        from the ``summary`` column; a row without one is slimmed from its record."""
        def fetch(conn: sa.Connection, chunk: list[str]) -> list[RunRecord]:
            rows = conn.execute(sa.select(runs.c.id, runs.c.summary).where(runs.c.id.in_(chunk))).all()
            found = self._readable((rid, text) for rid, text in rows if text is not None)
            bare = [rid for rid, text in rows if text is None]
            if bare:
                found += [slim(r) for r in self._readable(conn.execute(
                    sa.select(runs.c.id, runs.c.record).where(runs.c.id.in_(bare))))]
            return found

        return sorted(self._by_ids(ids, fetch), key=lambda r: (r.created_at, r.id))

    @staticmethod
    def _where(query: Any, filters: Mapping[str, Sequence[str]]) -> Any:
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
        return query

    def select(self, filters: Mapping[str, Sequence[str]]) -> list[RunRecord]:
        """Records matching every key (any of its values), oldest first.

        Keys are FILTER_COLUMNS; an id or run_id shorter than 32 characters matches as a prefix.
        """
        query = self._where(sa.select(runs.c.id, runs.c.record).order_by(runs.c.created_at, runs.c.id), filters)
        with bulk_read(), self._reader() as conn:
            return self._readable(conn.execute(query))

    def index(self, filters: Mapping[str, Sequence[str]] = {},  # noqa: B006 - never changed
              columns: Sequence[str] = INDEX_COLUMNS) -> list[Any]:
        """The rows matching ``filters`` as ``select`` does, oldest first, as light rows of ``columns``
        (INDEX_COLUMNS; REPORT_COLUMNS are read from one covering index), with attributes row.id,
        row.valid, ..., never a record's JSON. A row that migration could not index (its record
        unreadable: its schema 2 columns NULL, ci_scope among them) is left out, as ``select`` leaves
        out its record."""
        query = sa.select(*(runs.c[name] for name in columns)).where(runs.c.ci_scope.is_not(None))
        covered = set(columns) <= set(REPORT_COLUMNS) and {"created_at", "id"} <= set(columns)
        if not covered:
            query = query.order_by(runs.c.created_at, runs.c.id)
        query = self._where(query, filters)
        shape = _index_row(tuple(columns))
        with bulk_read(), self._reader() as conn:
            rows = list(map(shape._make, conn.execute(query)))  # named tuples: attributes at C speed
            if covered:
                # Ordered here: asked to ORDER BY, SQLite walks ix_runs_created_at and reads every row (GBs
                # of record and summary); without, it reads the covering ix_runs_report (a few MB).
                rows.sort(key=_BY_AGE)
        return rows

    def choices(self, filters: Mapping[str, Sequence[str]] = {},  # noqa: B006 - never changed
                exclude: Iterable[str] = ()) -> tuple[int, list[Any]]:
        """What a leaderboard shows, chosen by the database in one pass over ix_runs_report: the number of
        rows matching ``filters`` (as ``index`` counts them, less the ids of ``exclude``) and, per
        combination of CHOICE_KEY among their valid rows, one Choice: the key's columns, ``count`` (its
        valid rows), and as (created_at, id) ``first`` (the oldest), ``newest`` and ``best``: the most
        supported, support.support_key's maximum (converged, then intervals over repeats, then fewest
        warnings, then newest), whose (converged, repeats, warnings) rank is ``best_rank`` (a string
        that sorts as support_key does). The order of Choices is the database's."""
        c = runs.c
        ranked = sa.and_(c.ci_scope.is_not(None), *([c.id.not_in(list(exclude))] if exclude else []))
        sep, dialect = _CHOICE_SEP, self.engine.dialect.name

        def text(expr: Any) -> Any:  # byte order, as Python compares strings; PostgreSQL's is the locale's
            return sa.collate(expr, "C") if dialect == "postgresql" else expr

        valid = c.valid.is_(True)
        age = c.created_at + sep + c.id
        rank = (sa.case((c.converged.is_(True), "1"), else_="0") + sa.case((c.ci_scope == "repeats", "1"), else_="0")
                + sa.cast(_WARNINGS_CAP - sa.func.coalesce(c.warning_count, 0), sa.Text))
        key = [c[name] for name in CHOICE_KEY]
        query = self._where(sa.select(
            *key, sa.func.count().label("rows"), sa.func.sum(sa.case((valid, 1), else_=0)).label("count"),
            sa.func.min(text(sa.case((valid, age)))).label("first"),
            sa.func.max(text(sa.case((valid, age)))).label("newest"),
            sa.func.max(text(sa.case((valid, rank + age)))).label("best")).where(ranked).group_by(*key), filters)
        total, out = 0, []
        with bulk_read(), self._reader() as conn:
            for row in conn.execute(query):
                total += row.rows
                if row.count:
                    best = row.best[:_RANK_WIDTH], *_split_age(row.best[_RANK_WIDTH:])
                    out.append(Choice(*row[:len(key)], int(row.count), _split_age(row.first),
                                      _split_age(row.newest), best[1:], best[0]))
        return total, out

    def machines(self, filters: Mapping[str, Sequence[str]] = {}) -> list[dict[str, Any]]:  # noqa: B006
        """One entry per machine (the ``machine`` column) of the rows matching ``filters``, by machine:
        machine, host and hardware (of its newest row), first and last (created_at), records, valid
        (how many of them are valid), and workloads: the sorted (suite, workload, scenario) measured there."""
        c = runs.c
        indexed = c.machine.is_not(None)
        agg = self._where(sa.select(c.machine, sa.func.min(c.created_at).label("first"),
                                    sa.func.max(c.created_at).label("last"), sa.func.count().label("records"),
                                    sa.func.sum(sa.case((c.valid, 1), else_=0)).label("valid"))
                          .where(indexed).group_by(c.machine), filters)
        newest = self._where(sa.select(c.machine, c.host, c.hardware, c.created_at, c.id).where(indexed), filters)
        newest_sub = agg.subquery()
        newest = newest.join(newest_sub, sa.and_(c.machine == newest_sub.c.machine,
                                                 c.created_at == newest_sub.c["last"]))
        measured = self._where(sa.select(c.machine, c.suite, c.workload, c.scenario).where(indexed).distinct(), filters)
        with self._reader() as conn:
            out = {m: {"machine": m, "host": None, "hardware": None, "first": first, "last": last,
                       "records": int(n), "valid": int(v or 0), "workloads": []}
                   for m, first, last, n, v in conn.execute(agg)}
            for m, host, hardware, _created, _rid in sorted(conn.execute(newest), key=lambda r: (r[0], r[4])):
                out[m].update(host=host, hardware=hardware)  # the last, of the greatest id, wins a tie
            for m, suite, workload, scenario in conn.execute(measured):
                out[m]["workloads"].append((suite, workload, scenario))
        for entry in out.values():
            entry["workloads"].sort(key=lambda t: tuple("" if v is None else str(v) for v in t))
        return [out[m] for m in sorted(out)]

    def row_ids(self) -> list[str]:
        with self._reader() as conn:
            return sorted(row[0] for row in conn.execute(sa.select(runs.c.id)))

    def row_texts(self, ids: Sequence[str]) -> dict[str, str]:
        """The stored ``record`` column of each id that has a row, as it is (maybe unreadable)."""
        found: dict[str, str] = {}
        with self._reader() as conn:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start:start + 500])
                found.update((rid, text) for rid, text in conn.execute(
                    sa.select(runs.c.id, runs.c.record).where(runs.c.id.in_(chunk))))
        return found

    def put_row(self, record: RunRecord, data: dict[str, Any]) -> None:
        """The row of ``record`` made ``data`` (inserted, or replacing one that is broken or differs):
        `bench store check --repair` indexing a file, which is the record."""
        with self.engine.begin() as conn:
            conn.execute(runs.delete().where(runs.c.id == record.id))
            conn.execute(runs.insert().values(**self._row(record, data)))

    def count(self) -> int:
        with self._reader() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one())

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
