"""Progress on stderr: the current work item, its phase and a live estimate of the time left.

On a terminal, one line redrawn in place (and cleared when the item ends); otherwise (a pipe, a CI
log, NO_COLOR) plain lines, one per phase change, so logs stay readable.
"""

from __future__ import annotations

import os
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
    def __init__(self, stream: Optional[TextIO] = None, plain: Optional[bool] = None) -> None:
        # sys.stderr of now, not of when this module was imported (a test's capture, since closed).
        self.stream = sys.stderr if stream is None else stream
        self.plain = use_plain_output(self.stream) if plain is None else plain
        # A terminal line is refreshed twice a second while the worker runs; plain output never wakes.
        self.refresh_s: Optional[float] = None if self.plain else 0.5
        self._label = ""
        self._prefix = ""
        self._phase = ""
        self._info: dict[str, Any] = {}
        self._item_start = 0.0
        self._event_time = 0.0
        self._width = 0

    def start_item(self, index: int, total: int, label: str) -> None:
        self._prefix = f"[{index + 1}/{total}]" if total > 0 else f"[{index + 1}]"
        self._label = label
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

    def _status(self) -> str:
        text = PHASES.get(self._phase, self._phase or "starting worker")
        info = self._info
        if self._phase == "measure" and "iterations" in info:
            rel = info.get("rel_ci")
            ci = f"±{fmt_num(rel * 100, 2)}%" if rel is not None else "±?"
            left = max(0.0, float(info.get("left_s", 0.0)) - (time.monotonic() - self._event_time))
            text += (f" {info['iterations']} it, median {fmt_num(info.get('median_ms'))} ms {ci}, "
                     f"~{left:.0f} s left")
        return text

    def _draw(self) -> None:
        elapsed = time.monotonic() - self._item_start
        text = f"{self._prefix} {self._label}: {self._status()} ({elapsed:.0f} s)"
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def _clear(self) -> None:
        if not self.plain and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def finish_item(self, record: RunRecord) -> None:
        self._clear()
        elapsed = time.monotonic() - self._item_start
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
