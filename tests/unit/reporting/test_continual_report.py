"""scenario=continual's reports: the phase table and the verdict (within budget, out of budget, no
detection, a failed adaptation, one that finished after serving, a false alarm), the end-of-run
summary's block, `bench report continual` and its errors, the timeline plot, the leaderboard's
ranking by time to adapt per load, and the HTML page's section. Records are simulated timelines
(tests/recordfactory.py: run_timeline on a simulated clock, continual_metrics), no worker."""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.reporting import continual
from bench.reporting import leaderboard_render as lr
from bench.reporting.html import render_html
from bench.reporting.leaderboard import build
from bench.reporting.summary import summary
from bench.results.metrics import ADAPT_STAGES
from bench.results.store import ResultsStore
from tests.recordfactory import make_continual_record, make_record

HEAD = "serves within budget (p99 <= 20 ms) while adapting: "


def test_every_adaptation_stage_has_a_label():
    assert tuple(continual.STAGE_LABELS) == ADAPT_STAGES


def test_the_phase_table_of_an_adaptation_within_budget():
    record = make_continual_record("within")
    rows = continual.phase_rows(record)
    assert [r[0] for r in rows] == ["steady", "drifted", "adapting", "adapted"]
    steady, drifted, adapting, adapted = rows
    assert steady[1:3] == ["0-5.000", "100"] and adapting[1:3] == ["5.450-8.450", "60"]
    assert steady[3] == "10.00 [10.00, 10.00]"
    # 60 requests cannot bound a p99: the cell says so, as the summary's own intervals do.
    assert adapting[4] == "15.00 [15.00, no upper bound: 60 requests, 368 bound it]"
    assert adapting[5:8] == ["0", "0", "v0"] and adapted[7] == "v1" and steady[7] == "v0"
    assert steady[8] == "1 (reference)"
    assert adapting[8] == "1.500 [no interval: steady and adapting p99 unbounded]"
    v = continual.verdict(record)
    assert (v.kind, v.ranked) == ("yes", True)
    assert v.line == HEAD + "yes (0 of 60 requests late; none allowed: a p99 of fewer than 100 requests allows none)"


def test_the_time_to_adapt_split_into_its_stages():
    rows = continual.stage_rows(make_continual_record("within"))
    assert rows[0] == ["detection delay (drift to detection)", "0.4500", "13.0%"]
    assert ["  training", "1.500", "43.5%"] in rows
    assert [r[0].strip() for r in rows[1:-2]] == [continual.STAGE_LABELS[k] for k in ADAPT_STAGES]
    assert rows[-2] == ["adaptation (detection to swap)", "3.000", "87.0%"]
    assert rows[-1] == ["time to adapt (drift to swap)", "3.450 (one run)", "100%"]


def test_pooled_time_to_adapt_shows_its_prediction_interval():
    record = make_continual_record("within", metrics={"repeats": 3, "ci_scope": "repeats", "time_to_adapt_ci_low_s": 3.1,
                                                      "time_to_adapt_ci_high_s": 3.9})
    assert continual.stage_rows(record)[-1][1] == "3.450 [3.100, 3.900] (95% prediction interval over 3 processes)"


def test_verdict_out_of_budget():
    record = make_continual_record("out")
    assert continual.phase_rows(record)[2][5] == "60"  # every request while adapting late
    v = continual.verdict(record)
    assert v.line == HEAD + "no (60 of 60 requests late; none allowed: a p99 of fewer than 100 requests allows none)"
    assert (v.kind, v.short, v.ranked) == ("no", "no", True)


def test_verdict_when_the_drift_is_not_detected():
    record = make_continual_record("no_detection")
    assert [r[0] for r in continual.phase_rows(record)] == ["steady", "drifted"]
    assert continual.stage_rows(record) == []
    v = continual.verdict(record)
    assert v.line == HEAD + ("not tested: the drift at 5.000 s was not detected before serving ended (20.00 s of "
                             "arrivals), so no adaptation started")
    assert (v.kind, v.ranked) == ("no_detection", False)


