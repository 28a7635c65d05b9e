"""The end-of-run summary a person reads at a glance: one row per work item, each figure with its
interval, then the warnings with what to do, then where the records are. A scenario=continual
record adds its block under the table (bench.reporting.continual: phases, time to adapt, verdict)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Optional, Sequence, TextIO

from bench.fmt import fmt_ci, fmt_num
from bench.reporting import continual
from bench.reporting.terminal import Column, Out
from bench.results.records import RunRecord
from bench.measurement.stats import min_samples_to_bound

__all__ = ["summary", "summary_json", "SUMMARY_JSON_VERSION", "SUMMARY_COLUMNS", "sweep_summary", "conversion_line", "short_error", "fmt_ci", "fmt_num"]

ERROR_CELL_CHARS = 60
# PyTorch's check macros put where they failed and the failed condition before the message:
# "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: ...".
_ENFORCE = re.compile(r"\[enforce fail at [^\]]*\]\s*(?:[^.\s][^.]*?\.\s+)?")
# The size an allocator was refused: "you tried to allocate 123 bytes", "Tried to allocate 20.00 MiB".
_TRIED = re.compile(r"tried to allocate ([\d.]+)\s*(bytes|[KMGTPE]i?B)\b", re.IGNORECASE)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value, unit = float(n), "bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.3g} {unit}"


def short_error(error: dict[str, Any], width: int = ERROR_CELL_CHARS) -> str:
    """A failure's message cut to what a table cell can hold, keeping its meaning: an allocator's
    refusal as "out of memory: can't allocate SIZE", a PyTorch check without where it failed."""
    message = str(error.get("message") or "")
    tried = _TRIED.search(message) if error.get("kind") == "oom" else None
    if tried:
        amount, unit = tried.groups()
        size = _size(int(amount)) if unit.lower() == "bytes" and amount.isdigit() else f"{amount} {unit}"
        device = " on the GPU" if "cuda" in message.lower() else ""
        text = f"out of memory: can't allocate {size}{device}"
    else:
        text = " ".join(_ENFORCE.sub("", message).split())
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def _row(index: int, r: RunRecord) -> list[str]:
    w, b, m = r.workload, r.backend, r.metrics
    device = "" if b.get("device") == b.get("name") else f" {b.get('device')}"
    backend = f"{b.get('name')}{device} {b.get('precision')}"
    base = [str(index), str(w.get("name")), backend, str(w.get("batch_size")), str(r.scenario.get("name"))]
    if r.status != "ok":
        error = r.error or {}
        return base + [f"FAILED: {error.get('kind')}", short_error(error), "", "", "", ""]
    status = "ok" if r.valid else "INVALID"
    if not m.get("converged", True):
        status += " (not converged)"
    if (m.get("repeats") or 1) > 1:
        status += f" ({m['repeats']} processes)"
    if "latency_p50_ms" in m:
        p50 = f"{fmt_num(m['latency_p50_ms'])} {_ci(m, 'latency_p50')}".strip()
        p99 = f"{fmt_num(m['latency_p99_ms'])} {_ci(m, 'latency_p99', q=0.99)}".strip()
        std = m.get("latency_std_ms")
        mean = fmt_num(m.get("latency_mean_ms")) + (f" ± {fmt_num(std, 3)}" if std is not None else "")
    else:  # pipelined throughput: no per-request latency (metrics.latency_note says why)
        p50 = p99 = mean = "-"
    tput = f"{fmt_num(m.get('throughput_sps'))} {_ci(m, 'throughput', '_sps')}".strip()
    return base + [status, p50, p99, mean, tput, f"{m.get('iterations', '-')}"]


def _ci(m: dict, name: str, unit: str = "_ms", q: Optional[float] = None) -> str:
    """The interval; a percentile's missing bound says how many samples would give it."""
    low, high = m.get(f"{name}_ci_low{unit}"), m.get(f"{name}_ci_high{unit}")
    if q is not None and (low is None or high is None):
        n = m.get("samples")
        lo = fmt_num(low) if low is not None else "no lower bound"
        return f"[{lo}, no upper bound: {n} samples, {min_samples_to_bound(q)} bound it]" if high is None \
            else f"[{lo}, {fmt_num(high)}]"
    return fmt_ci(low, high) if low is not None or high is not None else ""


