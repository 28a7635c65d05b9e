"""Faults of the results store: a disk that fills (or turns read-only, or refuses permission) while
a record is written, a database that refuses the row, a damaged row, and `bench store check` finding
and repairing each kind of damage. After each, the JSON files and the rows are compared (the harness).

The writes are refused in-process by monkeypatching (runs everywhere); one test fills a real tmpfs
under a running batch sweep (root only) and brings the record back with `bench import` and `resume=`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.cli.main import main
from bench.errors import StoreWriteError
from bench.results import store as store_module
from bench.results.store import ResultsStore
from tests.faults.harness import (TINY, assert_consistent, bench, env_for, leftovers, mounted_tmpfs, start,
                                  store_state)
from tests.recordfactory import make_record


def _refuse_file(monkeypatch, under: Path, code: int = errno.ENOSPC) -> None:
    """Writes of JSON files under ``under`` refused with ``code``; elsewhere (a recovery folder) they work."""
    write = store_module.atomic_write_json

    def refuse(path, data):
        if Path(path).is_relative_to(under):
            raise OSError(code, os.strerror(code), str(path))
        write(path, data)

    monkeypatch.setattr(store_module, "atomic_write_json", refuse)


def _refuse_row(monkeypatch) -> None:
    def refuse(self, record, data):
        raise sa.exc.OperationalError("INSERT INTO runs ...", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(ResultsStore, "_insert", refuse)


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folder = tmp_path / "results"
    store = ResultsStore(folder)
    store.write(make_record())  # a record stored before the fault, which must stay as it is
    store.close()
    return folder


# ---------------------------------------------------------------- a write refused


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT])
def test_a_refused_file_keeps_the_record_in_its_row_and_check_repair_writes_the_file(results, monkeypatch, code,
                                                                                   capsys):
    record = make_record()
    store = ResultsStore(results)
    with monkeypatch.context() as patch:
        _refuse_file(patch, results, code)
        with pytest.raises(StoreWriteError) as caught:
            store.write(record)
    message = str(caught.value)
    assert caught.value.exit_code == 1 and "\n" not in message
    assert f"results.dir={str(results)!r} cannot be written" in message
    assert f"[{errno.errorcode[code]}]" in message and " free of " in message
    assert "kept in its database row only" in message and "bench store check --repair results.dir=" in message
    assert store.records([record.id])[0].to_dict() == store_module.redact_record(record).to_dict()
    store.close()
    assert main(["store", "check", "--repair", f"results.dir={results}"]) == 0
    out = capsys.readouterr().out
    assert f"repaired: row without file: record {record.id}" in out and out.rstrip().endswith("0 remain")
    assert record.id in assert_consistent(results).files


def test_a_full_database_keeps_the_record_in_its_file_and_check_repair_indexes_it(results, monkeypatch, capsys):
    record = make_record()
    store = ResultsStore(results)
    with monkeypatch.context() as patch:
        _refuse_row(patch)
        with pytest.raises(StoreWriteError) as caught:
            store.write(record)
    message = str(caught.value)
    assert "database or disk is full" in message and f"results.dir={str(results)!r} has " in message
    assert f"kept in its JSON file {store.json_path(record)} only" in message
    store.close()
    assert record.id in store_state(results).files and record.id not in store_state(results).rows
    assert main(["store", "check", f"results.dir={results}"]) == 1  # found, not repaired
    assert f"problem: file without row: {store.json_path(record)}: --repair indexes it" in capsys.readouterr().out
    assert main(["store", "check", "--repair", f"results.dir={results}"]) == 0
    assert record.id in assert_consistent(results).rows


def test_file_and_row_both_refused_keep_a_recovery_file_that_bench_import_reads(results, tmp_path, monkeypatch,
                                                                              capsys):
    record = make_record()
    (tmp_path / "state").write_text("a file where the state folder should be")  # the first choice refuses
    store = ResultsStore(results)
    with monkeypatch.context() as patch:
        _refuse_file(patch, results)
        _refuse_row(patch)
        with pytest.raises(StoreWriteError) as caught:
            store.write(record)
    store.close()
    recovery = tmp_path / "home" / ".local" / "state" / "bench" / "recovery" / f"{record.id}.json"
    message = str(caught.value)
    assert f"record {record.id} is kept in {recovery}" in message
    assert f"`bench import {recovery} results.dir={results}`" in message
    assert record.id not in store_state(results).ids
    assert main(["import", str(recovery), f"results.dir={results}"]) == 0
    assert "imported 1 record(s)" in capsys.readouterr().out
    state = assert_consistent(results)
    assert state.rows[record.id] == store_module.redact_record(record).to_dict()


def test_an_import_onto_a_full_disk_is_one_line_exit_1_and_imports_nothing(results, tmp_path, monkeypatch, capsys):
    source = tmp_path / "other.json"
    source.write_text(json.dumps(make_record().to_dict()))
    before = store_state(results)
    _refuse_file(monkeypatch, results)
    assert main(["import", str(source), f"results.dir={results}"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("bench: error: ") and "[ENOSPC]" in line and "nothing was imported" in line
    assert store_state(results) == before and source.exists()


# ---------------------------------------------------------------- a damaged row


def _damage_row(results: Path, record_id: str, text: str) -> None:
    """The row damaged as a whole: its record and its summary (schema 2), which the reports read."""
    with sqlite3.connect(results / "bench.db") as conn:
        conn.execute("UPDATE runs SET record = ?, summary = ? WHERE id = ?", (text, text, record_id))


def test_a_malformed_row_is_skipped_with_a_warning_and_the_reports_show_the_rest(results, capsys):
    store = ResultsStore(results)
    good = make_record(backend="openvino")
    store.write(good)
    broken = next(r.id for r in store.records() if r.id != good.id)
    store.close()
    _damage_row(results, broken, '{"id": "truncated')
    assert main(["export", f"results.dir={results}"]) == 0
    captured = capsys.readouterr()
    assert good.id in captured.out and broken not in captured.out
    warning = _one_line(captured.err)
    assert warning.startswith(f"bench: warning: record {broken} ") and "not JSON" in warning
    assert "bench store check --repair" in warning
    assert main(["leaderboard", f"results.dir={results}", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "openvino" in captured.out and f"record {broken}" in captured.err
    assert main(["store", "check", "--repair", f"results.dir={results}"]) == 0
    assert f"repaired: broken row: record {broken}" in capsys.readouterr().out
    assert_consistent(results)


# ---------------------------------------------------------------- bench store check


def test_store_check_finds_and_repairs_each_kind_of_damage_and_deletes_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    store = ResultsStore(results)
    recs = [make_record(tag=f"r{i}") for i in range(8)]
    paths = [store.write(r) for r in recs]
    ids = [r.id for r in recs]
    with store.engine.begin() as conn:  # 0: file without row
        conn.execute(store_module.runs.delete().where(store_module.runs.c.id == ids[0]))
    store.close()
    paths[1].unlink()  # 1: row without file
    paths[2].write_text("{not json")  # 2: broken file (not JSON)
    paths[3].write_text(json.dumps({"id": ids[3], "schema_version": 1}))  # 3: broken file (not a record)
    _damage_row(results, ids[4], "[]")  # 4: broken row
    changed = json.loads(paths[5].read_text())  # 5: the file and the row differ: the file wins
    changed["tag"] = "edited"
    paths[5].write_text(json.dumps(changed))
    paths[6].write_text("garbage")  # 6: both broken: left alone
    _damage_row(results, ids[6], "garbage")
    other = json.loads(paths[7].read_text())  # 7: holds another record than its name: left alone
    misplaced = paths[7].with_name(f"{'f' * 32}.json")
    misplaced.write_text(json.dumps(other))

    assert main(["store", "check", f"results.dir={results}"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 9 and all(line.startswith("problem: ") for line in out[:-1]), out
    assert out[-1].endswith("8 problem(s), 0 repaired, 8 remain")
    assert store_state(results).problems

    assert main(["store", "check", "--repair", f"results.dir={results}"]) == 1  # two cannot be repaired
    out = capsys.readouterr().out
    assert out.count("repaired: ") == 6 and out.rstrip().endswith("8 problem(s), 6 repaired, 2 remain")
    assert f"problem: broken file and broken row: {paths[6]}" in out and "left alone" in out
    assert f"problem: broken file: {misplaced}" in out and f"rename it to {ids[7]}.json" in out
    state = store_state(results)
    left = (str(paths[6]), ids[6], str(misplaced), ids[7])
    assert state.problems and all(any(k in p for k in left) for p in state.problems), state.problems
    assert state.rows[ids[5]]["tag"] == "edited" and state.files[ids[1]] == state.rows[ids[1]]
    assert paths[6].read_text() == "garbage" and misplaced.exists()  # nothing deleted or overwritten

    paths[6].unlink()  # what a person does with the two the check left alone
    misplaced.unlink()
    with sqlite3.connect(results / "bench.db") as conn:
        conn.execute("DELETE FROM runs WHERE id = ?", (ids[6],))
    assert main(["store", "check", f"results.dir={results}"]) == 0
    assert capsys.readouterr().out.strip().endswith("consistent")
    assert_consistent(results)


def test_store_check_rebuilds_a_lost_database_from_the_files(tmp_path, capsys):
    results = tmp_path / "results"
    store = ResultsStore(results)
    ids = [store.write(make_record()).stem for _ in range(2)]
    store.close()
    for path in results.glob("bench.db*"):
        path.unlink()
    assert main(["store", "check", f"results.dir={results}"]) == 1
    assert "--repair rebuilds it from them" in capsys.readouterr().out
    assert not (results / "bench.db").exists()
    assert main(["store", "check", "--repair", f"results.dir={results}"]) == 0
    assert sorted(assert_consistent(results).rows) == sorted(ids)
    assert main(["store", "check", f"results.dir={tmp_path / 'nowhere'}"]) == 2  # a wrong folder: created nothing
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.slow
def test_a_run_whose_row_is_refused_stops_with_exit_1_and_keeps_the_file(in_tmp, monkeypatch, capsys):
    with monkeypatch.context() as patch, pytest.raises(SystemExit) as stopped:
        _refuse_row(patch)
        main([*TINY, "results.dir=results"])  # the Hydra task exits: this is the process's exit code
    assert stopped.value.code == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("bench: error: ")]
    assert len(errors) == 1, captured
    assert "database or disk is full" in errors[0] and "Traceback" not in captured.err
    assert "kept in its JSON file" in errors[0] and "bench store check --repair results.dir=results" in errors[0]
    assert main(["store", "check", "--repair", "results.dir=results"]) == 0
    assert len(assert_consistent(in_tmp / "results").rows) == 1


# ---------------------------------------------------------------- a real disk that fills during a sweep


@pytest.fixture
def small_disk(tmp_path):
    # Room for the store and a few records (a record's JSON file is 110-140 KiB, the database with its
    # WAL some 250 KiB after two): at 512 KiB a resumed sweep filled it again on CI's machine.
    with mounted_tmpfs(tmp_path / "disk", "4m") as disk:
        yield disk


def _listing(disk: Path) -> str:
    """The files on ``disk`` with their sizes, and its free space: what a failure needs to be read."""
    usage = shutil.disk_usage(disk)
    files = [f"  {p.relative_to(disk)} {p.stat().st_size} B" for p in sorted(disk.rglob("*")) if p.is_file()]
    return "\n".join([f"{disk}: {usage.free} B free of {usage.total} B", *files])


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_disk_before_anything_is_measured_is_one_line_exit_1(tmp_path, small_disk, capsys):
    _fill(small_disk)
    results = small_disk / "results"
    with pytest.raises(StoreWriteError) as caught:
        ResultsStore(results).engine
    assert caught.value.exit_code == 1 and "0 B free" in str(caught.value)
    source = tmp_path / "other.json"
    source.write_text(json.dumps(make_record().to_dict()))
    assert main(["import", str(source), f"results.dir={results}"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("bench: error: ") and "cannot be opened" in line and "free space there" in line


@pytest.mark.slow
def test_a_disk_that_fills_during_a_sweep_loses_no_point(tmp_path, small_disk):
    results = small_disk / "results"
    env = env_for(tmp_path, XDG_STATE_HOME=str(tmp_path / "state"))
    sweep = [*(a for a in TINY if a != "batch_size=2"), "sweep=batch", "sweep.max_batch=2",
             "sweep.require_converged=false", f"results.dir={results}"]
    proc = start(sweep, tmp_path, env=env)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # the store is open and the first point is measuring: the disk fills now
        seen.append(line)
        if "starting worker" in line:
            break
    filler = _fill(small_disk)
    out, err = proc.communicate(timeout=300)
    err = "".join(seen) + err
    assert proc.returncode == 1, err
    assert "Traceback" not in err + out
    error = [line for line in err.splitlines() if line.startswith("bench: error: ")]
    assert len(error) == 1 and f"results.dir={str(results)!r} cannot be written" in error[0], err
    assert "[ENOSPC]" in error[0] and "0 B free" in error[0]
    recovered = list((tmp_path / "state" / "bench" / "recovery").glob("*.json"))
    assert len(recovered) == 1 and f"kept in {recovered[0]}" in error[0]
    sweep_id = json.loads(recovered[0].read_text())["sweep_id"]
    assert f"resume={sweep_id}" in err
    assert not list(results.rglob(".*.tmp")) and not leftovers(tmp_path)  # no half-written file left behind

    filler.unlink()
    imported = bench(["import", str(recovered[0]), f"results.dir={results}"], tmp_path, env=env)
    assert imported.returncode == 0, imported.stderr
    resumed = bench([*sweep, f"resume={sweep_id}"], tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr + _listing(small_disk)
    assert "resuming, 1 point(s) already measured" in resumed.stderr
    state = assert_consistent(results)
    assert sorted(r["workload"]["batch_size"] for r in state.rows.values()) == [1, 2]
    assert {r["sweep_id"] for r in state.rows.values()} == {sweep_id}
    assert shutil.disk_usage(small_disk).free > 1 << 20, _listing(small_disk)  # the point fit with room to spare


def test_store_check_help_and_bad_arguments(tmp_path, capsys):
    assert main(["store", "check", "--help"]) == 0
    assert "bench store check [--repair]" in capsys.readouterr().out
    assert main(["store", "check", "--fix", f"results.dir={tmp_path}"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("bench: error: --fix is not an argument of `bench store check`")
    assert main(["store", "verify"]) == 2
    assert "is not a store command" in _one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_a_row_another_writer_stored_at_the_same_moment_is_not_a_refused_write(tmp_path):
    """`bench store check --repair` may index a record's file between the run's file and its row: the
    run's own insert then finds its row stored, which is no fault."""
    from bench.results.store import ResultsStore
    from tests.recordfactory import make_record

    store = ResultsStore(tmp_path)
    record = make_record(raw_samples=[1_000_000, 1_000_100])
    store.write(record)
    store._insert(record, record.to_dict())  # the same row again: nothing happens
    assert store.count() == 1
    store.close()
    assert_consistent(tmp_path)
