"""The leaderboard as one self-contained HTML page: inline CSS, inline SVG plots drawn here, no script
and no external resource, so the file can be mailed, archived or opened offline.

Per workload table: the ranked table; throughput against p99 latency, each point with its two 95%
intervals as error bars and the Pareto front (no other row has at least the throughput at no more
latency, one of them strictly better, by point estimates) drawn as a line through filled points; and
samples per joule as bars with their intervals where records have an energy figure. A
scenario=continual table instead has, for each of its rows' records, the phase table, the time to
adapt split into its stages, the verdict and the timeline plot (bench.reporting.continual; inline SVG
drawn by matplotlib, the ``plots`` extra; without it the section says so).

Every name from a record (hardware label, backend, workload) is HTML-escaped where it is written,
in tables, SVG text and tooltips alike.
"""

from __future__ import annotations

import datetime as _dt
import math
from html import escape
from typing import Callable, Optional, Sequence

from bench.reporting import continual
from bench.reporting.leaderboard import ENERGY, Figure, Group, Leaderboard, Row
from bench.reporting.leaderboard_render import LEGEND, columns, fmt_figure, row_cells, shown

__all__ = ["render_html", "pareto_front", "continual_section", "timeline_plots_available"]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1200px;
color:#1d2433;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 6px;border-bottom:1px solid #d8dde6;
padding-bottom:4px}p.meta{color:#5a6478;margin:2px 0}
table{border-collapse:collapse;margin:8px 0 12px;width:100%;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e3e7ee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f9;font-weight:600}td.rank{text-align:right;font-weight:600;white-space:nowrap}
tr.tie td.rank{color:#9a5b00}tr.unbounded td.rank{color:#c92a2a}tr.unranked td{color:#6b7385}
.plots{display:flex;flex-wrap:wrap;gap:16px}.plots figure{margin:0}figcaption{color:#5a6478;font-size:12px}
svg{background:#fff;border:1px solid #e3e7ee}svg text{font:11px system-ui,sans-serif;fill:#1d2433}
.note{color:#5a6478;font-size:13px}ol.key{margin:4px 0;padding-left:22px}
section.continual{margin:12px 0 24px;padding-left:12px;border-left:3px solid #d8dde6}h3{font-size:15px;margin:12px 0 4px}
table.stages{width:auto}table.stages td:nth-child(n+2){text-align:right}p.verdict{font-weight:600}
p.verdict.yes{color:#2b8a3e}p.verdict.no{color:#c92a2a}ul.facts{margin:4px 0;padding-left:20px}
"""

W, H = 560, 360
ML, MR, MT, MB = 64, 16, 16, 46


class _Scale:
    """Linear, or log10 when the values span more than a factor of 20."""

    def __init__(self, values: Sequence[float], lo_px: float, hi_px: float) -> None:
        vals = [v for v in values if v is not None and math.isfinite(v) and v > 0] or [1.0]
        lo, hi = min(vals), max(vals)
        self.log = hi / lo > 20
        if self.log:
            self.lo, self.hi = math.log10(lo) - 0.08, math.log10(hi) + 0.08
        else:
            pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
            self.lo, self.hi = max(0.0, lo - pad), hi + pad
        self.lo_px, self.hi_px = lo_px, hi_px

    def __call__(self, v: float) -> float:
        x = math.log10(max(v, 1e-300)) if self.log else v
        x = min(max(x, self.lo), self.hi)  # an interval end beyond the plot is clipped to its edge
        return self.lo_px + (x - self.lo) / (self.hi - self.lo) * (self.hi_px - self.lo_px)

    def ticks(self) -> list[float]:
        if self.log:
            return [10.0 ** e for e in range(math.ceil(self.lo), math.floor(self.hi) + 1)]
        span = self.hi - self.lo
        step = 10 ** math.floor(math.log10(span / 5)) if span > 0 else 1.0
        for m in (1, 2, 5, 10):
            if span / (step * m) <= 6:
                step *= m
                break
        first = math.ceil(self.lo / step) * step
        return [first + i * step for i in range(int((self.hi - first) / step) + 1)]


def _tick(v: float) -> str:
    from bench.fmt import fmt_num

    return fmt_num(v, 3)


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


def _label(row: Row) -> str:
    return f"{row.hardware} · {row.backend_text} · {row.precision}"


def _axes(sx: _Scale, sy: _Scale, xlabel: str, ylabel: str, out: list[str],
          ytick_text: Callable[[float], str] = _tick) -> None:
    x0, x1, y0, y1 = ML, W - MR, H - MB, MT
    out.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#9aa3b2"/>')
    for t in sx.ticks():
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{y1}" x2="{x:.1f}" y2="{y0}" stroke="#eef1f5"/>'
                   f'<text x="{x:.1f}" y="{y0 + 15}" text-anchor="middle">{escape(_tick(t))}</text>')
    for t in sy.ticks():
        y = sy(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#eef1f5"/>'
                   f'<text x="{x0 - 5}" y="{y + 4:.1f}" text-anchor="end">{escape(ytick_text(t))}</text>')
    out.append(f'<text x="{(x0 + x1) / 2}" y="{H - 8}" text-anchor="middle">{escape(xlabel)}'
               f'{" (log scale)" if sx.log else ""}</text>')
    out.append(f'<text transform="translate(14,{(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">'
               f'{escape(ylabel)}{" (log scale)" if sy.log else ""}</text>')


def _bounds(f: Figure) -> tuple[float, float]:
    """The ends to draw: a missing end is infinite (drawn to the plot's edge, dashed), never the point
    itself, which would draw an interval the record does not have as a tight one."""
    assert f.value is not None
    if not f.has_ci:
        return f.value, f.value
    return (-math.inf if f.low is None else f.low, math.inf if f.high is None else f.high)


def _finite(values: Sequence[Optional[float]]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _bar(x1: float, y1: float, x2: float, y2: float, colour: str, open_end: bool, width: float = 1.0) -> str:
    """One side of an error bar; dashed (class "open") where the interval has no end on that side."""
    dash = ' stroke-dasharray="3 2" class="open"' if open_end else ""
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
            f'stroke-width="{width:g}"{dash}/>')


def _ends_text(f: Figure) -> str:
    """A figure's interval in words where an end is missing (for tooltips); empty otherwise."""
    return "" if f.bounded or not f.has_ci else f" ({fmt_figure(f)})"


def scatter_svg(group: Group) -> Optional[str]:
    """Throughput against p99 latency, with error bars and the Pareto front marked."""
    rows = [r for r in group.rows if r.figures["throughput_sps"].value and r.figures["latency_p99_ms"].value]
    if not rows:
        return None
    lat = [r.figures["latency_p99_ms"] for r in rows]
    tp = [r.figures["throughput_sps"] for r in rows]
    sx = _Scale(_finite([v for f in lat for v in (f.value, *_bounds(f))]), ML, W - MR)
    sy = _Scale(_finite([v for f in tp for v in (f.value, *_bounds(f))]), H - MB, MT)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="scatter" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" role="img" aria-label="throughput against p99 latency">']
    _axes(sx, sy, "p99 latency, ms", "throughput, samples/s", out)
    front = pareto_front([(f.value, t.value) for f, t in zip(lat, tp, strict=True)])  # type: ignore[misc]
    front_pts = sorted(((sx(lat[i].value), sy(tp[i].value)) for i in front))  # type: ignore[arg-type]
    if len(front_pts) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in front_pts)
        out.append(f'<polyline class="pareto" points="{path}" fill="none" stroke="#d9480f" stroke-width="1.5" '
                   'stroke-dasharray="5 3"/>')
    for i, (row, lf, tf) in enumerate(zip(rows, lat, tp, strict=True)):
        number = group.rows.index(row) + 1  # the row's place in the table, the key below the plot
        x, y = sx(lf.value), sy(tf.value)  # type: ignore[arg-type]
        (xl, xh), (yl, yh) = _bounds(lf), _bounds(tf)
        on_front = i in front
        colour = "#d9480f" if on_front else "#3b5bdb"
        # Each side of a point's bar separately: a missing end is dashed to the plot's edge.
        bars = "".join(_bar(x1, y1, x2, y2, colour, not math.isfinite(end)) for x1, y1, x2, y2, end in (
            (sx(xl), y, x, y, xl), (x, y, sx(xh), y, xh), (x, sy(yl), x, y, yl), (x, y, x, sy(yh), yh)))
        out.append(f'<g class="point{" front" if on_front else ""}"><title>{escape(_label(row))}: '
                   f'{escape(_tick(tf.value))} samples/s{escape(_ends_text(tf))}, '  # type: ignore[arg-type]
                   f'p99 {escape(_tick(lf.value))} ms{escape(_ends_text(lf))}'  # type: ignore[arg-type]
                   f'{" (Pareto front)" if on_front else ""}</title>{bars}'
                   f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" stroke="{colour}" stroke-width="1.5" '
                   f'fill="{colour if on_front else "#fff"}"/>'
                   f'<text x="{x + 7:.1f}" y="{y - 6:.1f}">{number}</text></g>')
    out.append("</svg>")
    return "".join(out)


def _short(row: Row, limit: int = 28) -> str:
    text = f"{row.hardware} {row.backend}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def energy_svg(group: Group) -> Optional[str]:
    """Samples per joule as horizontal bars with their intervals; None without any energy figure."""
    rows = [r for r in group.rows if r.figures[ENERGY].value is not None]
    if not rows:
        return None
    bar_h, gap, left, right = 18, 8, 230, 80
    height = MT + len(rows) * (bar_h + gap) + 40
    ends = _finite([v for r in rows for v in (r.figures[ENERGY].value, _bounds(r.figures[ENERGY])[1])])
    top = max(ends) * 1.08 or 1.0
    scale = lambda v: left + max(0.0, min(v, top)) / top * (W - left - right)  # noqa: E731  (clipped to the plot)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="energy" width="{W}" height="{height}" '
           f'viewBox="0 0 {W} {height}" role="img" aria-label="samples per joule">']
    for i, row in enumerate(rows):
        f = row.figures[ENERGY]
        value = f.value
        assert value is not None
        lo, hi = _bounds(f)
        y = MT + i * (bar_h + gap)
        mid = y + bar_h / 2
        out.append(f'<g class="bar"><title>{escape(_label(row))}: {escape(_tick(value))} samples/J'
                   f'{escape(_ends_text(f))}</title>'
                   f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(_short(row, 34))}</text>'
                   f'<rect x="{left}" y="{y}" width="{scale(value) - left:.1f}" height="{bar_h}" fill="#2f9e44"/>'
                   + _bar(scale(lo), mid, scale(value), mid, "#1d2433", not math.isfinite(lo), 1.5)
                   + _bar(scale(value), mid, scale(hi), mid, "#1d2433", not math.isfinite(hi), 1.5)
                   + f'<text x="{min(scale(hi) + 5, W - right + 5):.1f}" y="{y + 13}">{escape(_tick(value))}</text></g>')
    out.append(f'<text x="{left}" y="{height - 10}">samples per joule (higher is better)</text></svg>')
    return "".join(out)


def _table(group: Group) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns(group))
    body = []
    for row in group.rows:
        cls = "tie" if row.tie else ("unranked" if row.rank is None else ("unbounded" if row.unbounded else ""))
        cells = row_cells(row, shown(group))
        tds = f'<td class="rank">{escape(cells[0])}</td>' + "".join(f"<td>{escape(c)}</td>" for c in cells[1:])
        body.append(f'<tr class="{cls}">{tds}</tr>')
    return f'<table class="leaderboard"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _plain_table(cls: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def timeline_plots_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def continual_section(row: Row, plot: bool = True) -> str:
    """One record of a scenario=continual table: phases, time to adapt, facts, verdict and the timeline
    (``plot``: draw it when matplotlib is installed; else, or without ``plot``, say what it needs)."""
    from bench.reporting.scaling import PLOTS_INSTALL

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
                     f"{escape(PLOTS_INSTALL)}</p>")
    parts.append("</section>")
    return "".join(parts)


def render_html(board: Leaderboard, generated: Optional[str] = None, scaling_svg: Optional[str] = None,
                timeline_plots: bool = True) -> str:
    """The page; ``scaling_svg`` (bench.reporting.scaling.plot_svg) adds how the selection scales with batch
    size, where the records hold several batch sizes of one configuration. ``timeline_plots``: draw
    each continual record's timeline (when matplotlib is installed)."""
    generated = generated or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>bench leaderboard</title>", f"<style>{CSS}</style></head><body>",
             "<h1>bench leaderboard</h1>",
             f'<p class="meta">{escape(board.selection or "all records")} from {escape(board.source)}; '
             f"generated {escape(generated)}. Figures are point estimates with their 95% intervals.</p>"]
    for g in board.groups:
        parts.append(f'<section class="workload"><h2>{escape(g.title)}</h2>'
                     f'<p class="meta">ranked by {escape(g.metric.name)} ({escape(g.metric.direction())})</p>')
        parts.append(_table(g))
        parts += [f'<p class="note group-note">note: {escape(n)}</p>' for n in g.notes]
        if g.scenario == "continual":
            parts += [continual_section(row, timeline_plots) for row in g.rows]
            parts.append("</section>")
            continue
        plots = []
        scatter = scatter_svg(g)
        if scatter:
            key = "".join(f"<li>{escape(_label(row))}</li>" for row in g.rows)
            plots.append(f"<figure>{scatter}<figcaption>throughput against p99 latency with 95% intervals; "
                         "filled points (joined by the dashed line) form the Pareto front"
                         f'<ol class="key">{key}</ol></figcaption></figure>')
        energy = energy_svg(g)
        if energy:
            plots.append(f"<figure>{energy}<figcaption>energy efficiency with 95% intervals where known"
                         "</figcaption></figure>")
        else:
            plots.append('<p class="note">No energy figure in these records (no energy sensor).</p>')
        parts.append(f'<div class="plots">{"".join(plots)}</div></section>')
    if scaling_svg:
        parts.append('<section class="workload"><h2>Scaling with batch size</h2>'
                     f'<figure class="scaling">{scaling_svg}<figcaption>throughput, p50 and p99 latency per batch '
                     "and peak memory against batch size; dotted: saturation (95% of the best throughput); "
                     "dashed: the latency requirement</figcaption></figure></section>")
    parts.append(f'<p class="note">{escape(LEGEND)}</p>')
    parts += [f'<p class="note">note: {escape(n)}</p>' for n in board.notes]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
