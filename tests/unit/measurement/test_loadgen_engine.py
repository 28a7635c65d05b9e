"""bench.measurement.loadgen: settings, the summary and detail parsers, the batching SUT, and short real runs.

The fixtures are real LoadGen 6.0.17 logs from runs on this machine, trimmed ("Test Parameters Used"
cut to a few lines). The real runs use a fake run_batch that sleeps 2 ms, so their numbers are only
checked against that floor, never against a speed.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from bench.errors import ConfigError
from bench.measurement.loadgen import (
    INSTALL_HINT,
    LOADGEN_SCENARIOS,
    MLPERF_SEEDS,
    LoadGenSettingError,
    LoadGenSettings,
    apply_preset,
    loadgen_available,
    loadgen_settings_values,
    parse_detail,
    parse_summary,
    run_loadgen,
)
from bench.measurement.loadgen.settings import _build_test_settings
from bench.measurement.loadgen.sut import _BatchingSUT

HAVE_LOADGEN = loadgen_available()[0]
needs_loadgen = pytest.mark.skipif(not HAVE_LOADGEN, reason="mlcommons-loadgen is not installed")

# SingleStream cut short by max_duration_ms: two checks fail, a recommendation wraps, one LoadGen error.
SUMMARY_SINGLESTREAM_INVALID = """\
================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : SingleStream
Mode     : PerformanceOnly
90.0th percentile latency (ns) : 2105369
Result is : INVALID
  Min duration satisfied : NO
  Min queries satisfied : NO
  Early stopping satisfied: Yes
Recommendations:
 * Decrease the expected latency so the loadgen pre-generates more queries.
 * The test exited early, before enough queries were issued.
   See the detailed log for why this may have occurred.
Early Stopping Result:
 * Processed at least 64 queries (145).
 * Would discard 5 highest latency queries.
 * Early stopping 90.0th percentile estimate: 2129319
 * Not enough queries processed for 99.0th percentile
 early stopping estimate (would need to process at
 least 662 total queries).

================================================
Additional Stats
================================================
QPS w/ loadgen overhead         : 477.69
QPS w/o loadgen overhead        : 478.40

Min latency (ns)                : 2068274
Max latency (ns)                : 2156585
Mean latency (ns)               : 2090296
50.00 percentile latency (ns)   : 2086210
90.00 percentile latency (ns)   : 2105369
95.00 percentile latency (ns)   : 2126861
97.00 percentile latency (ns)   : 2138022
99.00 percentile latency (ns)   : 2151928
99.90 percentile latency (ns)   : 2156585

================================================
Test Parameters Used
================================================
samples_per_query : 1
target_qps : 500
target_latency (ns): 0
min_duration (ms): 1000
max_duration (ms): 300
min_query_count : 2000
performance_sample_count : 64

No warnings encountered during test.

1 ERROR encountered. See detailed log.
"""

SUMMARY_SERVER_INVALID = """\
================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : Server
Mode     : PerformanceOnly
Completed samples per second    : 101.04
Result is : INVALID
  Performance constraints satisfied : Yes
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: NO
Recommendations:
Early Stopping Result:
 * Run unsuccessful.
 * Processed 54 queries.
 * Would need to run at least 405 more queries,
 with the run being successful if every additional
 query were under latency.

================================================
Additional Stats
================================================
Scheduled samples per second : 101.50
Min latency (ns)                : 2218335
Max latency (ns)                : 2495131
Mean latency (ns)               : 2319600
50.00 percentile latency (ns)   : 2294860
90.00 percentile latency (ns)   : 2411339
95.00 percentile latency (ns)   : 2453199
97.00 percentile latency (ns)   : 2480693
99.00 percentile latency (ns)   : 2495131
99.90 percentile latency (ns)   : 2495131

================================================
Test Parameters Used
================================================
samples_per_query : 1
target_qps : 100
target_latency (ns): 50000000

No warnings encountered during test.

No errors encountered during test.
"""

SUMMARY_MULTISTREAM_INVALID = """\
================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : MultiStream
Mode     : PerformanceOnly
99.0th percentile latency (ns) : 2362011
Result is : INVALID
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: NO
Recommendations:
Early Stopping Result:
 * Only processed 221 queries.
 * Need to process at least 662 queries for early stopping.

