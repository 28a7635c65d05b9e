"""Schema 2: the store's index columns, its migration from schema 1, and the readers that choose by
columns (the leaderboard from the index gives exactly the tables of build() over every record)."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest
import sqlalchemy as sa

from bench.reporting import leaderboard as lb
from bench.reporting import leaderboard_render as lr
from bench.results.query import shown_records
from bench.results.records import SLIM_MAX_LIST, slim
from bench.results.store import DB_SCHEMA_VERSION, V2_COLUMNS, ResultsStore
from bench.system.fingerprint import machine_id
from tests.recordfactory import make_continual_record, make_record


def _varied() -> list:
    out = []
    t = iter(f"2026-12-{d:02d}T{h:02d}:00:00+00:00" for d in range(1, 29) for h in range(0, 24, 3))
    for hw in ("AMD EPYC x2", "Intel Xeon"):
        for backend in ("cpu", "onnxruntime"):
            for precision in ("fp32", "fp16"):
                out.append(make_record(hardware=hw, backend=backend, precision=precision, created_at=next(t),
                                       median_ms=1.0 + len(out) * 0.1, seed=len(out)))
    # several records of one combination: converged with repeats, unconverged, noisy, newest
    out.append(make_record(created_at=next(t), repeats=(1.0, 1.02, 0.99), median_ms=1.0))
    out.append(make_record(created_at=next(t), metrics={"converged": False}, median_ms=0.9))
    out.append(make_record(created_at=next(t), warnings=["foreign_cpu", "outliers"], median_ms=0.95))
    out.append(make_record(created_at=next(t), ci_scope="process", median_ms=1.05, n=30))
    out.append(make_record(created_at=next(t), scenario="latency", batch_size=1, median_ms=2.0))
    out.append(make_record(created_at=next(t), scenario="latency", batch_size=1, median_ms=2.1, n=50,
                           hardware="Intel Xeon"))
    out.append(make_record(created_at=next(t), status="failed", parity_ok=False))
    out.append(make_record(created_at=next(t), parity_ok=False, hardware="Intel Xeon"))
    out.append(make_record(created_at=next(t), workload="other", batch_size=4, block=4))
    out.append(make_continual_record("within", created_at=next(t)))
    out.append(make_continual_record("within", created_at=next(t), adapt_s=2.0))
    out.append(make_continual_record("within", created_at=next(t), rate_qps=40.0, hardware="Intel Xeon"))
    return out + edge_times()


def edge_times() -> list:
    """One combination whose times compare as strings only: "2026-12-29" is older than any time of that
    day (a prefix), and ".5+00:00" is newer than "+00:00" in byte order, older in a locale's. The newest
    has warnings, so the one shown is the day's first full time, and a note names the newer."""
    return [make_record(hardware="Edge box", created_at="2026-12-29", median_ms=1.2, seed=91),
            make_record(hardware="Edge box", created_at="2026-12-29T00:00:00+00:00", median_ms=1.0, seed=92),
            make_record(hardware="Edge box", created_at="2026-12-29T00:00:00.5+00:00", median_ms=1.1, seed=93,
                        warnings=["outliers", "foreign_cpu"])]


@pytest.fixture
def store(tmp_path):
    s = ResultsStore(tmp_path)
    for r in _varied():
        s.write(r)
    yield s
    s.close()


def _rendered(board) -> tuple[str, str, str]:
    stream = io.StringIO()
    lr.render_terminal(board, stream)
    return stream.getvalue(), lr.render_markdown(board), lr.render_csv(board)


@pytest.mark.parametrize("newest", [False, True])
@pytest.mark.parametrize("filters", [{}, {"hardware": ["Intel Xeon"]}, {"scenario": ["latency"]}])
def test_leaderboard_from_the_index_renders_as_build_over_every_record(store, newest, filters):
    old = lb.build(store.select(filters), None, {}, source="s", selection="x", newest=newest)
    new = lb.build_indexed(lambda exclude: store.choices(filters, exclude), shown_records(store), None, {},
                           source="s", selection="x", newest=newest)
    assert _rendered(new) == _rendered(old)
    assert any("not shown" in n for n in old.notes) or filters
    if not filters:
        shown = [row.record.created_at for g in new.groups for row in g.rows if row.hardware == "Edge box"]
        assert shown == ["2026-12-29T00:00:00+00:00"] * len(shown) and shown or newest


def test_a_shown_record_that_cannot_be_read_is_left_out_and_the_next_one_chosen(store, capsys):
    records = store.records()
    victim = next(r for r in records if r.created_at == "2026-12-29T00:00:00+00:00")  # shown for "Edge box"
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET summary = 'not json' WHERE id = :id"), {"id": victim.id})
    new = lb.build_indexed(lambda exclude: store.choices({}, exclude), shown_records(store), None, {}, source="s",
                           selection="x")
    assert f"record {victim.id} in" in capsys.readouterr().err
    old = lb.build([r for r in records if r.id != victim.id], None, {}, source="s", selection="x")
    assert _rendered(new) == _rendered(old)
    assert [row.record.created_at for g in new.groups for row in g.rows if row.hardware == "Edge box"] == \
        ["2026-12-29"]


