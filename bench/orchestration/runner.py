"""The orchestrator: expands a config into work items, runs each in a fresh worker process with a
timeout, turns what comes back into RunRecords, and stores each one as soon as it exists.

The parent never measures and never busy-waits: while a worker runs, it blocks on the worker's pipe
(waking only to refresh a terminal display), and it enforces the timeout by killing the worker's
whole process group. A crash, an out-of-memory, a timeout or an exception of one item becomes a
failed record, and the run goes on with the next item.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from bench.config.schema import Config, as_plain
from bench.results.diagnostics import diagnose
from bench.results.energy import energy_summary
from bench.measurement.loop import LoopResult
from bench.results.metrics import (adaptation_window, continual_metrics, fit_metrics, load_metrics, loadgen_metrics,
                                  loop_metrics, training_metrics)
from bench.results.records import RunRecord, new_id, utc_now
from bench.results.store import ResultsStore
from bench.system.oom import OomEvidence, OomWatch
from bench.orchestration.protocol import Error, ItemRequest, Progress, ProtocolError, Result, decode, default_cache_dir
from bench.orchestration.scratch import make_scratch, remove_scratch, remove_stale
from bench.orchestration.sweep import SweepPoint, batch_sweep, point_from_record

__all__ = ["WorkItem", "WorkerOutcome", "expand", "run_worker", "Runner", "default_cache_dir"]

LOG_TAIL_CHARS = 4000


@dataclass(frozen=True)
class WorkItem:
    workload: str
    batch_size: int
    scenario: str

    @property
    def label(self) -> str:
        return f"{self.workload} b={self.batch_size} {self.scenario}"


@dataclass
class WorkerOutcome:
    """What one worker process gave back: a result, or a failure with its kind and evidence."""

    result: Optional[dict[str, Any]] = None
    error: Optional[dict[str, Any]] = None
    returncode: Optional[int] = None
    wall_s: float = 0.0
    events: list[Progress] = field(default_factory=list)
    # Lines the parent could not read as messages (another protocol version, a broken line): the
    # failure's evidence when no result or error came.
    unreadable: list[str] = field(default_factory=list)


def expand(cfg: Config, workload_names: list[str]) -> list[WorkItem]:
    """Work items of one config: its workloads (or the selected ones) x its batch size x its scenario."""
    names = [n for n in workload_names if not cfg.suite.only or n in cfg.suite.only]
    batch = cfg.batch_size if cfg.batch_size is not None else cfg.scenario.default_batch_size
    return [WorkItem(name, batch, cfg.scenario.name) for name in names]


@contextmanager
def signals_held(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[list[int]]:
    """Ctrl-C and SIGTERM held back while a record is stored, then delivered: the JSON file is written
    first and its row then, and an interruption between the two would leave a file without its row
    (kept, and found again by a resume or `bench store check --repair`, but not what a clean exit
    should leave). The hold lasts as long as the store's write (bounded by its busy timeout).

    Python runs signal handlers in the main thread only, and only a handler set from Python can be
    put back: elsewhere, or for a handler set outside Python, nothing is held."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = {number: signal.getsignal(number) for number in signals}
    previous = {number: handler for number, handler in previous.items() if handler is not None}
    for number in previous:
        signal.signal(number, lambda signum, frame: held.append(signum))
    try:
        yield held
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(held):  # each signal once, in the order it came
            handler = previous[number]
            if callable(handler):
                handler(number, None)  # Ctrl-C's KeyboardInterrupt, SIGTERM's Terminated
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), number)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - LOG_TAIL_CHARS))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_worker(
    item: ItemRequest,
    timeout_s: float,
    on_event: Callable[[dict[str, Any]], None] = lambda event: None,
    refresh_s: Optional[float] = None,
    on_tick: Callable[[], None] = lambda: None,
    oom_watch: Callable[[], OomWatch] = OomWatch.open,
) -> WorkerOutcome:
    """Run one item in a new worker process (own session, so its whole group can be killed), with a
    scratch folder of its own (its log, the sampler's samples) that is gone when this returns or
    raises. ``oom_watch`` opens the sources that may name the worker as the out-of-memory killer's
    victim (bench.system.oom), before the worker starts."""
    try:
        scratch = make_scratch()
    except OSError as exc:
        return WorkerOutcome(error={"kind": "crash", "message": f"worker could not start: no temporary folder "
                                                                f"for it ({exc}); free space or set TMPDIR"})
    watch: Optional[OomWatch] = None
    try:
        watch = oom_watch()
        return _run_worker(replace(item, scratch_dir=str(scratch)), scratch, watch, timeout_s, on_event,
                           refresh_s, on_tick)
    finally:
        if watch is not None:
            watch.close()
        remove_scratch(scratch)


