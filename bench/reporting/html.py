"""The leaderboard as one self-contained HTML page: inline CSS, inline SVG plots, one small inline script
that only sorts tables, and no external resource, so the file can be mailed, archived or opened offline.
With scripts disabled the page reads the same, in the order it was ranked.

First an overview per kind of scenario (latency and throughput together; server, multistream and
training each on their own; scenario=continual has its own sections below): a matrix of hardware x
backend x precision (rows) by table (columns: suite / workload / scenario / batch), each cell the
ranked-by figure relative to that column's best (1.00; for a lower-is-better figure best / value, so
in every column lower is worse), its 95% interval mapped the same way (an end the record lacks shown
as missing, never invented) and the row's rank in that table (=N tied, N? unbounded), linking to the
table. Then per table: the ranked table (each figure's cell holds its point estimate in ``data-value``
for sorting; each row links to its record's JSON where the caller gives ``record_href``); where the
table has two rows or more, throughput against p99 latency, each point with its two 95% intervals as
error bars and the Pareto front (no other row has at least the throughput at no more latency, one of
them strictly better, by point estimates) drawn as a dashed line through filled points; and samples
per joule as bars with their intervals where two rows or more have an energy figure. An interval end
a record lacks runs dashed to the plot's edge. A table of one row has no chart: one point compares
nothing. A scenario=continual table instead has, for each of its rows' records, the phase table, the
time to adapt split into its stages, the verdict and the timeline plot (bench.reporting.continual).

Every plot on the page is drawn by matplotlib (the ``plots`` extra; bench.reporting.plots says why
matplotlib rather than SVG built by hand) and inlined as SVG with its text as text; without
matplotlib the page says so and keeps every table. Tables scroll sideways inside their own box on a
narrow screen; the page itself never gets wider than the screen.

Every name from a record (hardware label, backend, workload) is HTML-escaped where it is written, in
tables, SVG text, tooltips, links and attributes alike.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from bench.reporting import continual, plots
from bench.reporting.leaderboard import ENERGY, Figure, Group, Leaderboard, Row
from bench.reporting.leaderboard_render import LEGEND, columns, fmt_figure, row_cells, shown
from bench.results.records import RunRecord

__all__ = ["render_html", "pareto_front", "continual_section", "timeline_plots_available", "overview",
           "Matrix", "normalised", "fmt_ratio", "relative_href", "record_links", "SORT_SCRIPT", "CSS"]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1400px;
color:#1d2433;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 6px;border-bottom:1px solid #d8dde6;
padding-bottom:4px}p.meta{color:#5a6478;margin:2px 0}
h1,h2,h3,p,li,figcaption{overflow-wrap:anywhere}
table{border-collapse:collapse;margin:8px 0 12px;width:100%;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e3e7ee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f9;font-weight:600}td.rank{text-align:right;font-weight:600;white-space:nowrap}
tr.tie td.rank{color:#9a5b00}tr.unbounded td.rank{color:#c92a2a}tr.unranked td{color:#6b7385}
.scroll{overflow-x:auto;max-width:100%;margin:8px 0 12px}.scroll>table{margin:0}
.plots{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;min-width:0;max-width:100%}
.plots figure{flex:1 1 360px;max-width:576px}td.record{white-space:nowrap}td.fig{min-width:7em}
figcaption{color:#5a6478;font-size:12px}
figure svg{display:block;max-width:100%;height:auto}
svg{background:#fff;border:1px solid #e3e7ee}
.note{color:#5a6478;font-size:13px}ol.key{margin:4px 0;padding-left:22px}
section.continual{margin:12px 0 24px;padding-left:12px;border-left:3px solid #d8dde6}h3{font-size:15px;margin:12px 0 4px}
table.stages{width:auto}table.stages td:nth-child(n+2){text-align:right}p.verdict{font-weight:600}
p.verdict.yes{color:#2b8a3e}p.verdict.no{color:#c92a2a}ul.facts{margin:4px 0;padding-left:20px}
table.overview{width:auto}table.overview td{white-space:nowrap;padding:3px 8px}
table.overview th[scope=col]{font-weight:500;min-width:8em}table.overview th[scope=col] a{font-weight:600}
table.overview .sub{display:block;color:#5a6478;font-size:12px;font-weight:400}
table.overview td a{color:inherit;text-decoration:none;display:block}table.overview td a:hover .v{text-decoration:underline}
table.overview .v{font-weight:600}table.overview .ci{display:block;color:#5a6478;font-size:12px}
table.overview .rk{margin-left:6px;font-size:12px;color:#3b5bdb}table.overview td.tie .rk{color:#9a5b00}
table.overview td.unbounded .rk{color:#c92a2a}table.overview td.best{background:#ebfbee}
table.overview td.unranked,table.overview td.none{color:#8a93a5}
table.overview th[scope=row]{position:sticky;left:0;background:#f3f5f9;min-width:9em;max-width:16em}
@media (max-width:600px){body{margin:12px auto;padding:0 10px}}
a.back{font-size:12px;font-weight:400;margin-left:8px}
th button.sort{border:0;background:none;padding:0 0 0 4px;font:inherit;color:#8a93a5;cursor:pointer}
th[aria-sort] button.sort{color:#1d2433}th.sortable{cursor:pointer}
"""

