"""One measurement at a time on a machine: an advisory lock (flock) on a file every bench process of
the machine finds, held while a job measures, with its holder named beside it.

Two measurements side by side share cores, caches, memory bandwidth and the GPU: each would report
the other's interference as the hardware's speed. A cluster launcher places one job per node
(SLURM --exclusive, Ray's bench_machine resource); this lock is the last guard, for whatever the
launcher cannot see (two Ray nodes started on one machine, a `bench run` by hand beside a job).

The lock file is ``bench-measure.lock`` in ``$BENCH_LOCK_DIR``, else the temporary folder (one per
machine, shared by its users: the file is made writable by all). flock is released by the kernel
when its holder dies, so a killed run never leaves a stale lock; the holder file beside it is only
read to name whoever holds the lock.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

from bench.errors import BenchError

__all__ = ["MachineBusy", "MachineLock", "lock_dir"]

LOCK_NAME = "bench-measure.lock"
HOLDER_NAME = "bench-measure.holder.json"


class MachineBusy(BenchError):
    """Another measurement holds this machine: refused, exit code 2 (run it elsewhere or later)."""

    exit_code = 2


def lock_dir() -> Path:
    return Path(os.environ.get("BENCH_LOCK_DIR") or tempfile.gettempdir())


def _holder_text(holder: dict[str, Any]) -> str:
    parts = [f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"]
    if holder.get("user"):
        parts.append(f"user {holder['user']}")
    if holder.get("command"):
        parts.append(f"`{holder['command']}`")
    if holder.get("run_id"):
        parts.append(f"run {str(holder['run_id'])[:12]}")
    if holder.get("since"):
        parts.append(f"since {holder['since']}")
    return ", ".join(parts)


class MachineLock:
    """``with MachineLock(run_id=...):`` holds the machine or raises MachineBusy naming the holder."""

    def __init__(self, run_id: str = "", command: Optional[str] = None, directory: Optional[Path] = None) -> None:
        self.directory = Path(directory) if directory is not None else lock_dir()
        self.run_id = run_id
        self.command = command if command is not None else " ".join(["bench", *sys.argv[1:]])[:300]
        self._fd: Optional[int] = None

    @property
    def path(self) -> Path:
        return self.directory / LOCK_NAME

    def holder(self) -> dict[str, Any]:
        try:
            data = json.loads((self.directory / HOLDER_NAME).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            os.fchmod(fd, 0o666)  # the machine's other users must be able to take it too
        except OSError:
            pass  # not ours to change: it is writable by us, or the open above had failed
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise
            holder = self.holder()
            who = _holder_text(holder) if holder else "a process whose details are not known"
            raise MachineBusy(f"another measurement is running on this machine ({who}; lock {self.path}): two "
                              "measurements side by side would each measure the other's load; wait for it to end, or "
                              "give each job a machine of its own (hydra/launcher=submitit_slurm with --exclusive, "
                              "hydra/launcher=ray with one bench_machine resource per node)") from None
        self._fd = fd
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "user": _user(), "command": self.command,
                  "run_id": self.run_id, "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        tmp = self.directory / f".{HOLDER_NAME}.{os.getpid()}"
        try:
            tmp.write_text(json.dumps(holder))
            os.chmod(tmp, 0o666)
            os.replace(tmp, self.directory / HOLDER_NAME)
        except OSError:
            pass  # the lock holds without its description; a refusal then says the holder is not known

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            (self.directory / HOLDER_NAME).unlink(missing_ok=True)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "MachineLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name to be had (a container without passwd entry)
        return ""
