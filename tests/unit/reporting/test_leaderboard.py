"""`bench leaderboard`: valid records only, the newest per combination, honest ties, missing energy and
prices shown as such, costs with their intervals, and the four output formats."""

from __future__ import annotations

import csv
import io
import math

import pytest

from bench.reporting import leaderboard as lb
from bench.reporting import leaderboard_render as lr
from bench.cli.main import main
from bench.errors import ConfigError
from bench.reporting.leaderboard import Figure, Price, build, load_prices, overlaps
from bench.results.store import ResultsStore
from tests.recordfactory import make_record

USD = {"AMD EPYC x2": Price("AMD EPYC x2", 0.36, "USD", "test")}


def _fig(value, low, high):
    return Figure(value, low, high)


def test_overlap_is_inclusive_and_a_missing_bound_overlaps_nothing():
    assert overlaps(_fig(10, 9, 11), _fig(8, 7, 9))
    assert not overlaps(_fig(10, 9.5, 11), _fig(8, 7, 9))
    # Under the old rule a missing end was infinite and these tied; a tie must rest on bounds that exist.
    assert not overlaps(_fig(10, None, 11), _fig(1, 0.5, 2))
    assert not overlaps(_fig(10, 9, None), _fig(100, 99, 101))
    assert not overlaps(_fig(10, 9, None), _fig(10, 9, None))


def _row(name, tp, lo, hi):
    record = make_record(hardware=name, raw_samples=[1_000_000, 1_000_000])
    return lb.Row(record, name, "cpu", "cpu", "fp32", {"throughput_sps": _fig(tp, lo, hi)})


def test_ties_share_a_rank_with_the_previous_row_and_ranks_skip_after_them():
    rows = lb.rank_rows([_row("d", 50, 45, 55), _row("a", 100, 95, 105), _row("b", 98, 90, 99),
                         _row("c", 80, 79, 81), _row("e", 78, 60, 80)], lb.METRICS["throughput_sps"])
    assert [(r.hardware, r.rank_text) for r in rows] == [("a", "=1"), ("b", "=1"), ("c", "=3"), ("e", "=3"),
                                                         ("d", "5")]


def test_a_chain_of_overlaps_shares_one_rank():
    # a overlaps b, b overlaps c, a does not overlap c: each row ties with the previous one.
    rows = lb.rank_rows([_row("a", 100, 99, 101), _row("b", 98.5, 97, 99.5), _row("c", 96, 95, 97.5)],
                        lb.METRICS["throughput_sps"])
    assert [r.rank_text for r in rows] == ["=1", "=1", "=1"]


def test_lower_is_better_for_latency_and_cost():
    records = [make_record(hardware="fast", median_ms=0.5, seed=1, scenario="latency", batch_size=1),
               make_record(hardware="slow", median_ms=2.0, seed=2, scenario="latency", batch_size=1)]
    board = build(records)
    (group,) = board.groups
    assert group.metric.name == "latency_p99_ms"  # the latency scenario's default
    assert [r.hardware for r in group.rows] == ["fast", "slow"] and group.rows[0].rank == 1


def test_only_valid_records_are_ranked_the_newest_of_equals_shown_and_that_is_said():
    records = [
        make_record(hardware="AMD EPYC x2", median_ms=1.0, seed=1, created_at="2026-12-01T10:00:00+00:00"),
        make_record(hardware="AMD EPYC x2", median_ms=0.4, seed=2, created_at="2026-12-02T10:00:00+00:00"),
        make_record(hardware="GPU box", median_ms=0.1, seed=3, parity_ok=False),
        make_record(hardware="GPU box", median_ms=0.1, seed=4, status="failed"),
    ]
    board = build(records)
    (group,) = board.groups
    (row,) = group.rows
    assert row.record.id == records[1].id and row.seen == 2
    assert any("1 other record(s) not shown" in n and "best-supported" in n for n in board.notes)
    assert "(best-supported of 2)" in lr.render_markdown(board)
    assert not group.notes  # the newest is the one shown: nothing to explain
    assert any("2 record(s) left out: not valid" in n for n in board.notes)


def test_no_valid_record_is_a_usage_error():
    with pytest.raises(ConfigError, match="none valid"):
        build([make_record(parity_ok=False)])