# Sorts a table by a clicked header: by each cell's data-value (the point estimate) where the column
# has them, else by the text; cells without a value stay last either way. Only adds: the page reads
# the same without it.
SORT_SCRIPT = """
(function () {
  "use strict";
  function num(cell) {
    var v = cell ? cell.getAttribute("data-value") : null;
    if (v === null || v === "") return null;
    var n = parseFloat(v);
    return isNaN(n) ? null : n;
  }
  function text(cell) { return cell ? cell.textContent.trim() : ""; }
  function sort(table, th, index) {
    var body = table.tBodies[0];
    if (!body) return;
    var rows = Array.prototype.slice.call(body.rows);
    var numeric = rows.some(function (r) { return r.cells[index] && r.cells[index].hasAttribute("data-value"); });
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    rows.sort(function (a, b) {
      if (numeric) {
        var x = num(a.cells[index]), y = num(b.cells[index]);
        if (x === null || y === null) return (x === null) - (y === null);
        return dir * (x - y);
      }
      var s = text(a.cells[index]), t = text(b.cells[index]);
      if (!s || !t) return !s - !t;
      return dir * s.localeCompare(t, undefined, {numeric: true});
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var head = table.tHead && table.tHead.rows[0];
    if (!head) return;
    Array.prototype.forEach.call(head.cells, function (th, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = "\\u2195";
      button.setAttribute("aria-label", "sort by " + th.textContent.trim());
      th.appendChild(button);
      th.classList.add("sortable");
      th.addEventListener("click", function (event) {
        if (event.target.closest && event.target.closest("a")) return;
        sort(table, th, index);
      });
    });
  });
})();
"""

FRONT, OTHER = "#d9480f", "#3b5bdb"  # the Pareto front's points and the others'

# The overview's kinds of scenario: latency and throughput together, each load scenario and training
# on its own (a request rate or a training step is not a batch's throughput); continual has its own
# sections. Any other scenario gets a matrix of its own too.
_TOGETHER = ("latency", "throughput")
_KIND_TITLES = {"": "latency and throughput", "server": "server (load at a latency requirement)",
                "multistream": "multistream (streams at a latency requirement)", "training": "training"}
MISSING_END = "\u2014"  # an interval end the record lacks, in the overview


def _kind(scenario: str) -> Optional[str]:
    if scenario == "continual":
        return None
    return "" if scenario in _TOGETHER else scenario


# ---------------------------------------------------------------- the overview


def normalised(f: Figure, best: float, higher_is_better: bool) -> Figure:
    """``f`` relative to the column's ``best`` point estimate: value / best where higher is better,
    best / value where lower is, so 1.0 is the best and lower is worse either way; the interval's ends
    map the same way (swapped where lower is better). An end the figure lacks stays missing, and so does
    one that does not map to a finite number (a bound at 0 where lower is better)."""

    def ratio(v: Optional[float]) -> Optional[float]:
        if v is None or not math.isfinite(best) or best <= 0:
            return None
        if higher_is_better:
            out = v / best
        else:
            if v <= 0:
                return None
            out = best / v
        return out if math.isfinite(out) and out >= 0 else None

    if f.value is None:
        return Figure(note=f.note)
    value = ratio(f.value)
    if value is None:
        return Figure(note="cannot be set against the best (a point at or below 0)")
    if not f.has_ci:
        return Figure(value, value, value, has_ci=False, why=f.why)
    low, high = (ratio(f.low), ratio(f.high)) if higher_is_better else (ratio(f.high), ratio(f.low))
    return Figure(value, low, high, why=f.why)


