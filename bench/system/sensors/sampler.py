"""The sampler: a process of its own that reads the sensors on a schedule (power 20 Hz, memory 50 Hz
by default) and writes time-stamped samples (CLOCK_MONOTONIC, shared by every process on the host,
so the worker's window marks line up with them) as JSON lines to a file.

The worker starts it (``Sampler.start``) and stops it by closing its stdin (``Sampler.stop``). It
also stops when the worker dies: stdin reaches end-of-file, and on Linux the kernel sends SIGTERM
on the parent's death (PR_SET_PDEATHSIG); the runner kills the worker's whole process group too.
It runs in its own process so that reading sensors never takes the worker's CPU time between two
clock reads.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

__all__ = ["Sampler", "main", "read_samples", "die_with_parent", "stop_child"]

PR_SET_PDEATHSIG = 1


def stop_child(proc: "subprocess.Popen[bytes]", timeout_s: float = 10.0) -> None:
    """End a child that stops when its stdin closes (the sampler, scenario=continual's trainer): close
    it, wait ``timeout_s``, then kill."""
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except OSError:  # BrokenPipeError: the child is gone already
        pass
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux prctl)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the caller has another way to notice


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    die_with_parent()  # and stdin's end-of-file stops the loop everywhere
    out_path = Path(argv[0])
    options = json.loads(sys.stdin.readline())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at end-of-file: the worker closed the pipe, or died
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    from bench.system.sensors import make_sensors

    sensors = make_sensors(options)
    probes = [s.probe() for s in sensors]
    live = [s for s, p in zip(sensors, probes) if p.available]
    periods = {"power": 1.0 / float(options.get("power_hz", 20.0)),
               "memory": 1.0 / float(options.get("memory_hz", 50.0))}
    with open(out_path, "w", encoding="utf-8", buffering=1) as out:
        out.write(json.dumps({"probes": [p.to_dict() for p in probes]}) + "\n")
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        next_due = {id(s): time.monotonic() for s in live}
        while not stop.is_set() and live:
            now = time.monotonic()
            for sensor in live:
                if now >= next_due[id(sensor)]:
                    try:
                        values = sensor.read()
                    except Exception as exc:  # noqa: BLE001 - a failing read is recorded, not fatal
                        out.write(json.dumps({"t": time.monotonic_ns(), "s": sensor.name,
                                              "error": f"{type(exc).__name__}: {exc}"}) + "\n")
                        continue
                    out.write(json.dumps({"t": time.monotonic_ns(), "s": sensor.name, "v": values}) + "\n")
                    period = periods.get(sensor.group, periods["power"])
                    # Keep the schedule (no drift), but never queue up missed ticks.
                    next_due[id(sensor)] = max(next_due[id(sensor)] + period, now)
            stop.wait(max(0.0, min(next_due.values()) - time.monotonic()))
        if not live:
            stop.wait()
    for sensor in sensors:
        sensor.close()
    return 0


def read_samples(path: Path) -> dict[str, Any]:
    probes: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {"probes": probes, "samples": samples}
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a last line cut by a kill
        if "probes" in item:
            probes = item["probes"]
        else:
            samples.append(item)
    return {"probes": probes, "samples": samples}


class Sampler:
    """The worker's handle on its sampler process. Its samples file goes to ``directory`` (the
    worker's scratch folder, which the parent removes even when the worker is killed), else to the
    temporary folder; ``stop`` removes it."""

    def __init__(self, options: dict[str, Any], directory: Optional[str] = None) -> None:
        self.options = options
        self.proc: Optional[subprocess.Popen[str]] = None
        fd, name = tempfile.mkstemp(prefix="bench-samples-", suffix=".jsonl", dir=directory or None)
        os.close(fd)
        self.path = Path(name)

    def start(self, timeout_s: float = 30.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.system.sensors.sampler", str(self.path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(self.options) + "\n")
        self.proc.stdin.flush()
        # Wait until the sensors are probed and the first samples are due, so the window is covered.
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                self.proc.kill()
                self.proc.wait()
                self.path.unlink(missing_ok=True)
                raise RuntimeError("the sensor sampler did not start")
        self.proc.stdout.readline()

    def stop(self) -> dict[str, Any]:
        if self.proc is not None:
            stop_child(self.proc)
        data = read_samples(self.path)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        return data


if __name__ == "__main__":
    sys.exit(main())
