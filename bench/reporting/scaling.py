"""`bench report scaling`: how throughput, latency and memory scale with the batch size, per
hardware x backend x precision x workload, from the records of a sweep (or any selection).

For each curve: the saturation point (the smallest batch that reaches 95% of the best throughput)
and the best batch within the workload's latency requirement (the highest throughput whose p99
latency per batch stays within latency_tier_ms). Output: a table (terminal or Markdown) and plots
(PNG or SVG, matplotlib, imported only when a plot is asked for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

__all__ = ["Curve", "CurvePoint", "curves", "saturation_batch", "best_within", "render_markdown",
           "render_text", "plot", "plot_svg", "SATURATION_FRACTION"]

SATURATION_FRACTION = 0.95


@dataclass(frozen=True)
class CurvePoint:
    batch_size: int
    throughput_sps: float
    latency_p50_ms: Optional[float]
    latency_p99_ms: Optional[float]
    peak_memory_mib: Optional[float]


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
                                           m.get("latency_p99_ms"), memory))
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
    """The same figure as inline SVG text (matplotlib escapes the labels), for the HTML page."""
    import io

    buffer = io.StringIO()
    _figure(all_curves, buffer, fmt="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: the page is HTML


PLOTS_INSTALL = "pip install 'bench[plots]'  (in a checkout: pip install -c constraints.txt -e '.[plots]')"


def require_matplotlib(key: str = "--plot") -> None:
    """A ConfigError with the install hint when matplotlib, which draws the plots, is missing."""
    import importlib.util

    from bench.errors import ConfigError

    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError(key, None, PLOTS_INSTALL, "needs matplotlib, which is not installed")


def _figure(all_curves: Sequence[Curve], target: Any, fmt: Optional[str] = None) -> None:
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    panels = [("throughput_sps", "samples/s"), ("latency_p50_ms", "p50 latency per batch (ms)"),
              ("latency_p99_ms", "p99 latency per batch (ms)"), ("peak_memory_mib", "peak memory (MiB)")]
    for ax, (attr, title) in zip(axes.flat, panels):
        for c in all_curves:
            xs = [p.batch_size for p in c.points if getattr(p, attr) is not None]
            ys = [getattr(p, attr) for p in c.points if getattr(p, attr) is not None]
            if xs:
                ax.plot(xs, ys, marker="o", label=c.label)
            if attr == "throughput_sps" and c.points:
                sat = saturation_batch(c.points)
                ax.axvline(sat, linestyle=":", linewidth=1, color=ax.lines[-1].get_color() if ax.lines else None)
            if attr == "latency_p99_ms" and c.latency_budget_ms:
                ax.axhline(c.latency_budget_ms, linestyle="--", linewidth=1, color="grey")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", fontsize="small")
    fig.savefig(target, format=fmt)
    plt.close(fig)