def fmt_ratio(v: Optional[float]) -> str:
    """``1.00``, ``0.62``; two significant digits below 0.1 (``0.047``)."""
    if v is None:
        return MISSING_END
    return f"{v:.2f}" if v >= 0.1 or v == 0 else f"{v:.2g}"


def fmt_normalised(f: Figure) -> tuple[str, str]:
    """The cell's figure and its interval: ``("0.62", "[0.58, 0.66]")``, a missing end as a dash,
    ``*`` for a figure its record holds without interval."""
    if f.value is None:
        return "-", ""
    if not f.has_ci:
        return fmt_ratio(f.value), "*"
    return fmt_ratio(f.value), f"[{fmt_ratio(f.low)}, {fmt_ratio(f.high)}]"


@dataclass
class Cell:
    row: Row
    figure: Figure  # the ranked-by figure, normalised to the column's best


@dataclass
class Matrix:
    """One overview: ``labels`` (row key -> hardware x backend x precision) by ``columns`` (the index of
    each group in the board, and the group), ``cells`` keyed by (row key, group index)."""

    kind: str
    title: str
    columns: list[tuple[int, Group]] = field(default_factory=list)
    labels: dict[tuple[str, ...], str] = field(default_factory=dict)
    cells: dict[tuple[tuple[str, ...], int], Cell] = field(default_factory=dict)


def _row_key(row: Row) -> tuple[str, ...]:
    return row.hardware, row.backend, row.device, row.precision


def _label(row: Row) -> str:
    return f"{row.hardware} · {row.backend_text} · {row.precision}"


def overview(board: Leaderboard) -> list[Matrix]:
    """The overview matrices: latency and throughput, server, multistream, training, then any other kind
    in the board's order; columns in the board's order, rows by label."""
    matrices: dict[str, Matrix] = {}
    for gi, g in enumerate(board.groups):
        kind = _kind(g.scenario)
        if kind is None:
            continue
        m = matrices.setdefault(kind, Matrix(kind, _KIND_TITLES.get(kind, kind)))
        m.columns.append((gi, g))
        spec = g.metric
        best = next((r.figures[spec.name].value for r in g.rows if r.figures[spec.name].value is not None), None)
        for row in g.rows:
            key = _row_key(row)
            m.labels.setdefault(key, _label(row))
            f = row.figures[spec.name]
            norm = normalised(f, best, spec.higher_is_better) if best is not None else Figure(note=f.note)
            m.cells[(key, gi)] = Cell(row, norm)
    known = list(_KIND_TITLES)
    ordered = sorted(matrices.values(), key=lambda m: known.index(m.kind) if m.kind in known else len(known))
    for m in ordered:
        m.labels = dict(sorted(m.labels.items(), key=lambda kv: (kv[1].casefold(), kv[0])))
    return ordered


def _cell_html(cell: Optional[Cell], gi: int, g: Group) -> str:
    if cell is None:
        return '<td class="none" title="not measured in this table">·</td>'
    row, f = cell.row, cell.figure
    raw = row.figures[g.metric.name]
    value, interval = fmt_normalised(f)
    tip = f"{_label(row)} in {g.title}: {g.metric.name} {fmt_figure(raw)}"
    if f.value is None:
        cls, rank = "unranked", ""
    else:
        cls = "tie" if row.tie else ("unbounded" if row.unbounded else "")
        if row.rank == 1:
            cls += " best"
        rank = f'<span class="rk">{escape(row.rank_text)}</span>'
        tip += f"; {value} of the best {interval}; rank {row.rank_text}"
    data = f' data-value="{f.value!r}"' if f.value is not None else ""
    ci = f'<span class="ci">{escape(interval)}</span>' if interval else ""
    cls_attr = f' class="{cls.strip()}"' if cls.strip() else ""
    return (f'<td{cls_attr}{data}><a href="#w{gi}" title="{escape(tip)}"><span class="v">{escape(value)}</span>'
            f"{rank}{ci}</a></td>")


