"""`bench report scaling`: how throughput, latency and memory scale with the batch size, per
hardware x backend x precision x workload, from the records of a sweep (or any selection).

For each curve: the saturation point (the smallest batch that reaches 95% of the best throughput)
and the best batch within the workload's latency requirement (the highest throughput whose p99
latency per batch stays within latency_tier_ms). Output: a table (terminal or Markdown) and plots
(PNG or SVG, matplotlib, imported only when a plot is asked for; bench.reporting.plots).

The plot: throughput, p50 and p99 latency per batch and peak memory against the batch size, on a
log2 axis labelled with the batch sizes themselves (1, 2, 4, 8); each point with its 95% interval as
bars where the record holds one (an end the record lacks runs dashed to the plot's edge); the
saturation batch of each curve as a dotted vertical line and the latency requirement as a dashed
horizontal one, both named in their panel's legend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.reporting.plots import PLOTS_INSTALL, Interval, require_matplotlib

__all__ = ["Curve", "CurvePoint", "curves", "saturation_batch", "best_within", "render_markdown",
           "render_text", "plot", "plot_svg", "SATURATION_FRACTION", "PLOTS_INSTALL", "require_matplotlib"]

SATURATION_FRACTION = 0.95


@dataclass(frozen=True)
class CurvePoint:
    """One batch size of a curve. The ``*_ci`` fields: the figure's 95% interval (low, high) as its
    record holds it, an end None where the record has none; the field None where the record holds no
    interval for that figure."""

    batch_size: int
    throughput_sps: float
    latency_p50_ms: Optional[float]
    latency_p99_ms: Optional[float]
    peak_memory_mib: Optional[float]
    throughput_ci: Optional[Interval] = None
    latency_p50_ci: Optional[Interval] = None
    latency_p99_ci: Optional[Interval] = None

    def interval(self, attr: str) -> Optional[Interval]:
        """The interval of ``attr`` (throughput_sps, latency_p50_ms, latency_p99_ms); None without one."""
        return _CI_FIELD.get(attr) and getattr(self, _CI_FIELD[attr])


# A figure's interval in a point, and the record's metrics its ends come from.
_CI_FIELD = {"throughput_sps": "throughput_ci", "latency_p50_ms": "latency_p50_ci", "latency_p99_ms": "latency_p99_ci"}
_CI_KEYS = {"throughput_sps": ("throughput_ci_low_sps", "throughput_ci_high_sps"),
            "latency_p50_ms": ("latency_p50_ci_low_ms", "latency_p50_ci_high_ms"),
            "latency_p99_ms": ("latency_p99_ci_low_ms", "latency_p99_ci_high_ms")}


def _number(value: Any) -> Optional[float]:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _interval(metrics: dict[str, Any], attr: str) -> Optional[Interval]:
    """(low, high) where the metrics hold either key (a missing or non-finite end None), else None."""
    low_key, high_key = _CI_KEYS[attr]
    if low_key not in metrics and high_key not in metrics:
        return None
    return _number(metrics.get(low_key)), _number(metrics.get(high_key))


@dataclass
class Curve:
    hardware: str
    backend: str
    precision: str
    workload: str
    scenario: str
    latency_budget_ms: Optional[float]
    points: list[CurvePoint] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)  # (batch, status) of failed points

    @property
    def label(self) -> str:
        return f"{self.workload} | {self.backend} {self.precision} | {self.hardware}"


def saturation_batch(points: Sequence[CurvePoint], fraction: float = SATURATION_FRACTION) -> Optional[int]:
    """The smallest batch whose throughput reaches ``fraction`` of the best."""
    if not points:
        return None
    best = max(p.throughput_sps for p in points)
    return min(p.batch_size for p in points if p.throughput_sps >= fraction * best)


def best_within(points: Sequence[CurvePoint], budget_ms: Optional[float]) -> Optional[CurvePoint]:
    """The highest-throughput point whose p99 latency is within the budget (any, without a budget)."""
    fitting = [p for p in points if budget_ms is None or (p.latency_p99_ms is not None and p.latency_p99_ms <= budget_ms)]
    return max(fitting, key=lambda p: p.throughput_sps) if fitting else None


MAX_PAGE_CURVES = 12  # the leaderboard page's scaling plot: more lines than that cannot be told apart


def curves(records: Sequence[Any]) -> list[Curve]:
    """Group records into curves; the newest record wins where a batch size was measured twice."""
    grouped: dict[tuple[str, ...], Curve] = {}
    newest: dict[tuple[Any, ...], Any] = {}
    for r in sorted(records, key=lambda r: (r.created_at, r.id)):
        key = (str(r.system.get("hardware")), str(r.backend.get("name")), str(r.backend.get("precision")),
               str(r.workload.get("name")), str(r.scenario.get("name")))
        newest[(*key, int(r.workload.get("batch_size") or 0))] = r
        if key not in grouped:
            grouped[key] = Curve(*key, latency_budget_ms=r.workload.get("latency_tier_ms"))
    for (*key, batch), r in sorted(newest.items(), key=lambda kv: kv[0][-1]):
        curve = grouped[tuple(key)]
        m = r.metrics or {}
        if r.status == "ok" and r.valid and m.get("throughput_sps"):
            memory = m.get("peak_device_mib") or m.get("peak_rss_mib")
            curve.points.append(CurvePoint(batch, m["throughput_sps"], m.get("latency_p50_ms"),
                                           m.get("latency_p99_ms"), memory, *(_interval(m, attr) for attr in _CI_KEYS)))
        else:
            curve.failures.append((batch, r.status if r.status != "ok" else "invalid"))
    return [c for c in grouped.values()]


def _row(curve: Curve) -> list[str]:
    sat = saturation_batch(curve.points)
    best = best_within(curve.points, curve.latency_budget_ms)
    budget = f"{curve.latency_budget_ms:g} ms" if curve.latency_budget_ms else "-"
    best_text = f"{best.batch_size} ({best.throughput_sps:.4g}/s)" if best else "none fits"
    fails = ", ".join(f"{b}: {s}" for b, s in curve.failures) or "-"
    return [curve.workload, f"{curve.backend} {curve.precision}", curve.hardware, curve.scenario,
            str(sat) if sat else "-", budget, best_text, fails]


HEADER = ["workload", "backend", "hardware", "scenario", "saturation batch (95%)", "latency budget",
          "best batch within budget", "failed sizes"]
POINT_HEADER = ["batch", "samples/s", "p50 ms", "p99 ms", "peak MiB"]


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4g}"


def render_markdown(all_curves: Sequence[Curve]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(_row(c)) + " |" for c in all_curves]
    for c in all_curves:
        lines += ["", f"**{c.label}** ({c.scenario})", "", "| " + " | ".join(POINT_HEADER) + " |",
                  "|" + " --- |" * len(POINT_HEADER)]
        lines += [f"| {p.batch_size} | {_fmt(p.throughput_sps)} | {_fmt(p.latency_p50_ms)} | {_fmt(p.latency_p99_ms)} "
                  f"| {_fmt(p.peak_memory_mib)} |" for p in c.points]
    return "\n".join(lines)


def render_text(all_curves: Sequence[Curve], stream: Any = None, width: Optional[int] = None,
                plain: Optional[bool] = None) -> None:
    """The curves' table, then each curve's points; fitted to the terminal or, piped, plain."""
    import sys

    from bench.reporting.terminal import Column, Out

    out = Out(stream or sys.stdout, width=width, plain=plain)
    out.table("scaling with batch size", [Column(h, fold=i > 0) for i, h in enumerate(HEADER)],
              [_row(c) for c in all_curves], hint="--format csv shows every column")
    for c in all_curves:
        out.table(f"{c.label} ({c.scenario})", [Column(h, justify="right" if i == 0 else "left")
                                                 for i, h in enumerate(POINT_HEADER)],
                  [[str(p.batch_size), _fmt(p.throughput_sps), _fmt(p.latency_p50_ms), _fmt(p.latency_p99_ms),
                    _fmt(p.peak_memory_mib)] for p in c.points])


def plot(all_curves: Sequence[Curve], path: str | Path) -> Path:
    """Four panels against batch size (log2): throughput, p50, p99 latency, peak memory; PNG or SVG
    by the file's suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _figure(all_curves, path)
    return path


