"""`bench store check [--repair]`: the JSON record files under results/records compared with the
database rows, one finding per record that is not the same in both, and what repairs it.

The file is the record and the row its index (bench.results.store writes the file first), so a
repair trusts the file: a valid file is indexed when its row is missing, unreadable or different; a
row rebuilds only a file that is missing or unreadable. Nothing is ever deleted: a record with no
valid copy at all, or a file that holds another record than its name says, is reported and left for
a person to look at. Records are compared one chunk of ids at a time, so the check reads a store of
any size in bounded memory.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import sqlalchemy as sa

from bench.results.records import RunRecord, SchemaError, parse_record
from bench.results.store import ResultsStore, atomic_write_json

__all__ = ["Finding", "CheckReport", "check_store"]

CHUNK = 200


@dataclass
class Finding:
    """One record whose file and row are not the same valid record."""

    record_id: str
    problem: str  # "file without row: ...", "broken row: ..."
    repair: Optional[Callable[[], str]] = None  # does the repair, returns what it did; None: nothing can
    plan: str = ""  # what --repair would do, or why it leaves it alone
    done: str = ""  # what --repair did
    failed: str = ""  # why the repair could not be done

    @property
    def remains(self) -> bool:
        return not self.done

    def line(self) -> str:
        if self.done:
            return f"repaired: {self.problem}: {self.done}"
        if self.failed:
            return f"problem: {self.problem}: repair failed ({self.failed})"
        return f"problem: {self.problem}: {self.plan}"


@dataclass
class CheckReport:
    files: int = 0
    rows: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return sum(f.remains for f in self.findings)

    def summary(self, location: str) -> str:
        repaired = len(self.findings) - self.remaining
        if not self.findings:
            state = "consistent"
        else:
            state = f"{len(self.findings)} problem(s), {repaired} repaired, {self.remaining} remain"
        return f"checked {self.files} file(s) and {self.rows} row(s) in {location}: {state}"


def _files(store: ResultsStore) -> dict[str, list[Path]]:
    """The record files by the id their name gives (temporary files, named .*, are not records)."""
    found: dict[str, list[Path]] = {}
    folder = store.directory / "records"
    if folder.is_dir():
        for path in sorted(folder.rglob("*.json")):
            if not path.name.startswith(".") and path.is_file():
                found.setdefault(path.stem, []).append(path)
    return found


def _read_file(path: Path) -> tuple[Optional[RunRecord], Optional[dict], str]:
    """(record, the file's JSON, "") or (None, the JSON of a valid record of another id or None, the
    reason)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, None, f"unreadable: {exc}"
    try:
        record = parse_record(text, path.stem)
    except SchemaError as exc:
        other = None
        try:
            parse_record(text)
            other = json.loads(text)
        except SchemaError:
            pass
        return None, other, str(exc)
    return record, json.loads(text), ""


def _read_row(text: Optional[str], rid: str) -> tuple[Optional[RunRecord], str]:
    if text is None:
        return None, ""
    try:
        return parse_record(text, rid), ""
    except SchemaError as exc:
        return None, str(exc)


def _classify(store: ResultsStore, rid: str, paths: list[Path], row_text: Optional[str]) -> list[Finding]:
    findings: list[Finding] = []
    if len(paths) > 1:
        findings.append(Finding(rid, f"record {rid} is in {len(paths)} files ({', '.join(map(str, paths))})",
                                plan="left alone: keep the one under its day's folder and remove the others by hand"))
    path = paths[0] if paths else None
    has_row = row_text is not None
    row, row_reason = _read_row(row_text, rid)
    if path is None:
        if row is not None:
            target = store.json_path(row)
            data = json.loads(row_text)

            def write_file() -> str:
                atomic_write_json(target, data)
                return f"wrote {target} from the row"

            findings.append(Finding(rid, f"row without file: record {rid}", write_file,
                                    plan=f"--repair writes {target} from the row"))
        else:
            findings.append(Finding(rid, f"broken row without file: record {rid} ({row_reason})",
                                    plan="left alone: no valid copy of the record"))
        return findings
    record, data, file_reason = _read_file(path)
    if record is None:
        if data is not None:  # a valid record of another id under this name: overwriting it could lose it
            findings.append(Finding(rid, f"broken file: {path} ({file_reason})",
                                    plan=f"left alone: it may be the only copy of record {data['id']}; rename it "
                                         f"to {data['id']}.json by hand"))
            if row is None and has_row:
                findings.append(Finding(rid, f"broken row: record {rid} ({row_reason})",
                                        plan="left alone: no valid copy of the record"))
        elif row is not None:
            row_data = json.loads(row_text)

            def rewrite_file() -> str:
                atomic_write_json(path, row_data)
                return "rewritten from its row"

            findings.append(Finding(rid, f"broken file: {path} ({file_reason})", rewrite_file,
                                    plan="--repair rewrites it from its row"))
        elif has_row:
            findings.append(Finding(rid, f"broken file and broken row: {path} ({file_reason}); row ({row_reason})",
                                    plan="left alone: no valid copy of the record"))
        else:
            findings.append(Finding(rid, f"broken file without row: {path} ({file_reason})",
                                    plan="left alone: no valid copy of the record"))
        return findings
    assert data is not None

    def index() -> str:
        store.put_row(record, data)
        return "indexed from the file"

    if not has_row:
        findings.append(Finding(rid, f"file without row: {path}", index, plan="--repair indexes it"))
    elif row is None:
        findings.append(Finding(rid, f"broken row: record {rid} ({row_reason})", index,
                                plan=f"--repair re-indexes it from {path}"))
    elif json.loads(row_text) != data:
        findings.append(Finding(rid, f"file and row differ: {path}", index,
                                plan="--repair replaces the row by the file (the file is the record)"))
    return findings


def check_store(store: ResultsStore, repair: bool = False,
                report: Callable[[Finding], None] = lambda finding: None) -> CheckReport:
    """Every record id of the files and the rows, compared; each finding handed to ``report`` as it
    is found (repaired first when ``repair``)."""
    files = _files(store)
    row_ids = store.row_ids()
    result = CheckReport(files=sum(len(p) for p in files.values()), rows=len(row_ids))
    ids = sorted(set(files) | set(row_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        texts = store.row_texts(chunk)
        for rid in chunk:
            for finding in _classify(store, rid, files.get(rid, []), texts.get(rid)):
                if repair and finding.repair is not None:
                    try:
                        finding.done = finding.repair()
                    except (OSError, sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
                        reason = str(getattr(exc, "orig", None) or exc).strip()
                        finding.failed = store.masked(reason.splitlines()[0] if reason else type(exc).__name__)
                result.findings.append(finding)
                report(finding)
    return result