def test_tables_per_workload_scenario_and_batch():
    records = [make_record(workload="a", batch_size=1, seed=1), make_record(workload="a", batch_size=8, seed=2),
               make_record(workload="b", batch_size=8, seed=3),
               make_record(workload="a", scenario="latency", batch_size=1, seed=4)]
    titles = [g.title for g in build(records).groups]
    assert titles == ["fake / a / latency / batch 1", "fake / a / throughput / batch 1",
                      "fake / a / throughput / batch 8", "fake / b / throughput / batch 8"]


def test_missing_energy_is_listed_as_no_sensor_never_zero_and_not_ranked():
    records = [make_record(hardware="meter", median_ms=1.0, seed=1,
                           metrics={"samples_per_j": 120.0, "samples_per_j_ci_low": 110.0,
                                    "samples_per_j_ci_high": 130.0}),
               make_record(hardware="no meter", median_ms=0.5, seed=2)]
    board = build(records, metric="samples_per_j")
    rows = board.groups[0].rows
    assert [(r.hardware, r.rank) for r in rows] == [("meter", 1), ("no meter", None)]
    assert rows[1].figures["samples_per_j"].value is None
    assert lr.cell(rows[1], "samples_per_j") == "no energy sensor"
    assert lr.cell(rows[0], "samples_per_j") == "120.0 [110.0, 130.0]"
    text = lr.render_csv(board)
    no_meter = next(r for r in csv.DictReader(io.StringIO(text)) if r["hardware"] == "no meter")
    assert no_meter["samples_per_j"] == "" and no_meter["samples_per_j_note"] == "no energy sensor"
    assert no_meter["rank"] == ""


def test_cost_per_million_samples_and_its_interval_from_throughput():
    record = make_record(hardware="AMD EPYC x2", median_ms=1.0, batch_size=8)
    board = build([record], prices=USD)
    row = board.groups[0].rows[0]
    m = record.metrics
    cost = row.figures["cost_per_million_samples"]
    assert math.isclose(cost.value, 0.36 / (m["throughput_sps"] * 3600) * 1e6)
    assert math.isclose(cost.low, 0.36 / (m["throughput_ci_high_sps"] * 3600) * 1e6)
    assert math.isclose(cost.high, 0.36 / (m["throughput_ci_low_sps"] * 3600) * 1e6)
    assert cost.low < cost.value < cost.high
    assert lr.cell(row, "cost_per_million_samples").endswith("USD")


def test_ranking_by_cost_puts_unpriced_hardware_last_and_refuses_mixed_currencies():
    records = [make_record(hardware="AMD EPYC x2", median_ms=1.0, seed=1),
               make_record(hardware="Other", median_ms=0.1, seed=2)]
    board = build(records, metric="cost_per_million_samples", prices=USD)
    assert [(r.hardware, r.rank_text) for r in board.groups[0].rows] == [("AMD EPYC x2", "1"), ("Other", "-")]
    prices = {**USD, "Other": Price("Other", 1.0, "EUR", "test")}
    with pytest.raises(ConfigError, match="USD"):
        build(records, metric="cost_per_million_samples", prices=prices)


def test_price_files(tmp_path):
    (tmp_path / "a.yaml").write_text('hardware: "AMD EPYC x2"\nprice_per_hour: 0.5\ncurrency: USD\n')
    prices = load_prices(tmp_path)
    assert prices["AMD EPYC x2"].price_per_hour == 0.5 and prices["AMD EPYC x2"].currency == "USD"
    (tmp_path / "b.yaml").write_text('hardware: "X"\nprice_per_hour: -1\ncurrency: USD\n')
    with pytest.raises(ConfigError, match="not a positive number"):
        load_prices(tmp_path)


def test_the_shipped_price_files_are_valid():
    for price in load_prices().values():
        assert price.price_per_hour > 0 and price.currency


def test_unknown_metric_is_refused():
    with pytest.raises(ConfigError, match="is not a metric"):
        build([make_record()], metric="speed")


# ---------------------------------------------------------------- the command