def test_verdict_when_the_adapted_model_fails_its_parity_check():
    record = make_continual_record("parity_failed")
    rows = continual.phase_rows(record)
    assert [r[0] for r in rows] == ["steady", "drifted", "adapting"] and rows[2][7] == "v0"
    v = continual.verdict(record)
    assert v.line == HEAD + ("not tested: the adaptation failed 3.000 s after detection: the adapted model failed its "
                             "parity check: (max relative error 0.31); v0 served to the end")
    assert (v.kind, v.ranked) == ("failed", False)
    stages = continual.stage_rows(record)
    assert ["  parity check", "0.1000", "-"] in stages and not any("swap" in r[0] for r in stages)
    assert "adaptation failed at 8.450 s" in continual.facts(record)[0]


def test_verdict_when_the_adaptation_finishes_after_serving_ended():
    record = make_continual_record("after_serving")
    assert [r[0] for r in continual.phase_rows(record)] == ["steady", "drifted", "adapting"]
    v = continual.verdict(record)
    assert v.line == HEAD + ("not tested: the adaptation finished only after serving ended (swap at 20.96 s, serving "
                             "ended at 19.96 s)")
    assert (v.kind, v.ranked) == ("after_serving", False)


def test_a_false_alarm_is_said_beside_the_answer():
    record = make_continual_record("false_alarm")
    v = continual.verdict(record)
    assert v.kind == "false_alarm" and not v.ranked
    assert v.line.endswith("; but the detector fired at 3.000 s, before the drift at 5.000 s (a false alarm)")
    assert continual.stage_rows(record)[0] == ["detection before the drift (a false alarm)", "-2.000", "-"]


def test_facts_training_energy_memory():
    record = make_continual_record("within", metrics={"energy_per_adaptation_j": 120.0,
                                                      "energy_per_adaptation_extra_j": 45.5})
    facts = continual.facts(record)
    assert facts[0] == ("timeline: drift at 5.000 s, detected at 5.450 s (4 checks, p = 1e-06), adapted model "
                        "swapped in at 8.450 s; 20.00 s of arrivals")
    assert "training: 16.00 samples/s beside serving, 48.00 alone: 3.00 times slower beside serving" in facts
    assert ("energy per adaptation: 120.0 J (detection to swap, serving included); 45.50 J beyond steady serving's "
            "power") in facts
    assert "peak memory (resident): server 250.0 MiB, trainer 300.0 MiB" in facts
    no_sensor = continual.facts(make_continual_record("within"))
    assert "energy per adaptation: not measured (no power sensor here)" in no_sensor


def test_the_summary_adds_the_block_under_its_table_for_continual_records_only():
    other = make_record(scenario="throughput")
    stream = io.StringIO()
    summary([(other, Path("r/a.json")), (make_continual_record("out"), Path("r/b.json"))], "sqlite:///x", stream)
    out = stream.getvalue()
    assert out.count("continual [") == 1 and "continual [2] tiny | onnxruntime cpu fp32 | AMD EPYC x2 | 20 " in out
    assert "part of the time to adapt" in out and "p99 / steady [95% CI]" in out
    assert HEAD + "no (60 of 60" in out
    alone = io.StringIO()
    summary([(other, Path("r/a.json"))], "sqlite:///x", alone)
    assert "continual" not in alone.getvalue() and "phase" not in alone.getvalue()


def test_markdown_block():
    text = continual.render_markdown([make_continual_record("no_detection")])
    assert "| phase | span s | requests |" in text and "| drifted | 5.000-20.00 | 300 |" in text
    assert "part of the time to adapt" not in text
    assert "**serves within budget (p99 &lt;= 20 ms) while adapting: not tested: the drift" in text


# ---------------------------------------------------------------- bench report continual


@pytest.fixture
def store_dir(tmp_path):
    store = ResultsStore(tmp_path / "results")
    store.write(make_continual_record("within", record_id="aaaaaaaa" + "0" * 24))
    store.write(make_continual_record("parity_failed", record_id="bbbbbbbb" + "0" * 24))
    store.write(make_record(scenario="throughput", tag="tp"))
    store.close()
    return f"results.dir={tmp_path / 'results'}"


