"""The progress display: on a terminal, rich's live lines never wider than the terminal (nothing
stacks), the finished items' lines kept above, the whole run's items done and time left, the cursor
shown again at the end; piped, plain lines, one per phase change."""

from __future__ import annotations

import io
import re

from bench.reporting.progress import ProgressDisplay
from tests.recordfactory import make_record

LABEL = "padim_wide_resnet50_with_a_long_name b=1 latency"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _run(display: ProgressDisplay, items: int = 3) -> None:
    for i in range(items):
        display.start_item(i, items, f"{LABEL} #{i}")
        display.event({"phase": "build"})
        display.event({"phase": "measure", "info": {"iterations": 120, "rel_ci": 0.004, "median_ms": 1.5,
                                                    "left_s": 7.0}})
        display.tick()
        display.finish_item(make_record(seed=i) if i != 1 else make_record(status="failed"))


def test_on_a_terminal_the_lines_fit_and_the_finished_ones_stay():
    stream = io.StringIO()
    display = ProgressDisplay(stream, plain=False, width=60)
    _run(display)
    raw = stream.getvalue()
    lines = [line for line in re.split(r"[\r\n]", ANSI.sub("", raw)) if line.strip()]
    live = [line for line in lines if line.startswith("[") and "measuring" in line]
    assert live and all(len(line) <= 60 for line in live)  # the redrawn lines are cut to the width
    assert all("measuring 120 it" in line for line in live)  # the label gives way, the phase stays
    assert any("of 3 items done, ~" in line for line in lines)  # the run's time left, once an item is done
    text = re.sub(r"\s+", " ", ANSI.sub("", raw))  # a long line wraps on the terminal
    assert "#0: ok, median" in text and "#1: FAILED" in text and "#2: ok" in text
    assert raw.rindex("\x1b[?25h") > raw.rindex("\x1b[?25l")  # the cursor is shown again


def test_closing_early_restores_the_terminal():
    stream = io.StringIO()
    display = ProgressDisplay(stream, plain=False, width=80)
    display.start_item(0, 5, LABEL)
    display.close()
    display.close()  # idempotent
    raw = stream.getvalue()
    assert raw.rindex("\x1b[?25h") > raw.rindex("\x1b[?25l")


def test_piped_one_plain_line_per_phase():
    stream = io.StringIO()
    _run(ProgressDisplay(stream, plain=True), items=2)
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[:3] == [f"[1/2] {LABEL} #0: starting worker", f"[1/2] {LABEL} #0: building model",
                         f"[1/2] {LABEL} #0: measuring"]
    assert lines[3].startswith(f"[1/2] {LABEL} #0: ok, median") and lines[-1].startswith(f"[2/2] {LABEL} #1: FAILED")
