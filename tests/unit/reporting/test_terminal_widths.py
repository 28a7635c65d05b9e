"""Every table fits the terminal it is drawn on (80, 120 and 200 columns, rendered at a fixed width), no
name is cut, a column left out is named under its table, and piped output is one line per row at its
natural width with nothing after the last column (bench.reporting.terminal)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from bench.reporting import compare as cmp
from bench.reporting import leaderboard as lb
from bench.reporting import leaderboard_render as lr
from bench.reporting.summary import summary
from bench.reporting.terminal import Column, Out
from tests.recordfactory import make_continual_record, make_record

WIDTHS = (80, 120, 200)
NAMES = ("AMD EPYC 9654 96-Core Processor", "NVIDIA H200 141GB HBM3e", "efficientad_s", "padim_resnet18")


def _records() -> list:
    out = []
    for i, hw in enumerate(NAMES[:2]):
        for j, (backend, precision) in enumerate((("onnxruntime", "fp32"), ("openvino", "int8"), ("cpu", "fp16"))):
            out.append(make_record(hardware=hw, backend=backend, precision=precision, workload=NAMES[2 + i % 2],
                                   median_ms=1.0 + i + j / 10, seed=i * 3 + j, warnings=["outliers", "foreign_cpu"],
                                   created_at=f"2026-12-0{1 + i}T0{j}:00:00+00:00"))
    out.append(make_record(hardware=NAMES[0], workload=NAMES[2], scenario="latency", batch_size=1, n=50, seed=9,
                           metrics={"converged": False}))
    return out


def _check(text: str, width: int, must_show: tuple[str, ...]) -> None:
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width, [line for line in lines if len(line) > width][:2]
    assert not re.search(r"\S…", text)  # nothing cut with an ellipsis (" … " is a range)
    for name in must_show:
        assert any(name in line for line in lines), f"{name!r} not whole on one line"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_leaderboard_fits_every_width_and_names_what_it_leaves_out(width):
    board = lb.build(_records(), None, {}, source="sqlite:///results/bench.db")
    stream = io.StringIO()
    lr.render_terminal(board, stream, width=width, plain=False)
    text = stream.getvalue()
    _check(text, width, (*NAMES, "onnxruntime", "openvino", "int8"))
    assert "ranked by throughput_sps" in text.replace("\n", " ")
    joined = " ".join(line.strip() for line in text.splitlines())  # a long line wraps
    left_out = [part.split(")")[0] for part in joined.split(f"(not shown at {width} columns: ")[1:]]
    if width == 200:
        assert not any("samples/s" in part for part in left_out)
    if width == 80:
        assert left_out and all("record" in part and "warnings" in part for part in left_out)
        assert "samples/s [95%" in text  # the ranked figure stays, folded


@pytest.mark.parametrize("width", WIDTHS)
def test_the_run_summary_fits_every_width(width):
    records = _records()[:3] + [make_continual_record("within")]
    stream = io.StringIO()
    summary([(r, Path("results/records/x.json")) for r in records], "sqlite:///results/bench.db", stream,
            width=width, plain=False)
    text = stream.getvalue()
    _check(text, width, (NAMES[2], "onnxruntime", "openvino", "int8"))
    assert "warning [1] outliers" in text
    if width >= 200:
        assert "not shown at" not in text.split("warning [1]")[0]
    else:
        assert "iterations" in text.split("warning [1]")[0].split("not shown at")[-1]


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_fits_every_width(width):
    base = [r for r in _records() if r.backend["name"] == "onnxruntime"]
    cand = [r for r in _records() if r.backend["name"] == "openvino"]
    result = cmp.compare(base, cand, ["backend", "precision"], seed=0, resamples=200)
    stream = io.StringIO()
    cmp.render(result, "backend=onnxruntime", "backend=openvino", stream, width=width, plain=False)
    _check(stream.getvalue(), width, (NAMES[2], NAMES[3], "ratio"))


def test_piped_tables_are_one_line_a_row_at_natural_width_with_nothing_trailing():
    board = lb.build(_records(), None, {}, source="s")
    stream = io.StringIO()
    lr.render_terminal(board, stream, plain=True)
    lines = stream.getvalue().splitlines()
    assert all(line == line.rstrip() for line in lines)
    rows = [line for line in lines if NAMES[0] in line and ("onnxruntime" in line or "openvino" in line)]
    assert rows and all("[95% CI]" not in r for r in rows)
    header = next(line for line in lines if line.lstrip().startswith("rank"))
    assert "record" in header and "warnings" in header  # every column, on one line
    # the columns line up: every row's hardware starts where its heading does
    assert all(r.index(NAMES[0]) == header.index("hardware") for r in rows if r.index(NAMES[0]) < 40)
    long_note = max(lines, key=len)
    assert len(long_note) > 200  # notes are not wrapped when piped


def test_a_table_too_wide_even_without_its_optional_columns_is_printed_plain_never_cut():
    out_stream = io.StringIO()
    out = Out(out_stream, width=30, plain=False)
    left = out.table("t", [Column("name"), Column("figure", fold=True)], [["a-very-long-unbreakable-name-x", "1 [0, 2]"]])
    assert left == []
    assert "a-very-long-unbreakable-name-x" in out_stream.getvalue()


def test_lines_wrap_at_spaces_on_a_terminal_and_keep_their_indent():
    stream = io.StringIO()
    Out(stream, width=40, plain=False).line("  note: " + "word " * 20)
    lines = stream.getvalue().splitlines()
    assert len(lines) > 2 and all(len(line) <= 40 and line.startswith("  ") for line in lines)
    assert " ".join(x.strip() for x in lines).split() == ("note: " + "word " * 20).split()


def test_columns_every_row_shares_move_into_the_title_on_a_terminal():
    records = [make_record(workload=w, scenario="latency", batch_size=1, seed=i) for i, w in enumerate(NAMES[2:])]
    stream = io.StringIO()
    summary([(r, Path("x.json")) for r in records], "sqlite:///r/bench.db", stream, width=80, plain=False)
    text = stream.getvalue()
    assert "backend cpu fp32, batch 1, scenario latency" in re.sub(r"\s+", " ", text)
    assert "-[ row" not in text and "p99 ms [CI]" in text  # a table, with its p99, at 80 columns
    _check(text, 80, NAMES[2:])
    piped = io.StringIO()
    summary([(r, Path("x.json")) for r in records], "sqlite:///r/bench.db", piped, plain=True)
    assert "scenario" in piped.getvalue().splitlines()[1]  # piped: every column, as it is
