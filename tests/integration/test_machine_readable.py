"""Output for scripts and CI: `bench run --json` (the summary as JSON on stdout, everything else on
stderr), `bench leaderboard --format json`, `bench compare --format json|markdown` (the same verdict and
exit code as the terminal's), and `bench run --version`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

from bench import __version__
from bench.cli.main import main
from bench.results.store import ResultsStore
from tests.recordfactory import make_record

FAST = ["scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=3",
        "scenario.min_duration_s=0.2", "scenario.max_duration_s=1"]


def _store(tmp_path):
    store = ResultsStore(tmp_path)
    for i, (hw, tag, ms) in enumerate((("Box A", "before", 1.0), ("Box A", "after", 0.8), ("Box B", "before", 1.3),
                                       ("Box B", "after", 1.25))):
        store.write(make_record(hardware=hw, tag=tag, median_ms=ms, seed=i, created_at=f"2026-12-0{i + 1}T00:00:00+00:00"))
    store.close()
    return [f"results.dir={tmp_path}"]


def test_leaderboard_json_holds_the_tables_the_csv_holds(tmp_path, capsys):
    location = _store(tmp_path)
    assert main(["leaderboard", "--format", "json", *location]) == 0
    data = json.loads(capsys.readouterr().out)
    assert main(["leaderboard", "--format", "csv", *location]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    got = [(g["workload"], r["hardware"], r["rank"], r["record_id"]) for g in data["groups"] for r in g["rows"]]
    assert got == [(r["workload"], r["hardware"], int(r["rank"]), r["record_id"]) for r in rows]
    row = data["groups"][0]["rows"][0]
    figure = row["figures"]["throughput_sps"]
    assert figure["low"] < figure["value"] < figure["high"] and figure["has_ci"] is True
    assert data["groups"][0]["ranked_by"] == "throughput_sps" and data["groups"][0]["higher_is_better"] is True
    assert data["version"] == 1 and data["source"].startswith("sqlite:///")


def test_compare_gives_one_verdict_in_every_format(tmp_path, capsys):
    location = _store(tmp_path)
    args = ["compare", "tag=before", "tag=after", "--fail-on", "throughput:5%", *location]
    codes = {}
    for fmt in ("terminal", "json", "markdown"):
        codes[fmt] = main([*args, "--format", fmt])
        out = capsys.readouterr().out
        if fmt == "json":
            data = json.loads(out)
            assert data["check"]["exit_code"] == codes[fmt]
            assert {c["name"] for c in data["comparisons"]} == {"fake tiny throughput b=8 fp32"}
            ratio = data["comparisons"][0]["ratios"]["throughput_sps"]
            assert ratio["low"] <= ratio["ratio"] <= ratio["high"] and isinstance(ratio["significant"], bool)
        elif fmt == "markdown":
            assert out.startswith("## bench compare") and "| workload | baseline | candidate |" in out
            assert "|---|" in out and "times faster than baseline" in out
        else:
            assert "times faster than baseline" in out
    assert len(set(codes.values())) == 1
    assert main([*args, "--format", "xml"]) == 2
    assert "--format='xml' is not a compare format" in capsys.readouterr().err


def test_compare_markdown_to_a_file(tmp_path, capsys):
    location = _store(tmp_path / "store")
    target = tmp_path / "comment.md"
    assert main(["compare", "tag=before", "tag=after", "--format", "markdown", "--output", str(target),
                 *location]) == 0
    assert capsys.readouterr().out == ""
    assert target.read_text().startswith("## bench compare")


def _bench(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, "-m", "bench.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


def test_bench_run_json_is_the_only_thing_on_stdout(tmp_path):
    from tests.conftest import ROOT

    done = _bench(["run", "--json", "--config-dir", "tests/conf", "suite=fake", "suite.only=[tiny]",
                   f"results.dir={tmp_path}", *FAST], ROOT)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # nothing else on stdout
    assert data["exit_code"] == 0 and data["failed"] == 0 and data["bench"] == __version__
    (record,) = data["records"]
    assert record["workload"] == "tiny" and record["status"] == "ok" and record["valid"] is True
    assert record["metrics"]["throughput_sps"] > 0
    stored = json.loads(open(record["path"]).read())
    assert stored["id"] == record["id"] and stored["run_id"] == data["run_id"]
    assert "bench run summary" in done.stderr  # the table went to stderr


def test_bench_run_version_and_json_with_a_printing_flag(tmp_path, capsys):
    assert main(["run", "--version"]) == 0
    assert capsys.readouterr().out.strip() == f"bench {__version__}"
    assert main(["run", "--json", "--cfg", "job"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "--cfg cannot go with --json" in captured.err
