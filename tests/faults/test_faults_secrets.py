"""Secrets and untrusted names: a database password given in results.url is shown and written nowhere
(config printouts, errors, multirun.yaml, records, exports, reports, bench's temporary folder); the
password can come from PGPASSWORD or a libpq password file instead; a name from a record never
becomes a spreadsheet formula in a CSV; a resume never mixes another experiment into a sweep."""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import subprocess
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.config.compose import compose, to_config
from bench.config.schema import as_plain
from bench.fmt import csv_cell
from bench.orchestration.sweep import resume_conflicts
from bench.results.store import ResultsStore
from tests.faults.harness import SECRET, TEST_CONF, TINY, assert_consistent, assert_no_secret, assert_refused, bench, \
    env_for
from tests.recordfactory import make_record

# A server that refuses at once (port 1), with a query that Hydra's grammar refuses unquoted.
DEAD_URL = f"postgresql://fault:{SECRET}@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    """`bench ARGS` in this process, as the harness's CompletedProcess (a usage error may exit). Hydra's
    --info gives the root logger a handler on this test's captured stream: taken off again after."""
    handlers, level = list(logging.root.handlers), logging.root.level
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        logging.root.handlers[:], logging.root.level = handlers, level
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


# ------------------------------------------------------------------------------------------ secrets


@pytest.mark.parametrize("flags", [["--cfg", "job"], ["--cfg", "hydra"], ["--cfg", "all"], ["--cfg", "job", "--resolve"],
                                   ["-i", "config"], ["--help"], ["--info"]])
