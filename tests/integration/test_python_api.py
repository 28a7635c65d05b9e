"""The Python API (bench.api through ``import bench``): run, leaderboard, compare and results.load give
the objects the commands print, and bad input raises ConfigError with the command line's one line."""

from __future__ import annotations

import pytest

import bench
from bench.errors import ConfigError
from bench.results.store import FILTER_COLUMNS, ResultsStore
from tests.conftest import ROOT
from tests.recordfactory import make_record

FAST = ["scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=3",
        "scenario.min_duration_s=0.2", "scenario.max_duration_s=1"]


def test_the_api_is_what_bench_exports():
    assert set(bench.__all__) >= {"run", "leaderboard", "compare", "results", "RunRecord"}
    assert bench.RunRecord.__name__ == "RunRecord" and callable(bench.results.load)
    with pytest.raises(AttributeError):
        bench.nothing_here  # noqa: B018


def test_run_returns_the_records_it_wrote_and_stays_quiet(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT))  # the test configs' fake suite (tests.fakes)
    records = bench.run(["-m", "suite=fake", "suite.only=[tiny]", "batch_size=1,2", f"results.dir={tmp_path}", *FAST],
                        config_dir=str(ROOT / "tests" / "conf"), quiet=True)
    assert [(r.workload["name"], r.workload["batch_size"], r.status) for r in records] == \
        [("tiny", 1, "ok"), ("tiny", 2, "ok")]
    assert len({r.run_id for r in records}) == 1
    assert capsys.readouterr().out == ""  # quiet: no summary on stdout
    frame = bench.results.load(tmp_path)
    assert sorted(frame["id"]) == sorted(r.id for r in records)
    assert set(FILTER_COLUMNS) <= set(frame.columns)  # every selection key is a column, sweep_id too
    with pytest.raises(ConfigError, match="batch_size=0 must be >= 1"):
        bench.run(["batch_size=0"], quiet=True)
    with pytest.raises(ConfigError, match="--json"):
        bench.run(["--json"])


def test_leaderboard_and_compare_from_a_store(tmp_path):
    store = ResultsStore(tmp_path)
    for i, (hw, tag, ms) in enumerate((("Box A", "before", 1.0), ("Box A", "after", 0.8), ("Box B", "before", 1.4))):
        store.write(make_record(hardware=hw, tag=tag, median_ms=ms, seed=i, created_at=f"2026-12-0{i + 1}T00:00:00+00:00"))
    store.close()
    board = bench.leaderboard(results_dir=str(tmp_path), tag=["before", "after"])
    assert [row.hardware for row in board.groups[0].rows] == ["Box A", "Box B"]
    frame = board.to_frame()
    assert list(frame["hardware"]) == ["Box A", "Box B"] and frame["throughput_sps"].dtype.kind == "f"
    assert frame["throughput_sps_ci_low"].iloc[0] < frame["throughput_sps"].iloc[0]
    result = bench.compare({"tag": "before"}, {"tag": "after"}, results_dir=str(tmp_path), hardware="Box A",
                           fail_on="throughput:5%")
    (comp,) = result.comparisons
    assert comp.ratios["throughput_sps"].ratio > 1.2 and result.verdict.exit_code == 0
    with pytest.raises(ConfigError, match="colour='red' is not a selection key"):
        bench.leaderboard(results_dir=str(tmp_path), colour="red")
    with pytest.raises(ConfigError, match="matches no record"):
        bench.leaderboard(results_dir=str(tmp_path), hardware="Box Z")
