"""`bench plan`'s outputs, one small exporter per format behind one function (``render``): terminal
text, Markdown, JSON and a self-contained HTML page (inline CSS; the Pareto front and the scaling chart
as inline SVG drawn by matplotlib, the ``plots`` extra; without it the page says so and keeps the
same figures as tables).

Every interval reads optimistic..pessimistic (units, cost and energy fall as capacity rises). Every
string from a record goes through ``html.escape`` on the page.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any, Optional, Sequence

from bench.fmt import fmt_num
from bench.reporting import plan as pl
from bench.results import support

__all__ = ["FORMATS", "render", "to_dict", "pareto_axes", "plot_svg"]

FORMATS = ("terminal", "markdown", "json", "html")
UNITS = {"cost": "per month", "energy": "kWh/month", "units": "units", "latency": "ms"}


def _pair(pair: Optional[Sequence[Optional[float]]], suffix: str = "", fmt: Any = fmt_num) -> str:
    """optimistic..pessimistic, one number where they agree; "-" where absent."""
    if pair is None:
        return "-"
    pess, opt = pair
    text = fmt(opt) if pess == opt else f"{fmt(opt)}..{'unbounded' if pess is None else fmt(pess)}"
    return f"{text}{suffix}"


def _units(pair: Sequence[Optional[int]]) -> str:
    return _pair(pair, fmt=str)


def _currency(o: pl.Option) -> str:
    return f" {o.price.currency}" if o.price else ""


def _energy(o: pl.Option) -> str:
    s = o.sizing
    if s is None or s.energy_kwh_month is None:
        return "unmeasured"
    text = _pair(s.energy_kwh_month)
    return text if o.energy_source == "measured" else f"{text} (estimated, TDP)"


def _capacity(o: pl.Option) -> str:
    c = o.capacity
    if c is None:
        return "-"
    flag = " *" if c.flagged else ""
    return f"{fmt_num(c.point)} [{fmt_num(c.low)}, {fmt_num(c.high)}]{flag}"


def _records(o: pl.Option) -> str:
    return "; ".join(f"{r.id[:8]} {r.created_at[:10]} {r.system.get('hardware')}" for r in o.records)


def _quality(o: pl.Option) -> str:
    out = []
    for r in o.records:
        flag = support.converged(r)
        conv = "n/a (no stopping rule)" if flag is None else ("yes" if flag else "no")
        out.append(f"converged {conv}, warnings {support.warnings_text(r)}, parity {'ok' if r.valid else 'failed'}, "
                   f"repeats {support.repeats(r)}")
    return "; ".join(out)


HEADERS = ("rank", "option", "workload", "batch", "capacity samples/s [95%]", "capacity from", "latency at capacity ms",
           "units", "cost/month", "cost total", "energy kWh/month", "records", "quality")


def _headers(plan: pl.Plan) -> tuple[str, ...]:
    name = plan.request.requirement.name
    return tuple(f"{name} at capacity ms" if h == "latency at capacity ms" else h for h in HEADERS)


def _cells(o: pl.Option) -> list[str]:
    s = o.sizing
    assert s is not None and o.capacity is not None
    source = o.capacity.text + ("; NOT MEASURED UNDER LOAD" if o.not_under_load else "")
    return [o.rank_text, o.label, o.workload, str(o.batch_size), _capacity(o), source, _latency(o), _units(s.units),
            _pair(s.cost_month, _currency(o)), _pair(s.cost_total, _currency(o)), _energy(o), _records(o), _quality(o)]


def _head(plan: pl.Plan) -> list[str]:
    r = plan.request
    return [f"demand: {r.demand.text} = {fmt_num(r.demand.rate_sps)} samples/s; sized for "
            f"{fmt_num(r.target_sps)} samples/s (headroom {r.headroom:.0%})",
            f"requirement: {r.requirement.text}, checked at the pessimistic bound; objective: {r.objective}"
            + (f", but no option has a {r.objective} figure: ranked by {plan.ranked_by}"
               if plan.ranked_by and plan.ranked_by != r.objective else "")
            + f" ({UNITS[plan.ranked_by or r.objective]}; lower is better, by the pessimistic end)",
            f"records: {plan.selection or 'all'} from {plan.source}" if plan.source else
            f"records: {plan.selection or 'all'}",
            "intervals read optimistic..pessimistic (from the ends of the capacity's 95% interval); "
            "* capacity without interval (its point at both ends)"]


def pareto_axes(plan: pl.Plan) -> tuple[str, str]:
    """The pair the front is drawn on: cost against energy where both are known, else what is."""
    if len(plan.request.pareto) == 2:
        return plan.request.pareto[0], plan.request.pareto[1]
    has = {name: any(pl.objective_figure(o, name) is not None for o in plan.planned) for name in pl.OBJECTIVES}
    if has["cost"] and has["energy"]:
        return "cost", "energy"
    if has["cost"]:
        return "cost", "latency"
    return ("units", "energy") if has["energy"] else ("units", "latency")


def _end(name: str, figure: tuple[float, float]) -> str:
    """A figure's pessimistic end; an unbounded one in words, with its point."""
    pess, opt = figure
    if math.isinf(pess):
        return f"unbounded (optimistic {fmt_num(opt)})"
    return str(int(pess)) if name == "units" else fmt_num(pess)


