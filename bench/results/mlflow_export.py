"""`bench export --to mlflow`: stored records as MLflow runs, one run per record, in an experiment of
an MLflow tracking store (a tracking server, a database, a local folder).

What a record becomes (``mlflow_run``, which needs no MLflow):

- run name ``"<workload> <backend> <precision> b<batch> <scenario> <id[:8]>"``; start and end time the
  record's ``created_at`` (a record is one moment in bench's model; the export's own time is not
  shown); status FINISHED, or FAILED for a record that failed (``failed``, ``oom``).
- tags ``bench.record_id``, ``bench.run_id``, ``bench.sweep_id``, ``bench.tag``, ``bench.status``,
  ``bench.valid`` (``true``/``false``), ``bench.hardware``, ``bench.suite``, ``bench.workload``,
  ``bench.scenario``, ``bench.backend``, ``bench.device``, ``bench.precision``, ``bench.created_at``,
  ``bench.machine``: each with a value; an empty or missing one is left out.
- params: the record's config flattened to dotted keys (``backend.precision``, ``scenario.name``), strings
  as they are and other values as JSON (``null``, ``true``, ``[1, 2]``), and ``batch_size`` (the batch
  measured, the workload's; a config ``batch_size`` that differs is kept as ``config.batch_size``).
  MLflow's limits are kept, never failed: a key with characters MLflow refuses has them replaced by ``_``
  (and one longer than 250 characters is cut, with a hash for uniqueness), named in the tag
  ``bench.renamed_params``; a value longer than 6000 characters is cut (the record.json artifact has it
  whole), named in ``bench.truncated_params``. A database URL's password never reaches MLflow: the record
  is redacted (bench.results.urls.redact_record) before anything is taken from it.
- metrics: every finite number of ``record.metrics`` (its top level, as `bench export --format csv`
  has them), and its flags (``converged``) as 1.0 or 0.0, so that they can be charted and searched
  (``metrics.converged = 1``); text and nested values are in record.json only. Each at step 0 with the
  record's ``created_at`` as its timestamp.
- artifact ``record.json``: the whole record as the store keeps it (raw samples included), as its JSON
  file under results/records is written.

Idempotent: the runs already in the experiment are read first (one paged search for runs that have a
``bench.record_id`` tag, only their record ids kept: a filtered search per record would read every run of
a file store each time), and a record with a finished run there is skipped. A run left unfinished
(RUNNING) by an export that was interrupted is deleted and its record exported again; a run that fails
while being written is deleted at once. Two exports to one experiment at the same moment may both write
a record. A run deleted in MLflow is exported again.

Memory does not grow with the store's records: the selection's ids are read from the index, and whole
records EXPORT_CHUNK at a time (only those not exported yet). The set of ids already exported grows with
the experiment's runs (an id string each). MLflow is used through an explicit MlflowClient, never its
global active run.

Only ``import mlflow`` needs the ``mlflow`` extra (mlflow-skinny, and alembic for MLflow's database
stores); without it the command fails in one line naming the extra.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
import re
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional
from urllib.parse import urlsplit, urlunsplit

from bench.errors import BenchError, ConfigError
from bench.results.records import RunRecord
from bench.results.urls import redact_record

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.tracking import MlflowClient

    from bench.results.query import Selection
    from bench.results.store import ResultsStore

__all__ = ["MLFLOW_INSTALL", "DEFAULT_EXPERIMENT", "RECORD_ARTIFACT", "RECORD_ID_TAG", "EXPORT_CHUNK", "MlflowRun",
           "MlflowExport", "mlflow_run", "export_to_mlflow", "shown_uri"]

MLFLOW_INSTALL = "pip install 'bench[mlflow]'  (in a checkout: pip install -c constraints.txt -e '.[mlflow]')"
DEFAULT_EXPERIMENT = "bench"
RECORD_ARTIFACT = "record.json"
RECORD_ID_TAG = "bench.record_id"
EXPORT_CHUNK = 50  # whole records (raw samples included) read from the store at once
SCAN_PAGE = 500  # runs per page of the search for those already exported

# MLflow's limits (mlflow.utils.validation): longer values are refused, not cut.
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_EXPERIMENT_NAME = 500
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.\- ]")  # what MLflow accepts on every OS, less "/" (a path)
_CUT = "...[cut]"

_STATUS = {"ok": "FINISHED", "skipped": "FINISHED", "failed": "FAILED", "oom": "FAILED"}
_IDENTITY_TAGS = ("record_id", "run_id", "sweep_id", "tag", "status", "valid", "hardware", "suite", "workload",
                  "scenario", "backend", "device", "precision", "created_at", "machine")


@dataclass(frozen=True)
class MlflowRun:
    """What one record becomes in MLflow (see the module's docstring)."""

    record_id: str
    name: str
    start_time: int  # ms since the epoch
    status: str  # MLflow's: FINISHED or FAILED
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    artifact: str  # record.json's text


@dataclass(frozen=True)
class MlflowExport:
    exported: int
    skipped: int
    tracking_uri: str  # as shown: password masked
    experiment: str
    replaced: int = 0  # unfinished runs of an interrupted export, deleted and written again

    def message(self) -> str:
        text = (f"exported {self.exported} record(s) to {self.tracking_uri} experiment {self.experiment!r}, "
                f"skipped {self.skipped} already there")
        if self.replaced:
            text += f" ({self.replaced} unfinished run(s) of an interrupted export replaced)"
        return text


def shown_uri(uri: str) -> str:
    """The tracking URI as it may be shown: a password in it (``https://user:pw@host``,
    ``postgresql://user:pw@host/db``, ``?password=``) masked."""
    from bench.results.urls import mask_url, url_password

    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable tracking URI>"
    if parts.password:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username}:***@{host}")
        uri = urlunsplit(parts)
    if "password" in parts.query and url_password(uri):
        return mask_url(uri)
    return uri


