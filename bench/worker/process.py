"""The worker: one work item in a freshly spawned process (``python -m bench.worker.process FD``).

It reads the item (bench.orchestration.protocol.ItemRequest) as one JSON line on stdin and writes
messages of that protocol, one JSON line each, to the file descriptor FD: ``Progress`` events, then
exactly one ``Result`` or ``Error``. Its own stdout and stderr go to a log file
the parent keeps, so a library that prints cannot corrupt the protocol, and a crash leaves its last
words (faulthandler's traceback) for the failure record. The worker never decides what the user sees.

This is the one place where a suite and a backend meet: the suite builds the model and its inputs,
the backend prepares it, and the loop measures it.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import resource
import signal
import sys
import time
import traceback
from typing import Any, Callable

from bench.config.schema import as_plain
from bench.orchestration.protocol import Error, ItemRequest, Message, Progress, ProtocolError, Result
from bench.worker.models import model_key, parity_check
from bench.worker.window import loop_settings_of, measured_window

__all__ = ["run_item", "main", "classify_exception", "model_key", "parity_check"]


# What allocators say when memory runs out: PyTorch's CPU allocator ("[enforce fail at
# alloc_cpu.cpp:NN] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate N
# bytes. Error code 12 (Cannot allocate memory)"), CUDA's ("CUDA out of memory. Tried to allocate ..."),
# ONNX Runtime's ("Failed to allocate memory"), C++'s std::bad_alloc.
OOM_PHRASES = ("out of memory", "can't allocate memory", "cannot allocate memory", "failed to allocate memory",
               "bad_alloc")


def classify_exception(exc: BaseException) -> str:
    """'oom' for running out of host or device memory, else 'exception'. The evidence is the
    worker's own exception: a MemoryError, or an error whose text is an allocator's, also when a
    backend re-raised it as its own error (``raise ... from``). Not an error raised while handling
    one (its implicit context): a fallback that failed for another reason is that reason."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError):
            return "oom"
        text = str(current).lower()
        if any(phrase in text for phrase in OOM_PHRASES):
            return "oom"
        current = current.__cause__
    return "exception"