def plot_svg(all_curves: Sequence[Curve]) -> str:
    """The same figure as inline SVG text (text as text, escaped by matplotlib), for the HTML page."""
    from bench.reporting import plots

    fig = _figure(all_curves)
    # The interval bars and their open ends, marked for the page (and its tests) by class.
    marks = {gid: (gid.split("-")[0], "") for gid in (a.get_gid() for a in fig.findobj()) if gid
             and gid.startswith(("ci-", "open-"))}
    return plots.svg_text(fig, cls="scaling-plot", label="throughput, latency and memory against batch size",
                          marks=marks)


def _batch_ticks(ax: Any, sizes: Sequence[int]) -> None:
    """A log2 batch axis labelled with the sizes themselves (1, 2, 4, 8), not 2^0, 2^1: at the measured
    sizes, or at powers of 2 where more than 12 sizes were measured."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter, NullLocator

    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sorted(sizes)) if len(sizes) <= 12 else LogLocator(base=2))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _figure(all_curves: Sequence[Curve], target: Any = None, fmt: Optional[str] = None) -> Any:
    """The four panels; saved to ``target`` (then closed) when given, else the figure returned."""
    from matplotlib.lines import Line2D

    from bench.reporting import plots

    plt = plots.pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    panels = [("throughput_sps", "samples/s"), ("latency_p50_ms", "p50 latency per batch (ms)"),
              ("latency_p99_ms", "p99 latency per batch (ms)"), ("peak_memory_mib", "peak memory (MiB)")]
    sizes = sorted({p.batch_size for c in all_curves for p in c.points if p.batch_size > 0})
    colours = {id(c): f"C{i % 10}" for i, c in enumerate(all_curves)}
    for ax, (attr, title) in zip(axes.flat, panels):
        _batch_ticks(ax, sizes)  # before plotting: limits autoscale in log2 space
        open_sides = []
        own: list[tuple[Any, str]] = []  # this panel's lines that the figure's legend does not name
        for i, c in enumerate(all_curves):
            colour = colours[id(c)]
            pts = [p for p in c.points if getattr(p, attr) is not None and p.batch_size > 0]
            if pts:
                ax.plot([p.batch_size for p in pts], [getattr(p, attr) for p in pts], marker="o", color=colour,
                        label=plots.text(c.label), zorder=3)
            for p in pts:
                gid = f"ci-{attr}-{i}-{p.batch_size}"
                open_sides += [(side, colour) for side in
                               plots.draw_interval(ax, p.batch_size, getattr(p, attr), p.interval(attr), colour, gid=gid)]
            if attr == "throughput_sps" and c.points:
                sat = saturation_batch(c.points)
                if sat and sat > 0:
                    ax.axvline(sat, linestyle=":", linewidth=1.2, color=colour)
                    ax.annotate(f"saturation: batch {sat}", (sat, 1.0), xycoords=("data", "axes fraction"),
                                xytext=(3, -3), textcoords="offset points", rotation=90, va="top", ha="left",
                                fontsize="x-small", color=colour)
            if attr == "latency_p99_ms" and c.latency_budget_ms:
                ax.axhline(c.latency_budget_ms, linestyle="--", linewidth=1, color="grey")
                own.append((Line2D([], [], linestyle="--", linewidth=1, color="grey"),
                            f"latency requirement {c.latency_budget_ms:g} ms"))
        if attr == "throughput_sps" and any(c.points for c in all_curves):
            own.append((Line2D([], [], linestyle=":", linewidth=1.2, color="grey"),
                        f"saturation: the smallest batch reaching {SATURATION_FRACTION:.0%} of the best"))
        if open_sides:
            plots.fix_limits(ax)
            for k, ((at, value, side), colour) in enumerate(open_sides):
                plots.draw_open(ax, at, value, side, colour, gid=f"open-{attr}-{k}")
        if not ax.lines:
            ax.text(0.5, 0.5, "not in these records", transform=ax.transAxes, ha="center", va="center", color="grey")
            if sizes:
                ax.set_xlim(sizes[0] / 1.25, sizes[-1] * 1.25)  # the same batch axis as the other panels
        ax.set_xlabel("batch size")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        own = list({label: (handle, label) for handle, label in own}.values())  # one entry per requirement
        if own:
            ax.legend([h for h, _ in own], [plots.text(label) for _, label in own], loc="best", fontsize="x-small")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    curve_handles = [(h, lab) for h, lab in zip(handles, labels) if not lab.startswith("_")]
    if curve_handles:
        fig.legend([h for h, _ in curve_handles], [lab for _, lab in curve_handles], loc="outside lower center",
                   fontsize="small")
    if target is None:
        return fig
    fig.savefig(target, format=fmt)
    plt.close(fig)
    return None
