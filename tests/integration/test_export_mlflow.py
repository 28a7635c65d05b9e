"""`bench export --to mlflow`: one MLflow run per record in a local MLflow file store (params, metrics,
tags, the record as its artifact), exported once however often the command runs; a selection; bad input
and a missing MLflow in one line (exit 2); a database password never reaching MLflow."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys

import pytest

from bench.cli.main import main
from bench.results.mlflow_export import MAX_PARAM_VALUE, mlflow_run
from bench.results.store import ResultsStore
from tests.recordfactory import golden_dict, make_record

LONG = "x" * (MAX_PARAM_VALUE + 500)


@pytest.fixture
def results(tmp_path):
    store = ResultsStore(tmp_path / "results")
    config = golden_dict()["config"]
    config["notes"] = {"long": LONG, "odd/key=1": "kept"}  # cut to MLflow's limit; a key MLflow refuses, renamed
    store.write(make_record(hardware="A", tag="x", seed=1, created_at="2026-12-01T10:00:00+00:00", config=config))
    store.write(make_record(hardware="B", backend="openvino", tag="y", seed=2, created_at="2026-12-02T10:00:00+00:00",
                            metrics={"samples_per_j": 50.0, "ci_scope": "process"}))
    store.write(make_record(hardware="B", status="failed", raw_samples=[1, 2], tag="y",
                            created_at="2026-12-03T10:00:00+00:00"))
    store.close()
    return tmp_path / "results"


@pytest.fixture
def mlflow_env(monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra: pip install -c constraints.txt -e '.[mlflow]'")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses file stores unless told
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # no network
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _runs(uri, experiment="bench"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    return client, {run.data.tags["bench.record_id"]: run for run in runs}


def _export(results, uri, *more):
    return main(["export", "--to", "mlflow", "--tracking-uri", uri, f"results.dir={results}", *more])


def test_one_run_per_record_with_params_metrics_tags_and_the_record(results, tmp_path, mlflow_env, capsys):
    uri = (tmp_path / "mlruns").as_uri()
    assert _export(results, uri) == 0
    assert capsys.readouterr().out.strip() == (f"exported 3 record(s) to {uri} experiment 'bench', "
                                               "skipped 0 already there")
    client, runs = _runs(uri)
    store = ResultsStore(results, create=False)
    records = store.records()
    assert set(runs) == {r.id for r in records}
    for record in records:
        run = runs[record.id]
        created_ms = int(dt.datetime.fromisoformat(record.created_at).timestamp() * 1000)
        w, b = record.workload, record.backend
        assert run.info.run_name == f"{w['name']} {b['name']} {b['precision']} b{w['batch_size']} " \
                                    f"{record.scenario['name']} {record.id[:8]}"
        assert run.info.start_time == created_ms
        assert run.info.status == ("FAILED" if record.status == "failed" else "FINISHED")
        tags = run.data.tags
        assert tags["bench.run_id"] == record.run_id and tags["bench.tag"] == record.tag
        assert tags["bench.status"] == record.status and tags["bench.valid"] == str(record.valid).lower()
        assert (tags["bench.hardware"], tags["bench.backend"], tags["bench.precision"], tags["bench.scenario"]) == (
            record.system["hardware"], b["name"], b["precision"], record.scenario["name"])
        assert tags["bench.created_at"] == record.created_at and len(tags["bench.machine"]) == 12
        params = run.data.params
        assert params["batch_size"] == str(w["batch_size"]) == "8"
        assert params["config.batch_size"] == "1"  # the config's own, which differs from the batch measured
        assert params["backend.name"] == record.config["backend"]["name"]
        assert params["suite.only"] == '["tiny"]' and params["backend.threads"] == "null"
        numbers = {k: float(v) for k, v in record.metrics.items()
                   if isinstance(v, bool) or (isinstance(v, (int, float)) and math.isfinite(v))}
        assert run.data.metrics == pytest.approx(numbers) and "ci_scope" not in run.data.metrics
        assert run.data.metrics["converged"] in (0.0, 1.0)
        history = client.get_metric_history(run.info.run_id, "throughput_sps")
        assert [(m.timestamp, m.step) for m in history] == [(created_ms, 0)]
        path = client.download_artifacts(run.info.run_id, "record.json", str(tmp_path / record.id))
        stored = json.loads(store.json_path(record).read_text())
        assert json.loads(open(path).read()) == stored and len(stored["raw"]["loop"]["samples_ns"]) > 0
    long_run = runs[records[0].id]
    assert len(long_run.data.params["notes.long"]) == MAX_PARAM_VALUE
    assert long_run.data.tags["bench.truncated_params"] == "notes.long"
    assert long_run.data.params["notes.odd_key_1"] == "kept"
    assert long_run.data.tags["bench.renamed_params"] == "notes.odd/key=1 -> notes.odd_key_1"
    assert runs[records[1].id].data.metrics["samples_per_j"] == 50.0
    store.close()

    assert _export(results, uri) == 0  # again: nothing new
    out = capsys.readouterr().out
    assert "exported 0 record(s)" in out and "skipped 3 already there" in out
    assert len(_runs(uri)[1]) == 3 and len(client.search_runs([long_run.info.experiment_id])) == 3


def test_a_selection_exports_its_records_only_into_the_experiment_named(results, tmp_path, mlflow_env, capsys):
    uri = (tmp_path / "mlruns").as_uri()
    assert _export(results, uri, "tag=y", "status=ok", "--experiment", "team") == 0
    assert "exported 1 record(s)" in capsys.readouterr().out
    _, runs = _runs(uri, "team")
    assert [run.data.tags["bench.backend"] for run in runs.values()] == ["openvino"]
    assert _runs(uri)[1] == {}  # nothing in the default experiment
    assert _export(results, uri, "--experiment", "team") == 0  # the rest, the one there skipped
    assert "exported 2 record(s) to" in capsys.readouterr().out and len(_runs(uri, "team")[1]) == 3


def test_an_interrupted_export_is_finished_and_a_failing_one_leaves_nothing(results, tmp_path, mlflow_env,
                                                                            monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    client = MlflowClient(tracking_uri=uri)
    first = ResultsStore(results, create=False).records()[0].id
    left = client.create_run(client.create_experiment("bench"), tags={"bench.record_id": first})  # still RUNNING
    boom = RuntimeError("disk full")

    def fail(*args, **kwargs):
        raise boom

    with monkeypatch.context() as patched:
        patched.setattr(MlflowClient, "log_text", fail)
        assert _export(results, uri) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"exporting record {first} to {uri} experiment 'bench' failed (disk full)" in err[0]
    assert _runs(uri)[1] == {}  # the run being written deleted, and the interrupted one
    client.restore_run(left.info.run_id)  # interrupted again, as a killed export leaves it
    assert _export(results, uri) == 0
    assert capsys.readouterr().out.strip().endswith("skipped 0 already there (1 unfinished run(s) of an "
                                                   "interrupted export replaced)")
    _, runs = _runs(uri)
    assert len(runs) == 3 and runs[first].info.run_id != left.info.run_id
    assert client.get_run(left.info.run_id).info.lifecycle_stage == "deleted"


def test_without_a_uri_mlflow_resolves_it_its_default_database(results, tmp_path, mlflow_env, monkeypatch, capsys):
    """No --tracking-uri and no MLFLOW_TRACKING_URI: MLflow's default, sqlite:///mlflow.db in the current
    folder (the extra's alembic creates its tables); the environment variable when set."""
    pytest.importorskip("alembic")
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--to", "mlflow", f"results.dir={results}", "tag=x"]) == 0
    database = (tmp_path / "mlflow.db").resolve()
    assert capsys.readouterr().out.startswith(f"exported 1 record(s) to sqlite:///{database} experiment 'bench'")
    assert len(_runs(f"sqlite:///{database}")[1]) == 1
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    assert main(["export", "--to", "mlflow", f"results.dir={results}", "tag=x"]) == 0
    assert capsys.readouterr().out.startswith(f"exported 1 record(s) to {(tmp_path / 'mlruns').as_uri()}")


@pytest.mark.parametrize("args, names", [
    (["--to", "nonsense"], ["--to='nonsense'", "is not an export destination", "--to mlflow"]),
    (["--to", "mlflow", "--format", "csv"], ["--format cannot be combined with --to"]),
    (["--to", "mlflow", "--output", "x.csv"], ["--output cannot be combined with --to"]),
    (["--experiment", "team"], ["--experiment is an option of `bench export --to mlflow`"]),
    (["--to", "mlflow", "--experiment", ""], ["--experiment='' is empty"]),
    (["--to", "mlflow", "--to", "mlflow"], ["--to is given more than once"]),
])
def test_bad_flags_are_one_line_exit_2(results, args, names, capsys):
    assert main(["export", f"results.dir={results}", *args]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and not captured.out and "Traceback" not in captured.err
    for name in names:
        assert name in err[0]


def test_a_tracking_uri_mlflow_refuses_is_one_line_with_the_password_masked(results, tmp_path, mlflow_env,
                                                                             monkeypatch, capsys):
    assert _export(results, "nonsense://bench:s3cret@host/x") == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: --tracking-uri='nonsense://bench:***@host/x' cannot be opened")
    assert "s3cret" not in err and len(err.strip().splitlines()) == 1
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    assert _export(results, (tmp_path / "mlruns").as_uri()) == 2
    err = capsys.readouterr().err
    assert "is a file store" in err and "MLFLOW_ALLOW_FILE_STORE=true" in err and len(err.strip().splitlines()) == 1


def test_without_mlflow_the_extra_is_named(results, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError, installed or not
    assert _export(results, (tmp_path / "mlruns").as_uri()) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--to='mlflow' needs MLflow's tracking client" in err[0]
    assert "pip install 'bench[mlflow]'" in err[0] and not (tmp_path / "mlruns").exists()


def test_no_database_password_reaches_mlflow():
    config = golden_dict()["config"]
    config["results"]["url"] = "postgresql://bench:s3cret@db.example/bench"
    config["extra"] = ["postgresql://bench:s3cret@db.example/other"]
    run = mlflow_run(make_record(config=config))  # not redacted as the store would
    assert run.params["results.url"] == "postgresql://bench:***@db.example/bench"
    shown = json.dumps([run.params, run.tags, run.metrics, run.name]) + run.artifact
    assert "s3cret" not in shown and "db.example" in shown
