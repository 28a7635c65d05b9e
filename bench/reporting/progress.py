"""Progress on stderr: the current work item, its phase and a live estimate of the time left.

On a terminal, rich's live display (two lines redrawn in place, never wider than the terminal, so
nothing stacks): the running item with its phase, and the whole run's bar with the items done and
the time left (the mean of the items finished so far for those to come, and the stopping rule's own
estimate for the one measuring). Each finished item's line is printed above it and stays. Otherwise
(a pipe, a CI log, NO_COLOR, TERM=dumb) plain lines, one per phase change, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO

from bench.fmt import fmt_num
from bench.reporting.terminal import use_plain_output
from bench.results.records import RunRecord

__all__ = ["ProgressDisplay", "use_plain_output"]

PHASES = {
    "build": "building model",
    "reference": "reference outputs",
    "prepare": "preparing backend",
    "first": "first inference",
    "warmup": "warming up",
    "measure": "measuring",
}


class ProgressDisplay:
    def __init__(self, stream: Optional[TextIO] = None, plain: Optional[bool] = None,
                 width: Optional[int] = None) -> None:
        # sys.stderr of now, not of when this module was imported (a test's capture, since closed).
        self.stream = sys.stderr if stream is None else stream
        self.plain = use_plain_output(self.stream) if plain is None else plain
        self.width = width  # the terminal's unless given (tests give it)
        # A terminal line is refreshed twice a second while the worker runs; plain output never wakes.
        self.refresh_s: Optional[float] = None if self.plain else 0.5
        self._label = ""
        self._prefix = ""
        self._phase = ""
        self._info: dict[str, Any] = {}
        self._item_start = 0.0
        self._event_time = 0.0
        self._index = 0
        self._total = 0
        self._durations: list[float] = []  # seconds of each finished item
        self._live: Any = None

    def start_item(self, index: int, total: int, label: str) -> None:
        self._prefix = f"[{index + 1}/{total}]" if total > 0 else f"[{index + 1}]"
        self._label = label
        self._index, self._total = index, total
        self._phase, self._info = "", {}
        self._item_start = time.monotonic()
        if self.plain:
            self._line(f"{self._prefix} {label}: starting worker")
        else:
            self._draw()

    def event(self, message: dict[str, Any]) -> None:
        phase = str(message.get("phase", ""))
        info = message.get("info") or {}
        changed = phase != self._phase
        self._event_time = time.monotonic()
        self._phase, self._info = phase, info
        if self.plain:
            if changed:
                self._line(f"{self._prefix} {self._label}: {PHASES.get(phase, phase)}")
        else:
            self._draw()

    def tick(self) -> None:
        if not self.plain:
            self._draw()

    def _left_s(self) -> Optional[float]:
        """The measuring item's time left, by its stopping rule's own estimate; None before it measures."""
        if self._phase == "measure" and "left_s" in self._info:
            return max(0.0, float(self._info.get("left_s", 0.0)) - (time.monotonic() - self._event_time))
        return None

    def _status(self) -> str:
        text = PHASES.get(self._phase, self._phase or "starting worker")
        info = self._info
        if self._phase == "measure" and "iterations" in info:
            rel = info.get("rel_ci")
            ci = f"±{fmt_num(rel * 100, 2)}%" if rel is not None else "±?"
            left = self._left_s() or 0.0
            text += (f" {info['iterations']} it, median {fmt_num(info.get('median_ms'))} ms {ci}, "
                     f"~{left:.0f} s left")
        return text

    def _run_left(self) -> str:
        """The whole run's time left, in words: the items to come at the mean of those finished, and
        the current one's own estimate (or the mean less its elapsed time)."""
        after = max(0, self._total - self._index - 1)
        if not self._durations:
            left = self._left_s()
            return f", this item ~{left:.0f} s left" if left is not None and not after else ""
        mean = sum(self._durations) / len(self._durations)
        current = self._left_s()
        if current is None:
            current = max(0.0, mean - (time.monotonic() - self._item_start))
        return f", ~{_duration(mean * after + current)} left"

    def _renderable(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        elapsed = time.monotonic() - self._item_start
        status = f": {self._status()} ({elapsed:.0f} s)"
        room = (self._live.console.width if self._live is not None else 80) - len(self._prefix) - len(status) - 1
        label = self._label if len(self._label) <= room else self._label[:max(8, room - 1)] + "…"
        item = Text(f"{self._prefix} {label}{status}", no_wrap=True, overflow="ellipsis")  # the phase stays
        if self._total <= 1:
            return item
        run = Table.grid(padding=(0, 1))
        run.add_column(width=20)
        run.add_column(no_wrap=True, overflow="ellipsis")
        run.add_row(ProgressBar(total=self._total, completed=self._index),
                    Text(f"{self._index} of {self._total} items done{self._run_left()}", no_wrap=True,
                         overflow="ellipsis"))
        return Group(item, run)

    def _draw(self) -> None:
        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, width=self.width, force_terminal=True, highlight=False,
                              soft_wrap=False)
            self._live = Live(console=console, auto_refresh=False, transient=True, redirect_stdout=False,
                              redirect_stderr=False)
            self._live.start()
        self._live.update(self._renderable(), refresh=True)

    def close(self) -> None:
        """Stop the live display (the cursor shown again, the display's lines cleared); idempotent."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _line(self, text: str) -> None:
        if self._live is not None:
            from rich.text import Text

            self._live.console.print(Text(text))
            return
        self.stream.write(text + "\n")
        self.stream.flush()

    def finish_item(self, record: RunRecord) -> None:
        elapsed = time.monotonic() - self._item_start
        self._durations.append(elapsed)
        if record.status == "ok":
            m = record.metrics
            verdict = "ok" if record.valid else "INVALID (outputs differ from the reference)"
            median = f"median {fmt_num(m['latency_p50_ms'])} ms, " if "latency_p50_ms" in m else ""
            self._line(f"{self._prefix} {self._label}: {verdict}, {median}{fmt_num(m['throughput_sps'])} samples/s "
                       f"({elapsed:.0f} s)")
        else:
            error = record.error or {}
            verdict = "OUT OF MEMORY" if record.status == "oom" else "FAILED"
            self._line(f"{self._prefix} {self._label}: {verdict} ({error.get('kind')}): {error.get('message')}")
        if self._total and self._index + 1 >= self._total:
            self.close()


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