def test_index_rows_carry_the_columns_support_chooses_by(store):
    from bench.results import support

    rows = {r.id: r for r in store.index({})}
    for record in store.records():
        row = rows[record.id]
        assert row.converged == support.converged(record)
        assert row.ci_scope == support.ci_scope(record)
        assert row.warning_count == len(record.warnings)
        assert row.machine == machine_id(record.system)
        assert row.host == record.system.get("hostname")
        assert lb.index_key(row) == lb._key(record)
    assert [r.id for r in store.index({"valid": ["true"]})] == [r.id for r in store.select({"valid": ["true"]})]


def test_slim_drops_long_arrays_only_and_keeps_what_reports_read():
    record = make_record(repeats=(1.0, 1.1), block=4)
    record.raw["load"] = {"info": {"search": [1, 2, 3], "slo_ms": 10}, "timeline": list(range(SLIM_MAX_LIST + 1))}
    small = slim(record)
    assert small.raw["slim"] is True
    assert "samples_ns" not in small.raw["loop"] and small.raw["loop"]["block"] == 4
    assert [p["metrics"] for p in small.raw["repeats"]] == [p["metrics"] for p in record.raw["repeats"]]
    assert small.raw["load"] == {"info": {"search": [1, 2, 3], "slo_ms": 10}}
    assert (small.metrics, small.config, small.system, small.warnings) == (record.metrics, record.config,
                                                                            record.system, record.warnings)
    assert "samples_ns" in record.raw["loop"]  # the record itself is untouched


def test_summaries_are_slim_and_fall_back_to_the_record(store):
    ids = [r.id for r in store.index({})]
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET summary = NULL WHERE id = :id"), {"id": ids[0]})
    got = store.summaries(ids)
    assert [r.id for r in got] == ids
    assert all(r.raw["slim"] for r in got)
    assert got[0] == slim(store.records([ids[0]])[0])


def _v1(path, records, broken=()) -> None:
    """A schema 1 database as bench wrote it before schema 2: the old columns, version 1."""
    con = sqlite3.connect(path)
    con.execute("""CREATE TABLE runs (id VARCHAR(32) PRIMARY KEY, run_id VARCHAR(32), sweep_id VARCHAR(32),
        schema_version INTEGER NOT NULL, created_at VARCHAR(40) NOT NULL, status VARCHAR(16) NOT NULL,
        valid BOOLEAN NOT NULL, tag VARCHAR(200), suite VARCHAR(100), workload VARCHAR(100), backend VARCHAR(100),
        device VARCHAR(100), precision VARCHAR(16), scenario VARCHAR(32), batch_size INTEGER,
        hardware VARCHAR(300), throughput_sps FLOAT, latency_p50_ms FLOAT, latency_p99_ms FLOAT,
        record TEXT NOT NULL)""")
    con.execute("CREATE TABLE bench_meta (key VARCHAR(64) PRIMARY KEY, value VARCHAR(200) NOT NULL)")
    con.execute("INSERT INTO bench_meta VALUES ('schema_version', '1')")
    for r in records:
        row = ResultsStore._row(r, r.to_dict())
        old = {k: v for k, v in row.items() if k not in V2_COLUMNS}
        con.execute(f"INSERT INTO runs ({', '.join(old)}) VALUES ({', '.join('?' * len(old))})", list(old.values()))
    for rid in broken:
        con.execute("INSERT INTO runs (id, schema_version, created_at, status, valid, record) "
                    "VALUES (?, 1, '2026-01-01', 'ok', 1, 'not json')", (rid,))
    con.commit()
    con.close()


@pytest.mark.parametrize("create", [True, False])
def test_a_schema_1_database_is_migrated_on_open(tmp_path, capsys, create):
    records = _varied()
    _v1(tmp_path / "bench.db", records, broken=["b" * 32])
    store = ResultsStore(tmp_path, create=create)
    try:
        rows = store.index({})
        assert f"bench: indexing {len(records) + 1} records for schema 2 (once)" in capsys.readouterr().err
        columns = {c["name"] for c in sa.inspect(store.engine).get_columns("runs")}
        assert set(V2_COLUMNS) <= columns
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT value FROM bench_meta")).scalar_one() == str(DB_SCHEMA_VERSION)
            broken = conn.execute(sa.text("SELECT summary, machine, record FROM runs WHERE id = :i"),
                                  {"i": "b" * 32}).one()
        assert broken == (None, None, "not json")  # kept, not indexed
        assert len(rows) == len(records)
        old = lb.build(records, None, {}, source="s", selection="x")
        new = lb.build_indexed(lambda exclude: store.choices({}, exclude), shown_records(store), None, {}, source="s",
                               selection="x")
        assert _rendered(new) == _rendered(old)
    finally:
        store.close()
    again = ResultsStore(tmp_path, create=create)  # once: the second open has nothing to do
    again.count()
    again.close()
    assert "indexing" not in capsys.readouterr().err