def _latency(o: pl.Option) -> str:
    c = o.capacity
    if c is None or c.latency_ms is None:
        return "-"
    high = "none" if c.latency_high_ms is None else fmt_num(c.latency_high_ms)
    return f"{fmt_num(c.latency_ms)} (95% high: {high})"


def _pareto_lines(plan: pl.Plan) -> list[str]:
    x, y = pareto_axes(plan)
    front = pl.pareto(plan, x, y)
    if not front:
        return []
    lines = [f"Pareto front of {x} ({UNITS[x]}) against {y} ({UNITS[y]}), pessimistic ends:"]
    for o in front:
        a, b = pl.objective_figure(o, x), pl.objective_figure(o, y)
        lines.append(f"  {o.label} / {o.workload}: {x} {_end(x, a)}, {y} {_end(y, b)}")  # type: ignore[arg-type]
    return lines


def _scaling_rows(plan: pl.Plan) -> list[list[str]]:
    rows = []
    for o, sizes in pl.scaling(plan):
        for f, s in zip(pl.SCALING_FACTORS, sizes):
            rows.append([o.label, f"x{f:g}", fmt_num(s.demand_sps), _units(s.units), _pair(s.cost_month, _currency(o))])
    return rows


SCALING_HEADERS = ("option", "demand", "samples/s", "units", "cost/month")


def _missing(plan: pl.Plan) -> list[str]:
    out = []
    for o in plan.options:
        if o.not_under_load and o.planned:
            out.append(f"{o.label} / {o.workload}: not measured under load (sized from a sweep, ignores queueing):"
                       f"\n    {o.command}")
        elif o.refused and "max_power_w" not in o.refused:
            out.append(f"{o.label} / {o.workload}: refused (above); to measure it under load for this requirement:"
                       f"\n    {o.command}")
    return out


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def render_terminal(plan: pl.Plan) -> str:
    """The table without its records and quality columns (listed under it, one line per option), to fit
    a terminal."""
    out = ["bench plan", *_head(plan), ""]
    if plan.planned:
        out += [_text_table(_headers(plan)[:-2], [_cells(o)[:-2] for o in plan.planned]), "", "records behind each option:"]
        out += [f"  {o.rank_text} {o.label}: {_records(o)}; {_quality(o)}" for o in plan.planned]
        out.append("")
        chosen = plan.chosen
        if chosen:
            out.append(f"chosen: {chosen.label} / {chosen.workload}, {_units(chosen.sizing.units)} unit(s)")  # type: ignore[union-attr]
            out.append("")
        out += _pareto_lines(plan)
        out += ["", "scaling after the choice (demand x0.1..x10):", _text_table(SCALING_HEADERS, _scaling_rows(plan))]
    else:
        out.append(f"empty plan: {plan.empty_reason}")
    notes_by_option = [f"{o.label} / {o.workload}: {n}" for o in plan.planned for n in o.notes]
    if plan.refused:
        out += ["", "refused:", *(f"  {o.label} / {o.workload}: {o.refused}" for o in plan.refused)]
    missing = _missing(plan)
    if missing:
        out += ["", "what is missing (run to measure):", *(f"  {m}" for m in missing)]
    if notes_by_option or plan.notes:
        out += ["", "notes:", *(f"  {n}" for n in [*notes_by_option, *plan.notes])]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return escape(text, quote=False).replace("|", "\\|")


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(plan: pl.Plan) -> str:
    out = ["# bench plan", "", *(f"- {_md(line)}" for line in _head(plan)), ""]
    if plan.planned:
        out += [_md_table(_headers(plan), [_cells(o) for o in plan.planned]), ""]
        pareto = _pareto_lines(plan)
        if pareto:
            out += [f"**{_md(pareto[0])}**", "", *(f"- {_md(p.strip())}" for p in pareto[1:]), ""]
        out += ["## Scaling (demand x0.1..x10)", "", _md_table(SCALING_HEADERS, _scaling_rows(plan)), ""]
    else:
        out += [f"**Empty plan:** {_md(plan.empty_reason)}", ""]
    if plan.refused:
        out += ["## Refused", "", *(f"- {_md(o.label)} / {_md(o.workload)}: {_md(o.refused)}" for o in plan.refused), ""]
    missing = _missing(plan)
    if missing:
        out += ["## What is missing", ""]
        for m in missing:
            what, _, command = m.partition("\n    ")
            out += [f"- {_md(what)}", "", f"  ```\n  {command}\n  ```", ""]
    notes = [f"{o.label} / {o.workload}: {n}" for o in plan.planned for n in o.notes] + plan.notes
    out += ["## Notes", "", *(f"- {_md(n)}" for n in notes)] if notes else []
    return "\n".join(out) + "\n"


