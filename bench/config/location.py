"""The results store a command names: ``results=PROFILE``, ``results.dir=...``, ``results.url=...``,
composed exactly as `bench run` composes them (conf/results/, environment interpolation)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from bench.config.compose import compose, to_config
from bench.config.explain import explain
from bench.config.secrets import hide_url_passwords, with_url
from bench.config.validate import check_results_location
from bench.errors import ConfigError
from bench.results.store import ResultsStore

__all__ = ["results_location", "open_store"]


def results_location(overrides: Sequence[str]) -> tuple[str, Optional[str]]:
    """results.dir and results.url of the results overrides (a URL's password never passes through
    Hydra, nor its errors: bench.config.secrets)."""
    overrides, urls = hide_url_passwords(list(overrides))
    try:
        cfg = with_url(to_config(compose(overrides)), urls)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - Hydra's errors, explained in one line
        raise explain(exc, list(overrides)) from None
    if not str(cfg.results.dir).strip():  # Path("") would be the current folder
        raise ConfigError("results.dir", str(cfg.results.dir), "give the folder of the results, e.g. "
                          "results.dir=results", "is empty")
    return str(Path(cfg.results.dir).expanduser()), cfg.results.url


def open_store(overrides: Sequence[str] = (), create: bool = False) -> ResultsStore:
    """The store named by the results overrides, opened (a bad URL fails here, masked). A store to be
    created (`bench import`) has its folders checked first, as `bench run` checks them."""
    directory, url = results_location(overrides)
    if create:
        check_results_location(directory, url)
    store = ResultsStore(directory, url, create=create)
    store.engine  # noqa: B018 - open now: an unreachable database is a usage error before any work
    return store
