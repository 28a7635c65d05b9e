#!/usr/bin/env python
"""Exercise every GPU backend on every anomaly workload, briefly, and print one table.

    python scripts/gpu_check.py                                   # all GPU backends x workloads, fp32 then fp16
    python scripts/gpu_check.py --backends cuda,tensorrt --workloads efficientad_s,autoencoder
    python scripts/gpu_check.py --keep gpu-results -- backend.cuda_graph=true   # extra overrides after --

Each (backend, precision) is one `bench run` in a subprocess, with short durations, into a temporary
results folder; the table is read back from the JSON records it wrote. A backend that cannot run
here (no GPU, library missing, precision unsupported) gives 'unavailable' or 'unsupported' rows with
the reason, so the script runs on a machine without a GPU too. Exit code 0 when nothing failed
(unavailable is not a failure), 1 when a work item failed or missed parity.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GPU_BACKENDS = ("cuda", "cuda-compiled", "onnxruntime-cuda", "onnxruntime-tensorrt", "tensorrt")
SHORT = ["scenario.warmup_iterations=2", "scenario.warmup_s=0.5", "scenario.warmup_max_s=5",
         "scenario.min_iterations=10", "scenario.min_duration_s=1", "scenario.max_duration_s=5"]
COLUMNS = ("backend", "precision", "workload", "status", "p50 ms", "samples/s", "parity err", "message")


def anomaly_workloads() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from bench.suites.anomaly import SUITE

    return SUITE.names()


def bench_run(backend: str, precision: str, workloads: list[str], results: Path, timeout_s: float,
              extra: list[str]) -> tuple[int, str]:
    """One `bench run`; returns its exit code and the end of its stderr."""
    command = [sys.executable, "-m", "bench.cli.main", "run", f"backend={backend}", f"backend.precision={precision}",
               "suite=anomaly", f"suite.only=[{','.join(workloads)}]", f"results.dir={results}",
               f"worker.timeout_s={timeout_s:g}", *SHORT, *extra]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout_s * (len(workloads) + 1))
    except subprocess.TimeoutExpired:
        return 124, "bench run did not finish in time"
    return done.returncode, done.stderr.strip()[-2000:]


def refusal(stderr: str) -> tuple[str, str]:
    """Status and message of a `bench run` that refused to start (exit code 2)."""
    lines = [ln for ln in stderr.splitlines() if "error:" in ln] or stderr.splitlines() or [""]
    message = lines[-1].split("error:", 1)[-1].strip()
    if "cannot run here" in message:
        return "unavailable", message
    if "not supported by this backend" in message:
        return "unsupported", message
    return "error", message


def record_row(record: dict[str, Any]) -> dict[str, Any]:
    metrics, parity, error = record.get("metrics") or {}, record.get("parity") or {}, record.get("error") or {}
    if record.get("status") != "ok":
        status, message = f"failed ({error.get('kind', '?')})", (error.get("message") or "").splitlines()[:1]
    elif not parity.get("ok", False):
        status, message = "parity-fail", [parity.get("detail") or f"tolerance {parity.get('tolerance')}"]
    else:
        status, message = "ok", [f"{len(record.get('warnings') or [])} warning(s)" if record.get("warnings") else ""]
    return {"status": status, "p50 ms": metrics.get("latency_p50_ms"), "samples/s": metrics.get("throughput_sps"),
            "parity err": parity.get("max_rel_error"), "message": message[0] if message else ""}


def check(backends: list[str], precisions: list[str], workloads: list[str], results_root: Path,
          timeout_s: float, extra: list[str]) -> list[dict[str, Any]]:
    rows = []
    for backend in backends:
        for precision in precisions:
            results = results_root / f"{backend}-{precision}"
            print(f"gpu_check: {backend} {precision} ...", file=sys.stderr, flush=True)
            code, stderr = bench_run(backend, precision, workloads, results, timeout_s, extra)
            records = {}
            for path in sorted(results.glob("records/**/*.json")):
                record = json.loads(path.read_text())
                records[record.get("workload", {}).get("name")] = record
            for workload in workloads:
                row = {"backend": backend, "precision": precision, "workload": workload}
                if workload in records:
                    row.update(record_row(records[workload]))
                elif code == 2:
                    status, message = refusal(stderr)
                    row.update(status=status, message=message)
                else:
                    row.update(status="missing", message=f"bench run exited {code}: {stderr[-300:]}")
                rows.append(row)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1e-2 else f"{value:.2f}"
        return "-" if value is None else str(value)

    table = [list(COLUMNS)] + [[cell(row.get(c)) for c in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS) - 1)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1] for r in table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(GPU_BACKENDS), help="comma-separated backends")
    parser.add_argument("--workloads", default="", help="comma-separated anomaly workloads (default: all)")
    parser.add_argument("--precisions", default="fp32,fp16", help="comma-separated precisions, in order")
    parser.add_argument("--timeout", type=float, default=900.0, help="worker.timeout_s of each work item")
    parser.add_argument("--keep", default="", help="keep the results in this folder instead of a temporary one")
    parser.add_argument("overrides", nargs="*", help="more `bench run` overrides, after --")
    args = parser.parse_args(argv)
    workloads = [w for w in args.workloads.split(",") if w] or anomaly_workloads()
    split = lambda text: [v for v in text.split(",") if v]  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="bench-gpu-check-") as tmp:
        root = Path(args.keep).resolve() if args.keep else Path(tmp)
        rows = check(split(args.backends), split(args.precisions), workloads, root, args.timeout, args.overrides)
    print(render(rows))
    bad = [r for r in rows if r["status"].startswith(("failed", "parity", "missing", "error"))]
    print(f"\n{len(rows)} rows: {sum(r['status'] == 'ok' for r in rows)} ok, {len(bad)} failed, "
          f"{sum(r['status'] in ('unavailable', 'unsupported') for r in rows)} unavailable or unsupported")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
