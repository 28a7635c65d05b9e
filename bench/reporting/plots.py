"""The reports' plots, drawn one way: matplotlib (the ``plots`` extra), imported only when a plot is asked for.

matplotlib rather than SVG built by hand, because it is the one of the two that every plot needs:
`bench report scaling --plot` and `bench report continual --plot` write PNG as well as SVG, and the
continual timeline holds thousands of requests, which it draws as an image inside the SVG so the page
stays small. The leaderboard page's charts (throughput against p99 latency, samples per joule, the
scaling plot, the timelines) are therefore matplotlib's SVG, inlined; without matplotlib the page
says what is missing and keeps its tables, which hold every figure.

Helpers shared by those plots: the install hint, the pyplot module (Agg backend), text safe from
mathtext, an interval drawn as bars whose missing ends run dashed to the plot's edge (never drawn as
an end the record does not have), and a figure as SVG text to inline in a page, with tooltips and
classes put on the artists named by ``gid``.
"""

from __future__ import annotations

from html import escape
from typing import Any, Mapping, Optional

__all__ = ["PLOTS_INSTALL", "available", "require_matplotlib", "pyplot", "text", "Interval", "draw_interval",
           "fix_limits", "draw_open", "svg_text"]

PLOTS_INSTALL = "pip install 'bench[plots]'  (in a checkout: pip install -c constraints.txt -e '.[plots]')"

Interval = tuple[Optional[float], Optional[float]]  # (low, high); None: the record has no end on that side


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def require_matplotlib(key: str = "--plot") -> None:
    """A ConfigError with the install hint when matplotlib, which draws the plots, is missing."""
    from bench.errors import ConfigError

    if not available():
        raise ConfigError(key, None, PLOTS_INSTALL, "needs matplotlib, which is not installed")


def pyplot(key: str = "--plot") -> Any:
    """matplotlib.pyplot on the Agg backend (no display: files only)."""
    require_matplotlib(key)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def text(s: str) -> str:
    """A name from a record as matplotlib text: a ``$`` would start mathtext (and can fail to parse)."""
    return s.replace("$", r"\$")


def draw_interval(ax: Any, at: float, value: float, interval: Optional[Interval], colour: str,
                  vertical: bool = True, log: bool = False, gid: Optional[str] = None) -> list[tuple[float, float, str]]:
    """The interval's known sides as solid lines with a cap, at ``at`` on the other axis (each side's
    line ``gid``-low or -high where ``gid`` is given). Returns the sides without an end, ``(at, value,
    "low"|"high")``, for draw_open once the limits are fixed. On a log axis an end at or below 0 is left
    to draw_open as well (clipped to the edge, solid)."""
    if interval is None:
        return []
    open_sides = []
    for side, end in zip(("low", "high"), interval):
        if end is None or (log and end <= 0):
            open_sides.append((at, value, side if end is None else f"{side}-clipped"))
            continue
        xs, ys = ([at, at], [value, end]) if vertical else ([value, end], [at, at])
        ax.plot(xs, ys, color=colour, linewidth=1.2, solid_capstyle="butt", zorder=2,
                gid=f"{gid}-{side}" if gid else None)
        ax.plot([xs[1]], [ys[1]], marker="_" if vertical else "|", color=colour, markersize=7, zorder=2)
    return open_sides


def fix_limits(ax: Any) -> None:
    """Freeze the axes' limits as autoscaled so far: the open ends drawn next reach the edge."""
    ax.autoscale_view()
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())


def draw_open(ax: Any, at: float, value: float, side: str, colour: str, vertical: bool = True,
              gid: Optional[str] = None) -> None:
    """A side of an interval without an end: dashed from the point to the plot's edge (``*-clipped``:
    an end a log axis cannot show, solid to the edge)."""
    lo, hi = ax.get_ylim() if vertical else ax.get_xlim()
    edge = lo if side.startswith("low") else hi
    xs, ys = ([at, at], [value, edge]) if vertical else ([value, edge], [at, at])
    style = "-" if side.endswith("clipped") else (0, (3, 2))
    ax.plot(xs, ys, color=colour, linewidth=1.2, linestyle=style, gid=gid, zorder=2)


def svg_text(fig: Any, cls: str = "", label: str = "", marks: Optional[Mapping[str, tuple[str, str]]] = None) -> str:
    """The figure as SVG text to inline in an HTML page (then closed): no XML prolog, no metadata, text as
    text (the page's fonts; searchable, and escaped by matplotlib), the root given ``class`` and an
    aria-label, and each group of ``marks`` (gid -> (class, tooltip)) its class and a <title> tooltip,
    the tooltip HTML-escaped here."""
    import io

    import matplotlib
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    try:
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    finally:
        plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype: the page is HTML
    root = "<svg"
    if cls:
        root += f' class="{escape(cls)}"'
    if label:
        root += f' role="img" aria-label="{escape(label)}"'
    svg = root + svg[len("<svg"):]
    for gid, (mark_cls, tooltip) in (marks or {}).items():
        opening = f'<g id="{escape(gid)}">'
        replacement = f'<g id="{escape(gid)}"' + (f' class="{escape(mark_cls)}"' if mark_cls else "") + ">"
        if tooltip:
            replacement += f"<title>{escape(tooltip)}</title>"
        svg = svg.replace(opening, replacement, 1)
    return svg
