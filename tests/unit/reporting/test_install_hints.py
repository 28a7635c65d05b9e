"""A missing optional dependency (extras parquet, postgres, plots) is one line naming the extra to install."""

from __future__ import annotations

import sys

import pytest

from bench.errors import ConfigError, StoreError


def test_parquet_export_without_pyarrow(monkeypatch, tmp_path):
    from bench.results.query import export
    from tests.recordfactory import make_record

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    with pytest.raises(ConfigError, match=r"needs pyarrow, which is not installed: pip install 'bench\[parquet\]'"):
        export([make_record()], "parquet", tmp_path / "x.parquet")


def test_postgres_store_without_psycopg(monkeypatch):
    pytest.importorskip("sqlalchemy")
    from bench.results.store import ResultsStore

    monkeypatch.setitem(sys.modules, "psycopg", None)
    store = ResultsStore("unused", "postgresql://bench@localhost:1/bench")
    with pytest.raises(StoreError, match=r"driver missing.*pip install 'bench\[postgres\]'"):
        store.engine  # noqa: B018


def test_scaling_plot_without_matplotlib(monkeypatch, tmp_path):
    import importlib.util

    from bench.reporting import scaling

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(ConfigError, match=r"--plot needs matplotlib, which is not installed: pip install 'bench\[plots\]'"):
        scaling.plot([], tmp_path / "x.png")