def _overview_html(m: Matrix) -> str:
    head = ['<th scope="col">hardware · backend · precision</th>']
    for gi, g in m.columns:
        head.append(f'<th scope="col"><a href="#w{gi}">{escape(g.suite)} / {escape(g.workload)}</a>'
                    f'<span class="sub">{escape(g.scenario)} · batch {escape(str(g.batch_size))}</span>'
                    f'<span class="sub">{escape(g.metric.name)}, {escape(g.metric.direction())}</span></th>')
    body = []
    for key, label in m.labels.items():
        cells = "".join(_cell_html(m.cells.get((key, gi)), gi, g) for gi, g in m.columns)
        body.append(f'<tr><th scope="row">{escape(label)}</th>{cells}</tr>')
    return (f'<h3>{escape(m.title)}</h3><div class="scroll"><table class="overview sortable" data-kind="'
            f'{escape(m.kind or "latency-throughput")}"><thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


OVERVIEW_NOTE = ("Each cell: the ranked-by figure relative to that column's best (1.00; a lower-is-better figure as "
                 "best / value, so in every column a smaller number is worse), its 95% interval mapped the same way "
                 f"({MISSING_END}: the record has no such end; *: the record holds no interval), and the rank in that "
                 "table (=N tied, N? ranked by its point estimate alone). A cell links to its table; · : not measured.")


# ---------------------------------------------------------------- the charts (matplotlib)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (latency, throughput) no other point dominates (lower or equal latency
    and higher or equal throughput, one strictly)."""
    front = []
    for i, (lat, tp) in enumerate(points):
        dominated = any(l2 <= lat and t2 >= tp and (l2 < lat or t2 > tp)
                        for j, (l2, t2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front


def _tick(v: float) -> str:
    from bench.fmt import fmt_num

    return fmt_num(v, 3)


def _ends_text(f: Figure) -> str:
    """A figure's interval in words where an end is missing (for tooltips); empty otherwise."""
    return "" if f.bounded or not f.has_ci else f" ({fmt_figure(f)})"


def _interval(f: Figure) -> Optional[plots.Interval]:
    return (f.low, f.high) if f.has_ci else None


def _log_wanted(values: Sequence[Optional[float]]) -> bool:
    """Log scale where the positive values span more than a factor of 20."""
    vals = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    return bool(vals) and max(vals) / min(vals) > 20


