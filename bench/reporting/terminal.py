"""Text that fits where it is read: every table and line a report prints goes through an Out.

On a terminal (rich draws it): a table fits the terminal's width. A column that may, and whose cells are
all the same (every row's scenario is latency), moves into the title. Then its optional columns leave (a
record's id, its warnings), in the order the table gives, until it fits as it is; if it still does not,
the columns whose cells may wrap (an interval, a list of notes) fold at spaces, the widest first; if even
that is too wide, the other columns that may leave do (figures not ranked by), never the ones that name
a row (rank, hardware, backend, workload) or the figure it is ranked by. A line under the table names
the columns left out. A name is never cut. A table that cannot fit even so is shown expanded, each row
a block of "heading  value" lines (as psql's expanded display), with every column. Lines of text wrap at spaces.

Piped, in a CI log, or with NO_COLOR / TERM=dumb: one line per row at its natural width, the columns
aligned, no padding after the last one, nothing wrapped, so that `grep`, `cut` and a log viewer read
it as it is. Either way the text is the same; only its layout differs.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from typing import Optional, Sequence, TextIO

from bench.fmt import terminal_width

__all__ = ["Column", "Out", "use_plain_output", "terminal_width"]


def use_plain_output(stream: TextIO) -> bool:
    """Plain text (no redrawing, no colour, natural widths): not a terminal, or NO_COLOR / TERM=dumb."""
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb" or not stream.isatty()


@dataclass(frozen=True)
class Column:
    """A table's column. ``drop``: when the table is too wide, columns with the highest drop leave first;
    0 never leaves. ``optional``: it leaves before any column folds. ``fold``: its cells may wrap at
    spaces (else a cell keeps its lines). ``hoist``: on a terminal, a column whose cells are all the same
    moves into the title ("scenario latency"), leaving its width to the others."""
    heading: str
    justify: str = "left"
    drop: int = 0
    fold: bool = False
    optional: bool = False
    hoist: bool = False


_GAP = 2  # spaces between plain columns


def _words_width(text: str) -> int:
    return max((len(w) for line in text.splitlines() for w in line.split(" ")), default=0)


def _lines_width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def _fitted(kept: Sequence[int], columns: Sequence[Column], mins: Sequence[int], naturals: Sequence[int],
            room: int) -> dict[int, int]:
    """Widths of the ``kept`` columns within ``room`` characters: natural ones where they fit, else the
    folding columns cut down to one level (the widest fold most), none below its longest word."""
    widths = {i: naturals[i] for i in kept}
    fold = [i for i in kept if columns[i].fold]
    over = sum(widths.values()) - room
    if over <= 0 or not fold:
        return widths
    fixed = sum(naturals[i] for i in kept if not columns[i].fold)
    level = max(naturals[i] for i in fold)
    while level > 0 and fixed + sum(max(mins[i], min(naturals[i], level)) for i in fold) > room:
        level -= 1
    for i in fold:
        widths[i] = max(mins[i], min(naturals[i], level))
    return widths


class Out:
    """Where a report writes: ``stream``, plain or drawn (use_plain_output decides unless ``plain`` is
    given) at ``width`` columns (the terminal's unless given; tests give it)."""

    def __init__(self, stream: TextIO, width: Optional[int] = None, plain: Optional[bool] = None) -> None:
        self.stream = stream
        self.plain = use_plain_output(stream) if plain is None else plain
        self.width = None if self.plain else (width or terminal_width())
        self._console = None

    @property
    def console(self):  # noqa: ANN201 - rich's Console, made when first drawn
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, width=self.width, no_color=True, highlight=False,
                                    soft_wrap=False, force_terminal=False, force_jupyter=False)
        return self._console

    def line(self, text: str = "", hang: Optional[int] = None) -> None:
        """A line of text: on a terminal wrapped at spaces to its width, the following lines indented as
        the first (or by ``hang``); a word longer than the width is kept whole. Plain: as it is."""
        if self.plain or len(text) <= (self.width or 0):
            self.stream.write(text + "\n")
            return
        indent = len(text) - len(text.lstrip(" "))
        lines = textwrap.wrap(text[indent:], width=max(20, self.width - indent), initial_indent=" " * indent,
                              subsequent_indent=" " * (indent if hang is None else hang), break_long_words=False,
                              break_on_hyphens=False) or [""]
        self.stream.write("\n".join(lines) + "\n")

    def table(self, title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]],
              hint: str = "--format csv shows every column") -> list[str]:
        """The table; returns the headings left out to fit (already named under it)."""
        if self.plain:
            self._plain_table(title, columns, rows)
            return []
        hoisted = [i for i, c in enumerate(columns) if c.hoist and rows and len({r[i] for r in rows}) == 1]
        if hoisted:
            title += "; " + ", ".join(f"{columns[i].heading} {rows[0][i]}" for i in hoisted)
        kept = [i for i in range(len(columns)) if i not in hoisted]
        mins = [max(_words_width(c.heading) if c.fold else len(c.heading),
                    max(((_words_width(r[i]) if c.fold else _lines_width(r[i])) for r in rows), default=0))
                for i, c in enumerate(columns)]
        naturals = [max(len(c.heading), max((_lines_width(r[i]) for r in rows), default=0))
                    for i, c in enumerate(columns)]

        def need(widths: Sequence[int]) -> int:  # rich's SIMPLE_HEAD: an edge, padding and a rule per column
            return sum(widths[i] + 3 for i in kept) + 1

        order = sorted((i for i in kept if columns[i].drop or columns[i].optional),  # optional ones first
                       key=lambda i: (not columns[i].optional, -columns[i].drop, -i))
        while need(naturals) > self.width and order and columns[order[0]].optional:
            kept.remove(order.pop(0))
        while need(mins) > self.width and order:
            kept.remove(order.pop(0))
        if need(mins) > self.width:  # too narrow even so: every column, a row a block
            self._expanded(title, columns, rows)
            return []
        widths = _fitted(kept, columns, mins, naturals, self.width - need([0] * len(columns)))
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(box=box.SIMPLE_HEAD, title=Text(title), title_justify="left", expand=False)
        for i in kept:
            c = columns[i]
            table.add_column(c.heading, justify=c.justify, no_wrap=not c.fold, overflow="fold", width=widths[i])
        for r in rows:
            table.add_row(*(Text(r[i]) for i in kept))
        self.console.print(table)
        left = [columns[i].heading for i in range(len(columns)) if i not in kept and i not in hoisted]
        if left:
            self.line(f"  (not shown at {self.width} columns: {', '.join(left)}; a wider terminal or {hint})")
        return left

    def _expanded(self, title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        self.line(title)
        label = max(len(c.heading) for c in columns)
        for n, r in enumerate(rows, 1):
            self.line(f"  -[ row {n} ]" + "-" * max(0, min(self.width or 40, 40) - 12 - len(str(n))))
            for c, value in zip(columns, r):
                for k, piece in enumerate(value.split("\n") if value else []):
                    self.line(f"  {(c.heading if k == 0 else '').ljust(label)}  {piece}", hang=label + 4)

    def _plain_table(self, title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        cells = [[" ".join(cell.split("\n")) for cell in r] for r in rows]
        headings = [c.heading for c in columns]
        widths = [max(len(h), max((len(r[i]) for r in cells), default=0)) for i, h in enumerate(headings)]

        def line(values: Sequence[str]) -> str:
            parts = [v.rjust(widths[i]) if columns[i].justify == "right" else v.ljust(widths[i])
                     for i, v in enumerate(values)]
            return ("  " + (" " * _GAP).join(parts)).rstrip()

        out = [title, line(headings), line(["-" * w for w in widths]), *(line(r) for r in cells)]
        self.stream.write("\n".join(out) + "\n")
