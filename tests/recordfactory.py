"""RunRecords for tests of the results commands: the golden record with other hardware, backend,
workload and raw samples, its metrics derived from those samples as a real run derives them.

A record with repeats (several fresh processes' measurements of one item) holds each process's loop
and metrics in ``raw["repeats"]``, ``raw["loop"]`` the first process's, and pooled metrics: here the
metrics of all the processes' samples together, which is enough for the results commands (they read
the pooled intervals as the record gives them and the per-process figures)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from bench.measurement.loop import LoopResult
from bench.results.metrics import loop_metrics
from bench.results.records import RunRecord

GOLDEN = Path(__file__).parent / "golden" / "record_v1.json"
_GOLDEN = json.loads(GOLDEN.read_text())
_counter = [0]


def golden_dict() -> dict[str, Any]:
    return copy.deepcopy(_GOLDEN)


def samples(median_ms: float, n: int = 400, spread: float = 0.03, seed: int = 0) -> list[int]:
    """Lognormal timings (ns) around a median, seeded."""
    rng = np.random.default_rng(seed)
    return [int(v) for v in median_ms * 1e6 * rng.lognormal(0.0, spread, size=n)]


def make_record(
    hardware: str = "AMD EPYC x2",
    backend: str = "cpu",
    device: Optional[str] = None,
    precision: str = "fp32",
    workload: str = "tiny",
    suite: str = "fake",
    scenario: str = "throughput",
    batch_size: int = 8,
    median_ms: float = 1.0,
    n: int = 400,
    spread: float = 0.03,
    seed: int = 0,
    block: int = 1,
    raw_samples: Optional[list[int]] = None,
    tag: str = "",
    run_id: str = "",
    created_at: str = "2026-12-01T10:00:00+00:00",
    status: str = "ok",
    parity_ok: bool = True,
    metrics: Optional[dict[str, Any]] = None,
    record_id: Optional[str] = None,
    config: Optional[dict[str, Any]] = None,
    warnings: Optional[Sequence[str]] = None,
    repeats: Sequence[float] = (),
    per_process: Sequence[dict[str, Any]] = (),
    ci_scope: Optional[str] = None,
) -> RunRecord:
    """One record: ``median_ms`` is the time of one sample (``block`` requests of ``batch_size``).

    ``warnings``: codes, each made a warning dict (code, message, hint) in place of the golden record's
    (one, slow_first_run).
    ``repeats``: the median of each fresh process (seeds seed, seed+1, ...); ``per_process`` overrides
    each process's metrics (throughput_sps=100.0, ...); ``ci_scope`` defaults to "repeats" with
    repeats and is left out without (as records made before repeats existed)."""
    _counter[0] += 1
    data = golden_dict()
    data["id"] = record_id or f"{_counter[0]:08x}" + "c0ffee" * 4
    data["created_at"] = created_at
    data["status"] = status
    data["system"]["hardware"] = hardware
    data["backend"].update(name=backend, device=device or backend, precision=precision)
    data["workload"].update(name=workload, suite=suite, batch_size=batch_size)
    data["scenario"]["name"] = scenario
    data["tag"] = tag
    data["run_id"] = run_id or f"{_counter[0]:08x}" + "5eed" * 6
    data["parity"]["ok"] = parity_ok
    if config is not None:
        data["config"] = config
    if warnings is not None:
        data["warnings"] = [{"code": c, "message": f"{c} in this test", "hint": "none"} for c in warnings]
    loop = data["raw"]["loop"]
    loop.update(scenario=scenario, batch_size=batch_size, block=block,
                samples_ns=raw_samples if raw_samples is not None else samples(median_ms, n, spread, seed))
    data["metrics"] = loop_metrics(LoopResult.from_dict(loop), 0.95)
    if repeats or per_process:
        medians = list(repeats) or [median_ms] * len(per_process)
        processes = []
        for i, median in enumerate(medians):
            one = {**copy.deepcopy(loop), "samples_ns": samples(median, n, spread, seed + i)}
            own = {**loop_metrics(LoopResult.from_dict(one), 0.95), **(per_process[i] if i < len(per_process) else {})}
            processes.append({"metrics": own, "loop": one})
        data["raw"]["repeats"] = processes
        data["raw"]["loop"] = processes[0]["loop"]
        pooled = {**loop, "samples_ns": [v for p in processes for v in p["loop"]["samples_ns"]]}
        data["metrics"] = {**loop_metrics(LoopResult.from_dict(pooled), 0.95), "repeats": len(processes)}
        data["metrics"]["ci_scope"] = ci_scope or "repeats"
    elif ci_scope is not None:
        data["metrics"]["ci_scope"] = ci_scope
    data["metrics"].update(metrics or {})
    if status != "ok":
        data["error"] = {"kind": "crash", "message": "worker crashed with SIGSEGV"}
    return RunRecord.from_dict(data)