def _scenario_note(r: RunRecord) -> str:
    """The load scenarios' and LoadGen's answer in one line."""
    m = r.metrics
    parts = []
    if "max_qps_at_slo" in m:
        parts.append(f"max_qps_at_slo {fmt_num(m['max_qps_at_slo'])}")
    if "max_streams_at_slo" in m:
        parts.append(f"max_streams_at_slo {m['max_streams_at_slo']:.0f} at {fmt_num(m.get('fps'))} fps")
    if "late_queries" in m:
        parts.append(f"{m['late_queries']} of {m['queries']} requests late (> {fmt_num(m['slo_ms'])} ms), "
                     f"{m.get('dropped_queries', 0)} dropped, offered {fmt_num(m.get('offered_qps'))}/s, "
                     f"achieved {fmt_num(m.get('achieved_qps'))}/s")
    if "loadgen_valid" in m:
        parts.append("LoadGen " + ("VALID" if m["loadgen_valid"] else "INVALID"))
    if "train_loss_first" in m:
        parts.append(f"loss {fmt_num(m['train_loss_first'])} -> {fmt_num(m['train_loss_last'])}")
    if "fit_s_per_image" in m:
        asked = r.backend.get("requested_precision")
        fp32 = f" (in fp32; {asked} was asked: the fit has no AMP path)" if asked and asked != "fp32" else ""
        parts.append(f"fit {fmt_num(m['fit_s_per_image'] * 1000)} ms per training image{fp32}")
    return "; ".join(parts)


# The summary's columns: on a narrow terminal the backend, batch and scenario that every row shares go to the
# title, mean ± σ and iterations leave, the figures fold, then p50 leaves.
SUMMARY_COLUMNS = [Column("#", justify="right"), Column("workload"), Column("backend", fold=True, hoist=True),
                   Column("batch", justify="right", hoist=True),
                   Column("scenario", hoist=True), Column("status", fold=True), Column("p50 ms [CI]", fold=True, drop=5),
                   Column("p99 ms [CI]", fold=True), Column("mean ± σ ms", drop=8, optional=True),
                   Column("samples/s [CI]", fold=True), Column("iterations", justify="right", drop=9, optional=True)]


def summary(results: Sequence[tuple[RunRecord, Path]], store_url: str, stream: Optional[TextIO] = None,
            width: Optional[int] = None, plain: Optional[bool] = None) -> None:
    """The table, then per row its warnings, notes and errors, then where the records are; fitted to the
    terminal (``width``, the terminal's unless given) or, piped, plain (bench.reporting.terminal)."""
    out = Out(stream or sys.stdout, width=width, plain=plain)
    out.table("bench run summary (latency in ms per batch, 95% intervals)", SUMMARY_COLUMNS,
              [_row(i, record) for i, (record, _) in enumerate(results, 1)], hint="--json gives every figure")
    for i, (record, _) in enumerate(results, 1):
        for warning in record.warnings:
            out.line(f"  warning [{i}] {warning['code']}: {warning['message']}. Hint: {warning['hint']}")
        note = _scenario_note(record) if record.status == "ok" else ""
        if note:
            out.line(f"  {record.scenario.get('name')} [{i}] {note}")
        conversion = record.setup.get("conversion") or {}
        if "cache_hit" in conversion:
            state = "served from the cache" if conversion["cache_hit"] else f"built in {conversion['build_s']:.1f} s"
            out.line(f"  note [{i}] conversion {state} (setup {fmt_num(record.metrics.get('setup_s'))} s)")
        if record.status != "ok" and record.error:
            out.line(f"  error [{i}] {record.error.get('kind')}: {record.error.get('message')}")
        if record.status == "ok" and continual.is_continual(record):
            continual.print_block(out, record, f"  continual [{i}] ", indent=2)
    if any(r.status == "ok" and r.metrics.get("ci_scope", "process") == "process" for r, _ in results):
        out.line("  note: intervals of one process hold the noise within it, not the variation between fresh "
                 "processes (often several %): repeats=N (or preset=rigorous) measures that")
    folders = sorted({str(path.parent) for _, path in results})
    if results:
        out.line(f"{len(results)} record(s) written to {', '.join(folders)} and {store_url}")
    failed = sum(1 for r, _ in results if r.status != "ok")
    invalid = sum(1 for r, _ in results if r.status == "ok" and not r.valid)
    if failed or invalid:
        out.line(f"{failed} work item(s) failed, {invalid} invalid")