def test_two_stores_opening_a_schema_1_database_at_once_migrate_it_once(tmp_path, capsys):
    import threading

    _v1(tmp_path / "bench.db", _varied()[:5])
    stores = [ResultsStore(tmp_path) for _ in range(2)]
    threads = [threading.Thread(target=s.count) for s in stores]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert capsys.readouterr().err.count("indexing 5 records") == 1
    assert [len(s.index({})) for s in stores] == [5, 5]
    for s in stores:
        s.close()


def test_machines_groups_the_index_by_machine(tmp_path):
    store = ResultsStore(tmp_path)
    a = make_record(created_at="2026-12-01T10:00:00+00:00", workload="w1")
    system_b = {**a.system, "hostname": "node-b"}
    b1 = make_record(created_at="2026-12-02T10:00:00+00:00", hardware="old label", workload="w2")
    b2 = make_record(created_at="2026-12-03T10:00:00+00:00", hardware="new label", workload="w1", parity_ok=False)
    for r in (b1, b2):
        object.__setattr__(r, "system", {**system_b, "hardware": r.system["hardware"]})
    for r in (a, b1, b2):
        store.write(r)
    try:
        got = store.machines()
        by = {m["machine"]: m for m in got}
        mb = by[machine_id(system_b)]
        assert mb == {"machine": machine_id(system_b), "host": "node-b", "hardware": "new label",
                      "first": b1.created_at, "last": b2.created_at, "records": 2, "valid": 1,
                      "workloads": [("fake", "w1", "throughput"), ("fake", "w2", "throughput")]}
        ma = by[machine_id(a.system)]
        assert (ma["records"], ma["valid"], ma["workloads"]) == (1, 1, [("fake", "w1", "throughput")])
        assert [m["machine"] for m in store.machines({"workload": ["w2"]})] == [machine_id(system_b)]
    finally:
        store.close()


def test_summary_column_holds_the_slim_record(store):
    with store.engine.connect() as conn:
        rid, text = conn.execute(sa.text("SELECT id, summary FROM runs LIMIT 1")).one()
    assert json.loads(text) == slim(store.records([rid])[0]).to_dict()


def test_export_from_summaries_writes_the_bytes_of_export_over_records(store, tmp_path):
    from bench.results.query import CHUNK, Selection, export, export_store, frame, load

    records = store.select({})
    stream = io.StringIO()
    assert export_store(store, Selection(), "csv", None, stream) == len(records)
    assert stream.getvalue() == export(records, "csv", None)
    out = tmp_path / "out" / "x.csv"
    export_store(store, Selection.parse(["scenario=latency"]), "csv", out)
    assert out.read_text() == export(store.select({"scenario": ["latency"]}), "csv", None)
    import pandas as pd

    pd.testing.assert_frame_equal(load(store.directory), frame(records))
    assert CHUNK >= 100


def test_export_in_chunks_keeps_a_metric_column_of_one_kind(store, monkeypatch):
    """A flag column whose chunk holds no value is written as the whole export writes it."""
    from bench.results import query

    monkeypatch.setattr(query, "CHUNK", 3)
    stream = io.StringIO()
    query.export_store(store, query.Selection(), "csv", None, stream)
    assert stream.getvalue() == query.export(store.select({}), "csv", None)


def test_compare_from_the_index_matches_compare_over_every_record(store):
    from bench.reporting import compare as cmp

    base, cand = {"hardware": ["AMD EPYC x2"]}, {"hardware": ["Intel Xeon"]}
    old = cmp.compare(store.select(base), store.select(cand), ["hardware"], seed=1, resamples=200)
    loaded = []
    new = cmp.compare_indexed(store.index(base), store.index(cand), lambda ids: loaded.extend(ids) or
                              store.records(ids), ["hardware"], seed=1, resamples=200)
    assert new.notes == old.notes
    assert [(c.name, c.baseline.id, c.candidate.id, c.ratios) for c in new.comparisons] == \
        [(c.name, c.baseline.id, c.candidate.id, c.ratios) for c in old.comparisons]
    shown = {c.baseline.id for c in new.comparisons} | {c.candidate.id for c in new.comparisons}
    assert shown <= set(loaded) and len(loaded) < len(store.index(base)) + len(store.index(cand))


def test_a_new_database_lays_the_record_out_last(tmp_path):
    """Reading a summary never walks the record's overflow pages (its raw samples): in SQLite a row's
    columns are stored in table order, and the record is the last column of a database bench creates."""
    store = ResultsStore(tmp_path)
    store.write(make_record())
    store.close()
    con = sqlite3.connect(tmp_path / "bench.db")
    columns = [row[1] for row in con.execute("PRAGMA table_info(runs)")]
    con.close()
    assert columns[-1] == "record" and columns.index("summary") < columns.index("record")
