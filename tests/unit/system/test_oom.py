"""An out-of-memory is attributed to a worker only on evidence that names it: the kernel's log record
of its pid, or its own cgroup's count. The host-wide count is a hint, never the verdict."""

from __future__ import annotations

import errno
import os

import pytest

from bench.system import oom
from bench.system.oom import KernelLog, OomWatch, cgroup_of, cgroup_oom_kills, kill_record_pids


class FakeLog:
    def __init__(self, messages: list[str], error: str = "") -> None:
        self.queue = list(messages)
        self.error = error
        self.closed = False

    def messages(self):
        while self.queue:
            yield self.queue.pop(0)

    def close(self) -> None:
        self.closed = True


def counter(*values: int):
    """A vmstat reader that returns ``values`` one call after the other (the last one after that)."""
    left = list(values)
    return lambda: left.pop(0) if len(left) > 1 else left[0]


@pytest.mark.parametrize("line, pids", [
    ("Out of memory: Killed process 1234 (python3) total-vm:9000kB, anon-rss:100kB, file-rss:0kB", [1234]),
    ("Memory cgroup out of memory: Killed process 77 (python) total-vm:1kB", [77]),
    ("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
     "task_memcg=/user.slice,task=python3,pid=1234,uid=0", [1234]),
    ("Out of memory: Kill process 55 (old-kernel) score 900 or sacrifice child", [55]),
    ("oom_reaper: reaped process 1234 (python3), now anon-rss:0kB", [1234]),
    ("python3 invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0", []),
    ("audit: pid=1234 comm=python3 killed", []),
])
def test_the_kernel_lines_that_name_the_killed_process(line, pids):
    assert kill_record_pids(line) == pids


def test_a_killed_worker_named_by_the_kernel_log_is_an_oom():
    watch = OomWatch(log=FakeLog(["usb 1-1: new device", "Out of memory: Killed process 4242 (python3) x"]),
                     vmstat=counter(5, 6), cgroup=lambda pid: "/sys/fs/cgroup/same").begin()
    watch.started(4242)
    evidence = watch.evidence(4242)
    assert "Killed process 4242" in evidence.named and evidence.elsewhere
    watch.close()
    assert watch.log.closed


def test_another_process_killed_meanwhile_is_only_a_hint():
    watch = OomWatch(log=FakeLog(["Out of memory: Killed process 999 (chrome) x",
                                  "oom-kill:constraint=CONSTRAINT_NONE,task=chrome,pid=999,uid=1000"]),
                     vmstat=counter(5, 7), cgroup=lambda pid: "/sys/fs/cgroup/same").begin()
    watch.started(4242)
    evidence = watch.evidence(4242)
    assert evidence.named == "" and evidence.elsewhere and evidence.unreadable == ""


def test_an_unreadable_kernel_log_is_said_and_decides_nothing():
    watch = OomWatch(log=FakeLog([], error="/dev/kmsg: Permission denied"), vmstat=counter(1, 2),
                     cgroup=lambda pid: None).begin()
    watch.started(4242)
    evidence = watch.evidence(4242)
    assert evidence.named == "" and evidence.elsewhere and "Permission denied" in evidence.unreadable
    quiet = OomWatch(log=FakeLog([]), vmstat=counter(3, 3), cgroup=lambda pid: None).begin()
    assert not quiet.evidence(4242).elsewhere


def test_the_workers_own_cgroup_counts_only_when_it_is_alone_in_it():
    counts = {"/cg/worker": [0, 1]}
    kills = lambda folder: counts[folder].pop(0)  # noqa: E731 - before, then after

    def watch_with(members: set[int], cgroups: dict[int, str]) -> OomWatch:
        w = OomWatch(log=FakeLog([]), vmstat=counter(0, 0), cgroup=lambda pid: cgroups.get(pid),
                     cgroup_kills=kills, members=lambda folder: members).begin()
        w.started(4242)
        return w

    own = watch_with({4242}, {os.getpid(): "/cg/parent", 4242: "/cg/worker"})
    assert "cgroup /cg/worker" in own.evidence(4242).named
    # In the parent's cgroup, or sharing one with other processes: its count is not the worker's.
    counts["/cg/worker"] = [0, 1]
    assert watch_with({4242}, {os.getpid(): "/cg/worker", 4242: "/cg/worker"}).evidence(4242).named == ""
    assert watch_with({4242, 17}, {os.getpid(): "/cg/parent", 4242: "/cg/worker"}).evidence(4242).named == ""


def test_cgroup_files_of_v1_and_v2(tmp_path):
    proc = tmp_path / "proc"
    (proc / "7").mkdir(parents=True)
    (proc / "7" / "cgroup").write_text("4:memory:/box/a\n0::/\n")
    assert cgroup_of(7, str(proc)) == "/sys/fs/cgroup/memory/box/a"
    (proc / "7" / "cgroup").write_text("0::/user.slice/w\n")
    assert cgroup_of(7, str(proc)) == "/sys/fs/cgroup/user.slice/w"
    assert cgroup_of(8, str(proc)) is None
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n")
    assert cgroup_oom_kills(str(tmp_path)) == 2
    (tmp_path / "memory.events").unlink()
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n")
    assert cgroup_oom_kills(str(tmp_path)) == 5


def test_kernel_log_reads_one_record_per_read_until_eagain(monkeypatch):
    """EPIPE (records overwritten) goes on with the next; EAGAIN ends; the header and the
    continuation lines are not the message."""
    reads = [b"6,100,5000,-;usb 1-1: new device\n SUBSYSTEM=usb\n", OSError(errno.EPIPE, "Broken pipe"),
             b"3,140,6000,-;Out of memory: Killed process 4242 (python3) total-vm:1kB\n",
             BlockingIOError(errno.EAGAIN, "again"), b"never read"]

    def fake_read(fd, size):
        assert size >= 8192
        item = reads.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    log = KernelLog("/nonexistent/kmsg")
    assert not log.readable and "/nonexistent/kmsg" in log.error
    log.fd, log.error = -1, ""
    monkeypatch.setattr(oom.os, "read", fake_read)
    assert list(log.messages()) == ["usb 1-1: new device", "Out of memory: Killed process 4242 (python3) total-vm:1kB"]
    assert reads == [b"never read"]
    reads[:] = [OSError(errno.EINVAL, "Invalid argument"), b"never read"]
    assert list(log.messages()) == [] and "Invalid argument" in log.error
    log.fd = None