def to_dict(plan: pl.Plan) -> dict[str, Any]:
    r = plan.request

    def pair(p: Optional[Sequence[Optional[float]]]) -> Optional[dict[str, Optional[float]]]:
        return None if p is None else {"pessimistic": p[0], "optimistic": p[1]}

    def option(o: pl.Option) -> dict[str, Any]:
        c, s = o.capacity, o.sizing
        return {
            "rank": o.rank, "tie": o.tie, "suite": o.suite, "workload": o.workload, "hardware": o.hardware,
            "backend": o.backend, "device": o.device, "precision": o.precision, "batch_size": o.batch_size,
            "planned": o.planned, "refused": o.refused or None, "not_measured_under_load": o.not_under_load,
            "command": o.command if (o.not_under_load or o.refused) else None,
            "capacity_sps": None if c is None else {"point": c.point, "pessimistic": c.low, "optimistic": c.high,
                                                    "interval": c.interval, "source": c.source,
                                                    "ignores_queueing": c.ignores_queueing,
                                                    f"latency_{r.requirement.name}_ms": c.latency_ms,
                                                    f"latency_{r.requirement.name}_ci_high_ms": c.latency_high_ms},
            "units": None if s is None else pair(s.units),
            "cost_per_month": None if s is None else pair(s.cost_month),
            "cost_total": None if s is None else pair(s.cost_total),
            "currency": o.price.currency if o.price else None,
            "price_source": o.price.source if o.price else None,
            "energy_kwh_per_month": None if s is None else pair(s.energy_kwh_month),
            "energy_source": o.energy_source, "power_w_measured": o.power_w,
            "records": [{"id": rec.id, "created_at": rec.created_at, "hardware": rec.system.get("hardware"),
                         "scenario": rec.scenario.get("name"), "converged": support.converged(rec),
                         "warnings": support.warning_codes(rec), "parity_ok": rec.valid,
                         "repeats": support.repeats(rec)} for rec in o.records],
            "notes": o.notes,
        }

    x, y = pareto_axes(plan)
    return {
        "demand": {"text": r.demand.text, "samples_per_s": r.demand.rate_sps, "headroom": r.headroom,
                   "sized_for_samples_per_s": r.target_sps},
        "requirement": {"percentile": r.requirement.percentile, "bound_ms": r.requirement.bound_ms},
        "objective": r.objective, "source": plan.source, "selection": plan.selection,
        "empty_reason": plan.empty_reason or None,
        "options": [option(o) for o in plan.options],
        "pareto": {"x": x, "y": y, "front": [f"{o.label} / {o.workload}" for o in pl.pareto(plan, x, y)]},
        "scaling": [{"option": f"{o.label} / {o.workload}",
                     "points": [{"factor": f, "demand_sps": s.demand_sps, "units": pair(s.units),
                                 "cost_per_month": pair(s.cost_month)} for f, s in zip(pl.SCALING_FACTORS, sizes)]}
                    for o, sizes in pl.scaling(plan)],
        "notes": plan.notes,
    }