def _run_worker(item: ItemRequest, scratch: Path, watch: OomWatch, timeout_s: float,
                on_event: Callable[[dict[str, Any]], None], refresh_s: Optional[float],
                on_tick: Callable[[], None]) -> WorkerOutcome:
    outcome = WorkerOutcome()
    log_path = scratch / "worker.log"
    log = open(log_path, "wb")
    read_fd, write_fd = os.pipe()
    start = time.monotonic()
    deadline = start + timeout_s
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker.process", str(write_fd)],
            stdin=subprocess.PIPE, stdout=log, stderr=log, pass_fds=(write_fd,),
            start_new_session=True, env=env, close_fds=True,
        )
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        log.close()
        outcome.error = {"kind": "crash", "message": f"worker could not start: {exc}"}
        return outcome
    os.close(write_fd)
    log.close()
    watch.started(proc.pid)
    timed_out = False
    try:
        assert proc.stdin is not None
        try:
            proc.stdin.write(item.to_wire().encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(read_fd, selectors.EVENT_READ)
            eof = False
            while not eof:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                wait = remaining if refresh_s is None else min(remaining, refresh_s)
                if not selector.select(wait):  # blocks: no busy-waiting
                    if refresh_s is not None:
                        on_tick()
                    continue
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    eof = True
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    _handle_line(line, outcome, on_event)
        if timed_out:
            _kill_group(proc)
            proc.wait()
            outcome.error = {"kind": "timeout",
                             "message": f"no result within worker.timeout_s={timeout_s:g} s: worker killed"}
        else:
            try:
                proc.wait(timeout=max(5.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.wait()
                if outcome.result is None and outcome.error is None:  # our SIGKILL, not the kernel's
                    outcome.error = {"kind": "crash", "message": "the worker closed its pipe without a result "
                                                                 "and did not exit: killed"}
        # Anything the worker left behind (a sampler, a compiler) goes with it.
        _kill_group(proc)
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        os.close(read_fd)
    outcome.returncode = proc.returncode
    outcome.wall_s = time.monotonic() - start
    if outcome.result is None and outcome.error is None:
        evidence = watch.evidence(proc.pid) if proc.returncode == -signal.SIGKILL else None
        outcome.error = _death_reason(proc.returncode, evidence, proc.pid)
        if outcome.unreadable:
            outcome.error["message"] += f"; the worker's messages could not be read: {outcome.unreadable[0]}"
    if outcome.error is not None:
        outcome.error["log_tail"] = _tail(log_path)
        outcome.error["returncode"] = proc.returncode
    return outcome


def _handle_line(line: bytes, outcome: WorkerOutcome, on_event: Callable[[dict[str, Any]], None]) -> None:
    if not line.strip():
        return
    try:
        message = decode(line)
    except ProtocolError as exc:
        outcome.unreadable.append(str(exc))
        return
    if isinstance(message, Result):
        outcome.result = message.data
    elif isinstance(message, Error):
        outcome.error = {"kind": message.kind, "message": message.message, "traceback": message.traceback}
    elif isinstance(message, Progress):
        outcome.events.append(message)
        on_event(message.to_event())
    else:
        outcome.unreadable.append(f"a {message.type!r} message is not one a worker sends")


def _death_reason(returncode: Optional[int], evidence: Optional[OomEvidence], pid: int = 0) -> dict[str, Any]:
    """Why a worker died without a word. SIGKILL is an out-of-memory only on evidence that names
    this worker (the kernel's log, its own cgroup): the host's OOM count rising during the item is
    another process's OOM as often as this one's, and is only mentioned."""
    if returncode is not None and returncode < 0:
        if -returncode != signal.SIGKILL:
            return {"kind": "crash", "message": f"worker crashed with {_signal_name(-returncode)}"}
        evidence = evidence or OomEvidence()
        if evidence.named:
            return {"kind": "oom", "message": f"worker killed by the kernel's out-of-memory killer ({evidence.named})"}
        message = "worker killed by SIGKILL"
        if evidence.elsewhere:
            why = (f"the kernel's log could not be read to tell whose ({evidence.unreadable})" if evidence.unreadable
                   else f"no kernel record names this worker (pid {pid})")
            message += f"; an out-of-memory kill happened on this host during the item, but {why}"
        return {"kind": "crash", "message": message}
    return {"kind": "crash", "message": f"worker exited with code {returncode} without a result"}


def _utc_ms() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class Runner:
    """Runs every work item of one config and stores one record per item."""

    def __init__(self, cfg: Config, store: ResultsStore, system: dict[str, Any], display: Any,
                 run_id: Optional[str] = None, sweep_id: str = "") -> None:
        self.cfg = cfg
        self.store = store
        self.system = system
        self.display = display
        self.run_id = run_id or new_id()
        self.sweep_id = sweep_id

    def item_request(self, item: WorkItem) -> ItemRequest:
        return ItemRequest.from_config(self.cfg, item.workload, item.batch_size, self.run_id)

    def run(self, items: list[WorkItem], catalog: dict[str, dict[str, Any]]) -> list[tuple[RunRecord, Path]]:
        remove_stale()  # what runs killed with SIGKILL left in the temporary folder
        return [self.run_one(index, len(items), item, catalog) for index, item in enumerate(items)]

    def run_one(self, index: int, total: int, item: WorkItem,
                catalog: dict[str, dict[str, Any]]) -> tuple[RunRecord, Path]:
        """One item in its worker (or ``repeats`` workers, one after another, pooled into one record);
        the record is stored before the next item starts."""
        from dataclasses import replace

        repeats = max(1, int(self.cfg.repeats))
        records: list[RunRecord] = []
        measured_from = _utc_ms()
        for process in range(repeats):
            label = item.label if repeats == 1 else f"{item.label} (process {process + 1} of {repeats})"
            self.display.start_item(index, total, label)
            outcome = run_worker(
                self.item_request(item), self.cfg.worker.timeout_s,
                on_event=self.display.event, refresh_s=self.display.refresh_s, on_tick=self.display.tick,
            )
            records.append(self.make_record(item, outcome, catalog.get(item.workload, {})))
            if records[-1].status != "ok":
                break  # one process's failure is the item's: no pooled figure from the others
        record = records[0] if repeats == 1 else self._pooled(records, repeats)
        # The item's whole time on the machine, its worker processes' start to end: windows of records of
        # one machine never overlap (bench.cluster.lock), which a fleet's records can be checked for.
        record = replace(record, setup={**record.setup, "measured_from": measured_from, "measured_to": _utc_ms()})
        with signals_held():  # the file and its row both, not a file whose row a Ctrl-C cut off
            path = self.store.write(record)
        self.display.finish_item(record)
        return record, path

    def _pooled(self, records: list[RunRecord], repeats: int) -> RunRecord:
        from dataclasses import replace

        from bench.results.repeats import pool

        last = records[-1]
        if last.status != "ok":
            error = dict(last.error or {})
            error["message"] = f"process {len(records)} of {repeats}: {error.get('message', '')}"
            return replace(last, error=error)
        return pool(records, self.cfg.scenario.confidence)

    def run_sweep(self, workloads: list[str], catalog: dict[str, dict[str, Any]],
                  previous: dict[tuple[str, int], RunRecord]) -> tuple[list[tuple[RunRecord, Path]], dict[str, Any]]:
        """A batch sweep per workload; points found in ``previous`` (a resumed sweep) are reused."""
        sw = self.cfg.sweep
        remove_stale()
        done: list[tuple[RunRecord, Path]] = []
        results: dict[str, Any] = {}
        counter = [0]

        for workload in workloads:
            def measure(batch: int, workload: str = workload) -> SweepPoint:
                old = previous.get((workload, batch))
                if old is not None:
                    return point_from_record(old, reused=True)
                record, path = self.run_one(counter[0], 0, WorkItem(workload, batch, self.cfg.scenario.name), catalog)
                counter[0] += 1
                done.append((record, path))
                return point_from_record(record)

            def remeasure(batch: int, workload: str = workload) -> SweepPoint:
                record, path = self.longer_window().run_one(counter[0], 0, WorkItem(workload, batch,
                                                                                    self.cfg.scenario.name), catalog)
                counter[0] += 1
                done.append((record, path))
                return point_from_record(record, remeasured=True)

            budget = catalog.get(workload, {}).get("latency_tier_ms") if sw.respect_latency_requirement else None
            results[workload] = batch_sweep(measure, sw.start, sw.factor, sw.max_batch, sw.min_gain, sw.patience,
                                            budget, remeasure, sw.require_converged)
        return done, results

    def longer_window(self) -> "Runner":
        """This runner with twice the measuring window (min and max duration), for a point measured
        again after it did not converge; same store, display, run and sweep."""
        from dataclasses import replace

        sc = self.cfg.scenario
        cfg = replace(self.cfg, scenario=replace(sc, min_duration_s=2 * sc.min_duration_s,
                                                 max_duration_s=2 * sc.max_duration_s))
        return Runner(cfg, self.store, self.system, self.display, self.run_id, self.sweep_id)

    def make_record(self, item: WorkItem, outcome: WorkerOutcome, catalog: dict[str, Any]) -> RunRecord:
        cfg = self.cfg
        config = as_plain(cfg)
        config["batch_size"] = item.batch_size
        config["suite"]["only"] = [item.workload]
        common: dict[str, Any] = {
            "id": new_id(), "created_at": utc_now(), "config": config, "system": self.system,
            "scenario": as_plain(cfg.scenario), "tag": cfg.tag, "run_id": self.run_id, "sweep_id": self.sweep_id,
        }
        if outcome.result is None:
            oom = (outcome.error or {}).get("kind") == "oom"
            return RunRecord(
                status="oom" if oom else "failed",
                workload={**catalog, "suite": cfg.suite.name, "name": item.workload, "batch_size": item.batch_size},
                backend={"name": cfg.backend.name, "device": cfg.backend.device,
                         "precision": cfg.backend.precision},
                error=outcome.error, **common,
            )
        res = outcome.result
        measured, metrics, loop_window, processed = self._measured_metrics(res)
        metrics["first_inference_ms"] = res["setup"]["first_inference_ms"]
        metrics["setup_s"] = res["setup"]["build_s"] + res["setup"]["prepare_s"]
        conversion = (res["backend"].get("effective") or {}).get("conversion")
        if conversion:
            res["setup"]["conversion"] = conversion
        metrics["peak_rss_mib"] = res["memory"]["peak_rss_mib"]
        sensors = res.get("sensors") or {}
        estimate = None
        if cfg.sensors.estimate:
            noise = res.get("noise") or {}
            cores = noise.get("usable_cpus") or 1
            own = noise.get("own_cpu_s")
            window_s = noise.get("window_s")
            if own is not None and window_s:
                estimate = {"tdp_w": cfg.sensors.tdp_w, "cpu_utilisation": min(1.0, own / (window_s * cores))}
        idle = sensors.get("idle_window_ns")
        energy = energy_summary(sensors, loop_window, processed, tuple(idle) if idle else None, estimate)
        metrics.update(energy["metrics"])
        if "continual" in res:
            metrics.update(_adaptation_energy(res["continual"], sensors))
            if metrics.get("trainer_peak_rss_mib") is not None:
                # Each process's own peak, summed: an upper bound on the two at once.
                metrics["peak_rss_with_trainer_mib"] = metrics["peak_rss_mib"] + metrics["trainer_peak_rss_mib"]
            metrics.update(self._training_reference(item, metrics.get("train_sps_colocated")))
        device_memory = res["backend"].get("device_memory") or {}
        if "peak_device_mib" not in metrics and device_memory.get("torch_max_reserved_mib") is not None:
            metrics["peak_device_mib"] = device_memory["torch_max_reserved_mib"]
        flops = res["workload"].get("flops_per_sample")
        if flops and metrics.get("throughput_sps"):
            metrics["achieved_gflops"] = flops * metrics["throughput_sps"] / 1e9
        warnings = diagnose(metrics, measured, res["noise"], metrics["first_inference_ms"], res["parity"],
                            energy["energy"], backend=res["backend"])
        return RunRecord(
            status="ok", workload=res["workload"], backend=res["backend"], metrics=metrics,
            setup=res["setup"], parity=res["parity"], noise=res["noise"], energy=energy["energy"],
            warnings=[w.to_dict() for w in warnings],
            raw={**{k: res[k] for k in ("loop", "load", "loadgen", "training", "continual") if k in res},
                 "memory": res["memory"], "sensors": sensors},
            **common,
        )

    def _training_reference(self, item: WorkItem, colocated: Optional[float]) -> dict[str, Any]:
        """scenario=continual: the newest valid scenario=training record of the same workload, trained
        as the trainer trains (device, precision, batch) on this hardware, when the store holds one: its
        training throughput is the reference for the co-located one, beside the trainer's own alone timing."""
        sc = self.cfg.scenario
        train = sc.train
        filters = {"scenario": ["training"], "workload": [item.workload], "status": ["ok"], "valid": ["true"],
                   "device": [str(train.device)], "precision": [str(train.precision)],
                   "batch_size": [str(sc.adapt.batch_size)]}
        if self.system.get("hardware"):
            filters["hardware"] = [str(self.system["hardware"])]
        try:
            found = self.store.select(filters)
        except Exception:  # noqa: BLE001 - a reference is a bonus; the record stands without it
            return {}
        eager = [r for r in found if not str(r.backend.get("name", "")).endswith("-compiled")]
        if not eager or eager[-1].metrics.get("throughput_sps") is None:
            return {}
        ref = eager[-1]
        out = {"train_sps_reference": ref.metrics["throughput_sps"], "train_reference_record": ref.id}
        if colocated:
            out["train_slowdown_vs_reference"] = ref.metrics["throughput_sps"] / colocated
        return out

    def _measured_metrics(self, res: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], tuple[int, int], int]:
        """What was measured (the loop, a load scenario or LoadGen): its raw result, its metrics, its
        window (for energy) and the samples it processed."""
        confidence = self.cfg.scenario.confidence
        if "load" in res:
            metrics, window, processed = load_metrics(res["load"], confidence)
            return res["load"], metrics, window, processed
        if "continual" in res:
            metrics, window, processed = continual_metrics(res["continual"], confidence)
            return res["continual"], metrics, window, processed
        if "loadgen" in res:
            metrics, window, processed = loadgen_metrics(res["loadgen"])
            return res["loadgen"], metrics, window, processed
        if "loop" not in res:  # the fit of PatchCore or PaDiM (scenario=training)
            metrics, window, processed = fit_metrics(res["training"])
            return res["training"], metrics, window, processed
        loop = LoopResult.from_dict(res["loop"])
        metrics = loop_metrics(loop, confidence)
        if "training" in res:
            metrics.update(training_metrics(res["training"]))
        return res["loop"], metrics, (loop.start_monotonic_ns, loop.end_monotonic_ns), loop.iterations * loop.batch_size


def _adaptation_energy(continual: dict[str, Any], sensors: dict[str, Any]) -> dict[str, Any]:
    """Energy of the one adaptation (detection to swap, serving included) from the sensors, and what it
    cost beyond serving: minus the steady phase's mean power over the adaptation's length."""
    windows = adaptation_window(continual)
    if windows is None:
        return {}
    adapting, steady = windows
    during = energy_summary(sensors, adapting, 1)["metrics"].get("energy_j")
    if during is None:
        return {}
    out = {"energy_per_adaptation_j": during}
    before = energy_summary(sensors, steady, 1)["metrics"].get("energy_j") if steady[1] > steady[0] else None
    if before is not None:
        out["energy_per_adaptation_extra_j"] = during - before / ((steady[1] - steady[0]) / 1e9) * (
            (adapting[1] - adapting[0]) / 1e9)
    return out
