"""The trainer of scenario=continual: a process of its own beside the serving worker
(``python -m bench.worker.trainer FD``), as a deployment runs its trainer beside its server, so that
training and serving share the machine (cores, caches, memory bandwidth, a GPU) and not a Python
interpreter (whose lock would slow serving for reasons no hardware has).

It reads the work item (bench.orchestration.protocol.ItemRequest) as the first line on stdin, builds
the workload's training task (bench.suites.training) with the same seed as the served model, applies
its share of the machine (scenario.train: threads, cores, nice, CUDA stream priority), times training
alone (``alone_steps`` on a second, throw-away copy of the task, which also warms the process), and
answers ``ready``. Then each ``adapt`` line (the recent samples' and the replay samples' .npy files)
is one adaptation of the served model: K fine-tuning steps of batches mixing recent and replayed
samples (backprop methods), or a re-fit on such images (PatchCore's memory bank and coreset, PaDiM's
statistics); then the adapted module is saved (torch.save), its fp32 outputs on a parity batch
computed (the reference the serving side checks the converted model against), and the serving
backend's conversion built (Backend.convert: the ONNX export, the IR, the engine) into a cache folder
of this run only, under a key no other model has: the adapted weights are never served a conversion
made for other weights. Replies are JSON lines on the file descriptor FD; the process's own stdout and
stderr go to a log the serving worker keeps.

On a CUDA device (scenario.train.device=cuda) the trainer follows PyTorch's documented APIs (the
training session of backends/torch_training.py, ``torch.cuda.Stream(priority=...)`` for
scenario.train.cuda_stream_priority); not yet run on a GPU (scripts/gpu_check.py's continual item runs it).
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

__all__ = ["AdaptRequest", "AdaptReply", "main"]


@dataclass(frozen=True)
class AdaptRequest:
    recent_path: str  # .npy of the recent served samples (N, *input shape)
    replay_path: str  # .npy of steady samples to replay
    out_dir: str  # where the adapted model, its reference outputs and its conversion go
    model_key: str  # the adapted model's conversion key (unique to this run and version)
    version: int

    def to_wire(self) -> str:
        return json.dumps({"kind": "adapt", **asdict(self)})


@dataclass
class AdaptReply:
    ok: bool
    error: str = ""
    kind: str = ""  # backprop or fit
    train_s: float = 0.0  # the fine-tuning steps or the re-fit, batches made on the way included
    steps: int = 0
    samples: int = 0  # samples trained on (steps x batch) or images fitted
    losses: list[float] = field(default_factory=list)
    fit: dict[str, Any] = field(default_factory=dict)
    save_s: float = 0.0
    reference_s: float = 0.0
    convert_s: float = 0.0
    conversion: dict[str, Any] = field(default_factory=dict)
    model_path: str = ""
    model_format: str = ""  # module (torch.save of the module) or state_dict
    reference_path: str = ""
    peak_rss_mib: float = 0.0
    device_memory: dict[str, float] = field(default_factory=dict)  # the trainer's, where its device tells

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AdaptReply":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _limit(train: Any) -> dict[str, Any]:
    """The trainer's share of the machine, applied to this process before any work."""
    import torch

    applied: dict[str, Any] = {}
    default = os.environ.get("BENCH_TRAINER_CPUS")  # the machine's cores, not the server's (serve_cpus)
    if train.cpus:
        os.sched_setaffinity(0, set(int(c) for c in train.cpus))
    elif default:
        os.sched_setaffinity(0, {int(c) for c in default.split(",")})
    if train.nice:
        os.nice(int(train.nice))
    if train.threads:
        torch.set_num_threads(int(train.threads))
    applied.update(cpus=sorted(os.sched_getaffinity(0)), nice=os.nice(0), threads=torch.get_num_threads())
    return applied