def plot_svg(plan: pl.Plan) -> str:
    """The Pareto front and the scaling chart (units and cost against demand) as one inline SVG."""
    import io

    from bench.reporting.scaling import require_matplotlib

    require_matplotlib("--format html")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = pareto_axes(plan)
    front = {id(o) for o in pl.pareto(plan, x, y)}
    costed = any(sizes[0].cost_month is not None for _, sizes in pl.scaling(plan))
    fig, axes = plt.subplots(1, 3 if costed else 2, figsize=(15 if costed else 10, 4.5), constrained_layout=True)
    ax = axes[0]

    def drawn(figure: tuple[float, float]) -> tuple[float, float, bool]:
        """Where a figure is drawn (its pessimistic end, else its optimistic one), the bar's length, bounded."""
        pess, opt = figure
        return (pess, pess - opt, True) if math.isfinite(pess) else (opt, 0.0, False)

    unbounded = False
    for o in plan.planned:
        a, b = pl.objective_figure(o, x), pl.objective_figure(o, y)
        if a is None or b is None:
            continue
        (ax_, ex, bx), (ay, ey, by) = drawn(a), drawn(b)
        unbounded |= not (bx and by)
        ax.errorbar([ax_], [ay], xerr=[[ex], [0]], yerr=[[ey], [0]], fmt="o" if bx and by else "^",
                    mfc=None if id(o) in front else "white", capsize=3, label=o.label)
    line = [(drawn(pl.objective_figure(o, x))[0], drawn(pl.objective_figure(o, y))[0])  # type: ignore[arg-type]
            for o in pl.pareto(plan, x, y)]
    if len(line) > 1:
        ax.plot(*zip(*line), linestyle="--", color="grey", zorder=0)
    ax.set_xlabel(f"{x} ({UNITS[x]}), pessimistic, bar to optimistic")
    ax.set_ylabel(f"{y} ({UNITS[y]})")
    ax.set_title("Pareto front (filled points, dashed line)" +
                 ("\n^: pessimistic end unbounded, drawn at the optimistic one" if unbounded else ""), fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    factors = [f * plan.request.demand.rate_sps for f in pl.SCALING_FACTORS]
    for o, sizes in pl.scaling(plan):
        pess = [s.units[0] if s.units[0] is not None else float("nan") for s in sizes]
        opt = [s.units[1] for s in sizes]
        line = axes[1].plot(factors, pess, marker="o", label=o.label)[0]
        axes[1].fill_between(factors, opt, pess, alpha=0.2, color=line.get_color())
        if costed and sizes[0].cost_month is not None:
            cp = [s.cost_month[0] if s.cost_month and s.cost_month[0] is not None else float("nan") for s in sizes]
            co = [s.cost_month[1] if s.cost_month else float("nan") for s in sizes]
            axes[2].plot(factors, cp, marker="o", color=line.get_color(), label=o.label)
            axes[2].fill_between(factors, co, cp, alpha=0.2, color=line.get_color())
    for ax, what in ((axes[1], "units"), *(((axes[2], "cost per month"),) if costed else ())):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axvline(plan.request.demand.rate_sps, color="grey", linestyle=":")
        ax.set_xlabel("demand, samples/s (dotted: the demand asked)")
        ax.set_ylabel(f"{what} (band: optimistic..pessimistic)")
        ax.set_title(f"{what} against demand x0.1..x10")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(plan: pl.Plan, svg: Optional[str] = None, svg_missing: str = "") -> str:
    from bench.reporting.html import CSS

    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>bench plan</title>", f"<style>{CSS}.plots svg{{max-width:100%;height:auto}}</style></head><body>",
             "<h1>bench plan</h1>",
             *(f'<p class="meta">{escape(line)}</p>' for line in _head(plan))]
    if plan.planned:
        parts += ["<h2>Options, ranked</h2>", _html_table(_headers(plan), [_cells(o) for o in plan.planned])]
        parts += [f'<p class="note">{escape(line)}</p>' for line in _pareto_lines(plan)]
        parts.append("<h2>Pareto front and scaling</h2>")
        parts.append(f'<div class="plots"><figure>{svg}</figure></div>' if svg
                     else f'<p class="note">no plots: {escape(svg_missing or "matplotlib is not installed")}</p>')
        parts += ["<h2>Scaling (demand x0.1..x10)</h2>", _html_table(SCALING_HEADERS, _scaling_rows(plan))]
    else:
        parts.append(f"<p><strong>Empty plan:</strong> {escape(plan.empty_reason)}</p>")
    if plan.refused:
        parts += ["<h2>Refused</h2>", "<ul>", *(f"<li>{escape(o.label)} / {escape(o.workload)}: {escape(o.refused)}</li>"
                                               for o in plan.refused), "</ul>"]
    missing = _missing(plan)
    if missing:
        parts += ["<h2>What is missing</h2>", "<ul>"]
        for m in missing:
            what, _, command = m.partition("\n    ")
            parts.append(f"<li>{escape(what)}<pre>{escape(command)}</pre></li>")
        parts.append("</ul>")
    notes = [f"{o.label} / {o.workload}: {n}" for o in plan.planned for n in o.notes] + plan.notes
    if notes:
        parts += ["<h2>Notes</h2>", "<ul>", *(f"<li>{escape(n)}</li>" for n in notes), "</ul>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render(plan: pl.Plan, fmt: str) -> str:
    """The plan in one of FORMATS (html draws its plots where matplotlib is installed)."""
    if fmt == "terminal":
        return render_terminal(plan)
    if fmt == "markdown":
        return render_markdown(plan)
    if fmt == "json":
        return json.dumps(to_dict(plan), indent=2) + "\n"
    svg, why = None, ""
    if plan.planned:
        from bench.errors import ConfigError

        try:
            svg = plot_svg(plan)
        except ConfigError as exc:
            why = str(exc)
    return render_html(plan, svg, why)