================================================
Additional Stats
================================================
Per-query latency:  
Min latency (ns)                : 2131748
Max latency (ns)                : 3667986
Mean latency (ns)               : 2237115
50.00 percentile latency (ns)   : 2229523
90.00 percentile latency (ns)   : 2283593
95.00 percentile latency (ns)   : 2308220
97.00 percentile latency (ns)   : 2338830
99.00 percentile latency (ns)   : 2362011
99.90 percentile latency (ns)   : 3667986

================================================
Test Parameters Used
================================================
samples_per_query : 8
target_qps : 250

No warnings encountered during test.

No errors encountered during test.
"""

SUMMARY_OFFLINE_INVALID = """\
================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : Offline
Mode     : PerformanceOnly
Samples per second: 85675.4
Result is : INVALID
  Min duration satisfied : NO
  Min queries satisfied : Yes
  Early stopping satisfied: Yes
Recommendations:
 * Increase expected QPS so the loadgen pre-generates a larger (coalesced) query.

================================================
Additional Stats
================================================
Min latency (ns)                : 2567831
Max latency (ns)                : 2567831
Mean latency (ns)               : 2567831
50.00 percentile latency (ns)   : 2567831
99.90 percentile latency (ns)   : 2567831

================================================
Test Parameters Used
================================================
samples_per_query : 220
target_qps : 400
min_query_count : 1

No warnings encountered during test.

