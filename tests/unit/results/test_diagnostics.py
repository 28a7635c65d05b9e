"""The typed warnings: each fires at its named threshold and not below it."""

from __future__ import annotations

from bench.results.diagnostics import THRESHOLDS, Code, diagnose

QUIET = {"foreign_cpu_cores": 0.0, "steal_fraction": 0.0,
         "speed_before": {"ops_per_s": 1e6, "best_ops_per_s": 1.2e6},
         "speed_after": {"ops_per_s": 1e6, "best_ops_per_s": 1.2e6}}
GOOD = {"converged": True, "latency_robust_cv": 0.01, "outliers": 0, "samples": 1000, "latency_p50_ms": 10.0}
LOOP = {"samples_ns": [10_000_000] * 10, "clock_resolution_ns": 1.0, "stop_reason": "converged"}


def codes(metrics=GOOD, noise=QUIET, first=12.0, parity=None, energy=None):
    return {w.code for w in diagnose({**GOOD, **metrics}, LOOP, {**QUIET, **noise}, first, parity, energy)}


def test_a_quiet_converged_run_has_no_warning():
    assert codes() == set()


def test_each_warning_at_its_threshold():
    t = THRESHOLDS
    assert codes(metrics={"converged": False, "rel_ci": 0.03}) == {Code.NOT_CONVERGED}
    assert codes(metrics={"latency_robust_cv": t["high_variation_cv"] * 1.01}) == {Code.HIGH_VARIATION}
    assert codes(metrics={"latency_robust_cv": t["high_variation_cv"]}) == set()
    assert codes(metrics={"outliers": 60}) == {Code.OUTLIERS}  # 6% of 1000
    assert codes(metrics={"outliers": 50}) == set()  # 5%: the threshold itself
    assert codes(first=10.0 * t["slow_first_run_ratio"] + 1) == {Code.SLOW_FIRST_RUN}
    assert codes(noise={"foreign_cpu_cores": 0.3}) == {Code.FOREIGN_CPU}
    assert codes(noise={"steal_fraction": 0.05}) == {Code.STEAL}
    assert codes(parity={"ok": False, "max_rel_error": 0.2, "tolerance": 1e-4}) == {Code.PARITY}
    assert codes(energy={"low_confidence": True, "window_s": 0.2}) == {Code.ENERGY_LOW_CONFIDENCE}


def test_speed_drift_compares_the_fastest_chunks():
    slow_after = {"speed_after": {"ops_per_s": 1e6, "best_ops_per_s": 0.9e6}}
    assert codes(noise=slow_after) == {Code.SPEED_DRIFT}
    # A preempted chunk lowers the mean but not the best: no drift.
    preempted = {"speed_after": {"ops_per_s": 0.6e6, "best_ops_per_s": 1.19e6}}
    assert codes(noise=preempted) == set()


def test_warnings_round_trip_through_dicts():
    from bench.results.diagnostics import BenchWarning

    (w,) = diagnose({**GOOD, "converged": False, "rel_ci": None}, LOOP, QUIET, None)
    assert BenchWarning.from_dict(w.to_dict()) == w and "unbounded" in w.message


def test_load_scenarios_warn_of_drops_an_unfinished_search_and_arrivals_off_target():
    metrics = {"dropped_queries": 3, "queries": 100, "max_qps_target": 340.0, "max_qps_at_slo": 295.0,
               "offered_qps": 295.0}
    measured = {"info": {"search": {"stop_reason": "max_probes"}}}
    codes = {w.code.value for w in diagnose(metrics, measured, {}, None)}
    assert {"dropped_requests", "search_incomplete", "arrivals_off_target"} <= codes
    laggy = {"engine_lag_p99_us": 900.0, "slo_ms": 20.0}
    assert [w.code.value for w in diagnose(laggy, {}, {}, None)] == ["engine_lag"]
    quiet = {"dropped_queries": 0, "queries": 1000, "rate_qps": 100.0, "offered_qps": 101.0,
             "engine_lag_p99_us": 60.0, "slo_ms": 20.0}
    assert not diagnose(quiet, {"info": {"search": None}}, {}, None)


