"""The leaderboard drawn: the cells of a row (a figure with its interval, or why an end is missing),
the columns and the legend, and the three text renderers: the terminal (rich), Markdown and CSV. The
ranking itself is bench.reporting.leaderboard; the HTML page is bench.reporting.html.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Optional, TextIO

from bench.reporting.terminal import Column, Out
from bench.reporting.leaderboard import (CONTINUAL_SHOWN, COST, ENERGY, METRICS, PROCESS_MARK, SHOWN,
                                         UNBOUNDED_MARK, VERDICT, Figure, Group, Leaderboard, Row, unbounded_note)
from bench.fmt import csv_cell
from bench.results import support

__all__ = ["fmt_figure", "cell", "columns", "shown", "HEADINGS", "LEGEND", "COLUMNS", "table_columns", "render_terminal",
           "render_markdown", "render_csv", "CSV_FIELDS", "leaderboard_json", "render_json",
           "LEADERBOARD_JSON_VERSION", "to_frame"]


def fmt_figure(f: Figure, digits: int = 4) -> str:
    """``412.9 [401.2, 431.0]``; a missing end in words, ``412.9 [401.2, no upper bound (n=53 samples;
    368 bound it)]``; ``412.9 *`` for a figure its record holds without interval, ``14.70 (one run)``
    where the figure says why it has none."""
    from bench.fmt import fmt_num

    if f.value is None:
        return f.note or "not measured"
    if not f.has_ci:
        return f"{fmt_num(f.value, digits)} ({f.why})" if f.why else f"{fmt_num(f.value, digits)} *"
    why = f" ({f.why})" if f.why else ""
    # The reason follows the last missing end: [no lower bound (why), 9.1], [8.2, no upper bound (why)].
    low = fmt_num(f.low, digits) if f.low is not None else "no lower bound" + (why if f.high is not None else "")
    high = fmt_num(f.high, digits) if f.high is not None else "no upper bound" + why
    return f"{fmt_num(f.value, digits)} [{low}, {high}]"


def cell(row: Row, name: str) -> str:
    if name == VERDICT:
        return row.verdict or "-"
    text = fmt_figure(row.figures[name])
    if name == COST and row.price is not None and row.figures[name].value is not None:
        text = f"{text} {row.price.currency}"
    return text


HEADINGS = {"throughput_sps": "samples/s [95% CI]", "latency_p99_ms": "p99 ms [95% CI]",
            ENERGY: "samples/J [95% CI]", COST: "cost per 1M samples [95% CI]",
            "time_to_adapt_s": "time to adapt s [95% CI]", VERDICT: "serves within budget while adapting",
            "adapting_degradation_p99": "p99 adapting / steady [95% CI]",
            "train_slowdown": "training slowdown (alone / beside serving)",
            "max_qps_while_adapting": "max qps while adapting [95% CI]"}
LEGEND = (f"rank =N: tied, the 95% intervals of this row and the row above overlap, both with both ends; "
          f"rank N{UNBOUNDED_MARK}: the ranked figure's interval lacks an end (too few samples to bound it), so "
          "the row is ranked by its point estimate alone and tied with no row (the note under its table says "
          "how many samples would bound it); * : the record holds no interval for this figure; "
          f"repeats N: the intervals include the variation between N fresh processes; {PROCESS_MARK} : the "
          "intervals hold the noise within one process only, run with repeats=N for run-to-run variation; "
          "converged: whether the stopping rule was met (n/a: the scenario has none); warnings: their count "
          "and codes; rows without the ranked figure are listed unranked")


def shown(group: Group) -> tuple[str, ...]:
    """The figures of a group's table: the usual ones (scenario=continual's own), and the ranked-by
    metric if it is another."""
    usual = CONTINUAL_SHOWN if group.scenario == "continual" else SHOWN
    return usual if group.metric.name in usual else (group.metric.name, *usual)


def row_cells(row: Row, names: tuple[str, ...] = SHOWN) -> list[str]:
    return [row.rank_text, row.hardware, row.backend_text, row.precision, *(cell(row, n) for n in names),
            row.converged_text, support.warnings_text(row.record), row.repeats_text, row.record_text]


TRAILING = ["converged", "warnings", "repeats", "record"]


def columns(group: Group) -> list[str]:
    return ["rank", "hardware", "backend", "precision",
            *(HEADINGS[n] if n in HEADINGS else f"{METRICS[n].label} [95% CI]" for n in shown(group)), *TRAILING]


COLUMNS = ["rank", "hardware", "backend", "precision", *(HEADINGS[n] for n in SHOWN), *TRAILING]


# When a table is wider than the terminal, these leave first, before any figure folds (then, if folded
# figures are still too wide, those not ranked by: cost, energy, then throughput or p99); rank, hardware,
# backend, precision and the ranked figure stay.
_DROP = {"record": 10, "warnings": 9, "repeats": 8, "converged": 7}
_FIGURE_DROP = {COST: 6, ENERGY: 5}


def table_columns(group: Group) -> list[Column]:
    """The terminal's columns of a group's table: the figures fold, and the order they leave in."""
    names = shown(group)
    figures = [Column(heading, fold=True, drop=0 if name == group.metric.name else _FIGURE_DROP.get(name, 4))
               for name, heading in zip(names, columns(group)[4:4 + len(names)])]
    return [Column("rank", justify="right"), Column("hardware"), Column("backend"), Column("precision"), *figures,
            *(Column(name, drop=_DROP[name], fold=name == "warnings", optional=True) for name in TRAILING)]


def render_terminal(board: Leaderboard, stream: TextIO, width: Optional[int] = None,
                    plain: Optional[bool] = None) -> None:
    """The tables on a terminal (fitted to ``width``, the terminal's unless given) or, piped, plain."""
    out = Out(stream, width=width, plain=plain)
    out.line(f"bench leaderboard: {board.selection or 'all records'} from {board.source}")
    for g in board.groups:
        out.table(f"{g.title}: ranked by {g.metric.name} ({g.metric.direction()})", table_columns(g),
                  [row_cells(row, shown(g)) for row in g.rows])
        for note in g.notes:
            out.line(f"  note: {note}")
    out.line(LEGEND)
    for note in board.notes:
        out.line(f"note: {note}")


def _md(text: str) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\|*_`[]":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", " ")


def render_markdown(board: Leaderboard) -> str:
    lines = ["# bench leaderboard", "", f"{_md(board.selection or 'all records')} from `{board.source}`", ""]
    for g in board.groups:
        lines += [f"## {_md(g.title)}", "", f"Ranked by `{g.metric.name}` ({g.metric.direction()}).", "",
                  "| " + " | ".join(_md(c) for c in columns(g)) + " |",
                  "| " + " | ".join("---:" if c == "rank" else "---" for c in columns(g)) + " |"]
        for row in g.rows:
            lines.append("| " + " | ".join(_md(c) for c in row_cells(row, shown(g))) + " |")
        lines.append("")
        if g.notes:
            lines += [f"- {_md(n)}" for n in g.notes] + [""]
    lines.append(_md(LEGEND))
    lines += [""] + [f"- {_md(n)}" for n in board.notes]
    return "\n".join(lines) + "\n"


CSV_FIELDS = ["suite", "workload", "scenario", "batch_size", "ranked_by", "rank", "tie", "rank_text",
              "rank_unbounded", "rank_note", "hardware", "backend", "device", "precision"]


def _bool(flag: Optional[bool]) -> str:
    return "" if flag is None else ("true" if flag else "false")


def _missing_ends(f: Figure) -> str:
    """A figure's missing interval ends in words, for the CSV's note column."""
    if f.value is not None and not f.has_ci:
        return f.why
    if f.value is None or f.bounded:
        return ""
    ends = [text for text, end in (("no lower bound", f.low), ("no upper bound", f.high)) if end is None]
    return f"{' and '.join(ends)} ({f.why})" if f.why else " and ".join(ends)


def render_csv(board: Leaderboard) -> str:
    """One flat table. Interval ends are numbers or empty; where an end is missing, ``<metric>_note`` says
    so in words (``no upper bound (n=53 samples; 368 bound it)``)."""
    out = io.StringIO()
    fields = list(CSV_FIELDS)
    every = tuple(dict.fromkeys(n for g in board.groups for n in shown(g)))
    for name in every:
        fields += [name] if name == VERDICT else [name, f"{name}_ci_low", f"{name}_ci_high", f"{name}_note"]
    if any(g.load for g in board.groups):
        fields.insert(fields.index("batch_size") + 1, "load")
    fields += ["converged", "warnings", "repeats", "ci_scope", "currency", "price_per_hour", "record_id",
               "created_at", "records_seen", "chosen"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for g in board.groups:
        notes = {row.label: unbounded_note(row, g.metric) for row in g.rows if row.unbounded}
        for row in g.rows:
            data: dict[str, Any] = {
                "suite": g.suite, "workload": g.workload, "scenario": g.scenario, "batch_size": g.batch_size,
                "ranked_by": g.metric.name, "rank": row.rank if row.rank is not None else "", "tie": row.tie,
                "rank_text": row.rank_text if row.rank is not None else "", "rank_unbounded": _bool(row.unbounded),
                "rank_note": notes.get(row.label, ""),
                "hardware": row.hardware, "backend": row.backend, "device": row.device, "precision": row.precision,
                "converged": _bool(support.converged(row.record)), "warnings": support.warnings_text(row.record),
                "repeats": support.repeats(row.record), "ci_scope": support.ci_scope(row.record),
                "currency": row.price.currency if row.price else "",
                "price_per_hour": row.price.price_per_hour if row.price else "",
                "record_id": row.record.id, "created_at": row.record.created_at, "records_seen": row.seen,
                "chosen": "newest" if row.newest else "best_supported",
            }
            if g.load:
                data["load"] = g.load
            for name in shown(g):
                if name == VERDICT:
                    data[name] = row.verdict
                    continue
                f = row.figures[name]
                data[name] = "" if f.value is None else repr(f.value)
                data[f"{name}_ci_low"] = "" if f.value is None or f.low is None or not f.has_ci else repr(f.low)
                data[f"{name}_ci_high"] = "" if f.value is None or f.high is None or not f.has_ci else repr(f.high)
                data[f"{name}_note"] = f.note or _missing_ends(f)
            writer.writerow({k: csv_cell(v) for k, v in data.items()})
    return out.getvalue()


def _figure_json(f: Figure) -> dict[str, Any]:
    """A figure as JSON: the point estimate and its 95% interval (an end the sample could not give is
    null, and ``why`` says how many samples would), or why there is no figure (``note``)."""
    out: dict[str, Any] = {"value": f.value, "low": f.low if f.has_ci else None,
                           "high": f.high if f.has_ci else None, "has_ci": f.has_ci if f.value is not None else False}
    if f.note:
        out["note"] = f.note
    if f.why:
        out["why"] = f.why
    return out


def leaderboard_json(board: Leaderboard) -> dict[str, Any]:
    """The leaderboard as one JSON document (LEADERBOARD_JSON_VERSION): the tables as they are ranked,
    each row with its figures, rank marks, price and the record it shows."""
    groups = []
    for g in board.groups:
        notes = {row.label: unbounded_note(row, g.metric) for row in g.rows if row.unbounded}
        rows = []
        for row in g.rows:
            figures = {name: _figure_json(row.figures[name]) for name in shown(g) if name != VERDICT}
            if COST in row.figures and COST not in figures:
                figures[COST] = _figure_json(row.figures[COST])
            rows.append({
                "rank": row.rank, "tie": row.tie, "unbounded": row.unbounded, "rank_text": row.rank_text,
                "rank_note": notes.get(row.label, ""), "hardware": row.hardware, "backend": row.backend,
                "device": row.device, "precision": row.precision, "figures": figures,
                **({"verdict": row.verdict} if VERDICT in shown(g) else {}),
                "converged": support.converged(row.record), "warnings": [w.get("code") for w in row.record.warnings],
                "repeats": support.repeats(row.record), "ci_scope": support.ci_scope(row.record),
                "price": ({"per_hour": row.price.price_per_hour, "currency": row.price.currency,
                           "source": row.price.source, "example": row.price.example} if row.price else None),
                "record_id": row.record.id, "created_at": row.record.created_at, "records_seen": row.seen,
                "chosen": "newest" if row.newest else "best_supported",
            })
        groups.append({"suite": g.suite, "workload": g.workload, "scenario": g.scenario, "batch_size": g.batch_size,
                       "load": g.load or None, "ranked_by": g.metric.name, "unit": g.metric.unit,
                       "higher_is_better": g.metric.higher_is_better, "rows": rows, "notes": list(g.notes)})
    return {"version": LEADERBOARD_JSON_VERSION, "source": board.source, "selection": board.selection or None,
            "groups": groups, "notes": list(board.notes)}


LEADERBOARD_JSON_VERSION = 1


def render_json(board: Leaderboard) -> str:
    import json

    return json.dumps(leaderboard_json(board), indent=1, allow_nan=False) + "\n"


def to_frame(board: Leaderboard) -> Any:
    """The tables as one pandas DataFrame, a row per ranked row: the columns of render_csv, numbers as
    numbers (an interval's missing end is NaN, and its ``<metric>_note`` says why)."""
    import pandas as pd

    return pd.read_csv(io.StringIO(render_csv(board)), keep_default_na=False, na_values=[""])
