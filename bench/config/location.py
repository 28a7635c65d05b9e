"""The results store a command names: ``results=PROFILE``, ``results.dir=...``, ``results.url=...``,
composed exactly as `bench run` composes them (conf/results/, environment interpolation)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Sequence

from bench.errors import ConfigError
from bench.results.store import ResultsStore

__all__ = ["results_location", "open_store"]


# A value Hydra's grammar reads as this very string: a path or URL of these characters, with a "/" (so never
# a number, a boolean or null), no interpolation, no quoting, no sweep. tests/unit/config: the same as composed.
_PLAIN = re.compile(r"[A-Za-z0-9_./:@%+-]*/[A-Za-z0-9_./:@%+-]*")


def _plain_location(overrides: Sequence[str]) -> Optional[tuple[str, Optional[str]]]:
    """results_location of ``results.dir=PATH [results.url=URL]`` with plain values, without composing:
    what conf/results/local.yaml (the default profile: no url) gives them. None for anything else."""
    given: dict[str, str] = {}
    for arg in overrides:
        key, eq, value = arg.partition("=")
        if not eq or key not in ("results.dir", "results.url") or key in given or not _PLAIN.fullmatch(value):
            return None
        given[key] = value
    if "results.dir" not in given:
        return None
    return str(Path(given["results.dir"]).expanduser()), given.get("results.url")


def results_location(overrides: Sequence[str]) -> tuple[str, Optional[str]]:
    """results.dir and results.url of the results overrides (a URL's password never passes through
    Hydra, nor its errors: bench.config.secrets). Plain ones are read without composing (Hydra's
    compose takes a third of a second)."""
    plain = _plain_location(overrides)
    return plain if plain is not None else _composed_location(overrides)


def _composed_location(overrides: Sequence[str]) -> tuple[str, Optional[str]]:
    from bench.config.compose import compose, to_config
    from bench.config.explain import explain
    from bench.config.secrets import hide_url_passwords, with_url

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
        from bench.config.validate import check_results_location

        check_results_location(directory, url)
    store = ResultsStore(directory, url, create=create)
    store.engine  # noqa: B018 - open now: an unreachable database is a usage error before any work
    return store
