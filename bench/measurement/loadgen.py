"""MLPerf LoadGen as a measurement engine: the four MLPerf scenarios around one ``run_batch`` callable.

bench's own loop (bench.measurement.loop) times a backend back to back. LoadGen instead plays the traffic of a
scenario (one query at a time, 8-sample queries, Poisson arrivals, or one huge query) and judges the
run against MLPerf's rules; its summary log is the result, parsed here into numbers.

The system under test is one worker thread in front of ``run_batch``. Every scenario goes through it:
``issue_query`` only queues the samples and returns, so LoadGen's issuing thread is never held by an
inference (in Server it must keep to its arrival schedule), and the worker takes whatever is queued,
up to ``batch_size`` samples, as one call (a Server burst is batched; Offline's one huge query is cut
into full batches). It never waits for a fuller batch, so ``flush_queries`` has nothing to release.
One thread, not a pool, because ``run_batch`` is one model on one device: concurrent calls would only
contend for it, and the caller's padded input buffer need not be thread-safe. Measured here, the
hand-off to the thread costs less than this machine's noise (SingleStream, 0.5 ms inference: mean
598-609 us through the thread, 597-604 us run inline in ``issue_query``).

What LoadGen does that a caller must know:
- Offline issues a single query of max(min_query_count, 1.1 x min_duration x expected qps) samples;
  the run is VALID only if that query takes min_duration, so the expected qps must not be low.
- SingleStream/MultiStream pre-generate 2 x min_duration / expected latency queries (at least
  min_query_count) and stop once min_duration and min_query_count are both met; an expected latency
  that is too high ends the run early (INVALID, "Min duration satisfied : NO"). Each pre-generated
  query costs about 300 bytes: a 0.1 ms model under the 600 s MLPerf preset holds ~12 M (~3.6 GB).
- Early stopping needs enough queries for the target percentile: 64 at the 90th, 662 at the 99th
  (SingleStream/MultiStream); Server needs ~460 at the 99th with no query over the latency bound.
- Without an explicit path, LoadGen reads ``audit.config`` from the current directory (a compliance
  override of the settings) and writes its logs there; both are pointed into ``log_dir``.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Optional

from bench.errors import ConfigError

__all__ = [
    "LOADGEN_SCENARIOS",
    "INSTALL_HINT",
    "PRESETS",
    "MLPERF_RULES",
    "LoadGenSettingError",
    "LoadGenSettings",
    "loadgen_available",
    "apply_preset",
    "loadgen_settings_values",
    "parse_summary",
    "parse_detail",
    "run_loadgen",
]

LOADGEN_SCENARIOS = {"latency": "SingleStream", "multistream": "MultiStream", "server": "Server",
                     "throughput": "Offline"}
PRESETS = ("none", "mlperf")
INSTALL_HINT = "pip install -c constraints.txt -e '.[loadgen]'"

# From LoadGen's mlperf.conf (the MLPerf Inference rules), for models without their own line there.
# Offline's min_query_count is a sample count (its one query's size); 24576 is the cap MLPerf uses.
MLPERF_MIN_DURATION_S = 600.0
MLPERF_RULES: dict[str, dict[str, Any]] = {
    "SingleStream": {"min_query_count": 100, "target_latency_percentile": 0.90},
    "MultiStream": {"min_query_count": 662, "target_latency_percentile": 0.99, "samples_per_query": 8},
    "Server": {"min_query_count": 100, "target_latency_percentile": 0.99},
    "Offline": {"min_query_count": 24576},
}
MLPERF_SEEDS = {"qsl_rng_seed": 1780908523862526354, "sample_index_rng_seed": 14771362308971278857,
                "schedule_rng_seed": 18209322760996052031}

# The quick timing that stands in for a target the user did not give: one untimed call, then up to
# CALIBRATION_CALLS timed calls or CALIBRATION_MAX_S, whichever comes first; the fastest call counts,
# because every estimate below is safe when the model turns out slower than estimated.
CALIBRATION_CALLS = 5
CALIBRATION_MAX_S = 2.0
# Server without target_qps: half the throughput of back-to-back full batches, so the queue stays short.
SERVER_LOAD_FRACTION = 0.5
# Server without target_latency_ms: this many full-batch times as the latency bound (at least 1 ms).
SERVER_LATENCY_BOUND_BATCHES = 10.0
SERVER_MIN_LATENCY_BOUND_MS = 1.0
# The worker reports progress at most this often.
PROGRESS_INTERVAL_S = 1.0

Progress = Callable[[str, dict[str, Any]], None]


class LoadGenSettingError(ConfigError, ValueError):
    """A LoadGen setting is wrong or LoadGen cannot run here. A ValueError for callers outside bench."""


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


@dataclass
class LoadGenSettings:
    """What the user asks LoadGen for. Durations in seconds, latencies in milliseconds."""

    scenario: str  # bench's scenario name, one of LOADGEN_SCENARIOS' keys
    min_duration_s: float = 10.0
    max_duration_s: float = 0.0  # 0: no cap
    min_query_count: int = 100  # Offline: the minimum number of samples in its one query
    # Server: the scheduled queries per second; Offline: the expected samples per second (sizes its
    # query). None: estimated from a quick timing of run_batch.
    target_qps: Optional[float] = None
    # Server: the latency bound; SingleStream/MultiStream: the expected latency of one query.
    # None: estimated from a quick timing of run_batch.
    target_latency_ms: Optional[float] = None
    target_latency_percentile: float = 0.99
    samples_per_query: int = 8  # MultiStream
    # "mlperf": MLPerf's 600 s, minimum query counts, percentiles and seeds replace the values here.
    preset: str = "none"
    performance_sample_count: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scenario not in LOADGEN_SCENARIOS:
            raise LoadGenSettingError("scenario", self.scenario, f"use one of {', '.join(LOADGEN_SCENARIOS)}")
        if self.preset not in PRESETS:
            raise LoadGenSettingError("preset", self.preset, f"use one of {', '.join(PRESETS)}")
        for key in ("min_duration_s", "max_duration_s"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise LoadGenSettingError(key, value, "use a number of seconds >= 0")
        for key in ("min_query_count", "samples_per_query", "performance_sample_count"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LoadGenSettingError(key, value, "use a whole number >= 1")
        for key in ("target_qps", "target_latency_ms"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise LoadGenSettingError(key, value, "use a number > 0, or leave it unset to estimate it")
        if not 0 < self.target_latency_percentile < 1:
            raise LoadGenSettingError("target_latency_percentile", self.target_latency_percentile,
                                      "use a fraction between 0 and 1, e.g. 0.99")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**64:
            raise LoadGenSettingError("seed", self.seed, "use a whole number >= 0")
        if 0 < self.max_duration_s < self.effective_min_duration_s:
            raise LoadGenSettingError("max_duration_s", self.max_duration_s,
                                      f"raise it to at least the minimum duration ({self.effective_min_duration_s:g} s"
                                      f"{' under preset=mlperf' if self.preset == 'mlperf' else ''}) or set 0 (no cap)")

    @property
    def effective_min_duration_s(self) -> float:
        return MLPERF_MIN_DURATION_S if self.preset == "mlperf" else self.min_duration_s

    @property
    def loadgen_scenario(self) -> str:
        return LOADGEN_SCENARIOS[self.scenario]


def apply_preset(settings: LoadGenSettings) -> LoadGenSettings:
    """The settings with the preset's values in place of the user's (preset "none": unchanged).

    The preset stays named in the result, so applying it twice changes nothing. Under "mlperf" the
    targets, max_duration_s and performance_sample_count stay as given; the seeds become MLPerf's
    (see loadgen_settings_values).
    """
    if settings.preset == "none":
        return settings
    rules = MLPERF_RULES[settings.loadgen_scenario]
    return replace(settings, min_duration_s=MLPERF_MIN_DURATION_S,
                   min_query_count=rules["min_query_count"],
                   target_latency_percentile=rules.get("target_latency_percentile",
                                                       settings.target_latency_percentile),
                   samples_per_query=rules.get("samples_per_query", settings.samples_per_query))


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


def _calibrate(run_batch: Callable[[int], None], n: int, clock: Callable[[], int]) -> dict[str, Any]:
    run_batch(n)  # untimed: the first call may still pay for lazy initialisation
    times_ns: list[int] = []
    started = clock()
    while len(times_ns) < CALIBRATION_CALLS and (not times_ns or clock() - started < CALIBRATION_MAX_S * 1e9):
        t0 = clock()
        run_batch(n)
        times_ns.append(max(clock() - t0, 1))
    return {"batch": n, "times_ns": times_ns, "best_ns": min(times_ns)}


def loadgen_settings_values(settings: LoadGenSettings, batch_size: int,
                            calibration: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Every TestSettings field this engine sets, by LoadGen's own names, as plain values.

    The preset is applied here. ``calibration`` (from the quick timing) stands in for the targets
    left unset; a target that is needed but has neither raises LoadGenSettingError.
    """
    settings = apply_preset(settings)
    scenario = settings.loadgen_scenario
    seeds = MLPERF_SEEDS if settings.preset == "mlperf" else None
    values: dict[str, Any] = {
        "scenario": scenario,
        "mode": "PerformanceOnly",
        "min_duration_ms": round(settings.min_duration_s * 1000),
        "max_duration_ms": round(settings.max_duration_s * 1000),
        # Given as asked and never capped: LoadGen issues at least this many queries even when early
        # stopping would already call the run VALID with fewer.
        "min_query_count": settings.min_query_count,
        "max_query_count": 0,
    }
    for key in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed"):
        values[key] = seeds[key] if seeds else settings.seed
    best_s = calibration["best_ns"] / 1e9 if calibration else None

    def need(key: str) -> float:
        if best_s is None:
            raise LoadGenSettingError(key, None, "set it, or let run_loadgen time run_batch to estimate it",
                                      problem="is not set")
        return best_s

    if scenario == "SingleStream":
        latency_s = settings.target_latency_ms / 1e3 if settings.target_latency_ms else need("target_latency_ms")
        values["single_stream_expected_latency_ns"] = max(int(latency_s * 1e9), 1)
        values["single_stream_target_latency_percentile"] = settings.target_latency_percentile
    elif scenario == "MultiStream":
        if settings.target_latency_ms:
            latency_s = settings.target_latency_ms / 1e3
        else:  # one query is this many back-to-back batches
            latency_s = need("target_latency_ms") * math.ceil(settings.samples_per_query / batch_size)
        values["multi_stream_expected_latency_ns"] = max(int(latency_s * 1e9), 1)
        values["multi_stream_samples_per_query"] = settings.samples_per_query
        values["multi_stream_target_latency_percentile"] = settings.target_latency_percentile
    elif scenario == "Server":
        qps = settings.target_qps or SERVER_LOAD_FRACTION * batch_size / need("target_qps")
        if settings.target_latency_ms:
            bound_s = settings.target_latency_ms / 1e3
        else:
            bound_s = max(SERVER_LATENCY_BOUND_BATCHES * need("target_latency_ms"), SERVER_MIN_LATENCY_BOUND_MS / 1e3)
        values["server_target_qps"] = float(qps)
        values["server_target_latency_ns"] = max(int(bound_s * 1e9), 1)
        values["server_target_latency_percentile"] = settings.target_latency_percentile
    else:  # Offline
        values["offline_expected_qps"] = float(settings.target_qps or batch_size / need("target_qps"))
    return values


