"""`bench fleet`: the machines that have reported to a store, and what each has measured.

One row per machine (its fingerprint, bench.system.fingerprint.machine_id: host name, CPU, memory and
GPUs hashed), with its host, hardware label, record counts and first and last record; then the
coverage: every suite x workload x scenario measured on some machine of the selection, and the
machines that have not measured it. A team reads at a glance which comparisons its leaderboard can
make and which runs are missing. It reads the store's columns only (ResultsStore.machines).
"""

from __future__ import annotations

import json
from typing import Any, Optional, TextIO

from bench.cli.args import check_output, one_flag, parse_args, write_output, write_terminal
from bench.errors import ConfigError
from bench.reporting.terminal import Column

__all__ = ["fleet_command", "USAGE", "coverage"]

USAGE = """\
  bench fleet [KEY=VALUE...] [--format terminal|markdown|json] [--output FILE]
                                    the machines that reported to the store (fingerprint, host, hardware,
                                    records, first and last run) and the coverage: which suite x workload
                                    x scenario was not measured on which machine"""

FORMATS = ("terminal", "markdown", "json")


def coverage(machines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every (suite, workload, scenario) measured on some machine: the machines that measured it and
    those that did not (by machine id), in a stable order."""
    everything = sorted({tuple(w) for m in machines for w in m["workloads"]},
                        key=lambda t: tuple("" if v is None else str(v) for v in t))
    out = []
    for suite, workload, scenario in everything:
        have = [m["machine"] for m in machines if (suite, workload, scenario) in {tuple(w) for w in m["workloads"]}]
        out.append({"suite": suite, "workload": workload, "scenario": scenario, "measured_on": have,
                    "missing_on": [m["machine"] for m in machines if m["machine"] not in have]})
    return out


def _data(machines: list[dict[str, Any]], source: str, selection: str) -> dict[str, Any]:
    return {"source": source, "selection": selection,
            "machines": [{**m, "workloads": [list(w) for w in m["workloads"]]} for m in machines],
            "coverage": coverage(machines)}


def _label(m: dict[str, Any]) -> str:
    return f"{m['machine']} ({m.get('host') or 'host unknown'})"


FLEET_COLUMNS = [Column("machine"), Column("host"), Column("hardware", fold=True), Column("records", justify="right"),
                 Column("valid", justify="right"), Column("first", drop=5, optional=True), Column("last"),
                 Column("measured", justify="right")]


def render_terminal(data: dict[str, Any], stream: TextIO, width: Optional[int] = None,
                    plain: Optional[bool] = None) -> None:
    from bench.reporting.terminal import Out

    out = Out(stream, width=width, plain=plain)
    out.line(f"bench fleet: {data['selection'] or 'all records'} from {data['source']}")
    total = len(data["coverage"])
    out.table(f"{len(data['machines'])} machine(s)", FLEET_COLUMNS,
              [[str(cell) for cell in (m["machine"], m.get("host") or "-", m.get("hardware") or "-", m["records"],
                                       m["valid"], str(m["first"])[:19], str(m["last"])[:19],
                                       f"{len(m['workloads'])}/{total}")] for m in data["machines"]],
              hint="--format markdown shows every column")
    names = {m["machine"]: _label(m) for m in data["machines"]}
    gaps = [c for c in data["coverage"] if c["missing_on"]]
    if not gaps:
        out.line(f"coverage: every machine measured all {total} suite x workload x scenario")
        return
    out.line(f"coverage: {len(gaps)} of {total} suite x workload x scenario not measured on every machine:")
    for c in gaps:
        missing = ", ".join(names.get(m, m) for m in c["missing_on"])
        out.line(f"  {c['suite']} / {c['workload']} / {c['scenario']}: not on {missing}")


def render_markdown(data: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = ["# bench fleet", "", f"{cell(data['selection'] or 'all records')} from `{data['source']}`", "",
             "| machine | host | hardware | records | valid | first | last | measured |",
             "|---|---|---|---:|---:|---|---|---:|"]
    total = len(data["coverage"])
    for m in data["machines"]:
        lines.append("| " + " | ".join(cell(v) for v in (m["machine"], m.get("host") or "-", m.get("hardware") or "-",
                                                          m["records"], m["valid"], str(m["first"])[:19],
                                                          str(m["last"])[:19], f"{len(m['workloads'])}/{total}"))
                     + " |")
    names = {m["machine"]: _label(m) for m in data["machines"]}
    lines += ["", "## Coverage", "", "| suite | workload | scenario | not measured on |", "|---|---|---|---|"]
    for c in data["coverage"]:
        missing = ", ".join(names.get(m, m) for m in c["missing_on"]) or "(measured everywhere)"
        lines.append(f"| {cell(c['suite'])} | {cell(c['workload'])} | {cell(c['scenario'])} | {cell(missing)} |")
    return "\n".join(lines) + "\n"


def fleet_command(args: list[str]) -> int:
    from bench.config.location import open_store
    from bench.results.query import NoMatch, Selection

    parsed = parse_args(args, "fleet", ("--format", "--output"))
    fmt = one_flag(parsed, "--format", "terminal")
    if fmt not in FORMATS:
        raise ConfigError("--format", fmt, f"use one of {', '.join(FORMATS)}", "is not a fleet format")
    output: Optional[str] = one_flag(parsed, "--output")
    check_output("--output", output)
    selection = Selection.parse(parsed.terms)
    store = open_store(parsed.results)
    try:
        machines = store.machines(selection.filters())
        source = store.display_url
    finally:
        store.close()
    if not machines:
        raise NoMatch("", "", "check the selection, or run `bench run` on a machine with this store",
                      f"the selection {selection} matches no record in {source}")
    data = _data(machines, source, str(selection))
    if fmt == "json":
        write_output(json.dumps(data, indent=1) + "\n", output)
    elif fmt == "markdown":
        write_output(render_markdown(data), output)
    else:
        write_terminal(lambda stream: render_terminal(data, stream), output)
    return 0
