"""docs/record.schema.json, the published JSON Schema of a record: the golden record and the records bench
writes validate against it, what is not a record does not, and it names every field RunRecord has."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from bench.results.records import SCHEMA_VERSION, STATUSES, RunRecord, slim
from tests.recordfactory import make_continual_record, make_record

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "docs" / "record.schema.json").read_text())
GOLDEN = json.loads((ROOT / "tests" / "golden" / "record_v1.json").read_text())


def _errors(data: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(data)]


def test_the_schema_is_valid_and_of_this_schema_version():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert SCHEMA["properties"]["status"]["enum"] == list(STATUSES)


def test_every_field_of_a_record_is_described():
    described = SCHEMA["properties"]
    assert set(described) == {f.name for f in fields(RunRecord)}
    assert all(described[name].get("description") for name in described)
    assert set(SCHEMA["required"]) <= set(described)


@pytest.mark.parametrize("record", [
    GOLDEN,
    make_record().to_dict(),
    make_record(repeats=(1.0, 1.02), warnings=["outliers"], scenario="latency", batch_size=1).to_dict(),
    make_record(status="failed", parity_ok=False).to_dict(),
    make_continual_record("within").to_dict(),
    slim(RunRecord.from_dict(GOLDEN)).to_dict(),
], ids=["golden", "plain", "repeats", "failed", "continual", "slim"])
def test_records_bench_writes_validate(record):
    assert _errors(json.loads(json.dumps(record))) == []


@pytest.mark.parametrize("change, where", [
    (lambda d: d.pop("id"), "'id' is a required property"),
    (lambda d: d.update(status="fine"), "status"),
    (lambda d: d.update(schema_version=2), "schema_version"),
    (lambda d: d.update(warnings=[{"message": "no code"}]), "warnings/0"),
    (lambda d: d.update(error={"kind": "crash", "message": "x"}), "error"),  # an ok record has no error
    (lambda d: d["metrics"].update(latency_p99_ms="fast"), "metrics/latency_p99_ms"),
])
def test_what_is_not_a_record_fails(change, where):
    data = json.loads(json.dumps(GOLDEN))
    change(data)
    errors = _errors(data)
    assert errors and any(where in e for e in errors), errors
