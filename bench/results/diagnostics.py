"""Warnings as a closed, typed set, each with a named threshold and a hint of what to do.

They are computed in the parent from the raw result, stored in the record, and shown in the summary.

Contamination is judged by the CPU time other processes used during the measured window (from
the host's CPU times, psutil.cpu_times (/proc/stat on Linux), minus the worker's own CPU time). The load average and Linux's CPU pressure (PSI) are
recorded with every result but raise no warning: both count the worker's own threads (a runtime's
thread pool on every core shows as pressure), so they cannot tell interference from the work itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Optional

from bench.precision import PRECISION_ORDER
from bench.fmt import fmt_num

__all__ = ["Code", "BenchWarning", "THRESHOLDS", "diagnose"]


class Code(str, Enum):
    NOT_CONVERGED = "not_converged"
    NOISE_LIMITED = "noise_limited"
    TAIL_UNBOUNDED = "tail_unbounded"
    HIGH_VARIATION = "high_variation"
    OUTLIERS = "outliers"
    SLOW_FIRST_RUN = "slow_first_run"
    CLOCK_RESOLUTION = "clock_resolution"
    FOREIGN_CPU = "foreign_cpu"
    SPEED_DRIFT = "speed_drift"
    STEAL = "cpu_steal"
    PARITY = "parity"
    ENERGY_LOW_CONFIDENCE = "energy_low_confidence"
    DROPPED = "dropped_requests"
    SEARCH_INCOMPLETE = "search_incomplete"
    LOADGEN_INVALID = "loadgen_invalid"
    ARRIVALS_OFF_TARGET = "arrivals_off_target"
    ENGINE_LAG = "engine_lag"
    PRECISION_MISMATCH = "precision_mismatch"
    CPU_NODES = "cpu_nodes"
    CUDA_GRAPH_FALLBACK = "cuda_graph_fallback"
    NOT_ADAPTED = "not_adapted"
    FALSE_ALARM = "false_alarm"
    ADAPTED_AFTER_SERVING = "adapted_after_serving"
    PHASE_TOO_SHORT = "phase_too_short"


THRESHOLDS = {
    # a server probe's realized arrival rate against its target rate, relative difference
    "arrivals_off_target": 0.05,
    # the load engine's p99 dispatch delay, as a fraction of the latency requirement
    "engine_lag_of_slo": 0.02,
    # robust coefficient of variation (1.4826 MAD / median): the spread of the bulk of the samples
    "high_variation_cv": 0.10,
    # share of samples that are outliers (modified z-score > bench.measurement.stats.OUTLIER_MODIFIED_Z); a few
    # among thousands are the ordinary timer interrupts of any OS (a sample of tens of microseconds
    # meets one every few hundred samples)
    "outlier_fraction": 0.05,
    # first request this many times slower than the median
    "slow_first_run_ratio": 10.0,
    # a sample shorter than this many clock resolutions
    "clock_resolution_factor": 1000.0,
    # CPU that other processes used during the window, in cores
    "foreign_cpu_cores": 0.25,
    # compute-speed check after vs before the measurement, relative change
    "speed_drift": 0.10,
    # share of CPU time stolen by the hypervisor
    "steal_fraction": 0.02,
    # graph nodes a GPU execution provider left to the CPU provider: any is worth saying (each boundary
    # copies tensors between host and device inside the measured time)
    "cpu_nodes": 0,
}


@dataclass(frozen=True)
class BenchWarning:
    code: Code
    message: str
    hint: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.message, "hint": self.hint}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> "BenchWarning":
        return cls(Code(data["code"]), data["message"], data["hint"])


def _speed(check: Optional[dict[str, Any]]) -> Optional[float]:
    if not check:
        return None
    return check.get("best_ops_per_s") or check.get("ops_per_s")


def diagnose(
    metrics: dict[str, Any],
    loop: dict[str, Any],
    noise: dict[str, Any],
    first_inference_ms: Optional[float],
    parity: Optional[dict[str, Any]] = None,
    energy: Optional[dict[str, Any]] = None,
    backend: Optional[dict[str, Any]] = None,
) -> list[BenchWarning]:
    t = THRESHOLDS
    out: list[BenchWarning] = []
    quiet = "close other programs (or pin this run to idle cores) and run again"
    out.extend(_convergence_warnings(metrics, loop, quiet))
    cv = metrics.get("latency_robust_cv")
    if cv is not None and cv > t["high_variation_cv"]:
        out.append(BenchWarning(Code.HIGH_VARIATION, f"the bulk of the samples varies a lot (robust cv {cv:.1%})",
                                "look at the raw samples; " + quiet))
    outliers, n = metrics.get("outliers") or 0, metrics.get("samples") or 0
    if n and outliers / n > t["outlier_fraction"]:
        out.append(BenchWarning(Code.OUTLIERS, f"{outliers} of {n} samples are statistical outliers",
                                "interference from other programs is likely; " + quiet))
    p50 = metrics.get("latency_p50_ms")
    if first_inference_ms and p50 and first_inference_ms > t["slow_first_run_ratio"] * p50:
        out.append(BenchWarning(Code.SLOW_FIRST_RUN,
                                f"the first request took {first_inference_ms / p50:.0f}x the median",
                                "it is reported apart as first_inference_ms; steady state excludes it"))
    samples = loop.get("samples_ns") or []
    resolution = loop.get("clock_resolution_ns") or 0.0
    if samples and resolution and min(samples) < t["clock_resolution_factor"] * resolution:
        out.append(BenchWarning(Code.CLOCK_RESOLUTION, "samples are close to the clock's resolution",
                                "the harness times blocks of requests; report this as a bug"))
    foreign = noise.get("foreign_cpu_cores")
    if foreign is not None and foreign > t["foreign_cpu_cores"]:
        out.append(BenchWarning(Code.FOREIGN_CPU,
                                f"other processes used {foreign:.2f} CPU cores during the measurement",
                                quiet))
    # The fastest chunk of each check: throttling lowers it, a brief preemption of one chunk does not.
    before = _speed(noise.get("speed_before"))
    after = _speed(noise.get("speed_after"))
    if before and after and abs(after - before) / before > t["speed_drift"]:
        out.append(BenchWarning(Code.SPEED_DRIFT,
                                f"the host's compute-speed check changed by {after / before - 1:+.0%} across the run",
                                "frequency scaling, thermal throttling or interference; " + quiet))
    steal = noise.get("steal_fraction")
    if steal is not None and steal > t["steal_fraction"]:
        out.append(BenchWarning(Code.STEAL, f"the hypervisor stole {steal:.1%} of CPU time",
                                "use a dedicated host or instance"))
    if parity and not parity.get("ok", True):
        if parity.get("max_rel_error") is not None and parity.get("tolerance") is not None:
            what = (f"outputs differ from the PyTorch fp32 reference by {parity['max_rel_error']:.2e} "
                    f"(tolerance {parity['tolerance']:.0e})")
        else:
            what = f"{parity.get('reference', 'the check')} failed: {parity.get('detail') or 'no detail'}"
        out.append(BenchWarning(Code.PARITY, f"{what}: result invalid, never ranked",
                                "check the backend's precision and conversion"))
    out.extend(_load_warnings(metrics, loop))
    out.extend(_continual_warnings(metrics))
    if energy and energy.get("low_confidence"):
        out.append(BenchWarning(
            Code.ENERGY_LOW_CONFIDENCE,
            f"the measured window ({energy.get('window_s', 0):.2f} s) is short for the power sensors' update period",
            "raise scenario.min_duration_s so the window spans many sensor updates"))
    if backend:
        out.extend(_precision_warnings(backend))
        out.extend(_cpu_node_warnings(backend))
        out.extend(_cuda_graph_warnings(backend))
    return out


def _pct(rel: Optional[float]) -> str:
    return f"±{fmt_num(rel * 100, 2)}%" if rel is not None else "unbounded"


def _convergence_warnings(metrics: dict[str, Any], loop: dict[str, Any], quiet: str) -> list[BenchWarning]:
    """Why a loop did not converge: the tail it could not bound, noise it could not average out, or
    the cap it reached."""
    out: list[BenchWarning] = []
    tail_q = metrics.get("tail_percentile")
    tail = f"p{round(tail_q * 100)}" if tail_q else ""
    if tail and not metrics.get("tail_bounded", True):
        n, needed = metrics.get("samples") or 0, metrics.get("tail_min_samples") or 0
        measured = metrics.get("measured_s") or 0.0
        per_sample = measured / n if n else 0.0
        time_needed = needed * per_sample * 1.1  # a tenth more: the checks land after the count is reached
        out.append(BenchWarning(
            Code.TAIL_UNBOUNDED,
            f"{tail} latency has no upper bound: {n} samples, {needed} bound a 95% interval of it "
            f"(about {fmt_num(time_needed, 3)} s at this pace): it cannot be ranked on its interval",
            f"raise scenario.max_duration_s to at least {max(1, round(time_needed + 0.5))}, or compare on p50 "
            "(metric=latency_p50_ms)"))
    if metrics.get("converged", True):
        return out
    reason = metrics.get("stop_reason") or loop.get("stop_reason")
    what = "the median" if metrics.get("latency_p50_ms") is not None and loop.get("scenario") == "latency" \
        else "the throughput"
    widths = f"{what}'s interval at {_pct(metrics.get('rel_ci'))}"
    if tail and metrics.get("tail_bounded"):
        widths += f", {tail}'s at {_pct(metrics.get('rel_ci_tail'))}"
    if reason == "noise_limited":
        out.append(BenchWarning(
            Code.NOISE_LIMITED,
            f"stopped early: {widths} no longer narrowed as samples grew (noise-limited, not within the target)",
            "the machine's speed varied during the run (a neighbour, frequency scaling): " + quiet +
            "; repeats=N measures this run-to-run variation instead of hiding it"))
    elif reason != "tail_unreachable":
        out.append(BenchWarning(
            Code.NOT_CONVERGED, f"stopped by {reason} with {widths}, not within the target",
            "raise scenario.max_duration_s, loosen scenario.target_rel_ci (or target_rel_ci_tail), or " + quiet))
    return out


# Where a runtime reports how its parts ran, the key of that breakdown in effective_settings().
_PRECISION_DETAIL = ("layer_precisions", "precision_by_provider", "ran_precision_by_device")


def _precision_warnings(backend: dict[str, Any]) -> list[BenchWarning]:
    """The precision asked for against the one the runtime reports it ran (``ran_precision``, the
    least precise of its parts). A runtime that cannot say records none, and nothing is claimed.

    Lower than asked (fp16 layers or TF32 products under fp32) makes the label untrue. Higher than
    asked means nothing ran in the precision asked for: TensorRT keeps some layers in fp32 under fp16
    as a matter of course, which is not a mismatch (the least precise part is still fp16), but an
    engine with no fp16 layer at all measured fp32 kernels under an fp16 label."""
    asked = backend.get("precision")
    ran = (backend.get("effective") or {}).get("ran_precision")
    if not asked or not ran or ran == asked:
        return []
    effective = backend.get("effective") or {}
    parts = next((effective[k] for k in _PRECISION_DETAIL if isinstance(effective.get(k), dict)), None)
    detail = f" ({', '.join(f'{k}: {v}' for k, v in parts.items())})" if parts else ""
    order = {name: i for i, name in enumerate(PRECISION_ORDER)}
    if order.get(ran, -1) > order.get(asked, -1):
        return [BenchWarning(
            Code.PRECISION_MISMATCH,
            f"asked for {asked}, but the runtime reports that part of the work ran in {ran}{detail}: "
            f"the figures are not {asked} figures",
            f"label and compare them as {ran} (backend.precision={ran} where the backend offers it), or "
            f"find what lowered the precision (the record's backend.effective holds the runtime's report)")]
    return [BenchWarning(
        Code.PRECISION_MISMATCH,
        f"asked for {asked}, but the runtime reports that nothing ran in it: the least precise part ran in "
        f"{ran}{detail}",
        f"compare the figures with a backend.precision={ran} run, not as {asked} (TensorRT, for one, takes "
        f"a lower precision only for the layers where it is faster, and may take it for none)")]


def _cpu_node_warnings(backend: dict[str, Any]) -> list[BenchWarning]:
    """Nodes a GPU execution provider could not run, placed on the CPU provider (ONNX Runtime's
    ``effective.cpu_nodes``: count and op types). A runtime that cannot report placement records
    ``reported: false`` and no warning claims anything."""
    effective = backend.get("effective") or {}
    placed = effective.get("cpu_nodes")
    if not isinstance(placed, dict) or not placed.get("reported"):
        return []
    count = placed.get("count") or 0
    if count <= THRESHOLDS["cpu_nodes"]:
        return []
    ops = ", ".join(f"{op} x{n}" if n > 1 else str(op) for op, n in (placed.get("op_types") or {}).items())
    leader = (effective.get("providers") or ["the GPU provider"])[0]
    total = placed.get("total")
    return [BenchWarning(
        Code.CPU_NODES,
        f"{count}{f' of {total}' if total else ''} graph nodes ran on the CPU provider, not {leader} ({ops}): "
        "tensors are copied between host and device around them, inside the measured time",
        "the figures are of this mixed placement; backend.allow_cpu_nodes=false makes it an error. ONNX Runtime "
        "keeps small shape computations (Shape, Gather, Concat on shapes) on the CPU on purpose; other ops may "
        "have GPU kernels in a newer onnxruntime-gpu, with another export opset, or on backend=tensorrt")]


def _cuda_graph_warnings(backend: dict[str, Any]) -> list[BenchWarning]:
    """A CUDA graph asked for whose capture failed: the session measured plain launches instead (as
    trtexec falls back), and its effective settings say why (``cuda_graph_error``). No threshold:
    it happened or it did not."""
    effective = backend.get("effective") or {}
    error = effective.get("cuda_graph_error")
    if not error or effective.get("cuda_graph"):
        return []
    return [BenchWarning(
        Code.CUDA_GRAPH_FALLBACK,
        f"the CUDA graph capture failed ({error}): measured without a graph, one launch per inference",
        "the figures include each launch's CPU cost: compare them with backend.cuda_graph=false runs, not with "
        "graph replays, or fix what the error names (a layer or plugin that cannot be captured)")]


def _load_warnings(metrics: dict[str, Any], measured: dict[str, Any]) -> list[BenchWarning]:
    """The load scenarios' and LoadGen's own warnings (``measured`` is their raw result)."""
    out: list[BenchWarning] = []
    dropped = metrics.get("dropped_queries") or 0
    if dropped:
        out.append(BenchWarning(
            Code.DROPPED, f"{dropped} of {metrics.get('queries')} requests were still queued when the probe stopped "
            "(the offered load exceeds what the backend serves): counted late, their latency is a lower bound",
            "lower scenario.rate_qps (or the streams), or use scenario.find_peak=true to find the sustainable rate"))
    target = metrics.get("max_qps_target") or metrics.get("rate_qps")
    offered = metrics.get("offered_qps")
    if target and offered and abs(offered / target - 1) > THRESHOLDS["arrivals_off_target"]:
        out.append(BenchWarning(
            Code.ARRIVALS_OFF_TARGET,
            f"the reported probe's Poisson arrivals came at {fmt_num(offered)}/s for a target of {fmt_num(target)}/s "
            f"({offered / target - 1:+.0%}): its verdict (and max_qps_at_slo) is about the load that arrived",
            f"raise scenario.min_duration_s (a probe of N requests varies by about 1/sqrt(N); it had "
            f"{metrics.get('queries')})"))
    lag, slo = metrics.get("engine_lag_p99_us"), metrics.get("slo_ms")
    if lag is not None and slo and lag / 1e3 > THRESHOLDS["engine_lag_of_slo"] * slo:
        out.append(BenchWarning(
            Code.ENGINE_LAG, f"the load engine started 1% of requests {fmt_num(lag)} us or more after they could "
            f"have started ({lag / 1e3 / slo:.0%} of the {fmt_num(slo)} ms requirement): the host delayed it",
            "close other programs (or pin this run to idle cores) and run again"))
    search = (measured.get("info") or {}).get("search") if isinstance(measured.get("info"), dict) else None
    if search and search.get("stop_reason") in ("max_probes", "time_limit"):
        out.append(BenchWarning(
            Code.SEARCH_INCOMPLETE, f"the search stopped ({search['stop_reason']}) before narrowing to its tolerance",
            "raise scenario.max_probes or scenario.max_duration_s"))
    if search and search.get("stop_reason") == "none_meets":
        out.append(BenchWarning(
            Code.SEARCH_INCOMPLETE, "no probe met the latency requirement, even the lowest load tried",
            "a faster backend or a smaller batch_size, or a looser scenario.slo_ms"))
    if "valid" in measured and not measured.get("valid"):
        reasons = "; ".join(measured.get("invalid_reasons") or []) or "LoadGen gave no reason"
        out.append(BenchWarning(Code.LOADGEN_INVALID, f"LoadGen judged the run INVALID: {reasons}",
                                "follow LoadGen's recommendation (longer scenario.loadgen.min_duration_s, "
                                "more queries, or a lower target)"))
    return out


def _continual_warnings(metrics: dict[str, Any]) -> list[BenchWarning]:
    """scenario=continual: an adaptation that did not happen, or not while serving; a detection before
    the drift; an adapting phase too short for its percentile."""
    if "adapted" not in metrics:
        return []
    out: list[BenchWarning] = []
    if metrics.get("detection_delay_s") is None:
        out.append(BenchWarning(
            Code.NOT_ADAPTED, "the drift detector never fired: no adaptation, no time to adapt, no verdict",
            "a longer scenario.duration_s, a stronger scenario.drift.*, or a larger scenario.detector.alpha"))
    elif not metrics.get("adapted"):
        out.append(BenchWarning(
            Code.NOT_ADAPTED, f"the adaptation did not swap a model in: {metrics.get('adaptation_error') or 'no reason given'}",
            "read the error; scenario.require_parity=false swaps a model that fails its parity check (recorded)"))
    if metrics.get("false_alarm"):
        out.append(BenchWarning(
            Code.FALSE_ALARM, f"the detector fired {-metrics['detection_delay_s']:.1f} s before the inputs drifted: the "
            "adaptation answered no drift, and its time to adapt counts from the drift",
            "lower scenario.detector.alpha or raise scenario.detector.reference"))
    if metrics.get("adapted") and metrics.get("adapted_within_run") is False:
        out.append(BenchWarning(
            Code.ADAPTED_AFTER_SERVING, "the swap came after serving had ended: the adaptation's end ran without "
            "requests to serve, and the adapted model served none",
            "raise scenario.duration_s (or move scenario.drift.at_s earlier)"))
    q = metrics.get("percentile")
    n = metrics.get("adapting_queries")
    if metrics.get("adapted") and n == 0:
        out.append(BenchWarning(
            Code.PHASE_TOO_SHORT, f"no request arrived during the adaptation ({fmt_num(metrics.get('adapt_total_s'))} s): "
            "no verdict on serving while adapting", "raise scenario.rate_qps (or the streams)"))
    elif metrics.get("adapted") and q and n is not None and metrics.get("adapting_requests_bound_percentile") is False:
        needed = math.ceil(round(1.0 / (1.0 - q), 9))
        out.append(BenchWarning(
            Code.PHASE_TOO_SHORT, f"the adaptation lasted {n} requests, fewer than the {needed:.0f} a p{q * 100:g} needs: "
            "its verdict is that of the slowest request (no late request allowed)",
            "raise scenario.rate_qps (or the streams), or lower scenario.percentile"))
    return out
