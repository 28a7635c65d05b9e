"""bench.results.load() as a DataFrame, `bench export` to CSV and Parquet, `bench import` of records
from other machines, and bad input that changes nothing."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from bench.cli.main import main
from bench.results.records import SCHEMA_VERSION
from bench.results.query import RECORD_COLUMNS, Selection, load
from bench.results.store import ResultsStore
from tests.recordfactory import golden_dict, make_record


@pytest.fixture
def results(tmp_path):
    store = ResultsStore(tmp_path / "results")
    store.write(make_record(hardware="A", backend="cpu", median_ms=1.0, seed=1, tag="x",
                            created_at="2026-12-01T10:00:00+00:00"))
    store.write(make_record(hardware="B", backend="openvino", median_ms=0.5, seed=2, tag="y",
                            created_at="2026-12-02T10:00:00+00:00",
                            metrics={"samples_per_j": 50.0}))
    store.write(make_record(hardware="B", status="failed", raw_samples=[1, 2], tag="y",
                            created_at="2026-12-03T10:00:00+00:00"))
    store.close()
    return tmp_path / "results"


def test_load_gives_one_row_per_record_with_metrics_as_columns(results):
    df = load(results)
    assert list(df.columns[: len(RECORD_COLUMNS)]) == list(RECORD_COLUMNS)
    assert len(df) == 3 and df["valid"].tolist() == [True, True, False]
    assert str(df["created_at"].dtype).startswith("datetime64") and df["created_at"].dt.tz is not None
    assert {"throughput_sps", "latency_p99_ms", "latency_p99_ci_low_ms", "samples_per_j"} <= set(df.columns)
    assert df["throughput_sps"].dtype == "float64"
    assert pd.isna(df.loc[0, "samples_per_j"]) and df.loc[1, "samples_per_j"] == 50.0
    assert load(results, tag="y", backend="openvino")["hardware"].tolist() == ["B"]
    assert len(load(results, hardware=["A", "B"])) == 3


def test_export_csv_and_parquet_round_trip(results, tmp_path, capsys):
    csv_file, parquet_file = tmp_path / "out.csv", tmp_path / "out.parquet"
    assert main(["export", f"results.dir={results}", "--format", "csv", "--output", str(csv_file)]) == 0
    assert main(["export", f"results.dir={results}", "--output", str(parquet_file)]) == 0  # format from suffix
    from_csv, from_parquet = pd.read_csv(csv_file), pd.read_parquet(parquet_file)
    assert len(from_csv) == len(from_parquet) == 3
    assert from_csv["id"].tolist() == from_parquet["id"].tolist() == load(results)["id"].tolist()
    assert from_parquet["throughput_sps"].tolist()[:2] == pytest.approx(from_csv["throughput_sps"].tolist()[:2])
    assert str(from_parquet["created_at"].dtype).startswith("datetime64")
    assert main(["export", f"results.dir={results}", "tag=x"]) == 0  # CSV to stdout
    out = capsys.readouterr().out
    assert out.startswith("id,created_at,status,valid,") and len(out.strip().splitlines()) == 2


def _copy_records(results, to):
    shutil.copytree(results / "records", to)
    return to


def test_import_merges_and_skips_what_is_stored(results, tmp_path, capsys):
    target = tmp_path / "team"
    ResultsStore(target).write(make_record(hardware="C", seed=9))
    folder = _copy_records(results, tmp_path / "from-a")
    assert main(["import", str(folder), f"results.dir={target}"]) == 0
    assert "imported 3 record(s), skipped 0 already stored, from 3 file(s)" in capsys.readouterr().out
    one_file = next(folder.rglob("*.json"))
    assert main(["import", str(folder), str(one_file), f"results.dir={target}"]) == 0
    assert "imported 0 record(s), skipped 4 already stored, from 4 file(s)" in capsys.readouterr().out
    store = ResultsStore(target, create=False)
    assert store.count() == 4 and len(list((target / "records").rglob("*.json"))) == 4
    assert {r.system["hardware"] for r in store.records()} == {"A", "B", "C"}
    store.close()


def _not_a_record(folder):
    (folder / "notes.json").write_text('{"hello": "world"}')


def _not_json(folder):
    (folder / "broken.json").write_text("{ not json")


def _newer_schema(folder):
    data = golden_dict()
    data.update(id="e" * 32, schema_version=SCHEMA_VERSION + 1)
    (folder / "future.json").write_text(json.dumps(data))


@pytest.mark.parametrize("spoil, message", [
    (_not_a_record, "is not a RunRecord bench reads (no integer schema_version"),
    (_not_json, "is not a RunRecord (not readable JSON"),
    (_newer_schema, "is newer than this bench reads"),
])
def test_a_bad_file_refuses_the_whole_import_and_changes_nothing(results, tmp_path, spoil, message, capsys):
    folder = _copy_records(results, tmp_path / "incoming")
    spoil(folder)
    target = tmp_path / "team"
    assert main(["import", str(folder), f"results.dir={target}"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("bench: error: ") and message in err, err
    assert not target.exists()  # not even an empty database
    existing = ResultsStore(results, create=False)
    count = existing.count()
    existing.close()
    assert main(["import", str(folder), f"results.dir={results}"]) == 2
    existing = ResultsStore(results, create=False)
    assert existing.count() == count
    existing.close()


BAD_EXPORTS = [
    (["tag=nope"], "the selection tag=nope matches no record"),
    (["--format", "xlsx"], "--format='xlsx' is not an export format"),
    (["--format", "parquet"], "--output is required for --format parquet"),
    (["speed=1"], "speed='1' is not a selection key"),
    (["batch_size=big"], "batch_size='big' is not a batch size"),
]


@pytest.mark.parametrize("args, message", BAD_EXPORTS, ids=[" ".join(a) for a, _ in BAD_EXPORTS])
def test_bad_exports_are_one_line_exit_2(results, args, message, capsys, tmp_path):
    assert main(["export", f"results.dir={results}", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_import_of_nothing(tmp_path, capsys):
    assert main(["import", str(tmp_path / "missing"), f"results.dir={tmp_path / 'r'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["import", str(tmp_path / "empty"), f"results.dir={tmp_path / 'r'}"]) == 2
    assert "holds no .json files" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_selection_parsing():
    sel = Selection.parse_joined("tag=nightly,hardware=Xeon, 2 sockets,backend=cpu")
    assert sel.filters() == {"tag": ["nightly"], "hardware": ["Xeon, 2 sockets"], "backend": ["cpu"]}
    assert Selection.parse(["backend=cpu", "backend=openvino"]).filters() == {"backend": ["cpu", "openvino"]}
