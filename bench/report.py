"""The end-of-run summary a person reads at a glance: one row per work item, each figure with its
interval, then the warnings with what to do, then where the records are."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence, TextIO

from rich import box
from rich.console import Console
from rich.table import Table

from bench.fmt import fmt_ci, fmt_num
from bench.progress import use_plain_output
from bench.records import RunRecord

__all__ = ["summary", "fmt_ci", "fmt_num"]


def _row(index: int, r: RunRecord) -> list[str]:
    w, b, m = r.workload, r.backend, r.metrics
    device = "" if b.get("device") == b.get("name") else f" {b.get('device')}"
    backend = f"{b.get('name')}{device} {b.get('precision')}"
    base = [str(index), str(w.get("name")), backend, str(w.get("batch_size")), str(r.scenario.get("name"))]
    if r.status != "ok":
        error = r.error or {}
        return base + [f"FAILED: {error.get('kind')}", str(error.get("message", ""))[:60], "", "", "", ""]
    status = "ok" if r.valid else "INVALID"
    if not m.get("converged", True):
        status += " (not converged)"
    if "latency_p50_ms" in m:
        p50 = f"{fmt_num(m['latency_p50_ms'])} {fmt_ci(m['latency_p50_ci_low_ms'], m['latency_p50_ci_high_ms'])}"
        p99 = f"{fmt_num(m['latency_p99_ms'])} {fmt_ci(m['latency_p99_ci_low_ms'], m['latency_p99_ci_high_ms'])}"
        mean = f"{fmt_num(m['latency_mean_ms'])} ± {fmt_num(m['latency_std_ms'], 3)}"
    else:  # pipelined throughput: no per-request latency (metrics.latency_note says why)
        p50 = p99 = mean = "-"
    tput = f"{fmt_num(m['throughput_sps'])} {fmt_ci(m['throughput_ci_low_sps'], m['throughput_ci_high_sps'])}"
    return base + [status, p50, p99, mean, tput, f"{m['iterations']}"]


def summary(results: Sequence[tuple[RunRecord, Path]], store_url: str, stream: Optional[TextIO] = None) -> None:
    stream = stream or sys.stdout
    plain = use_plain_output(stream)
    console = Console(file=stream, no_color=plain, highlight=False, soft_wrap=False,
                      width=240 if plain else None)
    table = Table(box=box.SIMPLE_HEAD, title="bench run summary (latency in ms per batch, 95% intervals)",
                  title_justify="left")
    for name in ("#", "workload", "backend", "batch", "scenario", "status", "p50 ms [CI]", "p99 ms [CI]",
                 "mean ± σ ms", "samples/s [CI]", "iterations"):
        table.add_column(name, justify="right" if name in ("#", "batch", "iterations") else "left")
    for i, (record, _) in enumerate(results, 1):
        table.add_row(*_row(i, record))
    console.print(table)
    for i, (record, _) in enumerate(results, 1):
        for warning in record.warnings:
            console.print(f"  warning [{i}] {warning['code']}: {warning['message']}. Hint: {warning['hint']}",
                          markup=False)
        conversion = record.setup.get("conversion") or {}
        if "cache_hit" in conversion:
            state = "served from the cache" if conversion["cache_hit"] else f"built in {conversion['build_s']:.1f} s"
            console.print(f"  note [{i}] conversion {state} (setup {fmt_num(record.metrics.get('setup_s'))} s)",
                          markup=False)
        if record.status != "ok" and record.error:
            console.print(f"  error [{i}] {record.error.get('kind')}: {record.error.get('message')}", markup=False)
    folders = sorted({str(path.parent) for _, path in results})
    if results:
        console.print(f"{len(results)} record(s) written to {', '.join(folders)} and {store_url}", markup=False)
    failed = sum(1 for r, _ in results if r.status != "ok")
    invalid = sum(1 for r, _ in results if r.status == "ok" and not r.valid)
    if failed or invalid:
        console.print(f"{failed} work item(s) failed, {invalid} invalid", markup=False)



def sweep_summary(sweep_id: str, results: dict, stream: Optional[TextIO] = None) -> None:
    """Per workload: the sizes measured, why the sweep stopped, and the last size that fit."""
    stream = stream or sys.stdout
    stream.write(f"sweep {sweep_id}:\n")
    for workload, result in results.items():
        sizes = ", ".join(f"{p.batch_size}{'*' if p.reused else ''}{'' if p.status == 'ok' else ' ' + p.status}"
                          for p in result.points)
        stream.write(f"  {workload}: batch {sizes}; stopped: {result.stop_reason}\n")
    stream.write("  (* = kept from before the resume)  report: bench report scaling sweep_id=" + sweep_id + "\n")
