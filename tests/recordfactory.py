"""RunRecords for tests of the results commands: the golden record with other hardware, backend,
workload and raw samples, its metrics derived from those samples as a real run derives them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from bench.loop import LoopResult
from bench.metrics import loop_metrics
from bench.records import RunRecord

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
) -> RunRecord:
    """One record: ``median_ms`` is the time of one sample (``block`` requests of ``batch_size``)."""
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
    loop = data["raw"]["loop"]
    loop.update(scenario=scenario, batch_size=batch_size, block=block,
                samples_ns=raw_samples if raw_samples is not None else samples(median_ms, n, spread, seed))
    data["metrics"] = {**loop_metrics(LoopResult.from_dict(loop), 0.95), **(metrics or {})}
    if status != "ok":
        data["error"] = {"kind": "crash", "message": "worker crashed with SIGSEGV"}
    return RunRecord.from_dict(data)
