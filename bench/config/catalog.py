"""`bench list`: the suites with their workloads and the backends with their availability, read from
the config folders (the config groups are the registry): bench's conf/, the plugins' (bench.plugins)
and those given with -cd DIR or hydra.searchpath=[...].

Each workload row holds what an engineer chooses a model by: name, task, domain, category, training
data set and its licence, input shapes, minimum resolution, the model's licence, parameters, FLOPs,
the ONNX export's size, latency budget and reference. Parameters, FLOPs, input shapes and the export
size are computed from the model (bench.suites.cost, on the meta device), never typed in; they are
cached per workload, keyed by the model code's hash and the PyTorch version; without PyTorch they are
shown as unknown.

Filters (CatalogQuery): ``KEY=VALUE`` keeps the workloads whose field contains VALUE (case-insensitive
substring: ``task=forecast``, ``licence=apache``), ``KEY!=VALUE`` drops those whose field contains it
(``dataset_licence!=nc``); the same key twice is either value, different keys must all hold.
``suite=`` names a suite exactly (an unknown one is an error, as for `bench run`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.config.schema import suite_options
from bench.errors import ConfigError
from bench.plugins import group_options, load_suite, resolve

__all__ = ["group_options", "catalog", "render_catalog", "cached_cost", "CostCache", "CatalogQuery", "Term",
           "FILTER_KEYS", "SORT_KEYS", "COST_VERSION", "terminal_width", "list_backends", "workloads_by_task"]

# The fields a filter reads (the row's keys); `name` is the workload's.
FILTER_KEYS = ("suite", "task", "domain", "category", "licence", "dataset", "dataset_licence", "family", "name")
# --sort KEY: the row field, ascending (unknown values last); no --sort keeps the catalog's order.
SORT_KEYS = {"name": "name", "params": "params", "flops": "flops_per_sample", "size": "onnx_bytes",
             "budget": "latency_tier_ms"}
# Part of the cache key: entries written by an older counter (without the export size and input shapes)
# are counted again rather than shown with fields missing.
COST_VERSION = 2


def _cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bench" / "cost.json"


def _unknown(note: str) -> dict[str, Any]:
    return {"params": None, "flops_per_sample": None, "onnx_bytes": None, "note": note}


class CostCache:
    """The counted costs of workloads (bench.suites.cost.workload_cost), read once from the cache file
    and written back once (``save``) when something was counted."""

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = path or _cache_path()
        try:
            self.entries: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False

    def get(self, workload: Any, seed: int = 0) -> dict[str, Any]:
        """{"params", "flops_per_sample", "onnx_bytes", "input_shapes", ...} of one workload at batch 1;
        None values (and a note) without torch or for a model that cannot be built."""
        if not workload.builder:
            return _unknown("the user's model: counted when it runs")
        if importlib.util.find_spec("torch") is None:
            return _unknown("PyTorch not installed")
        from importlib.metadata import version

        code_hash = resolve("bench.suites.base:code_hash")
        key = f"{workload.name}:{code_hash(workload)}:{version('torch')}:v{COST_VERSION}"
        if key in self.entries:
            return self.entries[key]
        count = resolve("bench.suites.cost:workload_cost")
        try:
            entry = count(workload, seed)
        except Exception as exc:  # noqa: BLE001 - a model that cannot be built is listed, its cost unknown
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return _unknown(f"cannot be counted: {reason}")
        self.entries[key] = entry
        self.changed = True
        return entry

    def save(self) -> None:
        if not self.changed:
            return
        try:
            from bench.results.store import atomic_write_json

            atomic_write_json(self.path, self.entries)
        except OSError:
            pass  # a cache that cannot be written only costs time
        self.changed = False


def cached_cost(workload: Any, seed: int = 0) -> dict[str, Any]:
    """One workload's cost through the cache file (see CostCache)."""
    cache = CostCache()
    entry = cache.get(workload, seed)
    cache.save()
    return entry


@dataclass(frozen=True)
class Term:
    key: str
    value: str
    negate: bool = False

    def holds(self, row: dict[str, Any]) -> bool:
        """Whether the row's field contains the value (case-insensitive); ``suite`` compares exactly."""
        field = str(row.get(self.key) or "")
        found = field == self.value if self.key == "suite" else self.value.casefold() in field.casefold()
        return found != self.negate

    def __str__(self) -> str:
        return f"{self.key}{'!=' if self.negate else '='}{self.value}"


_TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(!=|=)(.*)$", re.S)


@dataclass(frozen=True)
class CatalogQuery:
    """Which workloads `bench list` shows, and in which order."""

    terms: tuple[Term, ...] = ()
    sort: Optional[str] = None

    @staticmethod
    def parse_term(arg: str) -> Term:
        """``KEY=VALUE`` or ``KEY!=VALUE``; an unknown key is a ConfigError naming the accepted ones."""
        match = _TERM.match(arg)
        if not match:
            raise ConfigError("", "", f"filter as KEY=VALUE or KEY!=VALUE with KEY one of {', '.join(FILTER_KEYS)}",
                              f"{arg!r} is not a filter")
        key, op, value = match.groups()
        if key not in FILTER_KEYS:
            raise ConfigError(key, value, f"filter on one of {', '.join(FILTER_KEYS)}", "is not a catalog field")
        if not value.strip():
            raise ConfigError(key, value, f"give a value, e.g. {key}{op}{'cnn' if key == 'category' else 'x'}",
                              "is empty")
        return Term(key, value.strip(), op == "!=")

    @staticmethod
    def check_sort(sort: str) -> str:
        if sort not in SORT_KEYS:
            raise ConfigError("--sort", sort, f"use one of {', '.join(SORT_KEYS)}", "is not a sort key")
        return sort

    def suites(self) -> list[str]:
        return [t.value for t in self.terms if t.key == "suite" and not t.negate]

    def keep(self, row: dict[str, Any]) -> bool:
        """Positive terms on one key: any holds; negative terms: all hold; different keys: all."""
        by_key: dict[str, list[Term]] = {}
        for term in self.terms:
            if term.negate:
                if not term.holds(row):
                    return False
            else:
                by_key.setdefault(term.key, []).append(term)
        return all(any(t.holds(row) for t in terms) for terms in by_key.values())

    def order(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.sort is None:
            return rows
        key = SORT_KEYS[self.sort]
        if key == "name":
            return sorted(rows, key=lambda r: str(r["name"]).casefold())
        return sorted(rows, key=lambda r: (r.get(key) is None, r.get(key) or 0))

    def __str__(self) -> str:
        return " ".join(str(t) for t in self.terms)


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


def _row(info: dict[str, Any], cost: dict[str, Any], default: bool) -> dict[str, Any]:
    row = {**info, **cost, "default": default}
    if not row.get("input_shapes"):  # not counted (no torch, the user's model): the catalog's own shape
        row["input_shapes"] = [list(row["input_shape"])] if row.get("input_shape") else []
    return row


def catalog(suite_filter: Optional[str] = None, sort: Optional[str] = None, config_dirs: Sequence[str] = (),
            overrides: Sequence[str] = (), query: Optional[CatalogQuery] = None) -> dict[str, Any]:
    """The suites and backends of every config folder; ``config_dirs`` (-cd) and ``overrides``
    (hydra.searchpath=[...]) add folders as for `bench run`. ``query`` filters and sorts the
    workloads (``suite_filter`` and ``sort`` are its shorthands); a suite none of whose workloads
    passes is left out, and ``notes`` says when nothing passed."""
    from bench.config.compose import HydraArgs

    query = query or CatalogQuery()
    if suite_filter is not None:
        query = CatalogQuery((*query.terms, Term("suite", suite_filter)), query.sort)
    if sort is not None:
        query = CatalogQuery(query.terms, CatalogQuery.check_sort(sort))
    folders = HydraArgs(overrides=list(overrides), config_dirs=list(config_dirs)).config_folders
    suites = group_options("suite", folders)
    named = query.suites()
    for wanted in named:
        if wanted not in suites:
            raise ConfigError("suite", wanted, f"use one of {', '.join(suites)}", "is not a known suite")
    out: dict[str, Any] = {"suites": [], "backends": [], "notes": [], "filters": str(query), "sort": query.sort}
    costs = CostCache()
    everything: list[dict[str, Any]] = []
    for name in suites:
        if named and name not in named:
            continue
        try:
            cfg = _compose_group("suite", name, config_dirs, overrides)
            suite = load_suite(cfg.suite.catalog)
        except (ConfigError, ImportError, ValueError, TypeError) as exc:
            if named:
                raise ConfigError("suite", name, "fix its file in conf/suite/ (or the plugin's)",
                                  f"cannot be loaded ({exc})") from None
            # One broken option (a plugin's, a -cd folder's) does not hide the others.
            sys.stderr.write(f"bench: warning: suite {name!r} cannot be loaded, not listed: {exc}\n")
            continue
        options = suite_options(cfg)
        selected = set(cfg.suite.only or suite.names())
        rows = []
        for w in suite.workloads:
            info = {"suite": name, **suite.workload_info(w, options)}
            everything.append(info)
            if query.keep(info):  # filtered before counting: a filtered-out model is never built
                # Counted as the options make it (Suite.adapt: sizes that follow the data set).
                rows.append(_row(info, costs.get(suite.adapted(w, options), cfg.suite.seed), w.name in selected))
        if rows:
            out["suites"].append({"name": name, "description": suite.description, "workloads": query.order(rows)})
    costs.save()
    if query.terms and not out["suites"]:
        out["notes"].append(_no_match(query, everything))
    out["backends"] = list_backends(config_dirs, overrides)
    return out


def workloads_by_task(suite_name: str) -> dict[str, str]:
    """The suite's workloads and their task (as `bench list` shows it), without counting their cost:
    what `bench plan suite=S task=T` may choose from."""
    try:
        cfg = _compose_group("suite", suite_name, (), ())
        suite = load_suite(cfg.suite.catalog)
    except (ConfigError, ImportError, ValueError, TypeError) as exc:
        raise ConfigError("suite", suite_name, "use a suite `bench list` shows", f"cannot be loaded ({exc})") from None
    options = suite_options(cfg)
    return {w.name: str(suite.workload_info(w, options).get("task") or "") for w in suite.workloads}


def list_backends(config_dirs: Sequence[str] = (), overrides: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every backend option with its device and availability (a Hydra compose each: most of the
    time `bench list` takes once the costs are cached)."""
    from bench.config.compose import HydraArgs

    folders = HydraArgs(overrides=list(overrides), config_dirs=list(config_dirs)).config_folders
    out: list[dict[str, Any]] = []
    for name in group_options("backend", folders):
        try:
            cfg = _compose_group("backend", name, config_dirs, overrides)
        except ConfigError as exc:
            out.append({"name": name, "device": "?", "impl": "?", "available": False,
                        "reason": f"its config cannot be composed: {exc}", "install": ""})
            continue
        try:
            availability = resolve(cfg.backend.impl).available(cfg.backend).to_dict()
        except (ImportError, ValueError) as exc:
            availability = {"available": False, "reason": f"cannot load {cfg.backend.impl}: {exc}", "install": ""}
        out.append({"name": name, "device": cfg.backend.device, "impl": cfg.backend.impl, **availability})
    return out


def _no_match(query: CatalogQuery, rows: list[dict[str, Any]]) -> str:
    """Why nothing is listed, with the values the filtered fields do hold (so a typo shows)."""
    keys = list(dict.fromkeys(t.key for t in query.terms if t.key not in ("suite", "name")))
    held = []
    for key in keys:
        values = sorted({str(r.get(key)) for r in rows if r.get(key)}, key=str.casefold)
        held.append(f"{key}: {', '.join(values) if values else '(none set)'}")
    return f"no workload matches {query}" + (f" (values in the catalog: {'; '.join(held)})" if held else "")


# ---------------------------------------------------------------- text


def terminal_width(default: int = 100) -> int:
    """The terminal's columns (COLUMNS when set), ``default`` when stdout is not a terminal."""
    return max(60, shutil.get_terminal_size((default, 24)).columns)


def _si(value: Optional[float], unit: str) -> str:
    if value is None:
        return "?"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}".rstrip()
    return f"{value:.3g} {unit}".rstrip()


def _min_res_is_input(row: dict[str, Any]) -> bool:
    shapes = row.get("input_shapes") or [[]]
    return str(row.get("min_resolution") or "") == "x".join(str(d) for d in shapes[0][-2:]) and len(shapes[0]) >= 2


def _shapes(row: dict[str, Any]) -> str:
    return " + ".join("x".join(str(d) for d in shape) or "scalar" for shape in row.get("input_shapes") or []) or "?"


# Columns of a suite's table: (heading, row -> text, right-aligned, may wrap). task, domain and data set
# are columns only when they differ between the rows shown; otherwise the suite's header says them once.
_COLUMNS: tuple[tuple[str, Any, bool, bool], ...] = (
    ("workload", lambda r: ("* " if r.get("default") else "  ") + str(r["name"]), False, False),
    ("task", lambda r: r.get("task") or "-", False, True),
    ("domain", lambda r: r.get("domain") or "-", False, True),
    ("category", lambda r: r.get("category") or "-", False, True),
    ("data set", lambda r: r.get("dataset") or "-", False, True),
    ("input", _shapes, False, True),
    ("min res", lambda r: r.get("min_resolution") or "-", False, True),
    ("params", lambda r: _si(r.get("params"), ""), True, False),
    ("FLOPs", lambda r: _si(r.get("flops_per_sample"), ""), True, False),
    ("ONNX", lambda r: _si(r.get("onnx_bytes"), "B"), True, False),
    ("budget", lambda r: f"{r['latency_tier_ms']} ms", True, False),
)
_HOISTED = {"task": "task", "domain": "domain", "data set": "dataset"}


def _table(header: list[str], rows: list[list[str]], right: set[int], wrap: set[int], width: int) -> list[str]:
    """Columns two spaces apart, indented by two. While wider than ``width``, the widest wrappable
    column gives up a character and its cells wrap onto more lines: first down to its longest word
    (no word is cut), then down to 8 characters, then to 4 (words cut) for a table that is still
    too wide. A table that cannot fit even so is drawn wider."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    longest_word = {i: max(len(word) for r in [header, *rows] for word in (r[i].split() or [""])) for i in wrap}
    for floor in (lambda i: longest_word[i], lambda i: 8, lambda i: 4):
        while 2 + sum(widths) + 2 * (len(widths) - 1) > width:
            candidates = [i for i in wrap if widths[i] > floor(i)]
            if not candidates:
                break
            widths[max(candidates, key=lambda i: widths[i])] -= 1

    def lines(cells: list[str]) -> list[str]:
        parts = [textwrap.wrap(c, widths[i], break_on_hyphens=False) or [""] if i in wrap else [c]
                 for i, c in enumerate(cells)]
        out = []
        for k in range(max(len(p) for p in parts)):
            texts = [p[k] if k < len(p) else "" for p in parts]
            out.append(("  " + "  ".join(t.rjust(w) if i in right else t.ljust(w)
                                         for i, (t, w) in enumerate(zip(texts, widths)))).rstrip())
        return out

    return [line for cells in [header, *rows] for line in lines(cells)]


def _narrowest(columns: Sequence[tuple[str, Any, bool, bool]], rows: list[dict[str, Any]]) -> int:
    """The width of a table of these columns with every wrappable column at its longest word."""
    total = 2 + 2 * (len(columns) - 1)
    for i, (heading, cell, _, wraps) in enumerate(columns):
        texts = [("  " if i == 0 else "") + heading, *(cell(r) for r in rows)]
        total += max(len(w) for t in texts for w in (t.split() or [""])) if wraps else max(len(t) for t in texts)
    return total


def _wrapped(text: str, width: int, indent: str = "  ", hanging: str = "      ") -> list[str]:
    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=hanging, break_on_hyphens=False)


def _grouped(label: str, rows: list[dict[str, Any]], key: str, width: int) -> list[str]:
    """One line per distinct value of ``key``: ``label value: workload, workload``."""
    by_value: dict[str, list[str]] = {}
    for r in rows:
        by_value.setdefault(str(r.get(key) or "-"), []).append(str(r["name"]))
    if len(by_value) == 1:
        return _wrapped(f"{label}: {next(iter(by_value))}", width)
    return [line for value, names in by_value.items() for line in _wrapped(f"{label} {', '.join(names)}: {value}",
                                                                             width)]


def _suite_lines(suite: dict[str, Any], width: int) -> list[str]:
    rows = suite["workloads"]
    lines = _wrapped(f"suite {suite['name']}: {suite['description']}", width, indent="", hanging="    ")
    first = rows[0]
    shared = []
    columns = []
    for column in _COLUMNS:
        field = _HOISTED.get(column[0])
        values = {str(r.get(field) or "") for r in rows} if field else set()
        if not (field and len(values) == 1):
            columns.append(column)
            continue
        value = values.pop()
        if field == "dataset" and first.get("native_sizes"):
            value += f" ({first['native_sizes']})"
        if value:
            shared.append(f"{column[0]}: {value}")
    if all(_min_res_is_input(r) for r in rows):  # the column would repeat the input's size
        columns = [c for c in columns if c[0] != "min res"]
        shared.append("min resolution: the input's size")
    if "boundary" in first:
        shared.append(f"boundary: {first['boundary']}")
    if shared:
        lines += _wrapped("; ".join(shared), width)
    moved = []
    # Columns of long text, listed below the table (one line per value) rather than cut mid-word,
    # longest first, while the table would not fit even with every cell wrapped at its longest word.
    for heading, field, label in (("data set", "dataset", "data set"), ("min res", "min_resolution", "min resolution"),
                                  ("task", "task", "task"), ("category", "category", "category")):
        if heading in [c[0] for c in columns] and _narrowest(columns, rows) > width:
            columns = [c for c in columns if c[0] != heading]
            moved += _grouped(label, rows, field, width)
    header = [("  " if i == 0 else "") + c[0] for i, c in enumerate(columns)]
    table = [[c[1](r) for c in columns] for r in rows]
    right = {i for i, c in enumerate(columns) if c[2]}
    wrap = {i for i, c in enumerate(columns) if c[3]}
    lines += _table(header, table, right, wrap, width)
    lines += moved
    lines += _wrapped("* = run by default (suite.only); FLOPs per sample; ONNX: the export's size, estimated from "
                      "the weights", width)
    lines += _grouped("data set licence", rows, "dataset_licence", width)
    lines += _grouped("licence", rows, "licence", width)
    lines += _grouped("reference", rows, "reference", width)
    for note in sorted({str(r["note"]) for r in rows if r.get("note")}):
        lines += _wrapped(f"not counted: {note}", width)
    lines += _measured_lines(rows, width)
    return lines


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4g}"


def _measured_lines(rows: list[dict[str, Any]], width: int) -> list[str]:
    """The stored results joined by `bench list --measured`: per scenario, the workloads by their best
    result (best first), each with its ranked hardware x backend lines."""
    tables: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for r in rows:
        for entry in r.get("measured") or []:
            tables.setdefault((entry["scenario"], entry["metric"]), []).append((r, entry))
    lines = []
    for (scenario, metric), found in tables.items():
        spec = found[0][1]
        lines += _wrapped(f"measured, {scenario} ({metric}, {spec['unit']}, "
                          f"{'higher' if spec['higher_is_better'] else 'lower'} is better):", width)
        sign = -1.0 if spec["higher_is_better"] else 1.0
        found.sort(key=lambda pair: sign * (pair[1]["results"][0]["value"] or 0.0))
        for row, entry in found:
            for k, result in enumerate(entry["results"]):
                lead = row["name"] if k == 0 else ""
                text = (f"{result['rank_text']:>3} {result['hardware']} / {result['backend_text']} / "
                        f"{result['precision']}, batch {result['batch_size']}: {_fmt(result['value'])}"
                        + (f" [{_fmt(result['ci_low'])}, {_fmt(result['ci_high'])}]" if result.get("has_ci", True)
                           else " (no interval)") + f" ({result['record_id'][:8]})")
                lines += _wrapped(f"{lead:<20} {text}", width, indent="    ", hanging=" " * 29)
    return lines


def render_catalog(data: dict[str, Any], width: int = 100) -> str:
    """The catalog as text at most ``width`` columns wide (cells wrap; `--json` has every field)."""
    lines: list[str] = []
    for suite in data["suites"]:
        lines += _suite_lines(suite, width)
        lines.append("")
    for note in data.get("notes") or []:
        lines += _wrapped(f"note: {note}", width, indent="", hanging="  ")
    if data.get("notes"):
        lines.append("")
    lines.append("backends:")
    for b in data["backends"]:
        state = "available" if b["available"] else f"unavailable: {b['reason']}"
        lines += _wrapped(f"{b['name']:20} device={b['device']:6} {state}", width, hanging=" " * 24)
        if not b["available"] and b.get("install"):
            lines += _wrapped(f"install: {b['install']}", width, indent=" " * 24, hanging=" " * 24)
    return "\n".join(lines)
