"""A record's round trip through JSON and SQLite, the golden JSON of schema 1, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.results.records import SCHEMA_VERSION, RunRecord, SchemaError
from bench.results.store import ResultsStore, atomic_write_json, mask_url
from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "golden" / "record_v1.json"


def golden() -> dict:
    return json.loads(GOLDEN.read_text())


def test_golden_schema_1_still_reads():
    record = RunRecord.from_dict(golden())
    assert record.schema_version == 1 and record.status == "ok" and record.valid
    assert record.workload["name"] == "tiny" and record.workload["batch_size"] == 1
    assert record.metrics["latency_p50_ms"] > 0
    assert record.raw["loop"]["samples_ns"]
    assert record.to_dict() == golden()


def test_round_trip_through_json_and_sqlite(tmp_path):
    record = RunRecord.from_dict(golden())
    store = ResultsStore(tmp_path / "results")
    path = store.write(record)
    assert path.is_file() and path.name == f"{record.id}.json"
    assert RunRecord.from_dict(json.loads(path.read_text())) == record
    assert store.records() == [record]
    assert store.records(ids=[record.id]) == [record]
    assert store.count() == 1
    store.close()
    # A second store on the same folder sees the same rows.
    assert ResultsStore(tmp_path / "results").records() == [record]


def test_failed_record_round_trip(tmp_path):
    data = golden()
    data.update(id="f" * 32, status="failed", metrics={}, raw={},
                error={"kind": "crash", "message": "worker crashed with SIGSEGV", "log_tail": "x"})
    record = RunRecord.from_dict(data)
    assert not record.valid
    store = ResultsStore(tmp_path)
    store.write(record)
    assert store.records() == [record]


def test_same_id_twice_is_refused_and_keeps_the_first(tmp_path):
    import dataclasses

    from bench.errors import StoreError

    record = RunRecord.from_dict(golden())
    store = ResultsStore(tmp_path)
    store.write(record)
    other = dataclasses.replace(record, tag="another record with the same id")
    with pytest.raises(StoreError, match=f"record {record.id} is stored already with other contents"):
        store._insert(other, other.to_dict())
    store._insert(record, record.to_dict())  # the same record again (stored by another writer): no fault
    assert store.count() == 1
    assert store.records()[0].tag == record.tag


def test_newer_schema_is_refused():
    data = golden()
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaError, match="newer"):
        RunRecord.from_dict(data)


@pytest.mark.parametrize("data", [[], {"schema_version": "1"}, {"schema_version": 1, "id": "x"}])
def test_not_a_record(data):
    with pytest.raises(SchemaError):
        RunRecord.from_dict(data)


def test_bad_status_is_refused():
    data = golden()
    data["status"] = "great"
    with pytest.raises(SchemaError):
        RunRecord.from_dict(data)


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    atomic_write_json(path, {"a": 1})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def test_nan_is_never_written(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"a": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_mask_url_hides_the_password():
    assert "s3cret" not in mask_url("postgresql://bench:s3cret@db.example:5432/bench")
    assert "bench" in mask_url("postgresql://bench:s3cret@db.example:5432/bench")


def test_parse_record_names_why_a_stored_text_is_unreadable():
    from bench.results.records import SchemaError, parse_record
    from tests.recordfactory import make_record

    record = make_record()
    text = json.dumps(record.to_dict())
    assert parse_record(text, record.id) == record
    for bad, reason in [("{not json", "not JSON"), ("[]", "not a record"), ('{"schema_version": 1}', "not a record"),
                        (text, "holds record")]:
        with pytest.raises(SchemaError, match=reason):
            parse_record(bad, None if reason != "holds record" else "0" * 32)