def _ms(created_at: str) -> Optional[int]:
    try:
        moment = _dt.datetime.fromisoformat(created_at)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return int(round(moment.timestamp() * 1000))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - len(_CUT)] + _CUT


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


class _Keys:
    """Keys MLflow accepts, each used once: ``key(name)`` is ``name`` or its renaming (remembered)."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.renamed: dict[str, str] = {}

    def key(self, name: str) -> str:
        key = _BAD_KEY_CHARS.sub("_", name)
        if key in ("", ".", "..") or key.startswith(".."):
            key = "_" + key  # MLflow refuses what a path would resolve elsewhere
        if len(key) > MAX_KEY or key in self.used:
            key = f"{key[:MAX_KEY - 9]}~{_hash(name)}"
        if key != name:
            self.renamed[name] = key
        self.used.add(key)
        return key


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for name, inner in value.items():
            _flatten(inner, f"{prefix}.{name}" if prefix else str(name), out)
    else:
        out[prefix or "config"] = value


def _note(names: Mapping[str, str] | list[str]) -> str:
    parts = [f"{k} -> {v}" for k, v in names.items()] if isinstance(names, Mapping) else list(names)
    return _cut(", ".join(parts), MAX_TAG_VALUE)


def mlflow_run(record: RunRecord) -> MlflowRun:
    """The run of one record (see the module's docstring); needs no MLflow."""
    record = redact_record(record)  # no database password in a param or the artifact
    w, b, system = record.workload, record.backend, record.system if isinstance(record.system, dict) else {}
    batch = w.get("batch_size")
    start = _ms(record.created_at)
    if start is None:
        start = int(_dt.datetime.now(_dt.timezone.utc).timestamp() * 1000)

    identity: dict[str, Any] = {
        "record_id": record.id, "run_id": record.run_id, "sweep_id": record.sweep_id, "tag": record.tag,
        "status": record.status, "valid": "true" if record.valid else "false", "hardware": system.get("hardware"),
        "suite": w.get("suite"), "workload": w.get("name"), "scenario": record.scenario.get("name"),
        "backend": b.get("name"), "device": b.get("device"), "precision": b.get("precision"),
        "created_at": record.created_at,
    }
    if system:
        from bench.system.fingerprint import machine_id

        identity["machine"] = machine_id(system)
    tags = {f"bench.{name}": _cut(_text(identity[name]), MAX_TAG_VALUE)
            for name in _IDENTITY_TAGS if identity.get(name) not in (None, "")}

    flat: dict[str, Any] = {}
    _flatten(record.config if record.config is not None else {}, "", flat)
    if batch is not None:
        if "batch_size" in flat and flat["batch_size"] != batch:
            flat["config.batch_size"] = flat["batch_size"]
        flat["batch_size"] = batch
    keys, params, truncated = _Keys(), {}, []
    for name, value in flat.items():
        key, text = keys.key(name), _text(value)
        if len(text) > MAX_PARAM_VALUE:
            truncated.append(key)
            text = _cut(text, MAX_PARAM_VALUE)
        params[key] = text
    if keys.renamed:
        tags["bench.renamed_params"] = _note(keys.renamed)
    if truncated:
        tags["bench.truncated_params"] = _note(truncated)

    metric_keys, metrics = _Keys(), {}
    for name, value in (record.metrics or {}).items():
        if isinstance(value, bool):
            metrics[metric_keys.key(str(name))] = 1.0 if value else 0.0
        elif isinstance(value, (int, float)) and math.isfinite(value):
            metrics[metric_keys.key(str(name))] = float(value)
    if metric_keys.renamed:
        tags["bench.renamed_metrics"] = _note(metric_keys.renamed)

    name = " ".join(str(v) for v in (w.get("name"), b.get("name"), b.get("precision"),
                                     f"b{batch}" if batch is not None else None, record.scenario.get("name"),
                                     record.id[:8]) if v not in (None, ""))
    artifact = json.dumps(record.to_dict(), indent=1, allow_nan=False) + "\n"  # as the store's JSON file
    return MlflowRun(record.id, _cut(name, MAX_TAG_VALUE), start, _STATUS.get(record.status, "FINISHED"), tags,
                     params, metrics, artifact)


# ---------------------------------------------------------------- MLflow


def _import_mlflow() -> Any:
    try:
        import mlflow
        from mlflow.tracking import MlflowClient  # noqa: F401
    except ImportError:
        raise ConfigError("--to", "mlflow", MLFLOW_INSTALL, "needs MLflow's tracking client (the mlflow extra: "
                          "mlflow-skinny), which is not installed") from None
    return mlflow


def _reason(exc: BaseException, uri: str) -> str:
    """The first line of an error, without the URI's password."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    password = urlsplit(uri).password if "://" in uri else None
    from bench.results.urls import url_password

    for secret in {password, url_password(uri)} - {None, ""}:
        text = text.replace(secret, "***")  # type: ignore[arg-type]
    return _cut(text, 300)


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's and alembic's INFO lines (creating a database's tables) held back while bench exports:
    the command prints one line of its own. Warnings and errors still show."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _is_file_store(uri: str) -> bool:
    return urlsplit(uri).scheme in ("", "file")


def _open(uri: str, key: str, experiment: str) -> tuple["MlflowClient", str]:
    """The client of ``uri`` and the id of ``experiment`` (created when missing); a URI MLflow cannot
    open, or a deleted experiment, is a ConfigError naming it (``key``: where the URI came from)."""
    from mlflow.tracking import MlflowClient

    shown = shown_uri(uri)
    try:
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            try:
                return client, client.create_experiment(experiment)
            except Exception:  # noqa: BLE001 - another export created it meanwhile: use that one
                found = client.get_experiment_by_name(experiment)
                if found is None:
                    raise
    except ImportError as exc:  # a store's driver: alembic for sqlite://, a database driver
        raise ConfigError(key, shown, f"{MLFLOW_INSTALL}, and the database's driver",
                          f"cannot be opened ({_reason(exc, uri)})") from None
    except Exception as exc:  # noqa: BLE001 - MlflowException, a database's or the network's error: one line
        reason = _reason(exc, uri)
        if _is_file_store(uri) and "MLFLOW_ALLOW_FILE_STORE" in str(exc):
            raise ConfigError(key, shown, "set MLFLOW_ALLOW_FILE_STORE=true to write it anyway, or "
                              "give a database, e.g. --tracking-uri sqlite:///mlflow.db",
                              "is a file store, which this MLflow refuses by default") from None
        raise ConfigError(key, shown, "give a tracking URI MLflow can open: http(s)://HOST:PORT, "
                          "sqlite:///mlflow.db, postgresql://USER@HOST/DB, databricks",
                          f"cannot be opened ({reason})") from None
    if found.lifecycle_stage != "active":
        raise ConfigError("--experiment", experiment, f"restore it (mlflow experiments restore --experiment-id "
                          f"{found.experiment_id}) or give another name",
                          f"is a deleted experiment in {shown}")
    return client, found.experiment_id


def _exported(client: "MlflowClient", experiment_id: str) -> tuple[set[str], dict[str, list[str]]]:
    """(record ids with a finished run in the experiment, record id -> its unfinished runs' ids)."""
    from mlflow.entities import RunStatus, ViewType

    done: set[str] = set()
    unfinished: dict[str, list[str]] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.`{RECORD_ID_TAG}` LIKE '%'",
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=SCAN_PAGE, page_token=token)
        for run in page:
            rid = run.data.tags.get(RECORD_ID_TAG)
            if not rid:
                continue
            if run.info.status in (RunStatus.to_string(RunStatus.RUNNING), RunStatus.to_string(RunStatus.SCHEDULED)):
                unfinished.setdefault(rid, []).append(run.info.run_id)
            else:
                done.add(rid)
        token = page.token
        if not token:
            return done, unfinished


def _write(client: "MlflowClient", experiment_id: str, run: MlflowRun) -> None:
    """One run, finished last: a run left RUNNING is an export that did not end. A failure deletes it."""
    from mlflow.entities import Metric, Param

    created = client.create_run(experiment_id, start_time=run.start_time, tags=run.tags, run_name=run.name)
    run_id = created.info.run_id
    try:
        client.log_batch(run_id, metrics=[Metric(k, v, run.start_time, 0) for k, v in run.metrics.items()],
                         params=[Param(k, v) for k, v in run.params.items()])
        client.log_text(run_id, run.artifact, RECORD_ARTIFACT)
        client.set_terminated(run_id, run.status, end_time=run.start_time)
    except BaseException:
        with suppress(Exception):
            client.delete_run(run_id)
        raise


def export_to_mlflow(store: "ResultsStore", selection: "Selection", tracking_uri: Optional[str] = None,
                     experiment: str = DEFAULT_EXPERIMENT) -> MlflowExport:
    """The selection's records as runs of ``experiment`` at ``tracking_uri`` (None: as MLflow resolves
    it, MLFLOW_TRACKING_URI or its default), those exported before skipped. NoMatch when the selection
    matches nothing; ConfigError for a URI or experiment MLflow refuses; BenchError (exit 1) naming the
    record when writing one fails (the records before it are exported: a second run goes on from there)."""
    from bench.results.query import index

    if not experiment.strip():
        raise ConfigError("--experiment", experiment, f"give a name, e.g. --experiment {DEFAULT_EXPERIMENT}",
                          "is empty")
    if len(experiment) > MAX_EXPERIMENT_NAME:
        raise ConfigError("--experiment", _cut(experiment, 60), f"give at most {MAX_EXPERIMENT_NAME} characters",
                          "is longer than MLflow allows")
    if tracking_uri is not None and not tracking_uri.strip():
        raise ConfigError("--tracking-uri", tracking_uri, "give a URI, e.g. --tracking-uri sqlite:///mlflow.db, "
                          "or leave the option out (MLFLOW_TRACKING_URI, else MLflow's default)", "is empty")
    mlflow = _import_mlflow()
    ids = [row.id for row in index(store, selection)]  # NoMatch before anything is written to MLflow
    with _quiet():
        uri = tracking_uri if tracking_uri is not None else mlflow.get_tracking_uri()
        key = ("--tracking-uri" if tracking_uri is not None else
               "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else "MLflow's default tracking URI")
        shown = shown_uri(uri)
        client, experiment_id = _open(uri, key, experiment)
        try:
            done, unfinished = _exported(client, experiment_id)
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(key, shown, "check the tracking server",
                              f"cannot be searched ({_reason(exc, uri)})") from None
        exported = skipped = replaced = 0
        for start in range(0, len(ids), EXPORT_CHUNK):
            chunk = ids[start:start + EXPORT_CHUNK]
            todo = [rid for rid in chunk if rid not in done]
            skipped += len(chunk) - len(todo)
            for record in store.records(todo) if todo else []:
                try:
                    for stale in unfinished.pop(record.id, []):
                        client.delete_run(stale)
                        replaced += 1
                    _write(client, experiment_id, mlflow_run(record))
                except Exception as exc:  # noqa: BLE001 - MLflow's, the network's, the file system's
                    raise BenchError(f"exporting record {record.id} to {shown} experiment {experiment!r} failed "
                                     f"({_reason(exc, uri)}): {exported} record(s) exported before it; run the "
                                     "command again to export the rest (those exported are skipped)") from None
                exported += 1
    return MlflowExport(exported, skipped, shown, experiment, replaced)
