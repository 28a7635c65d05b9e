"""Where records land: one JSON file per record, and one row per record in a SQLAlchemy database
(SQLite under results/ by default).

Both writes are atomic. The JSON file is written to a temporary name, flushed to disk and renamed
over its final name, so a killed run leaves either the whole file or none; the row is inserted in a
transaction. The JSON file is written first: it is the record, the row is its index.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Optional

import sqlalchemy as sa

from bench.errors import StoreError
from bench.records import RunRecord

__all__ = ["ResultsStore", "atomic_write_json", "mask_url"]

DB_SCHEMA_VERSION = 1

_metadata = sa.MetaData()
runs = sa.Table(
    "runs",
    _metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(32), index=True),
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


def mask_url(url: str) -> str:
    """The URL with its password replaced, for messages and records."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


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


class ResultsStore:
    def __init__(self, directory: str | Path, url: Optional[str] = None) -> None:
        self.directory = Path(directory)
        self.url = url or f"sqlite:///{(self.directory / 'bench.db').as_posix()}"
        self._engine: Optional[sa.Engine] = None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            try:
                if self.url.startswith("sqlite:///"):
                    self.directory.mkdir(parents=True, exist_ok=True)
                engine = sa.create_engine(self.url)
                with engine.begin() as conn:
                    _metadata.create_all(conn)
                    row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first()
                    if row is None:
                        conn.execute(meta.insert().values(key="schema_version", value=str(DB_SCHEMA_VERSION)))
                    elif int(row[0]) > DB_SCHEMA_VERSION:
                        raise StoreError(f"results.url={mask_url(self.url)!r} holds database schema {row[0]}, "
                                         f"newer than this bench ({DB_SCHEMA_VERSION}): upgrade bench")
            except sa.exc.SQLAlchemyError as exc:
                reason = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
                raise StoreError(f"results.url={mask_url(self.url)!r} cannot be opened ({reason}): "
                                 "check the URL, the server and the credentials") from None
            self._engine = engine
        return self._engine

    def json_path(self, record: RunRecord) -> Path:
        day = record.created_at[:10]
        return self.directory / "records" / day / f"{record.id}.json"

    def write(self, record: RunRecord) -> Path:
        data = record.to_dict()
        path = self.json_path(record)
        atomic_write_json(path, data)
        self._insert(record, data)
        return path

    def _insert(self, record: RunRecord, data: dict[str, Any]) -> None:
        w, b, m = record.workload, record.backend, record.metrics
        row = {
            "id": record.id,
            "run_id": record.run_id,
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
        with self.engine.begin() as conn:
            conn.execute(runs.insert().values(**row))

    def records(self, ids: Optional[Iterable[str]] = None) -> list[RunRecord]:
        query = sa.select(runs.c.record).order_by(runs.c.created_at, runs.c.id)
        if ids is not None:
            query = query.where(runs.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return [RunRecord.from_dict(json.loads(row[0])) for row in conn.execute(query)]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one())

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
