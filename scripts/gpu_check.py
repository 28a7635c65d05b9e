#!/usr/bin/env python
"""Check every GPU path of bench within a time budget, and print one table.

    python scripts/gpu_check.py --budget-s 520                 # plan, run, table, gpu-check-<time>.json
    python scripts/gpu_check.py --budget-s 520 --dry-run       # the plan with its estimates, nothing run
    python scripts/gpu_check.py --backends tensorrt --json trt.json -- backend.optimization_level=1

The plan (scripts/gpu_check_plan.py) covers each GPU backend, fp32/tf32/fp16/bf16/int8, batch 1 and
a batch range from one engine, CUDA graphs, the throughput, server (CUDA streams), multistream and
training scenarios and a user's ONNX file, in a priority order that is cut to the budget. Each group
of items is one `python -m bench.cli.main run` with PYTHONPATH set to this repository (bench need
not be installed), short windows, a fresh conversion cache and results folder in a temporary folder.
Rows are read back from the JSON records: status, parity, the precision the runtime reports it ran
(a mismatch with the one asked fails the check) and, for ONNX Runtime, where its nodes ran.
Backends `bench list` reports unavailable here (no GPU, a package missing) give 'unavailable' rows
with the reason and cost nothing. Exit code 0 when nothing failed, 1 otherwise, 2 when bench's own
dependencies are missing (the command that installs them, without touching torch, is printed).
The runs of onnxruntime-cuda, onnxruntime-tensorrt and tensorrt are not yet run on a GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from itertools import count
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the plan module beside this file
import gpu_check_plan as gp  # noqa: E402

__all__ = ["COLUMNS", "FAILED", "missing_dependencies", "install_command", "probe", "run_group", "record_rows",
           "refusal", "render", "write_json", "main"]

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("backend", "precision", "scenario", "workload", "batch", "status", "p50 ms", "samples/s",
           "ran precision", "placement", "message")
# Statuses that fail the check; unavailable, unsupported and skipped (budget) do not.
FAILED = ("failed", "oom", "parity-fail", "precision-mismatch", "rebuilt", "timeout", "missing", "error")
_RUNS = count(1)  # numbers the results folder of each `bench run`
KILL_GRACE_S = 5.0  # SIGTERM lets bench write what finished; SIGKILL this long after
# bench's own imports (import name: distribution), and the ONNX exporter the ONNX-based backends need.
DEPENDENCIES = {"hydra": "hydra-core", "omegaconf": "omegaconf", "sqlalchemy": "SQLAlchemy", "rich": "rich",
                "numpy": "numpy", "psutil": "psutil", "PIL": "pillow", "pandas": "pandas", "onnx": "onnx",
                "onnxscript": "onnxscript"}
USER_ONNX = """import sys, torch
net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 1, 1)).eval()
torch.onnx.export(net, (torch.rand(2, 3, 64, 64),), sys.argv[1], dynamo=True, input_names=["image"],
                  dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},))
"""


def missing_dependencies(find: Callable[[str], Any] = importlib.util.find_spec) -> list[str]:
    """Distributions of bench's dependencies that do not import here (torch is the user's own)."""
    return [dist for module, dist in DEPENDENCIES.items() if find(module) is None]


def install_command(dists: list[str]) -> str:
    """One pip command for the missing ones, at the tested versions, that leaves torch as it is (none of
    them depends on torch, and constraints only pin what is installed)."""
    return f"{sys.executable} -m pip install -c {ROOT / 'constraints.txt'} {' '.join(dists)}"


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def _run(command: list[str], cwd: Path, timeout_s: float) -> tuple[Optional[int], str, str]:
    """Run in a process group of its own; at the timeout SIGTERM the group (bench keeps the records of
    finished items), SIGKILL after KILL_GRACE_S. Returns (exit code or None on timeout, stdout, stderr)."""
    proc = subprocess.Popen(command, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=max(timeout_s, 1.0))
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
                out, err = proc.communicate(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                out, err = proc.communicate()
                break
        return None, out or "", err or ""


def probe(tmp: Path, timeout_s: float = 60.0) -> dict[str, dict[str, Any]]:
    """`bench list --json`'s backends by name: available, reason, install. suite=custom: the anomaly
    catalog's FLOPs count (seconds on a cold cache) is not needed here."""
    code, out, err = _run([sys.executable, "-m", "bench.cli.main", "list", "suite=custom", "--json"], tmp, timeout_s)
    if code != 0:
        raise RuntimeError(f"`bench list --json` exited {code}: {err.strip()[-500:]}")
    return {b["name"]: b for b in json.loads(out)["backends"]}