def _build_test_settings(lg: Any, values: dict[str, Any]) -> Any:
    ts = lg.TestSettings()
    for key, value in values.items():
        if key == "scenario":
            value = getattr(lg.TestScenario, value)
        elif key == "mode":
            value = getattr(lg.TestMode, value)
        setattr(ts, key, value)
    return ts


def _expected_generated_queries(values: dict[str, Any]) -> int:
    """About how many queries (Offline: samples) LoadGen builds before the run: its memory bill."""
    duration_s = values["min_duration_ms"] / 1e3
    scenario, floor = values["scenario"], values["min_query_count"]
    if scenario == "SingleStream":
        return max(floor, int(2 * duration_s * 1e9 / values["single_stream_expected_latency_ns"]))
    if scenario == "MultiStream":
        return max(floor, int(2 * duration_s * 1e9 / values["multi_stream_expected_latency_ns"]))
    if scenario == "Server":
        return max(floor, int(duration_s * values["server_target_qps"]))
    return max(floor, int(1.1 * duration_s * values["offline_expected_qps"]))


# ---------------------------------------------------------------------------------------------------
# The system under test


class _BatchingSUT:
    """Queues LoadGen's samples; one worker thread runs them in batches of at most ``batch_size``."""

    def __init__(self, lg: Any, run_batch: Callable[[int], None], batch_size: int,
                 progress: Progress, clock: Callable[[], int]) -> None:
        self._lg, self._run_batch, self._batch_size = lg, run_batch, batch_size
        self._progress, self._clock = progress, clock
        self._queue: collections.deque[int] = collections.deque()  # response ids
        self._cv = threading.Condition()
        self._stopping = False
        self.error: Optional[BaseException] = None
        self.issue_calls = self.samples_issued = self.samples_completed = self.flush_calls = 0
        self.batches = self.largest_batch = 0
        self._thread = threading.Thread(target=self._work, name="loadgen-sut", daemon=True)

    def start(self) -> None:
        self._started_ns = self._last_progress_ns = self._clock()
        self._thread.start()

    def issue_query(self, samples: list[Any]) -> None:
        # Runs on LoadGen's thread: anything raised here would abort the process, so it only queues.
        ids = [sample.id for sample in samples]
        with self._cv:
            self.issue_calls += 1
            self.samples_issued += len(ids)
            self._queue.extend(ids)
            self._cv.notify()

    def flush_queries(self) -> None:
        # Nothing is held back for a fuller batch; wake the worker in case it sleeps.
        with self._cv:
            self.flush_calls += 1
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join()

    def _work(self) -> None:
        lg = self._lg
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                if not self._queue:
                    return
                take = min(len(self._queue), self._batch_size)
                ids = [self._queue.popleft() for _ in range(take)]
            if self.error is None:
                try:
                    self._run_batch(take)
                except BaseException as exc:  # noqa: BLE001 - re-raised by run_loadgen once LoadGen returns
                    # LoadGen waits for every sample it issued: complete the rest unrun so it can end.
                    self.error = exc
            lg.QuerySamplesComplete([lg.QuerySampleResponse(i, 0, 0) for i in ids])
            self.batches += 1
            self.largest_batch = max(self.largest_batch, take)
            self.samples_completed += take
            now = self._clock()
            if now - self._last_progress_ns >= PROGRESS_INTERVAL_S * 1e9:
                self._last_progress_ns = now
                self._progress("loadgen", {"samples_completed": self.samples_completed,
                                           "elapsed_s": (now - self._started_ns) / 1e9})

    def stats(self) -> dict[str, int]:
        return {"issue_calls": self.issue_calls, "samples_issued": self.samples_issued,
                "samples_completed": self.samples_completed, "batches": self.batches,
                "largest_batch": self.largest_batch, "flush_calls": self.flush_calls}


