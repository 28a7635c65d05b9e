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


# ---------------------------------------------------------------- scenario=continual

MS, S = 1_000_000, 1_000_000_000
# A whole adaptation of 3 s, stage by stage (seconds; their sum is detection to swap).
STAGES_3S = {"samples_written_s": 0.1, "train_s": 1.5, "save_s": 0.2, "reference_s": 0.1, "convert_s": 0.8,
             "trainer_overhead_s": 0.05, "load_s": 0.15, "parity_s": 0.1, "swap_s": 0.0}


def continual_out(case: str = "within", adapt_s: float = 3.0, slow_ms: float = 15.0, rate_qps: float = 20.0,
                  slo_ms: float = 20.0) -> dict[str, Any]:
    """``raw.continual`` of a simulated timeline, made by bench.measurement.continual.run_timeline on a
    simulated clock (tests/unit/measurement/test_continual.py's set-up): a request every 50 ms for 20 s,
    10 ms each (``slow_ms`` while adapting), drift at 5 s, detected at the 10th drifted request (5.45 s).

    case: within (adapted, within budget while adapting), out (adapted, 25 ms while adapting: out of
    budget), no_detection, parity_failed (the adapted model fails its parity check at ``adapt_s``:
    no swap), after_serving (the swap comes 1 s after serving ended), false_alarm (the detector fires
    at 3 s, before the drift)."""
    from bench.measurement.continual import Marks, ModelSlot, run_timeline
    from bench.measurement.load import LoadSettings
    from tests.unit.measurement.test_dispatch import SimClock

    if case == "out":
        slow_ms = 25.0
    clock = SimClock()
    marks = Marks(clock)
    slot = ModelSlot("v0", marks)
    adapting = {"on": False}
    duration, drift = 20 * S, 5 * S
    detect_after = {"no_detection": 10 ** 9, "false_alarm": 1}.get(case, 10)

    class Detector:
        def __init__(self) -> None:
            self.seen, self.fired = 0, False

        def update(self, feats: Any) -> Optional[dict[str, Any]]:
            arrived = clock.now() - marks.get("start")  # type: ignore[operator]
            self.seen += int(feats.sum()) if case != "false_alarm" else int(arrived >= 3 * S)
            if not self.fired and self.seen >= detect_after:
                self.fired = True
                return {"sample": self.seen, "p_value": 1e-6}
            return None

        def summary(self) -> dict[str, Any]:
            return {"method": "ks", "checks": 4, "detection": {"p_value": 1e-6} if self.fired else None}

    def run_batch(model: Any, first: int, k: int, drifted: bool) -> None:
        clock.t += int((slow_ms if adapting["on"] else 10.0) * MS)

    def on_detect(found: dict[str, Any]) -> None:
        adapting["on"] = True

        def finish() -> None:
            adapting["on"] = False
            if case == "parity_failed":
                marks.mark("parity_failed")
            else:
                slot.swap("v1")

        if case != "after_serving":
            clock.at(clock.now() + int(adapt_s * S), finish)

    arrivals = np.arange(0, duration, 50 * MS, dtype=np.int64)
    settings = LoadSettings(batch_size=1, max_wait_ns=0, slo_ns=int(slo_ms * MS), drain_ns=2 * S)
    result = run_timeline(arrivals, settings, duration, drift, slot, run_batch,
                          lambda first, k, drifted: np.full((k, 1), float(drifted)), Detector(), on_detect)
    served_until = result.serve.elapsed_ns
    stages = {key: value * adapt_s / 3.0 for key, value in STAGES_3S.items()}
    swapped = case not in ("no_detection", "parity_failed")
    if case == "after_serving":
        result.marks_ns["swapped"] = served_until + S
        took = (result.marks_ns["swapped"] - result.marks_ns["detected"]) / S
        stages = {key: value * took / 3.0 for key, value in STAGES_3S.items()}
    if case == "parity_failed":
        stages.pop("swap_s")
    error = ("the adapted model failed its parity check: (max relative error 0.31)" if case == "parity_failed" else "")
    reply = {"kind": "backprop", "ok": True, "error": "", "train_s": stages["train_s"], "steps": 3, "samples": 24,
             "peak_rss_mib": 300.0}
    adaptation = {"started": case != "no_detection", "swapped": swapped, "error": error,
                  "stages_s": stages if case != "no_detection" else {},
                  "parity": {"ok": case != "parity_failed", "max_rel_error": 0.31 if case == "parity_failed" else 1e-7},
                  "trainer_reply": reply if case != "no_detection" else {},
                  "finished_after_serving": case == "after_serving"}
    run = {"rate_qps": rate_qps, "arrival": "poisson", "streams": None, "fps": None, "timeline": result.to_dict(),
           "duration_ns": duration, "origin_monotonic_ns": 0, "served_until_ns": served_until,
           "adaptation": adaptation}
    return {"runs": [run], "search": None, "trainer": {"alone": {"samples_per_s": 48.0}}, "drift": {},
            "slo_ms": slo_ms, "percentile": 0.99, "batch_size": 1}


def make_continual_record(case: str = "within", hardware: str = "AMD EPYC x2", backend: str = "onnxruntime",
                          workload: str = "tiny", suite: str = "fake", adapt_s: float = 3.0, rate_qps: float = 20.0,
                          metrics: Optional[dict[str, Any]] = None, record_id: Optional[str] = None,
                          created_at: str = "2026-12-01T10:00:00+00:00") -> RunRecord:
    """A scenario=continual record of ``continual_out(case, ...)``: its metrics made by
    bench.results.metrics.continual_metrics, as a real run makes them; ``metrics`` added over them
    (pooled intervals of repeats, energy, memory)."""
    from bench.results.metrics import continual_metrics

    _counter[0] += 1
    data = golden_dict()
    data["id"] = record_id or f"{_counter[0]:08x}" + "c0ffee" * 4
    data["created_at"] = created_at
    data["run_id"] = f"{_counter[0]:08x}" + "5eed" * 6
    data["system"]["hardware"] = hardware
    data["backend"].update(name=backend, device="cpu", precision="fp32")
    data["workload"].update(name=workload, suite=suite, batch_size=1, latency_tier_ms=20)
    data["scenario"] = {"name": "continual", "rate_qps": rate_qps, "duration_s": 20.0, "confidence": 0.95}
    data["warnings"] = []
    out = continual_out(case, adapt_s=adapt_s, rate_qps=rate_qps)
    data["raw"] = {"continual": out}
    data["metrics"] = {**continual_metrics(out, 0.95)[0], "peak_rss_mib": 250.0, **(metrics or {})}
    data["energy"] = {"available": False, "reason": "no power sensor here (powercap: absent)"}
    return RunRecord.from_dict(data)
