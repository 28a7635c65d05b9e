"""Stored results for analysis and sharing: selections, pandas, export and import.

A *selection* is a set of ``key=value`` terms on the store's indexed columns (``suite``, ``workload``,
``backend``, ``hardware``, ``tag``, ``run_id``, ...): terms on different keys must all hold, terms on
the same key are alternatives (``backend=cpu backend=openvino``). An ``id`` or ``run_id`` shorter than
its 32 hex digits matches as a prefix.

``load()`` gives one pandas row per record with the metrics as columns, for a user's own analysis::

    from bench.results import load
    df = load("results", suite="anomaly", scenario="throughput")
    df[df.valid].groupby(["hardware", "backend"]).throughput_sps.max()

pandas and pyarrow are imported only by the functions that need them.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence, TextIO

from bench.errors import ConfigError, did_you_mean
from bench.results.records import RunRecord, SchemaError
from bench.results.store import FILTER_COLUMNS, INDEX_COLUMNS, ResultsStore

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Selection", "NoMatch", "RECORD_COLUMNS", "select", "index", "summaries", "choices", "shown_records", "chunks", "frame", "load", "export",
           "export_store", "read_record_files",
           "check_record_files", "import_records", "IMPORT_BATCH", "atomic_output"]

# The identifying columns of load()'s frame, in order; the metrics follow, sorted by name.
RECORD_COLUMNS = ("id", "created_at", "status", "valid", "suite", "workload", "backend", "device", "precision",
                  "scenario", "batch_size", "hardware", "tag", "run_id", "sweep_id")  # every selection key a column
EXPORT_FORMATS = ("csv", "parquet")


class NoMatch(ConfigError):
    """A selection that matches no stored record."""


@dataclass(frozen=True)
class Selection:
    terms: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, args: Iterable[str]) -> "Selection":
        """``key=value`` terms, one per argument."""
        terms = []
        for arg in args:
            key, eq, value = arg.partition("=")
            key = key.strip()
            if not eq or not key:
                raise ConfigError(arg, None, "write a selection as key=value, e.g. tag=nightly",
                                  "is not a key=value term")
            if key not in FILTER_COLUMNS:
                raise ConfigError(key, value, f"select on one of {', '.join(FILTER_COLUMNS)}",
                                  f"is not a selection key{did_you_mean(key, FILTER_COLUMNS)}")
            if key == "batch_size" and not value.strip().isdigit():
                raise ConfigError(key, value, "give a whole number, e.g. batch_size=8", "is not a batch size")
            terms.append((key, value))
        return cls(tuple(terms))

    @classmethod
    def parse_joined(cls, text: str) -> "Selection":
        """One argument holding several terms joined by commas: ``tag=nightly,backend=cpu``.

        A comma splits only where a ``key=`` follows, so a value may itself hold commas."""
        parts = [p for p in re.split(r",(?=\s*[A-Za-z_]+=)", text) if p.strip()]
        if not parts:
            raise ConfigError("", "", "give a selection such as tag=before or run_id=abc123", "empty selection")
        return cls.parse(p.strip() for p in parts)

    @classmethod
    def of(cls, filters: "Mapping[str, Any]") -> "Selection":
        """Keyword selections (``workload="padim", backend=["cpu", "openvino"]``: a list is any of its
        values), checked as ``parse`` checks the command line's."""
        return cls.parse(f"{key}={v}" for key, value in filters.items()
                         for v in (value if isinstance(value, (list, tuple, set)) else [value]))

    def __add__(self, other: "Selection") -> "Selection":
        return Selection(self.terms + other.terms)

    def differing(self, other: "Selection") -> list[str]:
        """The keys on which two selections differ on purpose (`bench compare` leaves them out of the match)."""
        a, b = self.filters(), other.filters()
        return [k for k in set(a) | set(b) if sorted(a.get(k, [])) != sorted(b.get(k, []))]

    def filters(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for key, value in self.terms:
            out.setdefault(key, []).append(value)
        return out

    def __str__(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.terms) or "all records"


def _no_match(store: ResultsStore, selection: Selection, what: str) -> NoMatch:
    return NoMatch("", "", "check the values (`bench export` lists what is stored) or the results location",
                   f"{what + ': ' if what else ''}the selection {selection} matches no record in {store.display_url}")


def select(store: ResultsStore, selection: Selection = Selection(), what: str = "") -> list[RunRecord]:
    """Records of the selection, oldest first; NoMatch when there is none."""
    records = store.select(selection.filters())
    if not records:
        raise _no_match(store, selection, what)
    return records


def index(store: ResultsStore, selection: Selection = Selection(), what: str = "",
          columns: Sequence[str] = INDEX_COLUMNS) -> list[Any]:
    """The index rows of the selection (ResultsStore.index: ``columns``, no JSON), oldest first; NoMatch
    when there is none."""
    rows = store.index(selection.filters(), columns)
    if not rows:
        raise _no_match(store, selection, what)
    return rows


def summaries(store: ResultsStore, selection: Selection = Selection(), what: str = "") -> list[RunRecord]:
    """The slim records (records.slim: no sample arrays) of the selection, oldest first; NoMatch when
    there is none."""
    return store.summaries([r.id for r in index(store, selection, what)])


def choices(store: ResultsStore, selection: Selection = Selection(), what: str = "") -> Any:
    """The chooser of leaderboard.build_indexed over the selection (ResultsStore.choices, less the ids it
    is given); NoMatch, before any table is built, when the selection matches no record."""
    filters = selection.filters()
    first = store.choices(filters)
    if not first[0]:
        raise _no_match(store, selection, what)

    def choose(exclude: set[str]) -> tuple[int, list[Any]]:
        return store.choices(filters, exclude) if exclude else first
    return choose


def shown_records(store: ResultsStore) -> Any:
    """A loader of the records a report shows, for leaderboard.build_indexed: summaries, and whole
    records for scenario=continual (its verdict and timeline read the per-request arrays)."""
    def load(ids: Sequence[str]) -> list[RunRecord]:
        slim = store.summaries(ids)
        full = {r.id for r in slim if r.scenario.get("name") == "continual"}
        return [r for r in slim if r.id not in full] + (store.records(full) if full else [])
    return load


# ---------------------------------------------------------------- pandas


def _identity(record: RunRecord) -> dict[str, Any]:
    w, b = record.workload, record.backend
    return {
        "id": record.id, "created_at": record.created_at, "status": record.status, "valid": record.valid,
        "suite": w.get("suite"), "workload": w.get("name"), "backend": b.get("name"), "device": b.get("device"),
        "precision": b.get("precision"), "scenario": record.scenario.get("name"),
        "batch_size": w.get("batch_size"), "hardware": record.system.get("hardware"), "tag": record.tag,
        "run_id": record.run_id, "sweep_id": record.sweep_id,
    }


def _frame_row(record: RunRecord) -> dict[str, Any]:
    """A record's row of frame(): its identity and every scalar metric (numbers, flags)."""
    row = _identity(record)
    for name, value in record.metrics.items():
        if name not in row and (value is None or isinstance(value, (bool, int, float))):
            row[name] = value
    return row


def _metric_kinds(rows: Iterable[dict[str, Any]], kinds: Optional[dict[str, Optional[bool]]] = None
                  ) -> dict[str, Optional[bool]]:
    """For each metric of ``rows`` (added to ``kinds``): whether all its values are flags (True), not
    (False), or it has no value yet (None): frame() makes a flag column "boolean", others float64."""
    kinds = {} if kinds is None else kinds
    for row in rows:
        for name, value in row.items():
            if name in RECORD_COLUMNS:
                continue
            known = kinds.get(name)
            if value is None or value != value:
                kinds.setdefault(name, None)
            elif known is None:
                kinds[name] = isinstance(value, bool)
            elif known and not isinstance(value, bool):
                kinds[name] = False
    return kinds


def _frame(rows: list[dict[str, Any]], kinds: dict[str, Optional[bool]]) -> "pd.DataFrame":
    import pandas as pd

    columns = list(RECORD_COLUMNS) + sorted(kinds)
    df = pd.DataFrame(rows, columns=columns)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
    df["valid"] = df["valid"].astype(bool)
    df["batch_size"] = df["batch_size"].astype("Int64")
    for name, flags in kinds.items():
        if flags:
            df[name] = df[name].astype("boolean")
        else:
            df[name] = pd.to_numeric(df[name], errors="coerce").astype("float64")
    return df


def frame(records: Sequence[RunRecord]) -> "pd.DataFrame":
    """One row per record: RECORD_COLUMNS, then every scalar metric (numbers, flags) as a column."""
    rows = [_frame_row(r) for r in records]
    return _frame(rows, _metric_kinds(rows))


CHUNK = 500  # records read at once by the streaming readers (export, load)


def chunks(store: ResultsStore, selection: Selection = Selection(), what: str = "",
           ids: Optional[Sequence[str]] = None) -> Iterable[list[RunRecord]]:
    """The slim records (summaries) of the selection (or of ``ids``, oldest first), CHUNK at a time:
    the index is read first (NoMatch when the selection matches nothing), then the summaries chunk by
    chunk."""
    if ids is None:
        ids = [r.id for r in index(store, selection, what)]
    return (store.summaries(ids[start:start + CHUNK]) for start in range(0, len(ids), CHUNK))


def _frame_of(store: ResultsStore, selection: Selection) -> "pd.DataFrame":
    """frame() of the selection's summaries, built chunk by chunk: only their scalar rows are held."""
    rows = [_frame_row(r) for chunk in chunks(store, selection) for r in chunk]
    return _frame(rows, _metric_kinds(rows))


def load(results_dir: str | Path = "results", url: Optional[str] = None, **filters: Any) -> "pd.DataFrame":
    """Stored records as a DataFrame, one row a record, oldest first: its identity (RECORD_COLUMNS: every
    selection key is a column) and every scalar metric. ``filters`` are selection keys (FILTER_COLUMNS)
    with a value or a list of values (any of them), e.g. ``load("results", workload="padim",
    backend=["cpu", "openvino"])``; an id or run_id shorter than 32 characters matches as a prefix.
    A key that is not a selection key is a ConfigError naming the keys there are."""
    selection = Selection.of(filters)
    store = ResultsStore(results_dir, url, create=False)
    try:
        try:
            return _frame_of(store, selection)
        except NoMatch:
            return frame([])
    finally:
        store.close()


def atomic_output(path: Path, write: Any) -> None:
    """Write through ``write(tmp_path)`` to a temporary file next to ``path``, then rename. The file gets
    the mode a plain open() would give it (0666 less the umask; an existing file's own mode), not the
    temporary file's 0600: a page or an export is written to be shared."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        if path.exists():
            mode = path.stat().st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_safe(df: Any) -> Any:
    """The frame with every text cell (and column name) as bench.fmt.csv_cell writes it: no cell a
    spreadsheet would run as a formula."""
    import pandas as pd

    from bench.fmt import csv_cell

    df = df.rename(columns=lambda c: csv_cell(c) if isinstance(c, str) else c)
    for column in df.columns:
        series = df[column]
        if not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_datetime64_any_dtype(series):
            df[column] = series.map(csv_cell)
    return df


def export(records: Sequence[RunRecord], fmt: str, output: Optional[Path]) -> Optional[str]:
    """CSV or Parquet of frame(records) to ``output`` (atomically); CSV text when output is None."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError("--format", fmt, f"use one of {', '.join(EXPORT_FORMATS)}", "is not an export format")
    df = frame(records)
    if fmt == "csv":
        df = _csv_safe(df)
        if output is None:
            return df.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z")
        atomic_output(output, lambda tmp: df.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S%z"))
        return None
    if output is None:
        raise ConfigError("--output", None, "give a file, e.g. --output results.parquet",
                          "is required for --format parquet")
    _write_parquet(df, output)
    return None


def _write_parquet(df: Any, output: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError("--format", "parquet", "pip install 'bench[parquet]'  (in a checkout: pip install -c "
                          "constraints.txt -e '.[parquet]')", "needs pyarrow, which is not installed") from None
    atomic_output(output, lambda tmp: df.to_parquet(tmp, index=False, engine="pyarrow"))


def _check_format(fmt: str, output: Optional[Path]) -> None:
    if fmt not in EXPORT_FORMATS:
        raise ConfigError("--format", fmt, f"use one of {', '.join(EXPORT_FORMATS)}", "is not an export format")
    if fmt == "parquet" and output is None:
        raise ConfigError("--output", None, "give a file, e.g. --output results.parquet",
                          "is required for --format parquet")


def export_store(store: ResultsStore, selection: Selection, fmt: str, output: Optional[Path],
                 stream: Optional[TextIO] = None) -> int:
    """export() of the selection, read from the store's summaries chunk by chunk (never a record's
    raw samples, never every record at once): CSV to ``output`` (atomically) or ``stream``, written
    chunk by chunk after a first pass has found the metric columns; Parquet from the rows' scalars.
    The number of records exported; the same bytes as export() of the selection's records."""
    _check_format(fmt, output)
    if fmt == "parquet":
        df = _frame_of(store, selection)
        _write_parquet(df, output)  # type: ignore[arg-type]
        return len(df)
    kinds: dict[str, Optional[bool]] = {}
    readable: list[str] = []  # the second pass reads these only: an unreadable row is warned of once
    for chunk in chunks(store, selection):
        _metric_kinds((_frame_row(r) for r in chunk), kinds)
        readable.extend(r.id for r in chunk)
    count = len(readable)

    def write(handle: TextIO) -> None:
        if not readable:  # every selected row unreadable (each warned of): the header alone, as export([])
            handle.write(_csv_safe(frame([])).to_csv(index=False))
        first = True
        for chunk in chunks(store, ids=readable):
            df = _csv_safe(_frame([_frame_row(r) for r in chunk], kinds))
            handle.write(df.to_csv(index=False, header=first, date_format="%Y-%m-%dT%H:%M:%S%z"))
            first = False

    if output is None:
        write(stream if stream is not None else sys.stdout)
    else:
        def to_file(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                write(handle)
        atomic_output(output, to_file)
    return count


# ---------------------------------------------------------------- import


def _record_files(paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.json") if not p.name.startswith("."))
            if not found:
                raise ConfigError("", "", "give JSON records (as written under results/records/) or a folder "
                                  "that holds them", f"{path} holds no .json files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError("", "", "give existing files or folders", f"{path} does not exist")
    return files


def _read_record_file(path: Path) -> RunRecord:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError("", "", "import only the JSON records bench writes under results/records/",
                          f"{path} is not a RunRecord (not readable JSON: {reason})") from None
    try:
        return RunRecord.from_dict(data)
    except (SchemaError, TypeError) as exc:
        raise ConfigError("", "", "import only the JSON records bench writes under results/records/ "
                          "(a newer schema needs a newer bench)", f"{path} is not a RunRecord bench reads "
                          f"({str(exc).splitlines()[0]})") from None


def read_record_files(paths: Sequence[str | Path]) -> list[tuple[Path, RunRecord]]:
    """Every file parsed and checked before anything is stored: one bad file refuses the import."""
    return [(path, _read_record_file(path)) for path in _record_files(paths)]


IMPORT_BATCH = 200  # files read and merged at once by import_records


def check_record_files(paths: Sequence[str | Path]) -> list[Path]:
    """The record files of ``paths``, each parsed and checked (then let go): one bad file refuses the
    import before anything is stored."""
    files = _record_files(paths)
    for path in files:
        _read_record_file(path)
    return files


def import_records(store: ResultsStore, paths: Sequence[str | Path]) -> tuple[int, int, int]:
    """(files read, records added, records already stored). Every file is checked first; then they
    are read and merged IMPORT_BATCH at a time, so that memory holds one batch of records, not all."""
    files = check_record_files(paths)
    added: set[str] = set()
    ids: list[str] = []
    for start in range(0, len(files), IMPORT_BATCH):
        batch = [_read_record_file(path) for path in files[start:start + IMPORT_BATCH]]
        ids.extend(r.id for r in batch)
        new, _ = store.merge(batch)
        added.update(r.id for r in new)
    # As one merge of every file would count: a record is skipped unless its id was added (a file that
    # repeats an added record counts as neither).
    return len(files), len(added), sum(1 for rid in ids if rid not in added)