class Trainer:
    def __init__(self, item: Any) -> None:
        self.item = item
        sc = item.scenario
        self.adapt_cfg, self.train_cfg = sc.adapt, sc.train
        self.stream: Any = None
        self.info: dict[str, Any] = {}

    def _task(self) -> Any:
        from bench.suites.training import training_task

        return training_task(self.item.workload, int(self.adapt_cfg.batch_size), int(self.item.suite.seed),
                             self.item.suite_options)

    def _session(self, task: Any) -> Any:
        from bench.backends.torch_training import prepare_fit, prepare_training

        if task.kind == "fit":
            return prepare_fit(task, str(self.train_cfg.device))
        session = prepare_training(task, str(self.train_cfg.device), str(self.train_cfg.precision))
        if self.adapt_cfg.lr is not None:
            for group in session.optimizer.param_groups:
                group["lr"] = float(self.adapt_cfg.lr)
        return session

    def start(self) -> dict[str, Any]:
        import torch

        t0 = time.perf_counter()
        self.info["limits"] = _limit(self.train_cfg)
        if self.train_cfg.cuda_stream_priority is not None and str(self.train_cfg.device).startswith("cuda"):
            # Not yet run on a GPU: torch.cuda.Stream(priority=...) as documented (0 is the lowest, the
            # default stream's; negative is higher); the steps below run on it (torch.cuda.stream). The
            # server is another process on its own streams: the GPU time-slices the two contexts, so a
            # priority orders this process's streams for certain, and the server's only where the driver
            # schedules across processes by priority.
            self.stream = torch.cuda.Stream(device=torch.device(str(self.train_cfg.device)),
                                            priority=int(self.train_cfg.cuda_stream_priority))
        self.task = self._task()
        self.session = self._session(self.task)
        self.info.update(kind=self.task.kind, method=self.task.info.get("method"), build_s=time.perf_counter() - t0,
                         trainable_params=self.task.info.get("trainable_params"),
                         lr=float(self.session.optimizer.param_groups[0]["lr"]) if self.task.kind != "fit" else None,
                         optimizer=self.task.optimizer)
        self.info["alone"] = self._alone()
        self._warm_conversion_imports()
        return self.info

    def reset(self) -> None:
        """The task rebuilt from the seed: the weights the serving side serves as version 0."""
        self.task = self._task()
        self.session = self._session(self.task)

    def _alone(self) -> dict[str, Any]:
        """Training throughput with nothing served, on a throw-away copy of the task (the served model's
        task stays as built): backprop, ``alone_steps`` timed steps after one untimed; a fit, as many
        timed fits of ``fit_images`` images after one small untimed one."""
        from bench.backends.torch_training import fit_cost

        task = self._task()
        session = self._session(task)
        n = int(self.train_cfg.alone_steps)
        if task.kind == "fit":
            images = int(self.adapt_cfg.fit_images)
            fit_cost(task, min(2, images), str(self.train_cfg.device), 1)
            cost = fit_cost(task, images, str(self.train_cfg.device), n)
            per_fit = sorted(cost["total_s_all"])
            median = per_fit[len(per_fit) // 2]
            return {"fits": n, "images": images, "fit_s_all": cost["total_s_all"], "fit_s": median,
                    "samples_per_s": images / median}
        import torch

        # As an adaptation's step: a batch drawn from samples and made by the method, then the step.
        samples = task.batch[0]
        generator = torch.Generator().manual_seed(int(self.item.suite.seed))
        device = torch.device(str(self.train_cfg.device))
        batch = int(self.adapt_cfg.batch_size)

        def step() -> None:
            drawn = samples[torch.randint(len(samples), (batch,), generator=generator)]
            session.batch = tuple(t.to(device) for t in task.batch_of(drawn))
            session.step()
            session.synchronize()

        with self._on_stream():
            step()
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
        times.sort()
        median = times[len(times) // 2]
        return {"steps": n, "step_s_all": times, "step_s": median, "samples_per_s": batch / median}

    def _on_stream(self) -> Any:
        import contextlib

        import torch

        return torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()

    def _warm_conversion_imports(self) -> None:
        """What a long-lived trainer has imported before its first adaptation (the exporter's modules
        take seconds to import, once per process): not part of any adaptation's time."""
        import importlib

        for name in ("onnx", "onnxscript", "torch.onnx", "openvino"):
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - absent: the serving backend does not need it
                pass

    def adapt(self, request: AdaptRequest) -> AdaptReply:
        import numpy as np
        import torch

        from bench.backends.torch_eager import flatten_outputs

        recent = torch.from_numpy(np.load(request.recent_path))
        replay = torch.from_numpy(np.load(request.replay_path))
        generator = torch.Generator().manual_seed(int(self.item.suite.seed) + 101 * request.version)
        ratio = float(self.adapt_cfg.replay_ratio)
        reply = AdaptReply(ok=True, kind=self.task.kind)

        def draw(n: int) -> Any:
            n_replay = int(round(n * ratio)) if len(replay) else 0
            parts = [recent[torch.randint(len(recent), (n - n_replay,), generator=generator)]]
            if n_replay:
                parts.append(replay[torch.randint(len(replay), (n_replay,), generator=generator)])
            return torch.cat(parts)

        device = torch.device(str(self.train_cfg.device))
        t0 = time.perf_counter()
        if self.task.kind == "fit":
            images = draw(int(self.adapt_cfg.fit_images)).to(device)
            with torch.no_grad(), self._on_stream():
                reply.fit = dict(self.task.fit(images) or {})
                self.session.synchronize()
            reply.samples, reply.steps = int(images.shape[0]), 1
        else:
            batch = int(self.adapt_cfg.batch_size)
            first = len(self.session.losses)
            with self._on_stream():
                for _ in range(int(self.adapt_cfg.steps)):
                    self.session.batch = tuple(t.to(device) for t in self.task.batch_of(draw(batch)))
                    self.session.step()
                self.session.synchronize()
            reply.steps = int(self.adapt_cfg.steps)
            reply.samples = reply.steps * batch
            reply.losses = self.session.losses[first:]
        reply.train_s = time.perf_counter() - t0

        model = self.task.model.eval()
        os.makedirs(request.out_dir, exist_ok=True)
        t0 = time.perf_counter()
        reply.model_path = os.path.join(request.out_dir, "model.pt")
        cpu_model = model.to("cpu")
        try:
            # The whole module (its class by import path): a fit may change a buffer's shape and the
            # attributes that go with it (PatchCore's memory bank and its size).
            torch.save(cpu_model, reply.model_path)
            reply.model_format = "module"
        except (AttributeError, TypeError, pickle.PicklingError):
            # A class that cannot be imported by name (a user's module defined in a function): its
            # weights, loaded by the serving side into a copy of the module it built.
            torch.save(cpu_model.state_dict(), reply.model_path)
            reply.model_format = "state_dict"
        reply.save_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        examples = self._parity_inputs(recent)
        with torch.inference_mode():
            outputs = [t.detach().float().numpy() for t in flatten_outputs(cpu_model(*examples))]
        reply.reference_path = os.path.join(request.out_dir, "reference.npz")
        np.savez(reply.reference_path, *outputs, inputs=examples[0].numpy())
        reply.reference_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        reply.conversion = self._convert(cpu_model, examples, request)
        reply.convert_s = time.perf_counter() - t0
        if self.task.kind != "fit":
            self.task.model.to(device)  # back where the next adaptation trains
        reply.peak_rss_mib = _peak_rss_mib()
        reply.device_memory = dict(self.session.device_memory() or {})
        return reply

    def _parity_inputs(self, recent: Any) -> tuple[Any, ...]:
        """One serving batch of recent samples (repeated when fewer)."""
        import torch

        batch = int(self.item.batch_size)
        index = torch.arange(batch) % len(recent)
        return (recent[index].contiguous(),)

    def _convert(self, model: Any, examples: tuple[Any, ...], request: AdaptRequest) -> dict[str, Any]:
        from bench.backends.base import PrepareContext
        from bench.suites.base import resolve

        backend = resolve(self.item.backend.impl)(self.item.backend)
        context = PrepareContext(scenario="server", batch_size=int(self.item.batch_size),
                                 max_batch_size=int(self.item.batch_size), cache_dir=conversion_cache(self.item),
                                 model_key=request.model_key, cache_enabled=True)
        return backend.convert(model, examples, context)


def conversion_cache(item: Any) -> str:
    """The conversions of adapted models: in the worker's scratch folder, removed with it."""
    import tempfile

    return os.path.join(item.scratch_dir or tempfile.gettempdir(), "adapted-conversions")


def main(argv: Optional[list[str]] = None) -> int:
    from bench.orchestration.protocol import ItemRequest
    from bench.system.sensors.sampler import die_with_parent

    import signal

    argv = sys.argv[1:] if argv is None else argv
    channel = os.fdopen(int(argv[0]), "w", buffering=1, encoding="utf-8")
    die_with_parent(signal.SIGKILL)

    def send(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message, default=str) + "\n")
        channel.flush()

    try:
        item = ItemRequest.from_wire(sys.stdin.readline())
        trainer = Trainer(item)
        send({"kind": "ready", "info": trainer.start()})
    except Exception as exc:  # noqa: BLE001 - the serving worker reports it
        send({"kind": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=20)})
        return 1
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("kind") == "reset":  # the next timeline adapts the served weights again
            try:
                trainer.reset()
                send({"kind": "ready", "info": {}})
            except Exception as exc:  # noqa: BLE001
                send({"kind": "error", "error": f"{type(exc).__name__}: {exc}"})
            continue
        if message.get("kind") != "adapt":
            break
        request = AdaptRequest(**{k: v for k, v in message.items() if k != "kind"})
        try:
            send({"kind": "adapted", **asdict(trainer.adapt(request))})
        except Exception as exc:  # noqa: BLE001
            send({"kind": "adapted", **asdict(AdaptReply(ok=False, error=f"{type(exc).__name__}: {exc}")),
                  "traceback": traceback.format_exc(limit=20)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