# ---------------------------------------------------------------------------------------------------
# The logs


_KEY_VALUE = re.compile(r"^\s*(?P<key>[^:]+?)\s*:\s*(?P<value>.*?)\s*$")
_PERCENTILE = re.compile(r"^(?P<p>\d+(?:\.\d+)?)(?:th)? percentile latency \(ns\)$")
_EARLY_ESTIMATE = re.compile(r"Early stopping (?P<p>\d+(?:\.\d+)?)th percentile estimate: (?P<v>\d+)")
_COUNT_LINE = re.compile(r"^(?:(?P<n>\d+)|No) (?P<what>warnings?|errors?|ERRORS?) encountered", re.IGNORECASE)
_CHECKS = {"Performance constraints satisfied": "performance_constraints", "Min duration satisfied": "min_duration",
           "Min queries satisfied": "min_queries", "Early stopping satisfied": "early_stopping"}
_HEADLINE = {"Samples per second": "result_samples_per_s", "Tokens per second": "result_tokens_per_s",
             "Completed samples per second": "result_completed_samples_per_s",
             "Scheduled samples per second": "result_scheduled_samples_per_s"}
_STATS = {"Min latency (ns)": "latency_min_ns", "Max latency (ns)": "latency_max_ns",
          "Mean latency (ns)": "latency_mean_ns"}