def refusal(stderr: str) -> tuple[str, str]:
    """Status and message of a `bench run` that refused to start (exit code 2)."""
    lines = [ln for ln in stderr.splitlines() if "error:" in ln] or stderr.splitlines() or [""]
    message = lines[-1].split("error:", 1)[-1].strip()
    if "cannot run here" in message:
        return "unavailable", message
    if "not supported by this backend" in message:
        return "unsupported", message
    return "error", message


def _placement(backend: dict[str, Any]) -> tuple[str, int]:
    """ONNX Runtime's nodes per provider ('TensorRT 41, CPU 3') and the CPU-placed count."""
    if not str(backend.get("name", "")).startswith("onnxruntime"):
        return str(backend.get("device") or ""), 0
    nodes = (backend.get("effective") or {}).get("nodes_per_provider")
    if not nodes:
        return "unknown (ONNX Runtime < 1.23 cannot say)", 0
    text = ", ".join(f"{k.replace('ExecutionProvider', '')} {v}" for k, v in nodes.items() if v)
    # On a GPU provider, nodes ONNX Runtime placed on the CPU (shape arithmetic, or an op the provider
    # lacks) are reported; on the CPU provider they are the point.
    on_gpu = (backend.get("effective") or {}).get("provider", "cpu") != "cpu"
    return text, int(nodes.get("CPUExecutionProvider") or 0) if on_gpu else 0


