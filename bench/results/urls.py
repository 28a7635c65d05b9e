"""Database URLs and the credentials in them: the URL to connect with (psycopg 3 for PostgreSQL), the
URL as it may be shown (password masked), and a record as it may be stored (no password of any
database URL in its config).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import sqlalchemy as sa

from bench.results.records import RunRecord

__all__ = ["normalize_url", "mask_url", "url_password", "redact_record", "check_url", "sqlite_file", "SUPPORTED_URLS"]

# The databases the store is tested on; any other dialect would fail later with a misleading driver hint.
SUPPORTED_URLS = "sqlite:///PATH or postgresql://USER@HOST:PORT/DB"


def check_url(url: str) -> None:
    """A URL the store can open: SQLite with a file, or PostgreSQL (any driver SQLAlchemy names). Checked
    before any driver is imported; raises ConfigError naming the URL (password masked)."""
    from bench.errors import ConfigError

    try:
        parsed = sa.engine.make_url(url)
    except Exception:  # noqa: BLE001 - SQLAlchemy's ArgumentError and ValueError for a malformed URL
        # Unparsed, a password cannot be told apart: the URL is shown only when it holds no user part.
        shown = url if "@" not in url else "<unparseable database URL>"
        raise ConfigError("results.url", shown, f"write it as {SUPPORTED_URLS}", "is not a database URL") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return
    if backend != "sqlite":
        raise ConfigError("results.url", mask_url(url), f"use {SUPPORTED_URLS}",
                          f"uses {backend}, which bench's store does not support")
    if not parsed.database or parsed.database == ":memory:":
        raise ConfigError("results.url", mask_url(url), "give a file: sqlite:///PATH",
                          "is an in-memory SQLite database (the index would be lost when bench exits)")


def sqlite_file(url: str) -> Optional[Path]:
    """The database file of an SQLite URL; None for any other URL (or one that does not parse)."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:  # noqa: BLE001
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser()


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
