"""The worker's scratch folder: one temporary folder per worker process, ``bench-worker-<pid>-XXXX``
in the temporary folder (TMPDIR), named after the parent's pid. It holds the worker's log and
whatever the worker writes while it runs (the sensor sampler's samples); the parent removes it when
the worker is gone, whatever ended it (a result, a crash, a timeout, Ctrl-C, SIGTERM).

A parent killed with SIGKILL (or a power cut) cannot remove it: the next run removes the folders
whose parent is dead (``remove_stale``), and the loose files that versions before the scratch folder
left (``bench-worker-*.log``, ``bench-samples-*.jsonl``) when no process holds them open and none
wrote them for a minute (an old version's parent reads its worker's log just after the worker
exits). Only this user's, never a live run's. A run's liveness is its pid's: a run in another PID
namespace sharing this temporary folder would look dead (containers have a /tmp of their own).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

__all__ = ["PREFIX", "make_scratch", "remove_scratch", "remove_stale"]

PREFIX = "bench-worker-"
_FOLDER = re.compile(r"^bench-worker-(\d+)-[^/]+$")
_OLD_FILES = (re.compile(r"^bench-worker-.+\.log$"), re.compile(r"^bench-samples-.+\.jsonl$"))
OLD_FILE_QUIET_S = 60.0


def make_scratch() -> Path:
    """A new scratch folder of this process (mode 700, as mkdtemp makes it)."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def remove_scratch(folder: Path, wait_s: float = 2.0) -> None:
    """Remove ``folder`` and everything in it. A process of the worker's group killed a moment ago
    may still be finishing a file's creation there, so a folder that is not yet empty is tried again
    for up to ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        shutil.rmtree(folder, ignore_errors=True)
        if not os.path.lexists(folder) or time.monotonic() >= deadline:
            return
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    except OSError:
        return True  # unknown: keep its files
    return True


def open_paths(proc: str = "/proc") -> Optional[set[str]]:
    """Every file some process holds open (their /proc/PID/fd links), None when /proc cannot tell."""
    found: set[str] = set()
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        folder = os.path.join(proc, pid, "fd")
        try:
            names = os.listdir(folder)
        except OSError:
            continue  # gone, or another user's: it cannot hold this user's private files open anyway
        for name in names:
            try:
                found.add(os.readlink(os.path.join(folder, name)))
            except OSError:
                continue
    return found


def remove_stale(tmp: Optional[str] = None, alive: Callable[[int], bool] = pid_alive,
                 held_open: Callable[[], Optional[set[str]]] = open_paths) -> list[str]:
    """Remove this user's scratch folders whose parent process is dead, and old-style loose files
    nobody holds open, from ``tmp`` (default: the temporary folder); returns their names."""
    tmp = tmp or tempfile.gettempdir()
    try:
        names = os.listdir(tmp)
    except OSError:
        return []
    uid = os.getuid()
    removed: list[str] = []
    old_files: list[str] = []
    for name in names:
        if not name.startswith(("bench-worker-", "bench-samples-")):
            continue
        path = os.path.join(tmp, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if info.st_uid != uid:
            continue
        match = _FOLDER.match(name)
        if stat.S_ISDIR(info.st_mode) and match:
            if not alive(int(match.group(1))):
                shutil.rmtree(path, ignore_errors=True)
                if not os.path.lexists(path):
                    removed.append(name)
        elif stat.S_ISREG(info.st_mode) and any(p.match(name) for p in _OLD_FILES) \
                and time.time() - info.st_mtime > OLD_FILE_QUIET_S:
            old_files.append(name)
    if old_files:
        held = held_open()
        if held is not None:  # unknown: keep them
            for name in old_files:
                path = os.path.join(tmp, name)
                if path in held or os.path.realpath(path) in held:
                    continue
                try:
                    os.unlink(path)
                    removed.append(name)
                except OSError:
                    continue
    return removed