def test_config_printouts_mask_the_password(flags, in_tmp, capsys):
    proc = _main(["run", *flags, f"results.url={DEAD_URL}"], capsys)
    assert_no_secret(SECRET, proc.stdout, proc.stderr, folders=[in_tmp])
    assert "fault:***@127.0.0.1" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_password_from_the_environment_is_masked_when_printed_resolved(in_tmp, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_FAULT_URL", DEAD_URL)
    proc = _main(["run", "--cfg", "job", "--resolve", "results.url=${oc.env:BENCH_FAULT_URL}"], capsys)
    assert proc.returncode == 0, proc.stderr
    assert_no_secret(SECRET, proc.stdout, proc.stderr)
    assert "url: postgresql://fault:***@127.0.0.1:1/db?sslmode=disable&connect_timeout=2" in proc.stdout


@pytest.mark.parametrize("extra", [[], ["-m"], ["-m", "hydra.sweep.dir=sweeps"], ["batch_size=x"], ["nokey=1"]])
def test_errors_mask_the_password_and_write_nothing(extra, in_tmp, capsys):
    """A query with ? and & needs no quotes (the URL reaches the store, whose error names it masked);
    a multirun checks the server before Hydra writes its multirun.yaml."""
    (in_tmp / "tmp").mkdir()
    flags = [a for a in extra if a.startswith("-")]  # Hydra takes its flags before the overrides
    proc = _main(["run", *flags, *TINY[1:], *[a for a in extra if a not in flags], f"results.url={DEAD_URL}"], capsys)
    message = {"batch_size=x": "batch_size='x' has the wrong type", "nokey=1": "nokey='1' is not a config key"}
    assert_refused(proc, message.get(extra[-1] if extra else "", "results.url='postgresql://fault:***@127.0.0.1:1/db?"),
                   in_tmp)
    assert_no_secret(SECRET, proc.stdout, proc.stderr)


def test_a_password_in_the_query_is_masked(in_tmp, capsys):
    url = f"postgresql://fault@127.0.0.1:1/db?password={SECRET}&connect_timeout=2"
    proc = _main(["run", "--cfg", "job", f"results.url={url}"], capsys)
    assert_no_secret(SECRET, proc.stdout, proc.stderr)
    proc = _main([*TINY, f"results.url={url}"], capsys)
    assert proc.returncode == 2 and "cannot be opened" in proc.stderr
    assert_no_secret(SECRET, proc.stdout, proc.stderr)


@pytest.fixture
def secret_db(pg_server):
    """A fresh database on the session's server owned by a role whose password is the harness's SECRET;
    (URL with the password, URL without)."""
    import uuid

    import psycopg

    from tests.pgserver import PASSWORD, USER

    role, name = "fault_" + uuid.uuid4().hex[:8], "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(host="127.0.0.1", port=pg_server.port, user=USER, password=PASSWORD, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
        conn.execute(f'CREATE DATABASE "{name}" OWNER {role}')
    base = f"127.0.0.1:{pg_server.port}/{name}"
    return f"postgresql://{role}:{SECRET}@{base}", f"postgresql://{role}@{base}"


@pytest.mark.slow
def test_a_multirun_into_postgresql_leaves_the_password_nowhere(secret_db, tmp_path, capsys, monkeypatch):
    """End to end: `bench run -m` with the password in an unquoted URL with a query, a sweep folder of
    the user's; then the leaderboard (CSV, HTML), the export and the scaling report of what it stored."""
    url, _ = secret_db
    url += "?sslmode=disable&application_name=bench-fault"
    proc = bench(["run", "-m", *TINY[1:], "tag=a,b", "hydra.sweep.dir=sweeps", f"results.url={url}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "***" in (tmp_path / "sweeps" / "multirun.yaml").read_text()
    monkeypatch.chdir(tmp_path)
    where = ["results.dir=results", f"results.url={url}"]
    outputs = []
    for args in (["leaderboard", *where, "--format", "csv", "--output", "board.csv"],
                 ["leaderboard", *where, "--format", "html", "--output", "board.html"],
                 ["export", *where, "--format", "csv", "--output", "export.csv"],
                 ["report", "scaling", *where], ["compare", "tag=a", "tag=b", *where]):
        done = _main(args, capsys)
        assert done.returncode in (0, 3), (args, done.stderr)
        outputs += [done.stdout, done.stderr]
    for name in ("board.csv", "board.html", "export.csv"):
        assert (tmp_path / name).stat().st_size > 0
    assert len(list((tmp_path / "results" / "records").rglob("*.json"))) == 2
    assert_no_secret(SECRET, proc.stdout, proc.stderr, *outputs, folders=[tmp_path])


@pytest.mark.slow
def test_the_password_from_pgpassword_or_a_password_file(secret_db, tmp_path, capsys, monkeypatch):
    """A URL without password: libpq takes it from PGPASSWORD (a real `bench run`) or from the password
    file PGPASSFILE names (~/.pgpass by default); without either the server refuses, in one line."""
    _, bare = secret_db
    proc = bench([*TINY, f"results.url={bare}", "tag=env"], tmp_path, env=env_for(tmp_path, PGPASSWORD=SECRET))
    assert proc.returncode == 0, proc.stderr
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    pgpass = tmp_path / "pgpass"
    host, _, rest = bare.partition("@")[2].partition(":")
    port, _, db = rest.partition("/")
    pgpass.write_text(f"{host}:{port}:{db}:{bare.partition('://')[2].partition('@')[0]}:{SECRET}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    done = _main(["export", f"results.url={bare}", "--format", "csv"], capsys)
    assert done.returncode == 0, done.stderr
    assert "env" in done.stdout and len(done.stdout.strip().splitlines()) == 2
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "missing"))
    done = _main(["export", f"results.url={bare}", "--format", "csv"], capsys)
    assert done.returncode == 2 and "no password supplied" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------ CSV


def test_csv_cell_escapes_formulas_and_leaves_numbers():
    for formula in ("=HYPERLINK(\"http://x\",\"y\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert csv_cell(formula) == "'" + formula
    for kept in ("-3.5", "+2", "-1e-3", -3.5, 7, None, "cpu", "AMD EPYC x2", ""):
        assert csv_cell(kept) == kept


def test_leaderboard_and_export_csv_never_write_a_formula(in_tmp, capsys):
    store = ResultsStore(in_tmp / "results")
    store.write(make_record(hardware="=HYPERLINK(\"http://evil\",\"click\")", tag="@SUM(1+1)"))
    store.write(make_record(hardware="-1+cmd|' /C calc'!A0", backend="onnxruntime", tag="+x"))
    store.close()
    for args in (["leaderboard", "--format", "csv"], ["export", "--format", "csv"]):
        proc = _main(args, capsys)
        assert proc.returncode == 0, proc.stderr
        rows = list(csv.reader(io.StringIO(proc.stdout)))
        cells = [c for row in rows for c in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or
                    c.startswith("-") and not _is_number(c)], cells
        assert "'=HYPERLINK(\"http://evil\",\"click\")" in cells
        assert "'-1+cmd|' /C calc'!A0" in cells
    assert "'@SUM(1+1)" in cells and "'+x" in cells  # the export has the tags


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------ resume

SWEEP = ["run", "--config-dir", TEST_CONF, "suite=fake", "suite.only=[tiny]", "sweep=batch", "scenario=throughput",
         "sweep.max_batch=2", "sensors.enabled=false", "scenario.min_duration_s=0.05", "scenario.max_duration_s=0.3"]


def _sweep_in_store(folder: Path, overrides: list[str], sweep_id: str = "feedc0ffee00") -> list[str]:
    """The records of a finished sweep (batch 1 and 2 of the tiny workload) under ``overrides``, as a
    real sweep stores them; their ids."""
    cfg = to_config(compose(overrides, "config", [TEST_CONF]))
    store = ResultsStore(folder / "results")
    ids = []
    for batch in (1, 2):
        config = as_plain(cfg)
        config["batch_size"], config["suite"]["only"] = batch, ["tiny"]
        record = make_record(batch_size=batch, config=config, scenario=cfg.scenario.name,
                             median_ms=1.0 * batch ** 0.5)
        record = dataclasses.replace(record, sweep_id=sweep_id)
        store.write(record)
        ids.append(record.id)
    store.close()
    return ids


@pytest.mark.parametrize("change, says", [
    (["scenario=latency"], "scenario.name='throughput'"),
    (["backend.threads=2"], "backend.threads=None; this command has backend.threads=2"),
    (["repeats=2"], "repeats=1; this command has repeats=2"),
    (["sweep.max_batch=4"], "sweep.max_batch=2; this command has sweep.max_batch=4"),  # conversions cover 1..4
])
def test_resume_with_other_settings_is_refused_before_anything_runs(change, says, in_tmp, capsys):
    (in_tmp / "tmp").mkdir()
    _sweep_in_store(in_tmp, SWEEP[3:])
    before = assert_consistent(in_tmp / "results")
    files = _files(in_tmp)
    proc = _main([*SWEEP, *change, "resume=feedc0ffee00"], capsys)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("bench: error: resume='feedc0ffee00' was measured with ") and says in line, line
    assert line.endswith("resume with the sweep's own settings, or start a new sweep without resume=")
    assert _files(in_tmp) == files  # no multirun folder, no record
    assert assert_consistent(in_tmp / "results").ids == before.ids


def _files(folder: Path) -> list[Path]:
    """The files under ``folder``, but SQLite's own (WAL and shared memory: come and go with connections)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("bench.db-"))


def test_resume_may_change_where_and_how_points_are_chosen(in_tmp, capsys):
    """tag, results, worker.timeout_s and the sweep's bounds (its largest size still 2) change no
    point: the stored points are reused and nothing is measured again."""
    ids = _sweep_in_store(in_tmp, SWEEP[3:])
    proc = _main([*SWEEP, "tag=again", "worker.timeout_s=60", "sweep.patience=3", "sweep.max_batch=3",
                  "resume=feedc0ffee00"], capsys)
    assert proc.returncode == 0, proc.stderr
    assert "resuming, 2 point(s) already measured" in proc.stderr
    assert assert_consistent(in_tmp / "results").ids == set(ids)


def test_resume_of_an_unknown_sweep_creates_nothing(in_tmp, capsys):
    (in_tmp / "tmp").mkdir()
    proc = _main([*SWEEP, "resume=0123456789ab"], capsys)
    assert_refused(proc, "resume='0123456789ab' matches no sweep in sqlite:///results/bench.db", in_tmp)
    _sweep_in_store(in_tmp, SWEEP[3:])
    proc = _main([*SWEEP, "resume=0123456789ab"], capsys)
    assert proc.returncode == 2 and "matches no sweep" in proc.stderr


def test_resume_finds_a_crashed_sweep_in_its_json_files_alone(in_tmp, capsys):
    """A sweep whose rows never landed (the JSON file is written first): its points are found, and the
    check compares their settings without creating a database."""
    _sweep_in_store(in_tmp, SWEEP[3:])
    (in_tmp / "results" / "bench.db").unlink()
    for extra in (in_tmp / "results").glob("bench.db-*"):
        extra.unlink()
    proc = _main([*SWEEP, "scenario=latency", "resume=feedc0ffee00"], capsys)
    assert proc.returncode == 2 and "was measured with" in proc.stderr
    assert not (in_tmp / "results" / "bench.db").exists()


def test_resume_conflicts_name_only_what_changes_a_measurement():
    base = {"suite": {"name": "fake", "only": ["tiny"]}, "backend": {"name": "cpu", "threads": None},
            "results": {"dir": "results", "url": "postgresql://u:***@h/db"}, "tag": "", "batch_size": 1,
            "sweep": {"start": 1, "factor": 2, "max_batch": 8, "min_gain": 0.02, "patience": 2},
            "worker": {"timeout_s": 900.0, "memory_limit_mib": None},
            "cache": {"enabled": True}, "resume": None}
    same = {**base, "suite": {"name": "fake", "only": ["a", "b"]}, "results": {"dir": "x", "url": None}, "tag": "t",
            "batch_size": None, "sweep": {"start": 2, "factor": 2, "max_batch": 15, "min_gain": 0.1, "patience": 3},
            "resume": "abc",
            "worker": {"timeout_s": 10.0, "memory_limit_mib": None}, "cache": {"enabled": False}, "new_key": 1}
    assert resume_conflicts(base, same) == []
    other = {**same, "backend": {"name": "onnxruntime", "threads": 2}, "worker": {"timeout_s": 10.0,
                                                                                   "memory_limit_mib": 512}}
    assert resume_conflicts(base, other) == [("backend.name", "cpu", "onnxruntime"), ("backend.threads", None, 2),
                                             ("worker.memory_limit_mib", None, 512)]
    # Another largest size (16, not 8): every conversion's batch range, TensorRT's tuned profile.
    larger = {**same, "sweep": {**same["sweep"], "max_batch": 16}}
    assert resume_conflicts(base, larger) == [("sweep.max_batch", 8, 16), ("sweep.start", 1, 2)]