def _number(text: str) -> Optional[float | int]:
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return None


def _percentile_name(p: str) -> str:
    return "p" + f"{float(p):g}".replace(".", "_")


def _snake(key: str) -> str:
    key = key.replace("w/o", "without").replace("w/", "with").replace("(ns)", "ns").replace("(ms)", "ms")
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def parse_summary(text: str) -> dict[str, Any]:
    """mlperf_log_summary.txt as data.

    Returns scenario, mode, valid (the "Result is" line; None if absent), checks (each "... satisfied"
    line as True/False, None for "Skipped"), result (the figures as numbers, units in the names; the
    scenario's headline figure is prefixed ``result_``; MultiStream's per-query latencies are
    ``query_latency_*``), metric (the headline's key), invalid_reasons, parameters ("Test Parameters
    Used"), and the counts of warnings and errors LoadGen reports.
    """
    out: dict[str, Any] = {"scenario": None, "mode": None, "valid": None, "checks": {}, "result": {},
                           "metric": None, "invalid_reasons": [], "parameters": {}, "warnings": 0, "errors": 0}
    result, checks = out["result"], out["checks"]
    section = "results"
    block: Optional[str] = None  # "recommendations", "early_stopping" or None
    bullets: dict[str, list[str]] = {"recommendations": [], "early_stopping": []}
    per_query = False
    check_lines: dict[str, str] = {}  # as LoadGen printed them, e.g. "Early stopping satisfied: NO"
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("====="):
            title = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if title == "Additional Stats":
                section = "stats"
            elif title == "Test Parameters Used":
                section = "parameters"
            block = None
            continue
        if not stripped:
            block = None
            continue
        if block is not None and line[:1].isspace():
            if stripped.startswith("* "):
                bullets[block].append(stripped[2:].strip())
            elif bullets[block]:  # a wrapped line of the bullet above
                bullets[block][-1] += " " + stripped
            continue
        block = None
        if stripped == "Recommendations:":
            block = "recommendations"
            continue
        if stripped.endswith("Early Stopping Result:"):
            block = "early_stopping"
            continue
        if stripped.startswith("Per-query latency"):
            per_query = True
            continue
        count = _COUNT_LINE.match(stripped)
        if count:
            kind = "warnings" if count["what"].lower().startswith("warning") else "errors"
            out[kind] = int(count["n"] or 0)
            continue
        match = _KEY_VALUE.match(line)
        if not match:
            continue
        key, value = match["key"], match["value"]
        if section == "parameters":
            number = _number(value)
            out["parameters"][_snake(key)] = number if number is not None else value
            continue
        if key == "Scenario":
            out["scenario"] = value
        elif key == "Mode":
            out["mode"] = value
        elif key == "Result is":
            out["valid"] = value.upper() == "VALID"
        elif key in _CHECKS:
            checks[_CHECKS[key]] = None if value.lower() == "skipped" else value.lower() == "yes"
            check_lines[_CHECKS[key]] = stripped
        elif key == "SUT name":
            continue
        else:
            number = _number(value)
            if number is None:
                continue
            percentile = _PERCENTILE.match(key)
            prefix = "query_" if per_query else ""
            if section == "results":
                prefix = "query_" if out["scenario"] == "MultiStream" else ""
                name = _HEADLINE.get(key) or (f"result_{prefix}latency_{_percentile_name(percentile['p'])}_ns"
                                              if percentile else "result_" + _snake(key))
                out["metric"] = out["metric"] or name
            elif percentile:
                name = f"{prefix}latency_{_percentile_name(percentile['p'])}_ns"
            elif key in _STATS:
                name = prefix + _STATS[key]
            else:
                name = _snake(key.replace(" per second", "_per_s"))
            result[name] = number
    for bullet in bullets["early_stopping"]:
        estimate = _EARLY_ESTIMATE.search(bullet)
        if estimate:
            result[f"early_stopping_latency_{_percentile_name(estimate['p'])}_ns"] = int(estimate["v"])
    if out["valid"] is False:
        reasons = out["invalid_reasons"]
        reasons.extend(check_lines[name] for name, ok in checks.items() if ok is False)
        reasons.extend(bullets["recommendations"])
        if checks.get("early_stopping") is False:
            reasons.extend(f"Early stopping: {b}" for b in bullets["early_stopping"])
    return out


