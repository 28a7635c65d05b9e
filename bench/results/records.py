"""The RunRecord: the unit of results. One per work item, immutable, versioned.

Raw samples are stored; metrics are derived from them by bench.results.metrics and stored beside them for
querying, never instead of them. ``to_dict`` and ``from_dict`` are symmetric; old schema versions
stay readable (tests keep a golden JSON of each).
"""

from __future__ import annotations

import datetime as _dt
import json
import uuid
from dataclasses import dataclass, field, fields, replace
from typing import Any, Optional

__all__ = ["SCHEMA_VERSION", "STATUSES", "RunRecord", "new_id", "utc_now", "SchemaError", "parse_record", "slim",
           "SLIM_MAX_LIST"]

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "oom", "skipped")


class SchemaError(ValueError):
    """A dict that is not a RunRecord this version of bench can read."""


def new_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunRecord:
    id: str
    created_at: str
    status: str  # ok, failed, oom (out of memory, host or device), skipped
    config: dict[str, Any]  # the resolved config of this work item
    system: dict[str, Any]  # the fingerprint (bench.system.fingerprint)
    workload: dict[str, Any]  # suite, name, input shape, data set, params, flops, batch size
    backend: dict[str, Any]  # name, device, precision, and the settings the runtime reported back
    scenario: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    setup: dict[str, Any] = field(default_factory=dict)  # build_s, prepare_s, first_inference_ms
    parity: dict[str, Any] = field(default_factory=dict)
    noise: dict[str, Any] = field(default_factory=dict)
    energy: dict[str, Any] = field(default_factory=dict)  # per-domain energy and how it was known
    warnings: list[dict[str, str]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)  # the loop's raw result (samples in ns)
    error: Optional[dict[str, Any]] = None  # kind, message, detail
    tag: str = ""
    run_id: str = ""  # groups the work items of one `bench run` invocation
    sweep_id: str = ""  # groups the points of one batch sweep, across resumes
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise SchemaError(f"status {self.status!r} is not one of {STATUSES}")

    @property
    def valid(self) -> bool:
        """ok, and outputs matched the reference: the only records that may be ranked."""
        return self.status == "ok" and bool(self.parity.get("ok", False))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> "RunRecord":
        if not isinstance(data, dict):
            raise SchemaError("a RunRecord is a JSON object")
        version = data.get("schema_version")
        if not isinstance(version, int):
            raise SchemaError("no integer schema_version: not a bench RunRecord")
        if version > SCHEMA_VERSION:
            raise SchemaError(f"schema_version {version} is newer than this bench reads ({SCHEMA_VERSION}); "
                              "upgrade bench")
        names = {f.name for f in fields(cls)}
        missing = [n for n in ("id", "created_at", "status", "config", "system", "workload", "backend", "scenario")
                   if n not in data]
        if missing:
            raise SchemaError(f"missing field(s) {', '.join(missing)}: not a bench RunRecord")
        return cls(**{k: v for k, v in data.items() if k in names})


def parse_record(text: str, expected_id: Optional[str] = None) -> RunRecord:
    """The RunRecord stored as JSON ``text`` (a file, a database row); ``expected_id`` is the id its
    file name or row carries. Whatever makes it unreadable raises SchemaError with a one-line reason."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"not JSON: {str(exc).splitlines()[0]}") from None
    try:
        record = RunRecord.from_dict(data)
    except (SchemaError, TypeError) as exc:
        raise SchemaError(f"not a record: {str(exc).splitlines()[0]}") from None
    if expected_id is not None and record.id != expected_id:
        raise SchemaError(f"holds record {record.id!r}")
    return record


SLIM_MAX_LIST = 64  # a list inside raw longer than this is a sample array or a time series: slim() drops it


def _slim_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _slim_value(v) for k, v in value.items()
                if not (isinstance(v, list) and len(v) > SLIM_MAX_LIST)}
    if isinstance(value, list):
        return [_slim_value(v) for v in value if not (isinstance(v, list) and len(v) > SLIM_MAX_LIST)]
    return value


def slim(record: RunRecord) -> RunRecord:
    """The record with its long arrays left out of ``raw`` (every list of more than SLIM_MAX_LIST
    elements, at any depth: samples in ns, sensor time series, per-request timelines) and
    ``raw["slim"] = True``; everything else, raw's small parts included (the loop's block, each
    repeat's metrics, the load search's info), as it is. What the database's ``summary`` column holds:
    the reports that need no samples read it instead of the whole record."""
    raw = _slim_value(record.raw or {})
    raw["slim"] = True
    return replace(record, raw=raw)