def _plain_log(axis: Any) -> None:
    """A log axis labelled 100, 1000 rather than 10^2, 10^3."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick(v)))
    axis.set_minor_formatter(NullFormatter())


def _draw_open_sides(ax: Any, sides: list[tuple[tuple[float, float, str], str, bool]], prefix: str,
                     marks: dict[str, tuple[str, str]]) -> None:
    if not sides:
        return
    plots.fix_limits(ax)
    for k, ((at, value, side), colour, vertical) in enumerate(sides):
        gid = f"{prefix}-o{k}"
        plots.draw_open(ax, at, value, side, colour, vertical, gid=gid)
        marks[gid] = ("clipped" if side.endswith("clipped") else "open", "")


def scatter_svg(group: Group, prefix: str = "s") -> Optional[str]:
    """Throughput against p99 latency, with error bars and the Pareto front marked; None where fewer
    than two rows have both figures (one point compares nothing). ``prefix``: the page-unique start of
    the ids given to the points."""
    rows = [r for r in group.rows if r.figures["throughput_sps"].value and r.figures["latency_p99_ms"].value]
    if len(rows) < 2:
        return None
    plt = plots.pyplot("--format html")
    lat = [r.figures["latency_p99_ms"] for r in rows]
    tp = [r.figures["throughput_sps"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.6, 3.9), constrained_layout=True)
    xlog = _log_wanted([v for f in lat for v in (f.value, f.low, f.high)])
    ylog = _log_wanted([v for f in tp for v in (f.value, f.low, f.high)])
    if xlog:
        ax.set_xscale("log")
        _plain_log(ax.xaxis)
    if ylog:
        ax.set_yscale("log")
        _plain_log(ax.yaxis)
    marks: dict[str, tuple[str, str]] = {}
    front = pareto_front([(f.value, t.value) for f, t in zip(lat, tp, strict=True)])  # type: ignore[misc]
    if len(front) > 1:
        pts = sorted((lat[i].value, tp[i].value) for i in front)  # type: ignore[type-var]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle=(0, (5, 3)), color=FRONT, linewidth=1.5,
                gid=f"{prefix}-front", zorder=1)
        marks[f"{prefix}-front"] = ("pareto", "the Pareto front")
    sides: list[tuple[tuple[float, float, str], str, bool]] = []
    for i, (row, lf, tf) in enumerate(zip(rows, lat, tp, strict=True)):
        number = group.rows.index(row) + 1  # the row's place in the table, the key below the plot
        x, y = lf.value, tf.value
        assert x is not None and y is not None
        on_front = i in front
        colour = FRONT if on_front else OTHER
        sides += [(s, colour, False) for s in plots.draw_interval(ax, y, x, _interval(lf), colour, False, xlog)]
        sides += [(s, colour, True) for s in plots.draw_interval(ax, x, y, _interval(tf), colour, True, ylog)]
        gid = f"{prefix}-p{i}"
        ax.plot([x], [y], marker="o", markersize=7, markeredgewidth=1.5, markeredgecolor=colour,
                markerfacecolor=colour if on_front else "white", linestyle="none", gid=gid, zorder=4)
        ax.annotate(str(number), (x, y), xytext=(5, 4), textcoords="offset points", fontsize="small", zorder=5)
        marks[gid] = ("point front" if on_front else "point",
                      f"{number}. {_label(row)}: {_tick(y)} samples/s{_ends_text(tf)}, p99 {_tick(x)} ms"
                      f"{_ends_text(lf)}{' (Pareto front)' if on_front else ''}")
    _draw_open_sides(ax, sides, prefix, marks)
    ax.set_xlabel("p99 latency, ms" + (" (log scale)" if xlog else ""))
    ax.set_ylabel("throughput, samples/s" + (" (log scale)" if ylog else ""))
    ax.grid(True, alpha=0.3)
    return plots.svg_text(fig, cls="scatter", label="throughput against p99 latency", marks=marks)


def _short(row: Row, limit: int = 34) -> str:
    text = f"{row.hardware} {row.backend}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def energy_svg(group: Group, prefix: str = "e") -> Optional[str]:
    """Samples per joule as horizontal bars with their intervals; None where fewer than two rows have
    an energy figure."""
    rows = [r for r in group.rows if r.figures[ENERGY].value is not None]
    if len(rows) < 2:
        return None
    plt = plots.pyplot("--format html")
    fig, ax = plt.subplots(figsize=(5.6, 1.3 + 0.4 * len(rows)), constrained_layout=True)
    marks: dict[str, tuple[str, str]] = {}
    sides: list[tuple[tuple[float, float, str], str, bool]] = []
    ys = list(range(len(rows) - 1, -1, -1))  # the table's first row on top
    for row, y in zip(rows, ys, strict=True):
        f = row.figures[ENERGY]
        assert f.value is not None
        (bar,) = ax.barh([y], [f.value], height=0.6, color="#2f9e44", zorder=1)
        gid = f"{prefix}-b{len(rows) - 1 - y}"
        bar.set_gid(gid)
        marks[gid] = ("bar", f"{_label(row)}: {_tick(f.value)} samples/J{_ends_text(f)}")
        sides += [(s, "#1d2433", False) for s in plots.draw_interval(ax, y, f.value, _interval(f), "#1d2433", False)]
    ax.set_yticks(ys, labels=[plots.text(f"{group.rows.index(r) + 1}. {_short(r)}") for r in rows])
    ax.set_xlim(left=0)
    _draw_open_sides(ax, sides, prefix, marks)
    ax.set_xlabel("samples per joule (higher is better)")
    ax.grid(True, axis="x", alpha=0.3)
    return plots.svg_text(fig, cls="energy", label="samples per joule", marks=marks)


# ---------------------------------------------------------------- tables and links


def relative_href(target: str | Path, page_folder: str | Path) -> str:
    """A link from a page in ``page_folder`` to ``target``: the relative path, '/'-separated and
    percent-encoded (a folder named with '#' or a space stays a path)."""
    from urllib.parse import quote

    return quote(Path(os.path.relpath(os.path.abspath(target), os.path.abspath(page_folder))).as_posix())


def record_links(json_path: Callable[[RunRecord], Path], page: str | Path) -> Callable[[RunRecord], Optional[str]]:
    """``record_href`` for render_html: the link from the page written at ``page`` to the record's JSON
    file (``json_path``, e.g. ResultsStore.json_path) where that file exists, else None (no link)."""
    folder = Path(page).expanduser().parent

    def href(record: RunRecord) -> Optional[str]:
        target = json_path(record)
        if not target.is_file():
            return None
        try:
            return relative_href(target, folder)
        except ValueError:  # another drive (Windows): no relative path
            return None

    return href


def _table(group: Group, record_href: Optional[Callable[[RunRecord], Optional[str]]] = None) -> str:
    names = shown(group)
    head = "".join(f"<th>{escape(c)}</th>" for c in columns(group))
    body = []
    for row in group.rows:
        cls = "tie" if row.tie else ("unranked" if row.rank is None else ("unbounded" if row.unbounded else ""))
        cells = row_cells(row, names)
        rank = f' data-value="{row.rank}"' if row.rank is not None else ""
        tds = [f'<td class="rank"{rank}>{escape(cells[0])}</td>']
        for i, text in enumerate(cells[1:], start=1):
            name = names[i - 4] if 4 <= i < 4 + len(names) else None
            value = row.figures[name].value if name in row.figures else None
            data = f' data-value="{value!r}"' if value is not None else ""
            tds.append(f'<td class="fig"{data}>{escape(text)}</td>' if name else f"<td>{escape(text)}</td>")
        tds[-1] = f'<td class="record">{escape(cells[-1])}</td>'
        href = record_href(row.record) if record_href else None
        if href:
            tds[-1] = f'<td class="record"><a href="{escape(href)}" title="the record ({escape(row.record.id)}) as JSON">' \
                      f"{escape(cells[-1])}</a></td>"
        body.append(f'<tr class="{cls}">{"".join(tds)}</tr>')
    return (f'<div class="scroll"><table class="leaderboard sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _plain_table(cls: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def timeline_plots_available() -> bool:
    return plots.available()


def continual_section(row: Row, plot: bool = True) -> str:
    """One record of a scenario=continual table: phases, time to adapt, facts, verdict and the timeline
    (``plot``: draw it when matplotlib is installed; else, or without ``plot``, say what it needs)."""
    record = row.record
    verdict = continual.verdict(record)
    parts = [f'<section class="continual"><h3>{escape(_label(row))} · record {escape(record.id[:8])}</h3>',
             _plain_table("phases", continual.PHASE_HEADER, continual.phase_rows(record))]
    stages = continual.stage_rows(record)
    if stages:
        parts.append(_plain_table("stages", continual.STAGE_HEADER, stages))
    parts.append('<ul class="facts">' + "".join(f"<li>{escape(line)}</li>" for line in continual.facts(record))
                 + "</ul>")
    parts.append(f'<p class="verdict {escape(verdict.kind)}">{escape(verdict.line)}</p>')
    if plot and timeline_plots_available():
        parts.append(f'<figure class="timeline">{continual.timeline_svg(record)}<figcaption>each request\'s latency '
                     "against its arrival, coloured by the model version that served it; dropped requests marked x; "
                     "the phases shaded; drift, detection and swap as vertical lines; the latency requirement "
                     "dashed</figcaption></figure>")
    else:
        parts.append(f'<p class="note timeline-missing">The timeline plot needs the plots extra (matplotlib): '
                     f"{escape(plots.PLOTS_INSTALL)}</p>")
    parts.append("</section>")
    return "".join(parts)


# matplotlib takes about 0.1 s and 24 KB a chart: a page of hundreds of tables draws the first ones only.
MAX_CHARTED_TABLES = 40


def _charts(g: Group, gi: int, draw: bool, charted: list[int]) -> str:
    """A table's charts, where it has two rows or more (``charted``: the tables charted so far)."""
    if len(g.rows) < 2:
        return ""
    if draw and len(charted) >= MAX_CHARTED_TABLES:
        return (f'<p class="note">No chart: this page charts its first {MAX_CHARTED_TABLES} tables only; select '
                "fewer workloads (e.g. workload=NAME) to chart this one.</p>")
    charted.append(gi)
    if not draw:
        return ('<p class="note plots-missing">Charts not drawn: they need the plots extra (matplotlib): '
                f"{escape(plots.PLOTS_INSTALL)}</p>")
    out = []
    scatter = scatter_svg(g, f"w{gi}s")
    if scatter:
        key = "".join(f"<li>{escape(_label(row))}</li>" for row in g.rows)
        out.append(f"<figure>{scatter}<figcaption>throughput against p99 latency with 95% intervals (dashed to the "
                   "edge where the record has no such end); filled points (joined by the dashed line) form the Pareto "
                   f'front; numbers are the rows of the table as ranked<ol class="key">{key}</ol></figcaption></figure>')
    energy = energy_svg(g, f"w{gi}e")
    with_energy = sum(row.figures[ENERGY].value is not None for row in g.rows)
    if energy:
        out.append(f"<figure>{energy}<figcaption>energy efficiency with 95% intervals where known"
                   "</figcaption></figure>")
    elif with_energy == 1:
        out.append('<p class="note">One record here has an energy figure (see the table): no chart.</p>')
    else:
        out.append('<p class="note">No energy figure in these records (no energy sensor).</p>')
    return f'<div class="plots">{"".join(out)}</div>'


