"""The jobs of a multirun, as the shared store sees them: a ``bench_jobs`` row per job, written by the
job on its node (started, then done or failed with the reason) and by the launching command for what
only it can see (a job killed on its node, one that never started), so that one summary of the whole
multirun can be printed from the store by run id, wherever the jobs ran.

The table lives beside the records' ``runs`` table in the same database; it is created on first use
(``CREATE TABLE IF NOT EXISTS`` semantics) and holds no credentials: overrides are stored with every URL
password masked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Optional

import sqlalchemy as sa

from bench.config.secrets import mask_passwords

__all__ = ["JobRow", "JOB_STATES", "job_started", "job_ended", "job_failed_remotely", "jobs_of", "ensure_table"]

JOB_STATES = ("running", "done", "failed")

_metadata = sa.MetaData()
jobs = sa.Table(
    "bench_jobs",
    _metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("job", sa.Integer, primary_key=True),
    sa.Column("overrides", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("launcher", sa.String(40)),
    sa.Column("host", sa.String(255)),
    sa.Column("machine", sa.String(12)),
    sa.Column("pid", sa.Integer),
    sa.Column("started_at", sa.String(40)),
    sa.Column("ended_at", sa.String(40)),
    sa.Column("records", sa.Integer),
    sa.Column("reason", sa.Text),
)


@dataclass(frozen=True)
class JobRow:
    run_id: str
    job: int
    overrides: str
    state: str
    launcher: str
    host: str
    machine: str
    pid: Optional[int]
    started_at: str
    ended_at: str
    records: Optional[int]
    reason: str


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def ensure_table(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _metadata.create_all(conn, checkfirst=True)


def _upsert(engine: sa.Engine, run_id: str, job: int, values: dict[str, Any]) -> None:
    ensure_table(engine)
    with engine.begin() as conn:
        updated = conn.execute(jobs.update().where(jobs.c.run_id == run_id, jobs.c.job == job).values(**values))
        if not updated.rowcount:
            conn.execute(jobs.insert().values(run_id=run_id, job=job, **{"overrides": "", "state": "running",
                                                                          **values}))


def job_started(engine: sa.Engine, run_id: str, job: int, overrides: list[str], launcher: str, host: str,
                machine: str, pid: int) -> None:
    _upsert(engine, run_id, job, {"overrides": mask_passwords(" ".join(overrides)), "state": "running",
                                  "launcher": launcher, "host": host, "machine": machine, "pid": pid,
                                  "started_at": _now(), "ended_at": None, "records": None, "reason": None})


def job_ended(engine: sa.Engine, run_id: str, job: int, records: int, reason: str = "") -> None:
    """Done (``reason`` empty) or failed with ``reason`` (one line, passwords masked)."""
    _upsert(engine, run_id, job, {"state": "failed" if reason else "done", "ended_at": _now(), "records": records,
                                  "reason": mask_passwords(reason) or None})


def job_failed_remotely(engine: sa.Engine, run_id: str, job: int, overrides: list[str], reason: str) -> bool:
    """What the launching command learned of a job that could not say it itself (killed on its node, never
    started): its row made failed with ``reason``, unless the job already ended it. True if written."""
    ensure_table(engine)
    with engine.begin() as conn:
        row = conn.execute(sa.select(jobs.c.state).where(jobs.c.run_id == run_id, jobs.c.job == job)).first()
        if row is not None and row[0] != "running":
            return False
        values = {"state": "failed", "ended_at": _now(), "reason": mask_passwords(reason)}
        if row is None:
            conn.execute(jobs.insert().values(run_id=run_id, job=job, overrides=mask_passwords(" ".join(overrides)),
                                              **values))
        else:
            conn.execute(jobs.update().where(jobs.c.run_id == run_id, jobs.c.job == job).values(**values))
    return True


def jobs_of(engine: sa.Engine, run_id: str) -> list[JobRow]:
    ensure_table(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(jobs).where(jobs.c.run_id == run_id).order_by(jobs.c.job)).all()
    return [JobRow(r.run_id, r.job, r.overrides or "", r.state, r.launcher or "", r.host or "", r.machine or "",
                   r.pid, r.started_at or "", r.ended_at or "", r.records, r.reason or "") for r in rows]