def parse_detail(text: str) -> dict[str, Any]:
    """mlperf_log_detail.txt (``:::MLLOG {json}`` lines) as {"values": {key: last value},
    "errors": [...], "warnings": [...]}, each message as "key: value"."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    warnings: list[str] = []
    for line in text.splitlines():
        start = line.find("{")
        if not line.startswith(":::MLLOG") or start < 0:
            continue
        try:
            entry = json.loads(line[start:])
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
        key, value = entry.get("key"), entry.get("value")
        values[key] = value
        meta = entry.get("metadata") or {}
        if meta.get("is_error"):
            errors.append(f"{key}: {value}")
        elif meta.get("is_warning"):
            warnings.append(f"{key}: {value}")
    return {"values": values, "errors": errors, "warnings": warnings}


# ---------------------------------------------------------------------------------------------------
# The run


def _import_loadgen() -> Any:
    ok, why = loadgen_available()
    if not ok:
        raise LoadGenSettingError("engine", "loadgen", INSTALL_HINT, problem=f"cannot run ({why.split(': ')[0]})")
    import mlperf_loadgen

    return mlperf_loadgen


def run_loadgen(run_batch: Callable[[int], None], batch_size: int, settings: LoadGenSettings, log_dir: str,
                *, on_progress: Optional[Progress] = None,
                clock: Callable[[], int] = time.perf_counter_ns) -> dict[str, Any]:
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
        lg.StartTestWithLogSettings(sut_handle, qsl_handle, test_settings, log_settings,
                                    os.path.join(os.path.abspath(log_dir), "no-audit.config"))
    finally:
        sut.stop()
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
        "sut": {**sut.stats(), "threads": 1},
        "loadgen_messages": {"errors": detail["errors"], "warnings": detail["warnings"]},
        "summary_text": summary_text,
        "log_dir": log_dir,
        "loadgen_version": _package_version(),
    }
