"""Database URLs and the credentials in them: the URL to connect with (psycopg 3 for PostgreSQL), the
URL as it may be shown (password masked), and a record as it may be stored (no password of any
database URL in its config).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import sqlalchemy as sa

from bench.results.records import RunRecord

__all__ = ["normalize_url", "mask_url", "url_password", "redact_record"]


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL to connect with: plain postgresql:// (and postgres://) use psycopg 3."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        return url
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def mask_url(url: str) -> str:
    """The URL with its password replaced, for messages and records."""
    try:
        parsed = sa.engine.make_url(url)
        if "password" in parsed.query:  # libpq takes ?password= too
            parsed = parsed.update_query_dict({"password": "***"})
        return parsed.render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def url_password(url: str) -> Optional[str]:
    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        return None
    password = parsed.password or parsed.query.get("password")
    return str(password) if password else None


def _mask_strings(value: Any) -> Any:
    """Every string that is a URL with a password, masked (recursively through dicts and lists)."""
    if isinstance(value, dict):
        return {k: _mask_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_strings(v) for v in value]
    if isinstance(value, str) and "://" in value and "@" in value and url_password(value):
        return mask_url(value)
    return value


def redact_record(record: RunRecord) -> RunRecord:
    """The record as it may be stored: no password of any database URL in its config."""
    config = _mask_strings(record.config)
    return record if config == record.config else dataclasses.replace(record, config=config)
