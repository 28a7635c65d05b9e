"""Whether the kernel's out-of-memory killer killed one given process, on evidence that names it.

A worker that dies of SIGKILL may have been killed by the OOM killer, by a person (``kill -9``), by a
container runtime or by the parent's own timeout. The system-wide count of OOM kills in /proc/vmstat
cannot tell which: another process killed meanwhile raises it too. So an OOM is attributed only on
evidence that names the process:

- the kernel's log (/dev/kmsg, readable by root or with CAP_SYSLOG): opened and moved to its end
  before the worker starts, read after it died; the OOM killer writes ``oom-kill:...,pid=1234,...``
  and ``Out of memory: Killed process 1234 (python3) ...`` (``Memory cgroup out of memory: ...`` for
  a cgroup's limit);
- the memory events of the worker's cgroup, when the worker is alone in a cgroup of its own (not
  the parent's): its ``oom_kill`` count rose.

The system-wide count is still read, for a hint only: "an OOM kill elsewhere happened meanwhile".
Every source is a small reader passed in, so the decision is tested without a kernel.

Pids in /dev/kmsg are the host's: inside a PID namespace (a container) they do not match the
worker's own pid, and the verdict falls back to the cgroup, else to "killed by SIGKILL".
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol

__all__ = ["OomWatch", "OomEvidence", "KernelLog", "kill_record_pids", "vmstat_oom_kills", "cgroup_of",
           "cgroup_oom_kills", "cgroup_members"]

# One record of /dev/kmsg is at most a few KiB (the kernel's limit is 1 KiB of text plus its
# dictionary); a read with a smaller buffer fails with EINVAL.
KMSG_BUFFER = 1 << 16

# The lines of the OOM killer that name the killed process (the text after the record's header).
_KILLED = re.compile(r"out of memory: kill(?:ed)? process (\d+)\b", re.IGNORECASE)
_SUMMARY = re.compile(r"\boom-kill:.*?\bpid=(\d+)\b")
_REAPED = re.compile(r"\boom_reaper: reaped process (\d+)\b")


def kill_record_pids(text: str) -> list[int]:
    """The pids the OOM killer names as killed in ``text`` (one kernel log message)."""
    return [int(m.group(1)) for pattern in (_KILLED, _SUMMARY, _REAPED) for m in pattern.finditer(text)]


class LogSource(Protocol):
    def messages(self) -> Iterator[str]: ...
    def close(self) -> None: ...


class KernelLog:
    """The kernel's log from the moment it was opened: /dev/kmsg, non-blocking, at its end."""

    def __init__(self, path: str = "/dev/kmsg") -> None:
        self.path = path
        self.fd: Optional[int] = None
        self.error = ""
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError as exc:
            self.close()
            self.error = f"{path}: {exc.strerror or exc}"

    @property
    def readable(self) -> bool:
        return self.fd is not None

    def messages(self) -> Iterator[str]:
        """Each record written since the open (or the last call), as its message text. One read is
        one record; EAGAIN: no more; EPIPE: records were overwritten before they were read (the
        next read goes on with the oldest left); EINVAL: a record larger than the buffer (the kernel
        does not move past it, so reading stops there)."""
        if self.fd is None:
            return
        while True:
            try:
                record = os.read(self.fd, KMSG_BUFFER)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.EINTR):
                    continue
                self.error = f"{self.path}: {exc.strerror or exc}"
                return
            if not record:
                return
            # "prio,seq,usec,flags;message\n" then continuation lines " KEY=value".
            text = record.decode("utf-8", "replace")
            yield text.partition(";")[2].split("\n", 1)[0]

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


def vmstat_oom_kills(path: str = "/proc/vmstat") -> Optional[int]:
    """The host's count of OOM kills since boot (Linux 4.13+), None when unknown."""
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def cgroup_of(pid: int, proc: str = "/proc") -> Optional[str]:
    """The folder of the memory cgroup of ``pid`` under /sys/fs/cgroup (v2's unified hierarchy, else
    v1's memory controller), None when unknown."""
    try:
        text = Path(proc, str(pid), "cgroup").read_text(encoding="utf-8")
    except OSError:
        return None
    v1 = v2 = None
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    if v1 is not None:
        return str(Path("/sys/fs/cgroup/memory") / v1.lstrip("/"))
    if v2 is not None:
        return str(Path("/sys/fs/cgroup") / v2.lstrip("/"))
    return None


def cgroup_oom_kills(folder: str) -> Optional[int]:
    """The ``oom_kill`` count of a memory cgroup (v2 memory.events, v1 memory.oom_control)."""
    for name in ("memory.events", "memory.oom_control"):
        try:
            with open(os.path.join(folder, name), encoding="ascii") as handle:
                for line in handle:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def cgroup_members(folder: str) -> Optional[set[int]]:
    """The processes in a cgroup (its cgroup.procs), None when unknown."""
    try:
        with open(os.path.join(folder, "cgroup.procs"), encoding="ascii") as handle:
            return {int(line) for line in handle if line.strip()}
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class OomEvidence:
    """The verdict on one dead process: ``named`` is what names it as the OOM killer's victim ("" when
    nothing does); ``elsewhere`` whether the host counted an OOM kill during the watch;
    ``unreadable`` why the kernel's log could not be read ("" when it could)."""

    named: str = ""
    elsewhere: bool = False
    unreadable: str = ""


@dataclass
class OomWatch:
    """Opened before a worker starts (``open``), told its pid once it runs (``started``), asked after
    it died (``evidence``), then closed. Each source is a reader; the defaults read the host."""

    log: Optional[LogSource] = None
    vmstat: Callable[[], Optional[int]] = vmstat_oom_kills
    cgroup: Callable[[int], Optional[str]] = cgroup_of
    cgroup_kills: Callable[[str], Optional[int]] = cgroup_oom_kills
    members: Callable[[str], Optional[set[int]]] = cgroup_members
    _host_before: Optional[int] = None
    _own_cgroup: Optional[str] = None
    _cgroup_before: Optional[int] = None

    @classmethod
    def open(cls) -> "OomWatch":
        """A watch on this host's kernel log, vmstat and cgroups, begun now."""
        return cls(log=KernelLog()).begin()

    def begin(self) -> "OomWatch":
        """Before the worker starts: the host's OOM count now (the log was opened at its end)."""
        self._host_before = self.vmstat()
        return self

    def started(self, pid: int) -> None:
        """The worker runs: note its cgroup if it is alone in one of its own (not ours)."""
        mine, its = self.cgroup(os.getpid()), self.cgroup(pid)
        if its is None or its == mine:
            return
        if self.members(its) == {pid}:
            self._own_cgroup = its
            self._cgroup_before = self.cgroup_kills(its)

    def evidence(self, pid: int) -> OomEvidence:
        named = ""
        if self.log is not None:
            for message in self.log.messages():
                if pid in kill_record_pids(message):
                    named = named or f"the kernel's log: {message.strip()[:200]}"
        if not named and self._own_cgroup is not None and self._cgroup_before is not None:
            after = self.cgroup_kills(self._own_cgroup)
            if after is not None and after > self._cgroup_before:
                named = f"the worker's own cgroup {self._own_cgroup} counted an out-of-memory kill"
        after_host = self.vmstat()
        elsewhere = self._host_before is not None and after_host is not None and after_host > self._host_before
        unreadable = getattr(self.log, "error", "") if self.log is not None else "no kernel log"
        return OomEvidence(named, elsewhere, unreadable or "")

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