def test_report_continual_prints_each_continual_record(store_dir, capsys):
    assert main(["report", "continual", store_dir]) == 0
    out = capsys.readouterr().out
    assert out.count("continual aaaaaaaa: ") == 1 and out.count("continual bbbbbbbb: ") == 1
    assert HEAD + "yes (0 of 60" in out and HEAD + "not tested: the adaptation failed" in out
    assert main(["report", "continual", store_dir, "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("# bench report continual\n")


@pytest.mark.parametrize("args, message", [
    (["scenario=throughput"], "bench report continual: the selection scenario=throughput matches records of "
                              "scenario throughput only, no completed scenario=continual record"),
    (["tag=nosuch"], "the selection tag=nosuch matches no record"),
    (["nosuch=1"], "nosuch='1' is not a selection key"),
    (["--format", "html"], "--format='html' is not a report format: use terminal or markdown"),
    (["--plot", "t.txt"], "--plot='t.txt' is not a PNG or SVG file name"),
    (["--nosuch"], "--nosuch is not an option of `bench report continual`"),
])
def test_report_continual_bad_input_is_one_line_and_exit_2(store_dir, args, message, capsys):
    assert main(["report", "continual", store_dir, *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("bench: error: ") and message in captured.err


def test_an_unknown_report_names_both(capsys):
    assert main(["report", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bench report scaling" in err and "bench report continual" in err


def test_report_help_lists_continual(capsys):
    assert main(["report", "--help"]) == 0
    out = capsys.readouterr().out
    assert "bench report scaling" in out and "bench report continual [KEY=VALUE...]" in out


def test_the_plot_without_matplotlib_is_one_line_naming_the_extra(store_dir, monkeypatch, tmp_path, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["report", "continual", store_dir, "--plot", str(tmp_path / "t.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--plot needs matplotlib, which is not installed: pip install 'bench[plots]'" in err
    assert not (tmp_path / "t.png").exists()


def test_the_timeline_plot_is_written_one_file_per_record(store_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["report", "continual", store_dir, "id=aaaaaaaa" + "0" * 24, "--plot", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["report", "continual", store_dir, "--plot", str(tmp_path / "t.svg")]) == 0
    err = capsys.readouterr().err
    written = sorted(p.name for p in tmp_path.glob("t-*.svg"))
    assert written == ["t-aaaaaaaa.svg", "t-bbbbbbbb.svg"]
    assert f"plot written to {tmp_path / 't-aaaaaaaa.svg'}" in err
    svg = (tmp_path / "t-bbbbbbbb.svg").read_text()
    for text in ("steady", "adapting", "drift at 5.000 s", "detection at 5.450 s", "adaptation failed at 8.450 s",
                 "requirement p99 &lt;= 20 ms", "v0 (original): 400 requests", "latency (ms, log scale)"):
        assert text in svg, text


def test_dropped_requests_and_both_versions_are_drawn():
    pytest.importorskip("matplotlib")
    record = make_continual_record("within")
    timeline = record.raw["continual"]["runs"][0]["timeline"]
    timeline["serve"]["extra"]["unserved"] = [390, 391]
    for i in (390, 391):
        timeline["versions"][i] = -1
    svg = continual.timeline_svg(record)
    assert svg.startswith("<svg") and "v1 (adapted): 229 requests" in svg and "swap at 8.450 s" in svg
    assert "dropped: 2 (latency censored at the stop: a lower bound)" in svg


# ---------------------------------------------------------------- the leaderboard and its page


def _continual_board():
    records = [
        make_continual_record("out", hardware="box-a", adapt_s=5.0),
        make_continual_record("within", hardware="box-b"),
        make_continual_record("no_detection", hardware="box-c"),
        make_continual_record("parity_failed", hardware="box-d"),
        make_continual_record("after_serving", hardware="box-e"),
        make_continual_record("within", hardware="box-a", rate_qps=40.0),
        make_record(scenario="throughput", workload="tiny", hardware="box-a"),
    ]
    return build(records)


def test_continual_records_are_ranked_by_time_to_adapt_per_load_never_with_other_scenarios():
    board = _continual_board()
    titles = [g.title for g in board.groups]
    assert titles == ["fake / tiny / continual / batch 1 / 20 requests/s (Poisson)",
                      "fake / tiny / continual / batch 1 / 40 requests/s (Poisson)",
                      "fake / tiny / throughput / batch 8"]
    at20 = board.groups[0]
    assert at20.metric.name == "time_to_adapt_s" and not at20.metric.higher_is_better
    cells = [(r.hardware, r.rank_text, lr.cell(r, "time_to_adapt_s"), r.verdict) for r in at20.rows]
    assert cells == [("box-b", "1", "3.450 (one run)", "yes"),
                     ("box-a", "2", "5.450 (one run)", "no"),
                     ("box-c", "-", "did not adapt: drift not detected", "not tested: drift not detected"),
                     ("box-d", "-", "did not adapt: the adaptation failed", "not tested: adaptation failed"),
                     ("box-e", "-", "15.96 s, after serving ended: not ranked", "not tested: adapted after serving ended")]
    assert "box-d / onnxruntime (cpu) / fp32: not ranked: " + HEAD + "not tested: the adaptation failed" in " ".join(
        at20.notes)
    assert [r.hardware for r in board.groups[1].rows] == ["box-a"]
    assert lr.columns(at20)[4:8] == ["time to adapt s [95% CI]", "serves within budget while adapting",
                                     "p99 adapting / steady [95% CI]", "training slowdown (alone / beside serving)"]
    assert lr.cell(at20.rows[0], "train_slowdown") == "3.000 *"
    assert board.groups[2].metric.name == "throughput_sps"


def test_pooled_times_to_adapt_tie_on_overlapping_intervals():
    pooled = {"repeats": 3, "ci_scope": "repeats"}
    records = [make_continual_record("within", hardware="a", metrics={**pooled, "time_to_adapt_ci_low_s": 3.0,
                                                                      "time_to_adapt_ci_high_s": 4.0}),
               make_continual_record("within", hardware="b", adapt_s=3.3,
                                     metrics={**pooled, "time_to_adapt_ci_low_s": 3.5, "time_to_adapt_ci_high_s": 4.2})]
    (group,) = build(records).groups
    assert [(r.hardware, r.rank_text) for r in group.rows] == [("a", "=1"), ("b", "=1")]
    assert lr.cell(group.rows[0], "time_to_adapt_s") == "3.450 [3.000, 4.000]"


def test_csv_and_markdown_hold_the_verdict_and_the_load():
    board = _continual_board()
    rows = [r for r in csv.DictReader(io.StringIO(lr.render_csv(board))) if r["scenario"] == "continual"]
    assert rows[0]["load"] == "20 requests/s (Poisson)" and rows[0]["serves_within_budget_while_adapting"] == "yes"
    assert rows[0]["time_to_adapt_s_note"] == "one run" and rows[2]["rank"] == ""
    assert rows[2]["time_to_adapt_s_note"] == "did not adapt: drift not detected"
    markdown = lr.render_markdown(board)
    assert "## fake / tiny / continual / batch 1 / 20 requests/s (Poisson)" in markdown
    assert "| 1 | box-b | onnxruntime (cpu) | fp32 | 3.450 (one run) | yes |" in markdown


def test_the_page_holds_a_continual_section_with_the_timeline(monkeypatch):
    pytest.importorskip("matplotlib")
    html = render_html(_continual_board(), generated="2026-12-01T00:00:00+00:00")
    assert html.count('<section class="continual">') == 6
    assert "<th>part of the time to adapt</th>" in html and "<td>adapting</td>" in html
    assert '<p class="verdict yes">' + HEAD.replace("<", "&lt;") + "yes (0 of 60" in html
    assert '<p class="verdict no_detection">' in html
    assert html.count('<figure class="timeline"><svg') == 6
    # self-contained: the plots refer to nothing outside the page
    import re

    assert not re.search(r"""(src|href)\s*=\s*"(?!#|data:)""", html)
    assert not re.search(r"https?://(?!www\.w3\.org/(2000/svg|1999/xlink)\")", html)


def test_the_page_says_the_plot_needs_the_plots_extra_without_matplotlib(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    html = render_html(_continual_board(), generated="2026-12-01T00:00:00+00:00")
    assert html.count("The timeline plot needs the plots extra (matplotlib): pip install &#x27;bench[plots]&#x27;") == 6
    # every plot is matplotlib's: the page says so once for its charts and keeps every table
    assert "<svg" not in html and "The charts are not drawn: they need the plots extra (matplotlib)" in html
    assert html.count('<table class="leaderboard sortable">') == 3


def test_bench_list_measured_keeps_loads_apart():
    from bench.reporting.measured import best_per_workload

    joined, _ = best_per_workload([make_continual_record("within", hardware="a"),
                                   make_continual_record("within", hardware="b", rate_qps=40.0)])
    assert sorted(e["scenario"] for e in joined[("fake", "tiny")]) == [
        "continual at 20 requests/s (Poisson)", "continual at 40 requests/s (Poisson)"]
