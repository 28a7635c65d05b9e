"""scenario=continual in the worker: serving while the inputs drift and the model adapts.

The serving side (this process) builds the workload, prepares the serving backend on it (version 0,
parity-checked as any item), generates two pools of distinct samples (steady, and drifted by
scenario.drift: bench.measurement.drift) and loads them into the session, and starts the trainer
(bench.worker.trainer, a process of its own on the same machine). Then, inside the measured window
(sensors, noise evidence), one timeline (bench.measurement.continual.run_timeline): arrivals
(Poisson or camera streams), the drift detector on the served inputs, and at detection an
adaptation on a thread of its own (``Adaptation``): the recent served samples and replay samples
handed to the trainer (.npy files), the trainer's fine-tuning or re-fit, its save, reference
outputs and conversion; then here the adapted model prepared from that conversion (a cache of this
run only), its inputs loaded, its parity checked against the trainer's PyTorch fp32 outputs, and the
swap. With scenario.find_peak each probe is such a timeline at one rate (the trainer and the served
model reset to version 0 between probes), searched like the server scenario's peak.

Every stage is timed on one clock (marks), and the stages' sum is the time from detection to swap:
handoff (samples written, the request read by the trainer), training, save, reference, conversion,
reply, load (prepare and inputs), parity, swap.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

__all__ = ["run_continual_item", "TrainerProcess", "Adaptation"]

_TRAINER_START_TIMEOUT_S = 600.0
TRAINER_CPUS_ENV = "BENCH_TRAINER_CPUS"
_ADAPT_TIMEOUT_S = 1800.0


class TrainerFailed(RuntimeError):
    pass


class TrainerProcess:
    """The trainer (bench.worker.trainer) as a child process: the item on its stdin, JSON replies on
    a pipe of their own, its output in a log in the scratch folder."""

    def __init__(self, item: Any, scratch: Path, cpus: Optional[list[int]] = None) -> None:
        read_fd, write_fd = os.pipe()
        self.log_path = scratch / "trainer.log"
        self._log = open(self.log_path, "wb")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in [os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), env.get("PYTHONPATH", "")] if p)
        if cpus:  # a child inherits the server's affinity (scenario.serve_cpus): the trainer's default is all
            env[TRAINER_CPUS_ENV] = ",".join(map(str, cpus))
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.worker.trainer", str(write_fd)],
                                     stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT,
                                     pass_fds=(write_fd,), env=env)
        os.close(write_fd)
        self._fd = read_fd
        self._buffer = b""
        assert self.proc.stdin is not None
        self.proc.stdin.write((item.to_wire() + "\n").encode())
        self.proc.stdin.flush()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def receive(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TrainerFailed(f"the trainer gave no answer within {timeout_s:.0f} s")
            ready, _, _ = select.select([self._fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._fd, 1 << 16)
                if not chunk:
                    code = self.proc.wait(timeout=10)
                    raise TrainerFailed(f"the trainer exited (code {code}): {self.tail()}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def close(self) -> None:
        from bench.system.sensors.sampler import stop_child

        stop_child(self.proc)
        os.close(self._fd)
        self._log.close()


@dataclass
class Served:
    """A model version as served: its session and its loaded pools."""

    version: int
    session: Any
    steady: list[Any]
    drifted: list[Any]


def _pools(item: Any, suite: Any, workload: Any, options: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """The steady and drifted pools (numpy, ``scenario.pool`` samples each), drawn by the suite as it
    draws the measured inputs, with seeds of their own; the drifted pool is other samples shifted."""
    import numpy as np

    from bench.measurement.drift import DriftSpec, InputStats, apply_drift

    sc = item.scenario
    n = int(sc.pool)
    inputs = suite.make(workload, 2 * n, int(item.suite.seed) + 1, options).inputs
    if len(inputs) != 1:
        raise ValueError(f"{workload.name} takes {len(inputs)} inputs: scenario=continual drifts one input tensor")
    samples = inputs[0].float().numpy()
    steady, source = samples[:n], samples[n:]
    spec = DriftSpec(brightness=float(sc.drift.brightness), contrast=float(sc.drift.contrast),
                     texture=float(sc.drift.texture), level=float(sc.drift.level), scale=float(sc.drift.scale),
                     seed=int(sc.seed))
    stats = InputStats.of(steady)
    drifted = apply_drift(source, spec, stats)
    info = {"pool": n, "spec": spec.to_dict(), "kind": "images" if steady.ndim == 4 else "series",
            "steady_mean": float(steady.mean()), "drifted_mean": float(drifted.mean()),
            "steady_std": float(steady.std()), "drifted_std": float(drifted.std())}
    return np.ascontiguousarray(steady), np.ascontiguousarray(drifted), info


def _same_device(train: str, serve: str) -> bool:
    """Whether the trainer (PyTorch: cpu, cuda[:N]) and the serving backend (its own names: cpu,
    OpenVINO's CPU and GPU.N, cuda:N) use one device. OpenVINO's GPU is an Intel GPU, never a CUDA one;
    a CUDA device without an index is the current one, index 0."""
    t, s = train.lower(), serve.lower()
    if t == "cpu" or s == "cpu":
        return t == s
    if not (t.startswith("cuda") and s.startswith("cuda")):
        return False
    index = lambda name: name.partition(":")[2] or "0"  # noqa: E731
    return index(t) == index(s)


def _importable(cls: type) -> bool:
    """Whether pickle can name ``cls`` (torch.save of a module stores its classes by import path)."""
    try:
        pickle.dumps(cls)
        return True
    except Exception:  # noqa: BLE001 - any failure means: not by name
        return False


def _batches(pool: Any, batch_size: int) -> list[Any]:
    count = max(1, len(pool) // batch_size)
    return [pool[i * batch_size:(i + 1) * batch_size] for i in range(count)]


class Adaptation:
    """One adaptation, on a thread of its own, from the detection to the swap (see the module
    docstring). ``stages`` holds each stage's seconds; ``error`` what failed."""

    def __init__(self, item: Any, trainer: TrainerProcess, prepare: Callable[[str, str, int, str], Served],
                 parity: Callable[[Served, str], dict[str, Any]], slot: Any, recent: Callable[[], Any], replay: Any,
                 scratch: Path, version: int, key: str) -> None:
        self.item, self.trainer, self.prepare, self.parity = item, trainer, prepare, parity
        self.slot, self.recent, self.replay, self.scratch = slot, recent, replay, scratch
        self.version, self.key = version, key
        self.stages: dict[str, float] = {}
        self.reply: dict[str, Any] = {}
        self.parity_result: dict[str, Any] = {}
        self.served: Optional[Served] = None
        self.error = ""
        self.swapped = False
        self.thread: Optional[threading.Thread] = None

    def start(self, found: dict[str, Any]) -> None:
        self.thread = threading.Thread(target=self._run, name="bench-adaptation", daemon=True)
        self.thread.start()

    def join(self, timeout_s: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout_s)

    @property
    def started(self) -> bool:
        return self.thread is not None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _run(self) -> None:
        import numpy as np

        from bench.worker.trainer import AdaptRequest

        marks = self.slot.marks
        clock = marks.clock
        try:
            t = clock.now()
            folder = self.scratch / f"adapt-{self.version}"
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / "recent.npy", self.recent())
            np.save(folder / "replay.npy", self.replay)
            request = AdaptRequest(recent_path=str(folder / "recent.npy"), replay_path=str(folder / "replay.npy"),
                                   out_dir=str(folder), model_key=self.key, version=self.version)
            self.trainer.send(request.to_wire())
            written = clock.now()
            self.stages["samples_written_s"] = (written - t) / 1e9
            reply = self.trainer.receive(_ADAPT_TIMEOUT_S)
            replied = marks.mark("trained_and_converted")
            self.reply = reply
            if not reply.get("ok"):
                raise TrainerFailed(reply.get("error") or "the trainer failed")
            work = float(reply["train_s"]) + float(reply["save_s"]) + float(reply["reference_s"]) + float(reply["convert_s"])
            for key in ("train_s", "save_s", "reference_s", "convert_s"):
                self.stages[key] = float(reply[key])
            # What the trainer's own timers do not hold: reading the request and the samples, writing the reply.
            self.stages["trainer_overhead_s"] = max(0.0, (replied - written) / 1e9 - work)
            t = clock.now()
            served = self.prepare(reply["model_path"], reply.get("model_format") or "module", self.version, self.key)
            self.served = served
            loaded = clock.now()
            self.stages["load_s"] = (loaded - t) / 1e9
            self.parity_result = self.parity(served, reply["reference_path"])
            checked = clock.now()
            self.stages["parity_s"] = (checked - loaded) / 1e9
            if self.parity_result.get("ok") or not self.item.scenario.require_parity:
                self.slot.swap(served)
                self.swapped = True
                self.stages["swap_s"] = (clock.now() - checked) / 1e9
            else:
                marks.mark("parity_failed")
                self.error = f"the adapted model failed its parity check: {self.parity_result.get('detail') or ''} " \
                             f"(max relative error {self.parity_result.get('max_rel_error')})".strip()
        except Exception as exc:  # noqa: BLE001 - recorded with the timeline; the serving goes on
            self.error = f"{type(exc).__name__}: {exc}"
            marks.mark("adaptation_failed")