def test_loadgen_invalid_says_why():
    (warning,) = diagnose({}, {"valid": False, "invalid_reasons": ["Min duration satisfied : NO"]}, {}, None)
    assert warning.code.value == "loadgen_invalid" and "Min duration satisfied : NO" in warning.message


def ran(asked, ran_precision, **effective):
    backend = {"name": "x", "device": "x", "precision": asked,
               "effective": {**effective, **({"ran_precision": ran_precision} if ran_precision else {})}}
    return [w for w in diagnose({}, {}, {}, None, backend=backend)]


def test_new_codes_come_last_in_the_order_they_were_added():
    assert list(Code)[-7:] == [Code.PRECISION_MISMATCH, Code.CPU_NODES, Code.CUDA_GRAPH_FALLBACK, Code.NOT_ADAPTED,
                               Code.FALSE_ALARM, Code.ADAPTED_AFTER_SERVING, Code.PHASE_TOO_SHORT]
    assert [c.value for c in list(Code)[-7:]] == ["precision_mismatch", "cpu_nodes", "cuda_graph_fallback",
                                                  "not_adapted", "false_alarm", "adapted_after_serving",
                                                  "phase_too_short"]


def test_continual_warnings():
    adapted = {"adapted": True, "detection_delay_s": 1.5, "adapted_within_run": True, "percentile": 0.99,
               "adapting_queries": 150, "adapting_requests_bound_percentile": True}
    assert codes(metrics=adapted) == set()
    assert codes(metrics={**adapted, "adapted": False, "adaptation_error": "parity"}) == {Code.NOT_ADAPTED}
    assert codes(metrics={"adapted": False}) == {Code.NOT_ADAPTED}  # never detected
    assert codes(metrics={**adapted, "detection_delay_s": -2.0, "false_alarm": True}) == {Code.FALSE_ALARM}
    assert codes(metrics={**adapted, "adapted_within_run": False}) == {Code.ADAPTED_AFTER_SERVING}
    short = {**adapted, "adapting_queries": 40, "adapting_requests_bound_percentile": False}
    (w,) = diagnose(short, {}, {}, None)
    assert w.code is Code.PHASE_TOO_SHORT and "40 requests, fewer than the 100 a p99 needs" in w.message
    (w,) = diagnose({**adapted, "adapting_queries": 0, "adapt_total_s": 0.03}, {}, {}, None)
    assert w.code is Code.PHASE_TOO_SHORT and "no request arrived" in w.message
    assert codes(metrics={"queries": 100}) == set()  # other scenarios: none of these


def test_precision_agreeing_or_not_reported_gives_no_warning():
    assert ran("fp32", None) == []  # a runtime that cannot say claims nothing
    assert ran("fp32", "fp32") == [] and ran("tf32", "tf32") == [] and ran("fp16", "fp16") == []
    assert diagnose({}, {}, {}, None) == []  # no backend given (older callers)
    assert diagnose({}, {}, {}, None, backend={"precision": "fp32", "effective": None}) == []


def test_a_lower_precision_than_asked_is_a_mismatch_with_the_runtimes_breakdown():
    (w,) = ran("fp32", "fp16", layer_precisions={"fp32": 3, "fp16": 40})
    assert w.code is Code.PRECISION_MISMATCH
    assert "asked for fp32" in w.message and "ran in fp16 (fp32: 3, fp16: 40)" in w.message
    assert "not fp32 figures" in w.message and "backend.precision=fp16" in w.hint
    (tf32,) = ran("fp32", "tf32", precision_by_provider={"TensorrtExecutionProvider": "tf32"})
    assert "TensorrtExecutionProvider: tf32" in tf32.message


def test_a_higher_precision_than_asked_says_nothing_ran_in_it():
    (w,) = ran("fp16", "fp32")
    assert w.code is Code.PRECISION_MISMATCH and "nothing ran in it" in w.message
    assert "backend.precision=fp32" in w.hint