def record_rows(item: gp.Item, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per record of this item (a sweep has one per batch size), the checks applied."""
    rows = []
    for n, record in enumerate(sorted(records, key=lambda r: (r.get("workload") or {}).get("batch_size") or 0)):
        metrics, parity, error = record.get("metrics") or {}, record.get("parity") or {}, record.get("error") or {}
        backend = record.get("backend") or {}
        asked = backend.get("requested_precision") or backend.get("precision")
        ran = (backend.get("effective") or {}).get("ran_precision")
        placement, cpu_nodes = _placement(backend)
        conversion = (record.get("setup") or {}).get("conversion") or {}
        notes = [f"{len(record.get('warnings') or [])} warning(s): "
                 + ", ".join(w.get("code", "?") for w in record["warnings"])] if record.get("warnings") else []
        if cpu_nodes:
            notes.insert(0, f"{cpu_nodes} node(s) on the CPU")
        if record.get("status") == "skipped":
            status, notes = "skipped", (error.get("message") or "skipped by bench").splitlines()[:1]
        elif record.get("status") != "ok":
            status = "oom" if record.get("status") == "oom" else f"failed ({error.get('kind', '?')})"
            notes = (error.get("message") or "").splitlines()[:1]
        elif not parity.get("ok", False):
            status, notes = "parity-fail", [parity.get("detail") or f"error {parity.get('max_rel_error')} over "
                                                                     f"tolerance {parity.get('tolerance')}"]
        elif ran and asked and ran != asked:
            status, notes = "precision-mismatch", [f"asked for {asked}, the runtime reports {ran}"]
        elif item.sweep and n > 0 and conversion.get("cache_hit") is False:
            status, notes = "rebuilt", ["this batch size converted again instead of using the batch-1 engine"]
        elif item.scenario == "continual" and not metrics.get("adapted"):
            # The path under check is the adaptation itself (the trainer on the GPU, the swap).
            status, notes = "failed (not adapted)", [metrics.get("adaptation_error") or "no adaptation: see the record"]
        else:
            status = "ok"
            if item.scenario == "continual":
                notes.insert(0, f"time to adapt {metrics.get('time_to_adapt_s', 0):.1f} s, training "
                                f"{metrics.get('train_sps_colocated', 0):.1f} samples/s beside serving")
        rows.append({"batch": (record.get("workload") or {}).get("batch_size"), "status": status,
                     "workload": (record.get("workload") or {}).get("name"),
                     "p50 ms": metrics.get("latency_p50_ms", metrics.get("steady_latency_p50_ms")),
                     "samples/s": metrics.get("throughput_sps"),
                     "ran precision": ran or "-", "placement": placement, "message": "; ".join(notes)})
    if item.sweep and len(rows) < item.points:
        rows.append({"status": "missing", "message": f"the sweep gave {len(rows)} of {item.points} batch sizes"})
    return rows


def _base(item: gp.Item) -> dict[str, Any]:
    return {"backend": item.backend, "precision": item.precision, "scenario": item.what,
            "workload": "user ONNX" if item.user_onnx else gp.WORKLOAD}


def run_group(group: gp.Group, tmp: Path, index: int, timeout_s: float, extra: list[str],
              user_onnx: Optional[Path]) -> list[dict[str, Any]]:
    """One `bench run` (a multirun over its items' precisions) and the rows of its items. A refused
    multirun (exit code 2) is run again item by item, so that one refusal does not hide the others."""
    first, results = group.items[0], tmp / f"g{index:02d}"
    precisions = [i.precision for i in group.items]
    command = [sys.executable, "-m", "bench.cli.main", "run", *(["-m"] if len(precisions) > 1 else []),
               *first.overrides(), f"backend.precision={','.join(precisions)}", f"results.dir={results}",
               f"cache.dir={tmp / 'cache'}", f"worker.timeout_s={group.worker_timeout_s:g}", *extra]
    if first.user_onnx:
        command.append(f"model.path={user_onnx}")
    started = time.monotonic()
    code, _, stderr = _run(command, tmp, timeout_s)
    took = time.monotonic() - started
    records: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(results.glob("records/**/*.json")):
        record = json.loads(path.read_text())
        backend = record.get("backend") or {}
        records.setdefault(backend.get("requested_precision") or backend.get("precision"), []).append(record)
    rows, reached = [], False
    for item in group.items:
        base = _base(item)
        if item.precision in records:
            rows += [{**base, **row} for row in record_rows(item, records[item.precision])]
        elif code is None and reached:  # a multirun runs its items in order: the killed one came before
            rows.append({**base, "status": "skipped", "message": "not reached: its `bench run` was stopped"})
        elif code is None:
            reached, cut = True, timeout_s < group.timeout_s  # the budget stopped it before its own timeout
            rows.append({**base, "status": "skipped" if cut else "timeout",
                         "message": f"stopped at the budget after {took:.0f} s" if cut else
                         f"killed at its timeout ({took:.0f} s; estimate {group.estimate_s:.0f} s)"})
        elif code == 2:
            status, message = refusal(stderr)
            rows.append({**base, "status": status, "message": message})
        else:
            rows.append({**base, "status": "missing", "message": f"bench run exited {code}: {stderr.strip()[-300:]}"})
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 else f"{value:.2f}"
    return "-" if value is None or value == "" else str(value)


def render(rows: list[dict[str, Any]]) -> str:
    table = [list(COLUMNS)] + [[_cell(row.get(c)) for c in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS) - 1)]
    return "\n".join(("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1]).rstrip() for r in table)


def failed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if str(r.get("status", "")).startswith(FAILED)]


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str))
    tmp.replace(path)


def render_plan(plan: gp.Plan) -> str:
    lines = [f"{'#':>3}  {'backend':<21}{'precisions':<12}{'what':<48}{'estimate':>9}{'timeout':>9}"]
    for n, g in enumerate(plan.groups, 1):
        lines.append(f"{n:>3}  {g.items[0].backend:<21}{','.join(i.precision for i in g.items):<12}"
                     f"{g.items[0].label:<48}{g.estimate_s:>8.0f}s{g.timeout_s:>8.0f}s")
    lines.append(f"estimated {plan.estimate_s:.0f} s of {plan.budget_s:.0f} s (budget less {gp.OVERHEAD_S:.0f} s of "
                 f"the script's own); covers {len(gp.covered(plan.items))} of {len(gp.PATHS)} paths")
    missing = [p for p in gp.PATHS if p not in gp.covered(plan.items)]
    if missing:
        lines.append(f"not covered: {', '.join(missing)}")
    for item, cost in plan.dropped:
        lines.append(f"dropped (runs only if time remains): {item.backend} {item.precision} {item.label} "
                     f"({cost:.0f} s)")
    return "\n".join(lines)


def execute(plan: gp.Plan, tmp: Path, deadline: float, extra: list[str]) -> list[dict[str, Any]]:
    """Run the plan's groups in order, then what it dropped, re-planned on the time left; a group starts
    only while its estimate fits the time left, and is killed at its timeout or at the deadline."""
    rows: list[dict[str, Any]] = []
    done: set[str] = set()  # once-per-run conversions made (their artifacts are in the run's cache)
    while plan.groups:
        for group in plan.groups:
            left = deadline - time.monotonic() - KILL_GRACE_S  # a kill takes up to KILL_GRACE_S
            if left < group.estimate_s:
                rows += [{**_base(i), "status": "skipped", "message": f"budget: needs ~{w:.0f} s, {left:.0f} s left"}
                         for i, w in zip(group.items, group.work_s)]
                continue
            print(f"gpu_check: {group.items[0].backend} {','.join(i.precision for i in group.items)} "
                  f"{group.items[0].label} (~{group.estimate_s:.0f} s) ...", file=sys.stderr, flush=True)
            user_onnx = tmp / "user_model.onnx"
            if any(i.user_onnx for i in group.items) and not user_onnx.exists():
                code, _, err = _run([sys.executable, "-c", USER_ONNX, str(user_onnx)], tmp, min(120.0, left))
                if code != 0:
                    rows += [{**_base(i), "status": "error", "message": "exporting the user ONNX model: "
                              + ((err.strip().splitlines() or ["timed out"])[-1])} for i in group.items]
                    continue
            timeout = min(group.timeout_s, deadline - time.monotonic() - KILL_GRACE_S)
            if timeout < group.estimate_s:  # the export took the time this group needed
                rows += [{**_base(i), "status": "skipped", "message": f"budget: needs ~{w:.0f} s, {timeout:.0f} s left"}
                         for i, w in zip(group.items, group.work_s)]
                continue
            got = run_group(group, tmp, next(_RUNS), timeout, extra, user_onnx)
            if len(group.items) > 1 and all(r["status"] in ("error", "unavailable", "unsupported") for r in got):
                # A multirun is refused as a whole: run its items one by one for each one's own answer.
                got = execute(gp.Plan([gp.Group([i], [gp.item_work_s(i, done)]) for i in group.items]),
                              tmp, deadline, extra)
            rows += got
            done.update(c for i in group.items for c in i.convert if c in gp.ONCE_PER_RUN)
        plan = gp.plan([i for i, _ in plan.dropped], deadline - time.monotonic(), done)
        if not plan.groups:
            rows += [{**_base(i), "status": "skipped", "message": f"budget: needs ~{c:.0f} s"} for i, c in plan.dropped]
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=520.0, help="the whole run's time limit in seconds")
    parser.add_argument("--backends", default=",".join(gp.GPU_BACKENDS), help="comma-separated GPU backends")
    parser.add_argument("--json", default="", help="results file (default: gpu-check-<UTC time>.json here)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan with its estimates and exit")
    parser.add_argument("--keep", default="", help="keep records and cache under this folder (a new subfolder "
                                                    "per run), not in a temporary one")
    parser.add_argument("overrides", nargs="*", help="more `bench run` overrides for every item, after --")
    args = parser.parse_args(argv)
    started, wall = time.monotonic(), time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    chosen = [b for b in args.backends.split(",") if b]
    unknown = [b for b in chosen if b not in gp.GPU_BACKENDS]
    if unknown:
        print(f"gpu_check: error: --backends {','.join(unknown)}: not a GPU backend; use some of "
              f"{','.join(gp.GPU_BACKENDS)}", file=sys.stderr)
        return 2
    items = [i for i in gp.ITEMS if i.backend in chosen]
    if args.dry_run:  # every chosen backend as if available: the plan a GPU machine with all packages runs
        print(render_plan(gp.plan(items, args.budget_s - gp.OVERHEAD_S)))
        return 0
    missing = missing_dependencies()
    if missing:
        print(f"gpu_check: error: bench's dependencies {', '.join(missing)} do not import here; install them "
              f"(torch stays as it is):\n  {install_command(missing)}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("torch") is None:
        print("gpu_check: error: torch does not import here: install a CUDA build of PyTorch (pytorch.org)",
              file=sys.stderr)
        return 2
    json_path = Path(args.json or f"gpu-check-{wall}.json").resolve()
    with tempfile.TemporaryDirectory(prefix="bench-gpu-check-") as scratch:
        # A run's own folder even under --keep: an earlier run's records or engines are never read again.
        tmp = Path(args.keep).resolve() / f"gpu-check-{wall}" if args.keep else Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        deadline = started + args.budget_s
        try:
            backends = probe(tmp, timeout_s=min(60.0, args.budget_s / 2))
        except (RuntimeError, ValueError, KeyError) as exc:
            print(f"gpu_check: error: {exc}", file=sys.stderr)
            return 1
        ready = [i for i in items if (backends.get(i.backend) or {}).get("available")]
        rows = [{**_base(i), "status": "unavailable", "message": (backends.get(i.backend) or {}).get(
            "reason") or "not a backend of this bench"} for i in items if i not in ready]
        the_plan = gp.plan(ready, deadline - time.monotonic() - gp.OVERHEAD_S / 2)
        if ready:
            print(render_plan(the_plan), file=sys.stderr)
        rows = execute(the_plan, tmp, deadline, args.overrides) + rows
    print(render(rows))
    bad = failed(rows)
    off = {b: backends[b] for b in chosen if b in backends and not backends[b].get("available")}
    for name, info in off.items():
        print(f"unavailable: {name}: {info.get('reason')}"
              + (f"\n  install: {info['install']}" if info.get("install") else ""))
    counts = {s: sum(str(r["status"]).startswith(s) for r in rows)
              for s in ("ok", "unavailable", "unsupported", "skipped")}
    elapsed = time.monotonic() - started
    print(f"\n{len(rows)} rows: {counts['ok']} ok, {len(bad)} failed, {counts['unavailable']} unavailable, "
          f"{counts['unsupported']} unsupported, {counts['skipped']} skipped; {elapsed:.0f} s of {args.budget_s:g} s")
    write_json(json_path, {"budget_s": args.budget_s, "elapsed_s": round(elapsed, 1), "started_utc": wall,
                           "exit_code": 1 if bad else 0, "unavailable": off, "rows": rows,
                           "plan": [{"backend": g.items[0].backend, "precisions": [i.precision for i in g.items],
                                     "what": g.items[0].label, "estimate_s": g.estimate_s} for g in the_plan.groups]})
    print(f"results: {json_path}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
