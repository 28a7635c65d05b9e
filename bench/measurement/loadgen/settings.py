"""What the user asks MLPerf LoadGen for (``LoadGenSettings``, validated), MLPerf's preset, and the
TestSettings values they become (``loadgen_settings_values``), a quick timing standing in for the
targets left unset."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Optional

from bench.errors import ConfigError

__all__ = ["LOADGEN_SCENARIOS", "PRESETS", "MLPERF_RULES", "MLPERF_SEEDS", "LoadGenSettingError", "LoadGenSettings",
           "apply_preset", "loadgen_settings_values"]

LOADGEN_SCENARIOS = {"latency": "SingleStream", "multistream": "MultiStream", "server": "Server",
                     "throughput": "Offline"}
PRESETS = ("none", "mlperf")

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

# Server without target_qps: half the throughput of back-to-back full batches, so the queue stays short.
SERVER_LOAD_FRACTION = 0.5
# Server without target_latency_ms: this many full-batch times as the latency bound (at least 1 ms).
SERVER_LATENCY_BOUND_BATCHES = 10.0
SERVER_MIN_LATENCY_BOUND_MS = 1.0


class LoadGenSettingError(ConfigError, ValueError):
    """A LoadGen setting is wrong or LoadGen cannot run here. A ValueError for callers outside bench."""


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
        # The SUT runs each query before returning (bench.measurement.loadgen.sut): the queries that
        # came due meanwhile arrive in one call, each keeping its scheduled time, and run as one batch.
        values["server_coalesce_queries"] = True
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