def render_html(board: Leaderboard, generated: Optional[str] = None, scaling_svg: Optional[str] = None,
                plots_wanted: bool = True, record_href: Optional[Callable[[RunRecord], Optional[str]]] = None) -> str:
    """The page; ``scaling_svg`` (bench.reporting.scaling.plot_svg) adds how the selection scales with batch
    size, where the records hold several batch sizes of one configuration. ``plots_wanted``: draw the
    charts and each continual record's timeline (where matplotlib is installed). ``record_href``: the
    link to a row's record (its JSON, relative to the page: record_links), or None for no link."""
    generated = generated or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    draw = plots_wanted and plots.available()
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>bench leaderboard</title>", f"<style>{CSS}</style></head><body>",
             "<h1>bench leaderboard</h1>",
             f'<p class="meta">{escape(board.selection or "all records")} from {escape(board.source)}; '
             f"generated {escape(generated)}. Figures are point estimates with their 95% intervals. "
             "Click a column's heading to sort by it.</p>"]
    if plots_wanted and not draw:
        parts.append('<p class="note plots-missing">The charts are not drawn: they need the plots extra (matplotlib), '
                     f"which is not installed here: {escape(plots.PLOTS_INSTALL)}</p>")
    matrices = overview(board)
    if matrices:
        parts.append('<section class="overview" id="overview"><h2>Overview</h2>'
                     f'<p class="note">{escape(OVERVIEW_NOTE)}</p>')
        parts += [_overview_html(m) for m in matrices]
        parts.append("</section>")
    back = '<a class="back" href="#overview">overview</a>' if matrices else ""
    charted: list[int] = []
    for gi, g in enumerate(board.groups):
        parts.append(f'<section class="workload" id="w{gi}"><h2>{escape(g.title)}{back}</h2>'
                     f'<p class="meta">ranked by {escape(g.metric.name)} ({escape(g.metric.direction())})</p>')
        parts.append(_table(g, record_href))
        parts += [f'<p class="note group-note">note: {escape(n)}</p>' for n in g.notes]
        if g.scenario == "continual":
            parts += [continual_section(row, plots_wanted) for row in g.rows]
        else:
            parts.append(_charts(g, gi, draw, charted))
        parts.append("</section>")
    if scaling_svg:
        parts.append('<section class="workload"><h2>Scaling with batch size</h2>'
                     f'<figure class="scaling">{scaling_svg}<figcaption>throughput, p50 and p99 latency per batch '
                     "and peak memory against batch size, with 95% intervals where the records hold them; dotted: "
                     "saturation (95% of the best throughput); dashed: the latency requirement</figcaption></figure>"
                     "</section>")
    parts.append(f'<p class="note">{escape(LEGEND)}</p>')
    parts += [f'<p class="note">note: {escape(n)}</p>' for n in board.notes]
    parts.append(f"<script>{SORT_SCRIPT}</script>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
