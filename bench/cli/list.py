"""`bench list`: the suites with their workloads and the backends with their availability, from every
config folder (bench's conf/, the plugins', and those given with -cd DIR or hydra.searchpath=[...]);
filtered and sorted (bench.config.catalog.CatalogQuery), and with ``--measured`` joined to the best
converged stored result per hardware x backend (bench.reporting.measured)."""

from __future__ import annotations

import json
import sys
from typing import Any

from bench.errors import BenchError, ConfigError

__all__ = ["list_command", "USAGE"]

USAGE = """\
bench list [KEY=VALUE | KEY!=VALUE ...] [--sort name|params|flops|size|budget]
             [--measured [results.dir=DIR | results.url=URL]] [--json] [-cd DIR]
                                    the workloads with the fields to choose a model by (task, domain,
                                    category, data set and licences, input, parameters, FLOPs, ONNX size,
                                    latency budget, reference), and the backends with their availability.
                                    KEY: suite (exact), task, domain, category, licence, dataset,
                                    dataset_licence, family, name (case-insensitive substring; != excludes;
                                    the same key twice: either value). --measured: the best converged
                                    result per hardware x backend in the store, ranked as the leaderboard"""


def _err(message: str) -> None:
    sys.stderr.write(f"bench: error: {message}\n")


def list_command(args: list[str]) -> int:
    try:
        return _list(args)
    except BenchError as exc:  # ConfigError, StoreError: a user's mistake, one line
        _err(str(exc))
        return 2


def _list(args: list[str]) -> int:
    from bench.config.catalog import SORT_KEYS, CatalogQuery, catalog, render_catalog, terminal_width
    from bench.config.compose import HydraArgs

    as_json = "--json" in args
    measured = "--measured" in args
    sort = None
    terms = []
    results: list[str] = []
    folders = HydraArgs()
    rest = [a for a in args if a not in ("--json", "--measured")]
    i = 0
    while i < len(rest):
        arg = rest[i]
        name, eq, value = arg.partition("=")
        if name == "--sort":
            if not eq:
                i += 1
                value = rest[i] if i < len(rest) else ""
            sort = CatalogQuery.check_sort(value)
        elif name in ("-cd", "--config-dir"):
            if not eq:
                i += 1
                value = rest[i] if i < len(rest) else ""
            if not value:
                raise ConfigError(name, None, f"give a folder: {name} DIR", "needs a folder")
            folders.config_dirs.append(value)
        elif name.lstrip("+") == "hydra.searchpath":
            folders.overrides.append(arg)
        elif name == "results" or name.startswith("results."):
            results.append(arg)
        elif arg.startswith("-"):
            raise ConfigError(arg, None, f"use KEY=VALUE filters, --sort {'|'.join(SORT_KEYS)}, --measured, --json, "
                              "-cd DIR", "is not an option of `bench list`")
        else:
            terms.append(CatalogQuery.parse_term(arg))
        i += 1
    if results and not measured:
        raise ConfigError(results[0], None, "add --measured (the results location is read only to join results)",
                          "needs --measured")
    data = catalog(config_dirs=folders.config_dirs, overrides=folders.overrides, query=CatalogQuery(tuple(terms), sort))
    if measured:
        _join_measured(data, results)
    if as_json:
        print(json.dumps(data, indent=1))
    else:
        print(render_catalog(data, terminal_width()))
    return 0


def _join_measured(data: dict[str, Any], results: list[str]) -> None:
    """Each shown workload gets ``measured`` (bench.reporting.measured); a store that does not exist or
    holds no bench results gives the catalog with a note, a store that cannot be opened an error."""
    from pathlib import Path

    from bench.config.location import open_store, results_location
    from bench.errors import StoreError
    from bench.reporting.measured import best_per_workload

    directory, url = results_location(results)
    shown = [s["name"] for s in data["suites"]]
    data["measured_from"] = url or str(Path(directory) / "bench.db")
    if url is None and not (Path(directory) / "bench.db").is_file():
        data["notes"].append(f"--measured: no results at {Path(directory) / 'bench.db'} (results.dir={directory!r}): "
                             "`bench run` stores them there, or give results.dir= / results.url=")
        return
    try:
        store = open_store(results)
    except StoreError as exc:
        if "holds no bench results" not in str(exc):
            raise
        data["notes"].append(f"--measured: {exc}")
        return
    try:
        data["measured_from"] = store.display_url
        records = store.select({"suite": shown}) if shown else []
    finally:
        store.close()
    joined, notes = best_per_workload(records)
    found = 0
    for suite in data["suites"]:
        for row in suite["workloads"]:
            row["measured"] = joined.get((suite["name"], row["name"]), [])
            found += bool(row["measured"])
    data["notes"] += [f"--measured: {n}" for n in notes]
    if not found:
        data["notes"].append(f"--measured: no converged result of the workloads shown in {data['measured_from']}")
