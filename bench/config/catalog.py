"""`bench list`: the suites with their workloads (shape, data set, parameters, FLOPs) and the backends
with their availability, read from the config folders (the config groups are the registry): bench's
conf/, the plugins' (bench.plugins) and those given with -cd DIR or hydra.searchpath=[...].

Parameters and FLOPs are computed from the model (bench.suites.cost, on the meta device), never typed
in; the counts are cached per workload, keyed by the model code's hash and the PyTorch version;
without PyTorch they are shown as unknown.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.config.schema import suite_options
from bench.errors import ConfigError
from bench.plugins import group_options, load_suite, resolve

__all__ = ["group_options", "catalog", "render_catalog", "cached_cost"]


def _cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bench" / "cost.json"


def cached_cost(workload: Any, seed: int = 0) -> dict[str, Any]:
    """{"params", "flops_per_sample"} of one workload at batch 1, cached; None values without torch."""
    if not workload.builder:
        return {"params": None, "flops_per_sample": None, "note": "the user's model: counted when it runs"}
    if importlib.util.find_spec("torch") is None:
        return {"params": None, "flops_per_sample": None, "note": "PyTorch not installed"}
    from importlib.metadata import version

    code_hash = resolve("bench.suites.base:code_hash")

    key = f"{workload.name}:{code_hash(workload)}:{version('torch')}"
    path = _cache_path()
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    count = resolve("bench.suites.cost:workload_cost")

    try:
        entry = count(workload, seed)
    except Exception as exc:  # noqa: BLE001 - a model that cannot be built is listed, its cost unknown
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {"params": None, "flops_per_sample": None, "note": f"cannot be counted: {reason}"}
    cache[key] = entry
    try:
        from bench.results.store import atomic_write_json

        atomic_write_json(path, cache)
    except OSError:
        pass  # a cache that cannot be written only costs time
    return entry


def _compose_group(group: str, option: str, config_dirs: Sequence[str], overrides: Sequence[str]) -> Any:
    from bench.config.compose import compose, to_config
    from bench.config.explain import explain

    args = [*overrides, f"{group}={option}"]
    try:
        return to_config(compose(args, config_dirs=list(config_dirs)))
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken option file: one line naming it
        raise explain(exc, args) from None


def catalog(suite_filter: Optional[str] = None, sort: str = "name", config_dirs: Sequence[str] = (),
            overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The suites and backends of every config folder; ``config_dirs`` (-cd) and ``overrides``
    (hydra.searchpath=[...]) add folders as for `bench run`."""
    from bench.config.compose import HydraArgs

    folders = HydraArgs(overrides=list(overrides), config_dirs=list(config_dirs)).config_folders
    suites = group_options("suite", folders)
    if suite_filter is not None and suite_filter not in suites:
        raise ConfigError("suite", suite_filter, f"use one of {', '.join(suites)}", "is not a known suite")
    out: dict[str, Any] = {"suites": [], "backends": []}
    for name in suites:
        if suite_filter is not None and name != suite_filter:
            continue
        try:
            cfg = _compose_group("suite", name, config_dirs, overrides)
            suite = load_suite(cfg.suite.catalog)
        except (ConfigError, ImportError, ValueError, TypeError) as exc:
            if suite_filter is not None:
                raise ConfigError("suite", name, "fix its file in conf/suite/ (or the plugin's)",
                                  f"cannot be loaded ({exc})") from None
            # One broken option (a plugin's, a -cd folder's) does not hide the others.
            sys.stderr.write(f"bench: warning: suite {name!r} cannot be loaded, not listed: {exc}\n")
            continue
        options = suite_options(cfg)
        selected = set(cfg.suite.only or suite.names())
        rows = [{**suite.workload_info(w, options), **cached_cost(suite.adapted(w, options), cfg.suite.seed),
                 "default": w.name in selected}
                for w in suite.workloads]
        if sort != "name":
            key = "flops_per_sample" if sort == "flops" else "params"
            rows.sort(key=lambda r: (r[key] is None, r[key] or 0))
        out["suites"].append({"name": name, "description": suite.description, "workloads": rows})
    for name in group_options("backend", folders):
        try:
            cfg = _compose_group("backend", name, config_dirs, overrides)
        except ConfigError as exc:
            out["backends"].append({"name": name, "device": "?", "impl": "?", "available": False,
                                    "reason": f"its config cannot be composed: {exc}", "install": ""})
            continue
        try:
            availability = resolve(cfg.backend.impl).available(cfg.backend).to_dict()
        except (ImportError, ValueError) as exc:
            availability = {"available": False, "reason": f"cannot load {cfg.backend.impl}: {exc}", "install": ""}
        out["backends"].append({"name": name, "device": cfg.backend.device, "impl": cfg.backend.impl,
                                **availability})
    return out


def _si(value: Optional[float], unit: str) -> str:
    if value is None:
        return "?"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  " + "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(header).rstrip(), *(line(r).rstrip() for r in rows)]


def render_catalog(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for suite in data["suites"]:
        lines.append(f"suite {suite['name']}: {suite['description']}")
        rows = []
        for w in suite["workloads"]:
            rows.append([
                ("* " if w.get("default") else "  ") + w["name"], w["family"],
                "x".join(str(d) for d in w["input_shape"]), _si(w["params"], ""),
                _si(w["flops_per_sample"], "FLOP"), f"{w['latency_tier_ms']} ms", w["preprocessing"],
            ])
        header = ["  workload", "family", "input", "params", "FLOPs/sample", "budget", "preprocessing"]
        lines += _table(header, rows, right={3, 4, 5})
        if suite["workloads"]:
            first = suite["workloads"][0]
            if "dataset" in first:
                lines.append(f"  data set {first['dataset']} ({first.get('native_sizes', '')}), boundary "
                             f"{first.get('boundary', 'model')}; * = run by default (suite.only)")
            licences = sorted({w["licence"] for w in suite["workloads"]})
            lines.append(f"  licences of the reference code: {'; '.join(licences)}")
        lines.append("")
    lines.append("backends:")
    for b in data["backends"]:
        state = "available" if b["available"] else f"unavailable: {b['reason']}"
        lines.append(f"  {b['name']:18} device={b['device']:8} {state}")
        if not b["available"] and b.get("install"):
            lines.append(f"  {'':18} install: {b['install']}")
    return "\n".join(lines)
