"""Records and what is kept and computed from them: the record schema, the store, the metrics, energy,
diagnostics, the pooling of repeats, and the queries behind `bench leaderboard`/`export`/`import`.

``bench.results.load`` is the public entry for a user's own analysis (see bench.results.query); it is
imported on first use, so that the worker, which only writes records, never imports SQLAlchemy.
"""

from typing import Any

__all__ = ["load"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from bench.results.query import load

        return load
    raise AttributeError(f"module 'bench.results' has no attribute {name!r}")
