"""What every fault-injection test checks after its fault: `bench` run end to end in a fresh process
on a tiny workload, then the results folder compared with itself (every JSON record file and every
database row the same record, none lost, duplicated or corrupted), every output and file searched for
a secret, and a bad input's answer held to one line, exit code 2 and nothing written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from tests.conftest import ROOT

TEST_CONF = str(ROOT / "tests" / "conf")
# `bench run` of one work item of a fraction of a second on the test suite's tiny model.
TINY = ["run", "--config-dir", TEST_CONF, "suite=fake", "suite.only=[tiny]", "scenario=throughput", "batch_size=2",
        "scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=3",
        "scenario.min_duration_s=0.05", "scenario.max_duration_s=0.3", "sensors.enabled=false"]
SECRET = "Fault-Pw-7c1e"  # a password tests put in results.url and then look for everywhere


def env_for(folder: Path, **extra: str) -> dict[str, str]:
    """The environment of a `bench` process started in ``folder``: the checkout importable (tests.fakes),
    its own cache and temporary folder (so that leftovers can be counted)."""
    path = os.environ.get("PYTHONPATH", "")
    tmp = folder / "tmp"
    tmp.mkdir(exist_ok=True)
    return dict(os.environ, PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""),
                XDG_CACHE_HOME=str(folder / "cache"), TMPDIR=str(tmp), **extra)


def bench(args: Sequence[str], folder: Path, timeout: float = 300, env: Optional[dict[str, str]] = None,
          ) -> subprocess.CompletedProcess[str]:
    """`bench ARGS` in a fresh process, in ``folder``; its exit code, stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "bench.cli.main", *args], cwd=folder, text=True,
                          capture_output=True, timeout=timeout, env=env or env_for(folder))


def _default_signals() -> None:
    """In the child before it runs Python: Ctrl-C and SIGTERM as a terminal gives them. A shell's
    background job (`.ci/run &`, nohup) inherits SIGINT ignored, and Python then leaves it ignored:
    a test that sends Ctrl-C must not depend on how the test run was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(args: Sequence[str], folder: Path, env: Optional[dict[str, str]] = None) -> subprocess.Popen[str]:
    """`bench ARGS` started in ``folder`` (its own process group), to be signalled by the test."""
    return subprocess.Popen([sys.executable, "-m", "bench.cli.main", *args], cwd=folder, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or env_for(folder),
                            start_new_session=True, preexec_fn=_default_signals)


@dataclass
class StoreState:
    files: dict[str, dict]  # record id -> the JSON file's record
    rows: dict[str, dict]  # record id -> the database row's record
    problems: list[str]  # what is lost, duplicated or corrupted

    @property
    def ids(self) -> set[str]:
        return set(self.files) | set(self.rows)


def store_state(results: Path) -> StoreState:
    """The records under ``results`` (records/**/*.json and the rows of bench.db), compared."""
    files: dict[str, dict] = {}
    problems: list[str] = []
    for path in sorted((results / "records").rglob("*.json")) if (results / "records").is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            problems.append(f"{path}: not JSON ({exc})")
            continue
        if path.stem != data.get("id"):
            problems.append(f"{path}: holds record {data.get('id')!r}")
        if data.get("id") in files:
            problems.append(f"record {data.get('id')} is in two files")
        files[data.get("id")] = data
    rows: dict[str, dict] = {}
    db = results / "bench.db"
    if db.exists():
        for rid, text in _rows(db):
            try:
                rows[rid] = json.loads(text)
            except ValueError as exc:
                problems.append(f"row {rid}: not JSON ({exc})")
    for rid in sorted(set(files) - set(rows)):
        problems.append(f"record {rid}: file without a row")
    for rid in sorted(set(rows) - set(files)):
        problems.append(f"record {rid}: row without a file")
    for rid in sorted(set(files) & set(rows)):
        if files[rid] != rows[rid]:
            problems.append(f"record {rid}: the file and the row differ")
    return StoreState(files, rows, problems)


def _rows(db: Path) -> list[tuple[str, str]]:
    """The (id, record) rows of a bench.db; on a read-only file system (where SQLite cannot open a WAL
    database in place) from a copy of the database and its WAL."""
    try:
        with closing(sqlite3.connect(db)) as conn:  # closed, not only committed
            return list(conn.execute("SELECT id, record FROM runs"))
    except sqlite3.OperationalError:
        with tempfile.TemporaryDirectory() as tmp:
            for suffix in ("", "-wal"):
                if Path(f"{db}{suffix}").exists():
                    shutil.copy(f"{db}{suffix}", Path(tmp) / f"bench.db{suffix}")
            with closing(sqlite3.connect(Path(tmp) / "bench.db")) as conn:
                return list(conn.execute("SELECT id, record FROM runs"))


def assert_consistent(results: Path) -> StoreState:
    state = store_state(results)
    assert not state.problems, state.problems
    return state


def everything_written(folder: Path) -> Iterable[tuple[Path, str]]:
    for path in folder.rglob("*"):
        if path.is_file():
            try:
                yield path, path.read_bytes().decode("utf-8", "replace")
            except OSError:
                continue


def assert_no_secret(secret: str, *texts: str, folders: Sequence[Path] = ()) -> None:
    """``secret`` appears in none of ``texts`` (outputs) and in no file under ``folders``."""
    for text in texts:
        assert secret not in text, f"the secret is printed: {text[:2000]}"
    for folder in folders:
        found = [str(p) for p, text in everything_written(folder) if secret in text]
        assert not found, f"the secret is written to {found}"


def assert_refused(proc: subprocess.CompletedProcess[str], message: str, folder: Path,
                   allowed: Sequence[str] = ("tmp", "cache")) -> None:
    """One line on stderr containing ``message``, exit code 2, no traceback, nothing written in
    ``folder`` (beyond the test's own folders ``allowed``)."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), proc.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    written = sorted(p.name for p in folder.iterdir() if p.name not in allowed)
    assert not written, f"written on bad input: {written}"
    assert not leftovers(folder), f"left in the temporary folder: {leftovers(folder)}"


def leftovers(folder: Path) -> list[str]:
    """bench's temporary files and folders left in the temporary folder of ``env_for(folder)``."""
    tmp = folder / "tmp"
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith(("bench-", ".bench-"))) if tmp.is_dir() else []


@contextmanager
def mounted_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """``folder`` (created) as a file system of its own of ``size`` (mount's size=, e.g. 512k): a disk
    to fill or to turn read-only. Mounting needs root (CI and the development machine run as root):
    elsewhere the test is skipped with the reason."""
    import pytest

    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root (CI and the development machine run as root)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