No errors encountered during test.
"""

DETAIL_LINES = """\
:::MLLOG {"key": "loadgen_version", "value": "6.0.17 @ d6147c7eb7", "time_ms": 0.002163, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "version.cc", "line_no": 53, "pid": 31778, "tid": 31778}}
:::MLLOG {"key": "effective_min_query_count", "value": 2000, "time_ms": 0.007601, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "test_settings_internal.cc", "line_no": 441, "pid": 31778, "tid": 31778}}
:::MLLOG {"key": "error_runtime", "value": "IssueQueryThread 0 Ending early: Max test duration reached. duration_ns 301448092", "time_ms": 304.096147, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": true, "is_warning": false, "file": "issue_query_controller.cc", "line_no": 524, "pid": 31778, "tid": 31778}}
:::MLLOG {"key": "result_validity", "value": "INVALID", "time_ms": 306.186203, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 674, "pid": 31778, "tid": 31778}}
:::MLLOG {"key": "result_query_count", "value": 145, "time_ms": 306.186203, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 712, "pid": 31778, "tid": 31778}}
:::MLLOG {"key": "result_mean_latency_ns", "value": 20
"""


# --- the parsers, on real logs ----------------------------------------------------------------------

def test_parse_summary_singlestream_invalid():
    s = parse_summary(SUMMARY_SINGLESTREAM_INVALID)
    assert (s["scenario"], s["mode"], s["valid"]) == ("SingleStream", "PerformanceOnly", False)
    assert s["checks"] == {"min_duration": False, "min_queries": False, "early_stopping": True}
    assert s["metric"] == "result_latency_p90_ns"
    assert s["result"] == {
        "result_latency_p90_ns": 2105369,
        "qps_with_loadgen_overhead": 477.69, "qps_without_loadgen_overhead": 478.40,
        "latency_min_ns": 2068274, "latency_max_ns": 2156585, "latency_mean_ns": 2090296,
        "latency_p50_ns": 2086210, "latency_p90_ns": 2105369, "latency_p95_ns": 2126861,
        "latency_p97_ns": 2138022, "latency_p99_ns": 2151928, "latency_p99_9_ns": 2156585,
        "early_stopping_latency_p90_ns": 2129319,
    }
    assert s["invalid_reasons"] == [
        "Min duration satisfied : NO",
        "Min queries satisfied : NO",
        "Decrease the expected latency so the loadgen pre-generates more queries.",
        ("The test exited early, before enough queries were issued. "
         "See the detailed log for why this may have occurred."),
    ]
    assert s["parameters"] == {"samples_per_query": 1, "target_qps": 500, "target_latency_ns": 0,
                               "min_duration_ms": 1000, "max_duration_ms": 300, "min_query_count": 2000,
                               "performance_sample_count": 64}
    assert (s["warnings"], s["errors"]) == (0, 1)


def test_parse_summary_server_invalid_by_early_stopping():
    s = parse_summary(SUMMARY_SERVER_INVALID)
    assert s["valid"] is False
    assert s["metric"] == "result_completed_samples_per_s"
    assert s["result"]["result_completed_samples_per_s"] == 101.04
    assert s["result"]["scheduled_samples_per_s"] == 101.50
    assert s["result"]["latency_p99_ns"] == 2495131
    assert s["checks"]["performance_constraints"] is True
    assert s["invalid_reasons"] == [
        "Early stopping satisfied: NO",
        "Early stopping: Run unsuccessful.",
        "Early stopping: Processed 54 queries.",
        ("Early stopping: Would need to run at least 405 more queries, with the run being successful "
         "if every additional query were under latency."),
    ]
    assert s["parameters"]["target_latency_ns"] == 50000000


def test_parse_summary_multistream_names_per_query_latencies():
    s = parse_summary(SUMMARY_MULTISTREAM_INVALID)
    assert s["metric"] == "result_query_latency_p99_ns"
    assert s["result"]["result_query_latency_p99_ns"] == 2362011
    assert s["result"]["query_latency_mean_ns"] == 2237115
    assert s["result"]["query_latency_p99_9_ns"] == 3667986
    assert not any(k.startswith("latency_") for k in s["result"])
    assert s["invalid_reasons"] == ["Early stopping satisfied: NO",
                                    "Early stopping: Only processed 221 queries.",
                                    "Early stopping: Need to process at least 662 queries for early stopping."]


def test_parse_summary_offline_invalid_by_min_duration():
    s = parse_summary(SUMMARY_OFFLINE_INVALID)
    assert s["metric"] == "result_samples_per_s"
    assert s["result"]["result_samples_per_s"] == 85675.4
    assert s["invalid_reasons"] == [
        "Min duration satisfied : NO",
        "Increase expected QPS so the loadgen pre-generates a larger (coalesced) query.",
    ]
    assert s["parameters"]["samples_per_query"] == 220


def test_parse_summary_of_nothing_is_not_valid():
    s = parse_summary("")
    assert s["valid"] is None and s["result"] == {} and s["invalid_reasons"] == []


def test_parse_detail_keeps_values_and_errors_and_skips_a_cut_line():
    d = parse_detail(DETAIL_LINES)
    assert d["values"]["result_query_count"] == 145
    assert d["values"]["effective_min_query_count"] == 2000
    assert "result_mean_latency_ns" not in d["values"]
    assert d["errors"] == [("error_runtime: IssueQueryThread 0 Ending early: Max test duration reached. "
                            "duration_ns 301448092")]
    assert d["warnings"] == []


# --- settings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario,count,percentile", [
    ("latency", 100, 0.90), ("multistream", 662, 0.99), ("server", 100, 0.99), ("throughput", 24576, None),
])
def test_mlperf_preset_sets_the_rules_without_running(scenario, count, percentile):
    asked = LoadGenSettings(scenario=scenario, preset="mlperf", min_duration_s=1, min_query_count=5,
                            target_qps=50.0, target_latency_ms=20.0, samples_per_query=3, seed=7)
    effective = apply_preset(asked)
    assert effective.min_duration_s == 600.0 and effective.min_query_count == count
    assert apply_preset(effective) == effective
    values = loadgen_settings_values(asked, batch_size=4)
    assert values["mode"] == "PerformanceOnly"
    assert values["min_duration_ms"] == 600_000 and values["min_query_count"] == count
    assert values["max_duration_ms"] == 0 and values["max_query_count"] == 0
    assert {k: values[k] for k in MLPERF_SEEDS} == MLPERF_SEEDS
    loadgen_name = LOADGEN_SCENARIOS[scenario]
    assert values["scenario"] == loadgen_name
    if percentile is not None:
        key = {"SingleStream": "single_stream", "MultiStream": "multi_stream", "Server": "server"}[loadgen_name]
        assert values[f"{key}_target_latency_percentile"] == percentile
    if loadgen_name == "MultiStream":
        assert values["multi_stream_samples_per_query"] == 8
        assert values["multi_stream_expected_latency_ns"] == 20_000_000
    if loadgen_name == "Server":
        assert values["server_target_qps"] == 50.0 and values["server_target_latency_ns"] == 20_000_000
    if loadgen_name == "Offline":
        assert values["offline_expected_qps"] == 50.0
    if HAVE_LOADGEN:  # every value fits its TestSettings field (the seeds are above 2**63)
        import mlperf_loadgen

        ts = _build_test_settings(mlperf_loadgen, values)
        assert ts.min_duration_ms == 600_000 and ts.sample_index_rng_seed == MLPERF_SEEDS["sample_index_rng_seed"]


def test_targets_come_from_the_timing_when_unset():
    calibration = {"batch": 4, "times_ns": [2_000_000], "best_ns": 2_000_000}
    ms = loadgen_settings_values(LoadGenSettings("multistream", samples_per_query=8), 4, calibration)
    assert ms["multi_stream_expected_latency_ns"] == 4_000_000  # two batches of 4 per query
    server = loadgen_settings_values(LoadGenSettings("server"), 4, calibration)
    assert server["server_target_qps"] == pytest.approx(0.5 * 4 / 0.002)
    assert server["server_target_latency_ns"] == 20_000_000
    offline = loadgen_settings_values(LoadGenSettings("throughput", seed=3), 4, calibration)
    assert offline["offline_expected_qps"] == pytest.approx(2000.0)
    assert offline["qsl_rng_seed"] == offline["schedule_rng_seed"] == 3
    with pytest.raises(LoadGenSettingError, match="target_latency_ms"):
        loadgen_settings_values(LoadGenSettings("latency"), 1)


def test_bad_scenario_is_a_one_line_value_error():
    with pytest.raises(ValueError) as info:
        LoadGenSettings(scenario="SingleStream")
    message = str(info.value)
    assert "\n" not in message and "scenario='SingleStream'" in message
    assert "latency, multistream, server, throughput" in message
    assert isinstance(info.value, ConfigError)  # the CLI shows it without a traceback


@pytest.mark.parametrize("kwargs,key", [
    ({"preset": "MLPerf"}, "preset"),
    ({"target_latency_percentile": 99.0}, "target_latency_percentile"),
    ({"min_query_count": 0}, "min_query_count"),
    ({"target_qps": 0.0}, "target_qps"),
    ({"min_duration_s": 10.0, "max_duration_s": 5.0}, "max_duration_s"),
    ({"preset": "mlperf", "max_duration_s": 60.0}, "max_duration_s"),
])
def test_bad_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=f"^{key}="):
        LoadGenSettings(scenario="server", **kwargs)


def test_loadgen_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlperf_loadgen", None)  # makes the import fail
    assert loadgen_available() == (
        False, "mlcommons-loadgen is not installed: pip install -c constraints.txt -e '.[loadgen]'")
    with pytest.raises(ValueError, match="engine='loadgen'.*" + "not installed.*" + INSTALL_HINT.split()[0]):
        run_loadgen(lambda n: None, 1, LoadGenSettings("latency", target_latency_ms=1.0), str(tmp_path))
    assert not list(tmp_path.iterdir())


# --- the SUT, with a fake LoadGen module ------------------------------------------------------------

class FakeLoadGen:
    def __init__(self):
        self.completed: list[int] = []
        self.done = threading.Event()

    @staticmethod
    def QuerySampleResponse(id, data, size):
        return id

    def QuerySamplesComplete(self, responses):
        self.completed.extend(responses)


class Sample:
    def __init__(self, id):
        self.id, self.index = id, 0


def test_sut_runs_each_query_on_the_issuing_thread_and_completes_it_before_returning():
    # One Python thread only: a second one (a worker behind a queue) would contend with LoadGen's
    # issuing thread for the GIL at every issue, which inflated the Server latencies on a GPU.
    lg, runs = FakeLoadGen(), []
    sut = _BatchingSUT(lg, lambda n: runs.append((threading.get_ident(), n, len(lg.completed))), 4,
                       lambda phase, info: None, time.perf_counter_ns)
    sut.start()
    sut.issue_query([Sample(i) for i in range(10)])  # an Offline-like query, or coalesced Server queries
    assert lg.completed == list(range(10))  # all of it, before issue_query returned
    # Full batches in order, each completed before the next ran, all on the caller's thread.
    assert runs == [(threading.get_ident(), 4, 0), (threading.get_ident(), 4, 4), (threading.get_ident(), 2, 8)]
    sut.flush_queries()
    assert sut.stats() == {"issue_calls": 1, "samples_issued": 10, "samples_completed": 10, "batches": 3,
                           "largest_batch": 4, "flush_calls": 1}
    assert sut.error is None


def test_sut_completes_the_rest_unrun_after_run_batch_fails():
    lg, calls = FakeLoadGen(), []

    def run_batch(n):
        calls.append(n)
        raise MemoryError("fake out of memory")

    sut = _BatchingSUT(lg, run_batch, 2, lambda phase, info: None, time.perf_counter_ns)
    sut.start()
    sut.issue_query([Sample(i) for i in range(5)])  # raises nothing: LoadGen would abort the process
    sut.issue_query([Sample(5)])
    assert calls == [2]
    assert lg.completed == [0, 1, 2, 3, 4, 5]
    assert isinstance(sut.error, MemoryError)


# --- real LoadGen runs ------------------------------------------------------------------------------

class SleepyModel:
    """A fake run_batch: 2 ms per call, whatever the batch, counting what it is asked to run."""

    def __init__(self, fail_after: int = 0):
        self.calls: list[int] = []
        self.fail_after = fail_after

    def __call__(self, n: int) -> None:
        self.calls.append(n)
        if self.fail_after and len(self.calls) > self.fail_after:
            raise RuntimeError("fake backend failure")
        time.sleep(0.002)


HEADLINE = {"latency": "result_latency_p90_ns", "multistream": "result_query_latency_p90_ns",
            "server": "result_completed_samples_per_s", "throughput": "result_samples_per_s"}


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@needs_loadgen
@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(LOADGEN_SCENARIOS))
def test_short_run_of_each_scenario(scenario, tmp_path, empty_cwd):
    model, phases = SleepyModel(), []
    # The 90th percentile needs 64 queries for early stopping (the 99th: 662), which 0.5 s gives.
    settings = LoadGenSettings(scenario=scenario, min_duration_s=0.5, min_query_count=20,
                               target_latency_percentile=0.9, samples_per_query=8,
                               target_latency_ms=100.0 if scenario == "server" else None)
    log_dir = str(tmp_path / "logs")
    out = run_loadgen(model, 4, settings, log_dir, on_progress=lambda phase, info: phases.append(phase))

    assert out["scenario"] == LOADGEN_SCENARIOS[scenario]
    assert out["valid"] is True, out["invalid_reasons"]
    assert out["invalid_reasons"] == []
    assert out["metric"] == HEADLINE[scenario] and out["result"][HEADLINE[scenario]] > 0
    assert out["settings"]["scenario"] == scenario and out["log_dir"] == log_dir
    assert out["loadgen_version"].count(".") >= 2
    assert "Result is : VALID" in out["summary_text"]
    assert sorted(os.listdir(log_dir)) == ["mlperf_log_accuracy.json", "mlperf_log_detail.txt",
                                           "mlperf_log_summary.txt", "mlperf_log_trace.json"]
    assert not list(empty_cwd.iterdir())  # nothing written where the process happens to run

    # Every sample LoadGen issued was run and completed, in batches of at most 4.
    calibration = out["effective"]["calibration"]
    assert calibration is not None and phases[:2] == ["calibrate", "loadgen"]
    run_calls = model.calls[1 + len(calibration["times_ns"]):]  # after the untimed call and the timed ones
    sut, result = out["sut"], out["result"]
    assert sut["samples_issued"] == sut["samples_completed"] == sum(run_calls)
    assert sut["batches"] == len(run_calls) and max(run_calls) <= 4
    if scenario == "throughput":
        assert result["query_count"] == sut["issue_calls"] == 1
        assert result["samples_per_query"] == sut["samples_issued"]
    elif scenario == "server":  # overdue queries come coalesced into one call (one sample each)
        assert result["query_count"] == sut["samples_issued"] >= sut["issue_calls"] >= 1
        assert result["query_count"] >= 20
    else:
        assert result["query_count"] == sut["issue_calls"] >= 20
        assert sut["samples_issued"] == sut["issue_calls"] * result["samples_per_query"]

    # Latency cannot be below the 2 ms sleep; MultiStream's query is two batches of 4.
    mean = result["query_latency_mean_ns" if scenario == "multistream" else "latency_mean_ns"]
    assert mean > (4_000_000 if scenario == "multistream" else 2_000_000)
    assert result["latency_min_ns" if scenario != "multistream" else "query_latency_min_ns"] > 2_000_000
    assert out["effective"]["loadgen"]["min_duration_ms"] == 500


@needs_loadgen
@pytest.mark.slow
def test_min_query_count_is_honoured_and_audit_config_in_cwd_is_ignored(tmp_path, empty_cwd):
    # LoadGen would read this from the current directory and run 400 queries instead of 150.
    (empty_cwd / "audit.config").write_text("*.SingleStream.min_query_count = 400\n")
    settings = LoadGenSettings(scenario="latency", min_duration_s=0.05, min_query_count=150,
                               target_latency_ms=2.0, target_latency_percentile=0.9)
    model = SleepyModel()
    out = run_loadgen(model, 1, settings, str(tmp_path / "logs"))
    assert out["result"]["query_count"] == 150 == len(model.calls)  # no calibration: the target is given
    assert out["effective"]["calibration"] is None
    assert out["effective"]["loadgen"]["min_query_count"] == 150
    assert out["valid"] is True, out["invalid_reasons"]
    assert sorted(p.name for p in empty_cwd.iterdir()) == ["audit.config"]


@needs_loadgen
@pytest.mark.slow
def test_max_duration_cuts_the_run_and_says_why(tmp_path):
    settings = LoadGenSettings(scenario="latency", min_duration_s=0.3, max_duration_s=0.3, min_query_count=1000,
                               target_latency_ms=2.0, target_latency_percentile=0.9)
    out = run_loadgen(SleepyModel(), 1, settings, str(tmp_path))
    assert out["valid"] is False
    assert "Min queries satisfied : NO" in out["invalid_reasons"]
    assert any(r.startswith("LoadGen error: ") and "Max test duration" in r for r in out["invalid_reasons"])
    assert out["result"]["query_count"] < 1000


@needs_loadgen
@pytest.mark.slow
def test_run_batch_error_is_raised_after_loadgen_ends(tmp_path):
    settings = LoadGenSettings(scenario="latency", min_duration_s=0.3, min_query_count=20,
                               target_latency_ms=2.0)
    model = SleepyModel(fail_after=10)
    with pytest.raises(RuntimeError, match="fake backend failure"):
        run_loadgen(model, 1, settings, str(tmp_path))
    assert len(model.calls) == 11  # nothing ran after the failure


@needs_loadgen
@pytest.mark.slow
def test_server_runs_the_model_on_the_thread_that_started_the_test(tmp_path):
    """LoadGen issues from the thread that called StartTest; the model runs there and no other Python
    thread exists during the run, so none contends with it for the GIL (a worker thread behind a
    queue did: each issue handed the GIL over in the middle of an eager launch)."""
    threads_before = threading.active_count()
    seen = []

    def run_batch(n):
        seen.append((threading.get_ident(), threading.active_count()))
        time.sleep(0.001)

    settings = LoadGenSettings(scenario="server", min_duration_s=0.3, min_query_count=50, target_qps=200.0,
                               target_latency_ms=100.0, target_latency_percentile=0.9)
    out = run_loadgen(run_batch, 1, settings, str(tmp_path))
    assert len(seen) == out["sut"]["samples_completed"] >= 50
    assert set(seen) == {(threading.get_ident(), threads_before)}
    assert out["sut"]["runs_on"] == "loadgen_issue_thread"


@needs_loadgen
@pytest.mark.slow
def test_server_batches_the_queries_that_came_due_while_the_model_ran(tmp_path):
    # 2 ms per batch of up to 4 at 1500 queries/s: about three come due during each batch, and LoadGen
    # coalesces them into the next call (server_coalesce_queries); one at a time would serve only 500/s.
    model = SleepyModel()
    settings = LoadGenSettings(scenario="server", min_duration_s=0.3, min_query_count=100, target_qps=1500.0,
                               target_latency_ms=1000.0, target_latency_percentile=0.9)
    out = run_loadgen(model, 4, settings, str(tmp_path))
    sut, result = out["sut"], out["result"]
    assert out["effective"]["test_settings"]["server_coalesce_queries"] is True
    assert sut["largest_batch"] == 4 == max(model.calls)
    assert sut["issue_calls"] < result["query_count"] == sut["samples_issued"] == sut["samples_completed"]
    assert sum(model.calls) == result["query_count"] and len(model.calls) == sut["batches"]