@pytest.fixture
def store_dir(tmp_path):
    store = ResultsStore(tmp_path / "results")
    store.write(make_record(hardware="AMD EPYC x2", backend="cpu", median_ms=1.0, seed=1))
    store.write(make_record(hardware="AMD EPYC x2", backend="openvino", median_ms=0.5, seed=2))
    store.write(make_record(hardware="Intel Xeon | x8", backend="openvino", median_ms=0.5, seed=3))
    store.write(make_record(hardware="AMD EPYC x2", backend="cpu", suite="anomaly", workload="padim",
                            median_ms=3.0, seed=4))
    store.close()
    return tmp_path / "results"


def test_leaderboard_terminal(store_dir, capsys):
    assert main(["leaderboard", f"results.dir={store_dir}", "suite=fake"]) == 0
    out = capsys.readouterr().out
    assert f"bench leaderboard: suite=fake from sqlite:///{store_dir}/bench.db" in out
    assert "fake / tiny / throughput / batch 8: ranked by throughput_sps (higher is better)" in out
    assert "padim" not in out
    assert out.count("=1") == 2 and "no energy sensor" in out


def test_leaderboard_filters_and_metric(store_dir, capsys):
    assert main(["leaderboard", f"results.dir={store_dir}", "suite=fake", "backend=openvino",
                 "metric=latency_p99_ms", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["backend"] for r in rows} == {"openvino"} and {r["ranked_by"] for r in rows} == {"latency_p99_ms"}


def test_leaderboard_markdown_escapes_names(store_dir, capsys, tmp_path):
    out_file = tmp_path / "board.md"
    assert main(["leaderboard", f"results.dir={store_dir}", "--format=markdown", "--output", str(out_file)]) == 0
    text = out_file.read_text()
    assert "## fake / tiny / throughput / batch 8" in text and "Intel Xeon \\| x8" in text
    header = next(line for line in text.splitlines() if line.startswith("| rank"))
    assert all(line.count(" | ") == header.count(" | ") for line in text.splitlines()
               if line.startswith("| ") and "---" not in line)


def test_leaderboard_html_to_a_file(store_dir, tmp_path):
    out_file = tmp_path / "board.html"
    assert main(["leaderboard", f"results.dir={store_dir}", "--format", "html", "-o", str(out_file)]) == 0
    html = out_file.read_text()
    # one chart: the three-row table's scatter (no energy figure; padim's table has one row, so no chart)
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 1


BAD = [
    (["metric=speed"], "metric='speed' is not a metric"),
    (["backend=nope"], "matches no record"),
    (["colour=red"], "colour='red' is not a selection key"),
    (["--format", "pdf"], "--format='pdf' is not a leaderboard format"),
    (["--frobnicate"], "is not an option of `bench leaderboard`"),
    (["prices=/nonexistent/prices"], "does not exist"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(store_dir, args, message, capsys):
    before = sorted(p.name for p in store_dir.rglob("*"))
    assert main(["leaderboard", f"results.dir={store_dir}", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("bench: error: ") and message in err, err
    assert sorted(p.name for p in store_dir.rglob("*")) == before


def test_no_results_at_the_location_changes_nothing(tmp_path, capsys):
    assert main(["leaderboard", f"results.dir={tmp_path / 'none'}"]) == 2
    assert "no results at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_server_records_rank_by_their_peak_rate_shown_in_its_own_column(capsys):
    records = [make_record(hardware=h, scenario="server", batch_size=1, seed=i,
                           metrics={"max_qps_at_slo": qps})
               for i, (h, qps) in enumerate((("slow box", 120.0), ("fast box", 340.0)))]
    board = build(records)
    (group,) = board.groups
    assert group.metric.name == "max_qps_at_slo"
    assert [row.hardware for row in group.rows] == ["fast box", "slow box"]
    assert lr.shown(group)[0] == "max_qps_at_slo" and "max qps at SLO [95% CI]" in lr.columns(group)
    lr.render_terminal(board, __import__("sys").stdout)
    out = capsys.readouterr().out
    assert "ranked by max_qps_at_slo (higher is better)" in out and "340.0 *" in out
    rows = list(csv.DictReader(io.StringIO(lr.render_csv(board))))
    assert [r["max_qps_at_slo"] for r in rows] == ["340.0", "120.0"]


def test_a_metric_outside_the_usual_columns_can_rank_and_is_shown():
    board = build([make_record(seed=1), make_record(hardware="other", seed=2, median_ms=2.0)], metric="latency_p50_ms")
    (group,) = board.groups
    assert group.metric.name == "latency_p50_ms" and lr.shown(group)[0] == "latency_p50_ms"
    assert "latency_p50_ms" in lr.render_markdown(board)


def test_fixed_rate_server_records_fall_back_to_p99():
    board = build([make_record(scenario="server", batch_size=1)])
    assert board.groups[0].metric.name == "latency_p99_ms"


# ---------------------------------------------------------------- ties only on bounds that exist


def _tail(base_ms: float, top_ms: float, n: int = 53) -> list[int]:
    """n clock samples: the bulk at base_ms, the two largest at top_ms, so p99 (type 7) is top_ms and
    its distribution-free 95% interval has a lower end (the 51st value) but no upper one (n < 368)."""
    return [int(base_ms * 1e6)] * (n - 2) + [int(top_ms * 1e6)] * 2


def _latency(backend: str, raw: list[int], **kwargs) -> "lb.RunRecord":
    return make_record(hardware="box", backend=backend, scenario="latency", batch_size=1, raw_samples=raw, **kwargs)


def test_unbounded_p99_rows_do_not_tie_and_are_marked():
    # The case of issue 12: p99 from 53 samples each; under the old rule both ranked =1.
    board = build([_latency("cpu", _tail(400.0, 412.9)), _latency("onnxruntime", _tail(100.0, 102.6))])
    (group,) = board.groups
    assert [(r.backend, r.rank_text) for r in group.rows] == [("onnxruntime", "1?"), ("cpu", "2?")]
    assert not any(r.tie for r in group.rows)
    p99 = group.rows[0].figures["latency_p99_ms"]
    assert p99.value == pytest.approx(102.6) and p99.low == pytest.approx(100.0) and p99.high is None
    assert lr.cell(group.rows[0], "latency_p99_ms") == "102.6 [100.0, no upper bound (n=53; 368 bound it)]"
    # one note per unbounded row, under its table, with the samples it has and the samples that bound it
    assert group.notes == [
        "1? box / onnxruntime / fp32: latency_p99_ms 102.6 has no upper bound (n=53; 368 bound it); "
        "ranked by its point estimate alone, tied with no row",
        "2? box / cpu / fp32: latency_p99_ms 412.9 has no upper bound (n=53; 368 bound it); "
        "ranked by its point estimate alone, tied with no row"]
    assert "rank N?" in lr.LEGEND


def test_a_bounded_pair_that_overlaps_still_ties():
    # 400 samples >= 368: p99 has both ends; the same distribution twice overlaps.
    records = [make_record(hardware=h, scenario="latency", batch_size=1, median_ms=1.0, seed=s, spread=0.05)
               for h, s in (("a", 1), ("b", 2))]
    (group,) = build(records).groups
    assert all(r.figures["latency_p99_ms"].bounded for r in group.rows)
    assert [r.rank_text for r in group.rows] == ["=1", "=1"] and not group.notes


def test_the_tie_rule_passes_over_an_unbounded_row():
    # a and c overlap; b between them by point estimate has no lower end: it neither ties nor breaks a and c's tie.
    rows = lb.rank_rows([_row("a", 100, 95, 105), _row("b", 99, None, 101), _row("c", 97, 94, 99),
                         _row("d", 50, 45, 55)], lb.METRICS["throughput_sps"])
    assert [(r.hardware, r.rank_text) for r in rows] == [("a", "=1"), ("b", "2?"), ("c", "=1"), ("d", "4")]


def test_a_figure_without_interval_keeps_its_star_and_ranks_by_point():
    records = [make_record(hardware=h, scenario="server", batch_size=1, seed=i, metrics={"max_qps_at_slo": q})
               for i, (h, q) in enumerate((("x", 100.0), ("y", 100.0), ("z", 90.0)))]
    (group,) = build(records).groups
    assert [r.rank_text for r in group.rows] == ["=1", "=1", "3"]  # equal points tie, as before
    assert lr.cell(group.rows[2], "max_qps_at_slo") == "90.00 *" and not group.notes


def test_the_missing_end_counts_clock_samples_of_several_requests():
    record = _latency("cpu", _tail(3.0, 3.3), block=3)
    (group,) = build([record]).groups
    assert "no upper bound (n=53 samples of 3 requests; 368 bound it)" in lr.cell(group.rows[0], "latency_p99_ms")


def test_a_missing_throughput_end_leaves_the_cost_end_missing_not_zero():
    price = Price("box", 1.0, "USD", "test")
    cost = lb._cost(Figure(100.0, 90.0, None, why="n=3; its blocks vary too much"), price)
    assert cost.low is None and cost.high == pytest.approx(1.0 / (90.0 * 3600) * 1e6) and not cost.bounded
    assert "no lower bound (throughput: n=3" in lr.fmt_figure(cost)


def test_every_format_writes_a_missing_end_in_words():
    board = build([_latency("cpu", _tail(400.0, 412.9)), _latency("onnxruntime", _tail(100.0, 102.6))])
    words = "no upper bound (n=53; 368 bound it)"
    out = io.StringIO()
    lr.render_terminal(board, out)
    text = out.getvalue()
    assert "1?" in text and "2?" in text and "=1" not in text
    assert "  note: 1? box / onnxruntime / fp32: latency_p99_ms 102.6 has no upper bound" in text
    markdown = lr.render_markdown(board)
    assert f"102.6 \\[100.0, {words}\\]" in markdown and "| 1? |" in markdown
    assert "- 2? box / cpu / fp32: latency\\_p99\\_ms 412.9 has no upper bound (n=53; 368 bound it)" in markdown
    rows = list(csv.DictReader(io.StringIO(lr.render_csv(board))))
    assert [(r["rank"], r["rank_text"], r["rank_unbounded"]) for r in rows] == [("1", "1?", "true"), ("2", "2?", "true")]
    assert rows[0]["latency_p99_ms_ci_high"] == "" and rows[0]["latency_p99_ms_note"] == words
    assert rows[0]["rank_note"].startswith("1? box / onnxruntime / fp32: latency_p99_ms 102.6 has no upper bound")
    from bench.reporting.html import render_html

    html = render_html(board, generated="2026-12-01T00:00:00+00:00")
    assert f"102.6 [100.0, {words}]" in html and '<tr class="unbounded">' in html
    assert 'class="note group-note">note: 1? box / onnxruntime' in html
    assert 'class="open"' in html  # the missing end is drawn dashed to the plot's edge
    for rendered in (text, markdown, html):
        assert ", -]" not in rendered and "[-," not in rendered


# ---------------------------------------------------------------- the record each row shows


def _converged(created_at: str, seed: int, **kwargs):
    return make_record(hardware="box", created_at=created_at, seed=seed, **kwargs)


def test_a_newer_unconverged_record_does_not_replace_a_converged_one():
    old = _converged("2026-12-01T10:00:00+00:00", 1, median_ms=1.0)
    new = _converged("2026-12-02T10:00:00+00:00", 2, median_ms=0.5, metrics={"converged": False},
                     warnings=["not_converged"])
    (group,) = build([new, old]).groups
    (row,) = group.rows
    assert row.record.id == old.id and row.seen == 2 and row.converged_text == "yes"
    assert row.record_text.endswith("(best-supported of 2)")
    assert group.notes == [f"box / cpu / fp32: shows {old.id[:8]} (2026-12-01T10:00:00+00:00) rather than the newer "
                           f"{new.id[:8]} (2026-12-02T10:00:00+00:00), which did not converge"]
    # --newest keeps the old behaviour
    (group,) = build([new, old], newest=True).groups
    (row,) = group.rows
    assert row.record.id == new.id and row.record_text.endswith("(newest of 2)") and not group.notes
    assert row.converged_text == "no"


def test_a_repeats_record_beats_a_single_process_one():
    repeated = _converged("2026-12-01T10:00:00+00:00", 1, repeats=[1.0, 1.01, 0.99])
    single = _converged("2026-12-03T10:00:00+00:00", 2, median_ms=0.8)  # newer, faster, one process
    (group,) = build([single, repeated]).groups
    (row,) = group.rows
    assert row.record.id == repeated.id and row.repeats_text == "3"
    assert "which has intervals within one process only" in group.notes[0]
    (group,) = build([single]).groups
    assert group.rows[0].repeats_text == f"1 {lb.PROCESS_MARK}"
    assert f"{lb.PROCESS_MARK} : the intervals hold the noise within one process only, run with repeats=N" in lr.LEGEND
    rows = list(csv.DictReader(io.StringIO(lr.render_csv(build([single, repeated])))))
    assert [(r["repeats"], r["ci_scope"], r["chosen"]) for r in rows] == [("3", "repeats", "best_supported")]


def test_but_convergence_comes_before_repeats_and_warnings_before_age():
    unconverged_repeats = _converged("2026-12-01T10:00:00+00:00", 1, repeats=[1.0, 1.0],
                                     metrics={"converged": False})
    converged_single = _converged("2026-12-01T09:00:00+00:00", 2)
    (group,) = build([unconverged_repeats, converged_single]).groups
    assert group.rows[0].record.id == converged_single.id
    quiet = _converged("2026-12-01T10:00:00+00:00", 3, warnings=["slow_first_run"])
    loud = _converged("2026-12-02T10:00:00+00:00", 4, warnings=["slow_first_run", "outliers"])
    (group,) = build([quiet, loud]).groups
    assert group.rows[0].record.id == quiet.id
    assert group.notes[0].endswith("which has more warnings (2: slow_first_run;outliers against 1: slow_first_run)")


def test_a_process_that_did_not_converge_makes_the_record_unconverged():
    record = _converged("2026-12-01T10:00:00+00:00", 1, repeats=[1.0, 1.0, 1.0],
                        per_process=[{}, {"converged": False}, {}])
    (group,) = build([record]).groups
    assert group.rows[0].converged_text == "no"


def test_converged_and_warnings_columns_in_every_format():
    records = [make_record(hardware="clean", seed=1, warnings=[]),
               make_record(hardware="noisy", seed=2, median_ms=2.0, metrics={"converged": False},
                           warnings=["foreign_cpu", "not_converged"]),
               make_record(hardware="server", scenario="throughput", seed=3, median_ms=3.0,
                           metrics={"converged": None})]
    board = build(records)
    out = io.StringIO()
    lr.render_terminal(board, out)
    text = out.getvalue()
    header = next(line for line in text.splitlines() if "rank" in line and "hardware" in line)
    assert "converged" in header and "warnings" in header and "repeats" in header
    noisy = next(line for line in text.splitlines() if " noisy " in line)
    assert " no " in noisy and "2: foreign_cpu;not_converged" in noisy
    clean = next(line for line in text.splitlines() if " clean " in line)
    assert " yes " in clean and " 0 " in clean
    markdown = lr.render_markdown(board)
    assert "| converged | warnings | repeats | record |" in markdown
    assert "| no | 2: foreign\\_cpu;not\\_converged | 1 § |" in markdown
    assert "| n/a | 1: slow\\_first\\_run |" in markdown
    rows = {r["hardware"]: r for r in csv.DictReader(io.StringIO(lr.render_csv(board)))}
    assert (rows["clean"]["converged"], rows["clean"]["warnings"]) == ("true", "0")
    assert (rows["noisy"]["converged"], rows["noisy"]["warnings"]) == ("false", "2: foreign_cpu;not_converged")
    assert rows["server"]["converged"] == ""  # the record does not say
    from bench.reporting.html import render_html

    html = render_html(board, generated="2026-12-01T00:00:00+00:00")
    assert "<th>converged</th><th>warnings</th><th>repeats</th><th>record</th>" in html
    assert "<td>no</td><td>2: foreign_cpu;not_converged</td><td>1 §</td>" in html


def test_leaderboard_newest_flag(tmp_path, capsys):
    store = ResultsStore(tmp_path / "results")
    old = make_record(hardware="box", seed=1, created_at="2026-12-01T10:00:00+00:00")
    new = make_record(hardware="box", seed=2, created_at="2026-12-02T10:00:00+00:00", metrics={"converged": False})
    store.write(old)
    store.write(new)
    store.close()
    where = f"results.dir={tmp_path / 'results'}"
    assert main(["leaderboard", where, "--format", "csv"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["record_id"] == old.id and row["chosen"] == "best_supported"
    assert main(["leaderboard", where, "--format", "csv", "--newest"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["record_id"] == new.id and row["chosen"] == "newest" and row["converged"] == "false"
    assert main(["leaderboard", where, "--newest=yes"]) == 2
    assert "--newest='yes' takes no value" in capsys.readouterr().err