SUMMARY_JSON_VERSION = 1


def summary_json(results: Sequence[tuple[RunRecord, Path]], store_url: str, run_id: str,
                 exit_code: int) -> dict[str, Any]:
    """`bench run --json`: the run's summary as one JSON document (SUMMARY_JSON_VERSION): per record what
    the table shows (its identity, status, every metric with its interval keys, warnings, error) and
    where it is stored; the whole record is the file at ``path`` (docs/record.schema.json)."""
    from bench import __version__

    records = []
    for record, path in results:
        w, b = record.workload, record.backend
        records.append({
            "id": record.id, "path": str(path), "created_at": record.created_at, "status": record.status,
            "valid": record.valid, "suite": w.get("suite"), "workload": w.get("name"),
            "scenario": record.scenario.get("name"), "batch_size": w.get("batch_size"), "backend": b.get("name"),
            "device": b.get("device"), "precision": b.get("precision"), "hardware": record.system.get("hardware"),
            "tag": record.tag, "sweep_id": record.sweep_id or None, "metrics": record.metrics,
            "warnings": [{k: w_.get(k) for k in ("code", "message", "hint")} for w_ in record.warnings],
            "error": record.error,
        })
    return {"version": SUMMARY_JSON_VERSION, "bench": __version__, "run_id": run_id, "store": store_url,
            "exit_code": exit_code, "records": records,
            "failed": sum(1 for r, _ in results if r.status != "ok"),
            "invalid": sum(1 for r, _ in results if r.status == "ok" and not r.valid)}


def sweep_summary(sweep_id: str, results: dict, stream: Optional[TextIO] = None) -> None:
    """Per workload: the sizes measured, why the sweep stopped, and the last size that fit."""
    stream = stream or sys.stdout
    stream.write(f"sweep {sweep_id}:\n")
    for workload, result in results.items():
        sizes = ", ".join(f"{p.batch_size}{'*' if p.reused else ''}{' again' if p.remeasured else ''}"
                          f"{'' if p.status == 'ok' else ' ' + p.status}"
                          f"{' (not converged)' if p.status == 'ok' and not p.converged else ''}"
                          for p in result.points)
        stream.write(f"  {workload}: batch {sizes}; stopped: {result.stop_reason}\n")
        conversions = conversion_line(result.points)
        if conversions:
            stream.write(f"    conversions: {conversions}\n")
    stream.write("  (* = kept from before the resume; again = measured again with twice the window)  report: bench report scaling sweep_id=" + sweep_id + "\n")


def conversion_line(points: Sequence) -> str:
    """Which points of a sweep converted the model and which the conversion cache served, e.g.
    "batch 1 converted (onnx); batch 2, 4, 8, 16 served from the cache"; "" when no point says."""
    known = [p for p in points if getattr(p, "converted", None) is not None and not p.reused]
    if not known:
        return ""
    built = [p for p in known if p.converted]
    served = [f"{p.batch_size}{' again' if p.remeasured else ''}" for p in known if not p.converted]
    parts = [f"batch {p.batch_size} converted ({', '.join(p.converted)})" for p in built]
    if served:
        parts.append(f"batch {', '.join(served)} served from the cache")
    return "; ".join(parts)