def run_continual_item(item: Any, emit: Callable[[Any], None]) -> dict[str, Any]:
    """Build, prepare, start the trainer, warm up, and measure the timeline (or the peak search)."""
    import numpy as np
    import torch

    from bench.backends.base import PrepareContext
    from bench.backends.torch_eager import flatten_outputs
    from bench.measurement import load
    from bench.measurement.continual import Marks, ModelSlot, run_timeline
    from bench.measurement.drift import DriftDetector, features
    from bench.measurement.loop import warm_up
    from bench.measurement.clock import REAL_CLOCK
    from bench.orchestration.protocol import Progress
    from bench.suites.base import load_suite, resolve
    from bench.suites.cost import workload_cost
    from bench.worker.models import model_key, parity_check
    from bench.worker.trainer import conversion_cache
    from bench.worker.window import loop_settings_of, measured_window

    def phase(name: str, **info: Any) -> None:
        emit(Progress(name, info))

    sc, settings = item.scenario, item.backend
    batch_size, seed, options = item.batch_size, item.suite.seed, item.suite_options
    machine_cpus = sorted(os.sched_getaffinity(0))  # the trainer's by default, whatever serving keeps
    if sc.serve_cpus:
        os.sched_setaffinity(0, set(int(c) for c in sc.serve_cpus))
    scratch = Path(item.scratch_dir or Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-continual-{os.getpid()}")
    scratch.mkdir(parents=True, exist_ok=True)

    phase("build")
    t0 = time.perf_counter()
    suite = load_suite(item.suite.catalog)
    workload = suite.adapted(suite.get(item.workload), options)
    instance = suite.make(workload, batch_size, seed, options)
    model, inputs = instance.model, instance.inputs
    if model is None:
        raise ValueError("scenario=continual adapts a torch module: give model.target, not model.path")
    # What an adapted model's weights load into when the trainer cannot save the module itself (a class
    # that cannot be imported by name): a copy before the backend places it. Only then: PatchCore's
    # memory bank alone is 100 MB.
    pristine = None if all(_importable(type(m)) for m in model.modules()) else copy.deepcopy(model)
    steady_pool, drifted_pool, drift_info = _pools(item, suite, workload, options)
    steady_batches, drifted_batches = _batches(steady_pool, batch_size), _batches(drifted_pool, batch_size)
    build_s = time.perf_counter() - t0
    cost = workload_cost(workload, seed) if workload.builder else {"params": None, "flops_per_sample": None}

    phase("reference")
    with torch.inference_mode():
        reference = [t.detach().float().numpy() for t in flatten_outputs(model(*inputs))]

    backend = resolve(settings.impl)(settings)

    def load_pools(session: Any) -> tuple[list[Any], list[Any]]:
        return ([session.load_inputs((torch.from_numpy(b),)) for b in steady_batches],
                [session.load_inputs((torch.from_numpy(b),)) for b in drifted_batches])

    phase("prepare")
    t0 = time.perf_counter()
    base_key = model_key(item.suite.catalog, seed, options, workload, inputs)
    context = PrepareContext(scenario="server", batch_size=batch_size, max_batch_size=batch_size,
                             cache_dir=item.cache.dir, cache_enabled=item.cache.enabled, model_key=base_key)
    session = backend.prepare(model, inputs, context)
    sessions = [session]
    trainer: Optional[TrainerProcess] = None
    try:
        first_loaded = session.load_inputs(inputs)
        t1 = time.perf_counter_ns()
        outputs = session.run(first_loaded)
        session.synchronize()
        first_ms = (time.perf_counter_ns() - t1) / 1e6
        parity = parity_check(session.to_numpy(outputs), reference, settings.precision, instance.reference_name)
        del outputs
        served0 = Served(0, session, *load_pools(session))
        prepare_s = time.perf_counter() - t0
        effective0 = session.effective_settings()

        phase("trainer")
        t0 = time.perf_counter()
        trainer = TrainerProcess(item, scratch, machine_cpus)
        ready = trainer.receive(_TRAINER_START_TIMEOUT_S)
        if ready.get("kind") != "ready":
            raise TrainerFailed(f"the trainer could not start: {ready.get('error')}")
        trainer_info = {**ready["info"], "start_s": time.perf_counter() - t0}
        serve_cpus = sorted(os.sched_getaffinity(0))
        train_cpus = trainer_info.get("limits", {}).get("cpus") or serve_cpus
        train_device, serve_device = str(sc.train.device), str(settings.device)
        same_device = _same_device(train_device, serve_device)
        # Shared: the trainer and the server compete for one device (the usual edge box); on the CPU,
        # for the cores both may run on.
        colocation = {"shared": bool(same_device and (not train_device.startswith("cpu")
                                                      or set(train_cpus) & set(serve_cpus))),
                      "train_device": train_device, "serve_device": serve_device, "train_cpus": train_cpus,
                      "serve_cpus": serve_cpus}

        def run_pool(served: Served, first: int, drifted: bool) -> Any:
            pool = served.drifted if drifted else served.steady
            return pool[first % len(pool)]

        def host_batch(first: int, drifted: bool) -> Any:
            pool = drifted_batches if drifted else steady_batches
            return pool[first % len(pool)]

        def run_batch(served: Served, first: int, k: int, drifted: bool) -> None:
            served.session.run(run_pool(served, first, drifted))
            served.session.synchronize()

        submit_api = getattr(session, "submit", None)
        capacity = int(getattr(session, "in_flight", 1) or 1)

        def submit(served: Served, first: int, k: int, drifted: bool, on_done: Callable[[], None]) -> None:
            served.session.submit(run_pool(served, first, drifted), on_done)

        def batch_features(first: int, k: int, drifted: bool) -> Any:
            return features(host_batch(first, drifted)[:k])

        def prepare_adapted(model_path: str, fmt: str, version: int, key: str) -> Served:
            if fmt == "module":
                adapted = torch.load(model_path, weights_only=False)
            else:
                if pristine is None:
                    raise TrainerFailed("the trainer saved weights only, for a module whose classes can be imported")
                adapted = copy.deepcopy(pristine)
                adapted.load_state_dict(torch.load(model_path, weights_only=True))
            adapted.eval()
            ctx = PrepareContext(scenario="server", batch_size=batch_size, max_batch_size=batch_size,
                                 cache_dir=conversion_cache(item), cache_enabled=True, model_key=key)
            new_session = backend.prepare(adapted, inputs, ctx)
            sessions.append(new_session)
            return Served(version, new_session, *load_pools(new_session))

        def parity_adapted(served: Served, reference_path: str) -> dict[str, Any]:
            data = np.load(reference_path)
            expected = [data[f"arr_{i}"] for i in range(len([k for k in data.files if k.startswith("arr_")]))]
            loaded = served.session.load_inputs((torch.from_numpy(data["inputs"]),))
            out = served.session.run(loaded)
            served.session.synchronize()
            return parity_check(served.session.to_numpy(out), expected, settings.precision,
                                "the adapted model in PyTorch fp32 (the trainer's)")

        loop_settings = loop_settings_of(sc, batch_size, scenario="latency")

        def warm() -> Any:
            counter = [0]

            def run_one() -> Any:
                counter[0] += 1
                return run_batch(served0, counter[0], batch_size, counter[0] % 2 == 1)

            return warm_up(run_one, lambda: None, loop_settings)

        slo_ms = float(sc.slo_ms or workload.latency_tier_ms)
        load_settings = load.LoadSettings(batch_size=batch_size, max_wait_ns=int(float(sc.max_wait_ms) * 1e6),
                                          slo_ns=int(slo_ms * 1e6), drain_ns=int(float(sc.drain_s) * 1e9),
                                          percentile=float(sc.percentile))
        duration_ns = int(float(sc.duration_s) * 1e9)
        drift_ns = int(float(sc.drift.at_s) * 1e9)

        def timeline(rate: Optional[float], index: int) -> dict[str, Any]:
            """One timeline at ``rate`` (Poisson) or with the configured streams; version 0 served
            at its start, the trainer reset to the served weights before a probe after the first."""
            if index > 0:
                trainer.send(json.dumps({"kind": "reset"}))
                answer = trainer.receive(_TRAINER_START_TIMEOUT_S)
                if answer.get("kind") != "ready":
                    raise TrainerFailed(f"the trainer could not reset: {answer.get('error')}")
            marks = Marks(REAL_CLOCK)
            slot = ModelSlot(served0, marks)
            det = sc.detector
            detector = DriftDetector(method=str(det.method), reference=int(det.reference), window=int(det.window),
                                     check_every=int(det.check_every), alpha=float(det.alpha),
                                     permutations=int(det.permutations), seed=int(sc.seed) + index)
            served_log: list[tuple[int, int, bool]] = []  # (first, k, drifted) of every batch, in order

            def recent() -> Any:
                rows = []
                for first, k, drifted in reversed(list(served_log)):
                    rows.extend(host_batch(first, drifted)[:k][::-1])
                    if len(rows) >= int(sc.adapt.recent):
                        break
                return np.ascontiguousarray(np.stack(rows[: int(sc.adapt.recent)][::-1]))

            replay = steady_pool[: max(int(sc.adapt.recent), int(sc.adapt.fit_images))]
            adaptation = Adaptation(item, trainer, prepare_adapted, parity_adapted, slot, recent, replay, scratch,
                                    1, f"{base_key}-adapted-{os.getpid()}-{index}-1")

            def features_logged(first: int, k: int, drifted: bool) -> Any:
                served_log.append((first, k, drifted))
                return batch_features(first, k, drifted)

            if sc.arrival == "poisson":
                arrivals = load.poisson_arrivals(float(rate), float(sc.duration_s),
                                                 np.random.default_rng(int(sc.seed)).exponential(
                                                     1.0, int(rate * sc.duration_s * 1.5 + 100)))
            else:
                arrivals = load.stream_arrivals(int(sc.streams), float(sc.fps), float(sc.duration_s), int(sc.seed))
            phase("timeline", rate_qps=rate, duration_s=float(sc.duration_s), drift_at_s=float(sc.drift.at_s))
            origin_mono = time.monotonic_ns()
            origin_perf = REAL_CLOCK.now()
            concurrent = submit_api is not None and capacity > 1
            result = run_timeline(arrivals, load_settings, duration_ns, drift_ns, slot, run_batch, features_logged,
                                  detector, adaptation.start, submit=submit if concurrent else None,
                                  capacity=capacity, after_swap_ns=int(float(sc.after_swap_s) * 1e9))
            served_until = REAL_CLOCK.now()
            if adaptation.running:
                phase("adaptation", note="serving ended before the adaptation did: waiting for it")
                adaptation.join(_ADAPT_TIMEOUT_S)
            # Offsets from the dispatcher's origin (the "start" mark), as the arrivals are; read again
            # here since the adaptation may have marked its end after serving did.
            start = int(slot.marks.get("start"))  # type: ignore[arg-type]
            marks_ns = {name: t - start for name, t in slot.marks.snapshot().items() if name != "start"}
            result.marks_ns = marks_ns
            out = {
                "rate_qps": rate, "arrival": sc.arrival, "streams": int(sc.streams) if sc.arrival == "streams" else None,
                "fps": float(sc.fps) if sc.arrival == "streams" else None,
                "timeline": result.to_dict(), "duration_ns": result.serve.duration_ns, "max_duration_ns": duration_ns,
                "origin_monotonic_ns": origin_mono + (start - origin_perf),
                "served_until_ns": served_until - start,
                "adaptation": {"started": adaptation.started, "swapped": adaptation.swapped, "error": adaptation.error,
                               "stages_s": adaptation.stages, "parity": adaptation.parity_result,
                               "trainer_reply": {k: v for k, v in adaptation.reply.items() if k != "traceback"},
                               "finished_after_serving": bool(adaptation.swapped and marks_ns.get("swapped", 0)
                                                              > served_until - start)},
            }
            if adaptation.served is not None:
                out["adaptation"]["effective"] = adaptation.served.session.effective_settings()
            return out

        def measure_it(_warm: Any) -> dict[str, Any]:
            if not sc.find_peak:
                rate = float(sc.rate_qps) if sc.arrival == "poisson" else None
                return {"continual": {"runs": [timeline(rate, 0)], "search": None}}
            from bench.measurement.continual import phase_results
            from bench.measurement.load.search import find_peak
            from bench.worker.scenarios import service_time_ns

            service = service_time_ns(lambda _k: run_batch(served0, 0, batch_size, False))
            capacity_qps = batch_size / (service / 1e9)
            runs: list[dict[str, Any]] = []

            def probe(rate: float) -> Any:
                run = timeline(rate, len(runs))
                runs.append(run)
                parts = phase_results(_result_of(run))
                adapting = parts.get("adapting")
                if adapting is None or not run["adaptation"]["swapped"]:
                    # No adaptation within the run: the verdict cannot be "meets".
                    return load.ServeResult(rate, [], [], 0, [], [], 1, 1, "no_adaptation", 1, load_settings.slo_ns)
                return adapting

            # find_peak probes 90% of the capacity first: a given start is that 90%.
            seed = capacity_qps if sc.peak_start_qps is None else float(sc.peak_start_qps) / 0.9
            search = find_peak(probe, seed, load_settings.percentile, float(sc.peak_tolerance), int(sc.max_probes))
            return {"continual": {"runs": runs, "search": {**search.to_dict(), "capacity_estimate_qps": capacity_qps,
                                                           "service_ms": service / 1e6}}}

        window = measured_window(item, phase, warm, measure_it)
        window["continual"].update(trainer=trainer_info, drift=drift_info, slo_ms=slo_ms, colocation=colocation,
                                   slo_source="scenario.slo_ms" if sc.slo_ms else "workload",
                                   percentile=float(sc.percentile), batch_size=batch_size)
        result = {
            "workload": {**workload.catalog(), **instance.info, "suite": suite.name, "batch_size": batch_size,
                         "seed": seed, "input_shapes": [list(t.shape) for t in inputs],
                         "input_dtypes": [str(t.dtype).replace("torch.", "") for t in inputs],
                         "params": cost["params"], "flops_per_model_run": cost["flops_per_sample"],
                         "flops_per_sample": cost["flops_per_sample"]},
            "backend": {"name": settings.name, "device": settings.device, "precision": settings.precision,
                        "effective": effective0, "device_memory": session.device_memory()},
            "setup": {"build_s": build_s, "prepare_s": prepare_s, "first_inference_ms": first_ms},
            "parity": parity,
            **window,
        }
    finally:
        if trainer is not None:
            trainer.close()
        for each in sessions:
            try:
                each.close()
            except Exception:  # noqa: BLE001 - the item's own error is the one to report
                pass
    return result


def _result_of(run: dict[str, Any]) -> Any:
    from bench.measurement.continual import ContinualResult

    return ContinualResult.from_dict(run["timeline"])