def run_item(item: ItemRequest, emit: Callable[[Message], None]) -> dict[str, Any]:
    """Build, check, warm up and measure one work item; return its raw result."""
    from bench.backends.base import PrepareContext
    from bench.measurement.loop import measure, warm_up
    from bench.suites.base import load_suite, resolve

    if item.scenario.name == "training":
        from bench.worker.scenarios import run_training_item

        return run_training_item(item, emit)
    if item.scenario.name == "continual":
        from bench.worker.continual import run_continual_item

        return run_continual_item(item, emit)

    def phase(name: str, **info: Any) -> None:
        emit(Progress(name, info))

    batch_size, seed, options = item.batch_size, item.suite.seed, item.suite_options
    phase("build")
    t0 = time.perf_counter()
    suite = load_suite(item.suite.catalog)
    # As the options make it: a model whose sizes and budget follow the data set (Suite.adapt).
    workload = suite.adapted(suite.get(item.workload), options)
    instance = suite.make(workload, batch_size, seed, options)
    model, inputs = instance.model, instance.inputs
    build_s = time.perf_counter() - t0

    phase("reference")
    import torch

    from bench.backends.torch_eager import flatten_outputs
    from bench.suites.cost import workload_cost

    # Parameters and FLOPs of one model run; a pipeline may run the model several times per sample
    # (tiles), which the FLOPs per sample include.
    if workload.builder:
        cost = workload_cost(workload, seed)
    elif model is not None:  # a user's torch module: count it as it is, at one sample
        from bench.suites.cost import model_cost

        counted = model_cost(model, tuple(t[:1] for t in inputs))
        cost = {"params": counted["params"], "flops_per_sample": counted["flops"]}
    else:  # a user's ONNX file: parameters from its initializers, FLOPs not counted
        cost = {"params": instance.info.get("params"), "flops_per_sample": None}
    runs_per_sample = int(instance.info.get("model_runs_per_sample", 1))
    if instance.reference is not None:
        reference = instance.reference(inputs)
    else:
        with torch.inference_mode():
            reference = [t.detach().float().numpy() for t in flatten_outputs(model(*inputs))]

    phase("prepare")
    settings = item.backend
    backend = resolve(settings.impl)(settings)
    t0 = time.perf_counter()
    context = PrepareContext(
        scenario=item.scenario.name, batch_size=batch_size, max_batch_size=item.max_batch_size,
        cache_dir=item.cache.dir, cache_enabled=item.cache.enabled,
        model_key=model_key(item.suite.catalog, seed, options, workload, inputs), onnx_path=instance.onnx_path,
        # Drawn only by a backend that calibrates on the workload's inputs (and only on a cache miss).
        calibration_inputs=lambda i: suite.make(workload, batch_size, seed + 1 + i, options).inputs,
    )
    session = backend.prepare(model, inputs, context)
    # The session's threads and streams (a CUDA stream pool's watchers) end with the item, also when
    # it fails; effective_settings and device_memory are read before, in the result below. A failure
    # that only the session's threads saw (a batch on a CUDA stream) is raised by close(): the item
    # fails with it instead of being recorded with the batch as unfinished.
    try:
        loaded = session.load_inputs(inputs)
        prepare_s = time.perf_counter() - t0

        phase("first")
        t0_ns = time.perf_counter_ns()
        outputs = session.run(loaded)
        session.synchronize()
        first_ns = time.perf_counter_ns() - t0_ns
        parity = parity_check(session.to_numpy(outputs), reference, settings.precision, instance.reference_name)
        del outputs, reference

        def run() -> Any:
            return session.run(loaded)

        sc = item.scenario
        loop_settings = loop_settings_of(sc, batch_size)

        def warm() -> Any:
            return warm_up(run, session.synchronize, loop_settings)

        def measure_it(warm_result: Any) -> dict[str, Any]:
            measured: dict[str, Any] = {"warmup_ns": warm_result[0]}
            if sc.engine == "loadgen":
                from bench.worker.scenarios import run_loadgen_item

                measured["loadgen"] = run_loadgen_item(as_plain(sc), run, session.synchronize, batch_size,
                                                       float(workload.latency_tier_ms), item.loadgen_log_dir,
                                                       lambda name, info: phase(name, **info))
            elif sc.name in ("server", "multistream"):
                from bench.worker.scenarios import run_load

                submit = getattr(session, "submit", None)
                measured["load"] = run_load(as_plain(sc), run, session.synchronize, batch_size,
                                            float(workload.latency_tier_ms), lambda name, info: phase(name, **info),
                                            submit=(lambda on_done: submit(loaded, on_done)) if submit else None,
                                            in_flight=int(session.in_flight))
            else:
                loop = measure(run, session.synchronize, loop_settings, warm_result,
                               on_progress=lambda name, info: phase(name, **info), in_flight=int(session.in_flight))
                measured["loop"] = loop.to_dict()
            return measured

        window = measured_window(item, phase, warm, measure_it)
        result = {
            "workload": {
                **workload.catalog(),
                **instance.info,
                "suite": suite.name,
                "batch_size": batch_size,
                "seed": seed,
                "input_shapes": [list(t.shape) for t in inputs],
                "input_dtypes": [str(t.dtype).replace("torch.", "") for t in inputs],
                "params": cost["params"],
                "flops_per_model_run": cost["flops_per_sample"],
                "flops_per_sample": cost["flops_per_sample"] * runs_per_sample if cost["flops_per_sample"] else None,
            },
            "backend": {
                "name": settings.name,
                "device": settings.device,
                "precision": settings.precision,
                "effective": session.effective_settings(),
                "device_memory": session.device_memory(),
            },
            "setup": {"build_s": build_s, "prepare_s": prepare_s, "first_inference_ms": first_ns / 1e6},
            "parity": parity,
            **window,
        }
    except BaseException:
        with contextlib.suppress(Exception):  # the item's own error is the one to report
            session.close()
        raise
    session.close()
    return result


def _limit_memory(mib: int | None) -> None:
    if mib:
        limit = int(mib) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    channel = os.fdopen(int(argv[0]), "w", buffering=1, encoding="utf-8")
    faulthandler.enable(file=sys.stderr, all_threads=True)
    from bench.system.sensors.sampler import die_with_parent

    # A parent killed with SIGKILL cannot kill us: the kernel does, so no measurement runs on unseen.
    die_with_parent(signal.SIGKILL)

    def emit(message: Message) -> None:
        channel.write(message.to_wire() + "\n")
        channel.flush()

    try:
        item = ItemRequest.from_wire(sys.stdin.read())
    except ProtocolError as exc:
        emit(Error("exception", f"the work item cannot be read: {exc}"))
        return 3
    try:
        _limit_memory(item.worker.memory_limit_mib)
        result = run_item(item, emit)
        emit(Result(_json_safe(result)))
        return 0
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent as a record
        if isinstance(exc, KeyboardInterrupt):
            raise
        kind = classify_exception(exc)
        try:
            emit(Error(kind, f"{type(exc).__name__}: {exc}".strip(), traceback.format_exc(limit=20)))
        except MemoryError:
            os.write(2, b"worker: out of memory while reporting an error\n")
            return 4
        return 1


def _json_safe(value: Any) -> Any:
    """Infinities and NaN as None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
