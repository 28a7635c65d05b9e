"""One LoadGen performance test against ``run_batch``: whether LoadGen can run here, the quick
timing (calibration) that stands in for targets the user did not give, the run, and its result
gathered from the logs."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any, Callable, Optional

from bench.measurement.clock import REAL_CLOCK, Clock
from bench.measurement.loadgen.log import parse_detail, parse_summary
from bench.measurement.loadgen.settings import (
    LoadGenSettingError,
    LoadGenSettings,
    _build_test_settings,
    _expected_generated_queries,
    apply_preset,
    loadgen_settings_values,
)
from bench.measurement.loadgen.sut import RUNS_ON, Progress, _BatchingSUT
from bench.measurement.timing import timed_runs

__all__ = ["INSTALL_HINT", "loadgen_available", "run_loadgen"]

INSTALL_HINT = "pip install -c constraints.txt -e '.[loadgen]'"

# The quick timing that stands in for a target the user did not give: one untimed call, then up to
# CALIBRATION_CALLS timed calls or CALIBRATION_MAX_S, whichever comes first; the fastest call counts,
# because every estimate below is safe when the model turns out slower than estimated.
CALIBRATION_CALLS = 5
CALIBRATION_MAX_S = 2.0


def loadgen_available() -> tuple[bool, str]:
    """(True, "mlcommons-loadgen VERSION") or (False, why, with the command that installs it)."""
    try:
        import mlperf_loadgen  # noqa: F401
    except ModuleNotFoundError:
        return False, f"mlcommons-loadgen is not installed: {INSTALL_HINT}"
    except ImportError as exc:  # installed but broken (a wheel for another Python, a missing library)
        return False, f"mlcommons-loadgen cannot be imported ({exc}): reinstall it with {INSTALL_HINT}"
    return True, f"mlcommons-loadgen {_package_version()}"


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlcommons-loadgen")
    except PackageNotFoundError:  # built from source without package metadata
        return "unknown"


def _import_loadgen() -> Any:
    ok, why = loadgen_available()
    if not ok:
        raise LoadGenSettingError("engine", "loadgen", INSTALL_HINT, problem=f"cannot run ({why.split(': ')[0]})")
    import mlperf_loadgen

    return mlperf_loadgen


def _calibration_batch(settings: LoadGenSettings, batch_size: int) -> Optional[int]:
    """The batch to time when a target must be estimated, or None when every target is given."""
    scenario = settings.loadgen_scenario
    if scenario == "SingleStream":
        return 1 if settings.target_latency_ms is None else None
    if scenario == "MultiStream":
        return min(batch_size, settings.samples_per_query) if settings.target_latency_ms is None else None
    if scenario == "Server" and settings.target_qps is not None and settings.target_latency_ms is not None:
        return None
    if scenario == "Offline" and settings.target_qps is not None:
        return None
    return batch_size


def _calibrate(run_batch: Callable[[int], None], n: int, clock: Clock) -> dict[str, Any]:
    run_batch(n)  # untimed: the first call may still pay for lazy initialisation
    runs = timed_runs(lambda: run_batch(n), min_runs=CALIBRATION_CALLS, max_s=CALIBRATION_MAX_S, clock=clock)
    times_ns = [max(t, 1) for t in runs.durations_ns]
    return {"batch": n, "times_ns": times_ns, "best_ns": min(times_ns)}


def run_loadgen(run_batch: Callable[[int], None], batch_size: int, settings: LoadGenSettings, log_dir: str,
                *, on_progress: Optional[Progress] = None,
                clock: Clock = REAL_CLOCK) -> dict[str, Any]:
    """Run one LoadGen performance test of ``settings`` against ``run_batch`` and return its results.

    ``run_batch(n)`` runs one inference of up to ``n`` <= ``batch_size`` samples, synchronously, on
    data already resident (the caller pads to its fixed batch size). LoadGen's logs go to ``log_dir``.
    An exception from ``run_batch`` is raised here once LoadGen has finished (the samples after it
    are completed unrun so that it can; a Server run still lasts its minimum duration).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LoadGenSettingError("batch_size", batch_size, "use a whole number >= 1")
    lg = _import_loadgen()
    progress = on_progress or (lambda phase, info: None)
    effective = apply_preset(settings)

    calibration = None
    batch = _calibration_batch(effective, batch_size)
    if batch is not None:
        progress("calibrate", {"batch": batch})
        calibration = _calibrate(run_batch, batch, clock)
    values = loadgen_settings_values(effective, batch_size, calibration)
    test_settings = _build_test_settings(lg, values)

    os.makedirs(log_dir, exist_ok=True)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = os.path.abspath(log_dir)
    log_settings.log_output.prefix = "mlperf_log_"
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.log_output.copy_detail_to_stdout = False
    log_settings.enable_trace = False  # tens of MB per 100k queries, and nothing here reads it

    sut = _BatchingSUT(lg, run_batch, batch_size, progress, clock)
    sut_handle = lg.ConstructSUT(sut.issue_query, sut.flush_queries)
    qsl_handle = lg.ConstructQSL(settings.performance_sample_count, settings.performance_sample_count,
                                 lambda indices: None, lambda indices: None)  # the data is already resident
    progress("loadgen", {"scenario": values["scenario"], "min_duration_s": effective.min_duration_s})
    sut.start()
    try:
        # A path that does not exist: LoadGen must not pick up an audit.config from the current directory.
        # LoadGen calls sut.issue_query from this thread (server_num_issue_query_threads=0): run_batch runs here.
        lg.StartTestWithLogSettings(sut_handle, qsl_handle, test_settings, log_settings,
                                    os.path.join(os.path.abspath(log_dir), "no-audit.config"))
    finally:
        lg.DestroyQSL(qsl_handle)
        lg.DestroySUT(sut_handle)
    if sut.error is not None:
        raise sut.error

    with open(os.path.join(log_dir, "mlperf_log_summary.txt"), encoding="utf-8") as f:
        summary_text = f.read()
    detail_path = os.path.join(log_dir, "mlperf_log_detail.txt")
    detail = {"values": {}, "errors": [], "warnings": []}
    if os.path.exists(detail_path):
        with open(detail_path, encoding="utf-8") as f:
            detail = parse_detail(f.read())
    summary = parse_summary(summary_text)
    result = dict(summary["result"])
    dv = detail["values"]
    for key, name in (("result_query_count", "query_count"), ("effective_samples_per_query", "samples_per_query"),
                      ("result_overlatency_query_count", "overlatency_query_count")):
        if isinstance(dv.get(key), (int, float)):
            result[name] = dv[key]
    invalid_reasons = list(summary["invalid_reasons"])
    if summary["valid"] is False:
        invalid_reasons.extend(f"LoadGen error: {e}" for e in detail["errors"])
    return {
        "scenario": values["scenario"],
        "metric": summary["metric"],
        "result": result,
        "valid": bool(summary["valid"]),
        "invalid_reasons": invalid_reasons,
        "checks": summary["checks"],
        "settings": asdict(settings),
        "effective": {
            "test_settings": values,
            "calibration": calibration,
            "expected_generated_queries": _expected_generated_queries(values),
            "loadgen": {k[len("effective_"):]: v for k, v in dv.items() if k.startswith("effective_")},
        },
        "sut": {**sut.stats(), "runs_on": RUNS_ON},
        "loadgen_messages": {"errors": detail["errors"], "warnings": detail["warnings"]},
        "summary_text": summary_text,
        "log_dir": log_dir,
        "loadgen_version": _package_version(),
    }
