"""`bench compare`: ratios with bootstrap intervals from raw samples, or Welch intervals between the
processes of records with repeats; significance, matching, the hyperfine-like line, records in doubt
and --fail-on exit codes (0, 1, and 3 for inconclusive)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.reporting import compare as cmp
from bench.cli.main import main
from bench.errors import ConfigError
from bench.results.store import ResultsStore
from tests.recordfactory import make_record


def test_the_order_statistic_bootstrap_equals_resampling_samples():
    """The O(1) percentile bootstrap has the distribution of sorting n resampled values."""
    rng = np.random.default_rng(1)
    x = rng.lognormal(0.0, 0.3, size=300)
    for q in (0.5, 0.99):
        fast = cmp.bootstrap_percentile(x, q, np.random.default_rng(2), 20000)
        slow = np.quantile(x[np.random.default_rng(3).integers(0, x.size, size=(20000, x.size))], q, axis=1)
        for p in (0.025, 0.25, 0.5, 0.75, 0.975):
            assert np.quantile(fast, p) == pytest.approx(np.quantile(slow, p), rel=0.01)


def test_block_bootstrap_centres_on_the_measured_throughput():
    samples = np.full(1000, 1e6)  # 1 ms per sample of 8 requests: 8000 samples/s, no noise
    reps = cmp.bootstrap_throughput(samples, 8, np.random.default_rng(0), 500)
    assert np.allclose(reps, 8000.0)


def test_a_real_speedup_is_significant_with_a_tight_interval():
    base = make_record(median_ms=1.0, seed=1, tag="before")
    cand = make_record(median_ms=0.5, seed=2, tag="after")
    result = cmp.compare([base], [cand])
    (comp,) = result.comparisons
    tp, p99 = comp.ratios["throughput_sps"], comp.ratios["latency_p99_ms"]
    assert tp.ratio == pytest.approx(2.0, rel=0.02) and tp.low < tp.ratio < tp.high
    assert tp.significant and tp.better and tp.high - tp.low < 0.05
    assert p99.ratio == pytest.approx(0.5, rel=0.05) and p99.significant and p99.better
    line = cmp.speed_line(comp)
    assert "candidate ran 2.0" in line and "times faster than baseline" in line and "significant" in line
    assert " ± " in line


def test_the_same_distribution_is_not_significant():
    base = make_record(median_ms=1.0, seed=11, spread=0.05)
    cand = make_record(median_ms=1.0, seed=12, spread=0.05)
    comp = cmp.compare([base], [cand]).comparisons[0]
    assert all(not r.significant and r.low < 1.0 < r.high for r in comp.ratios.values())
    assert "not significant" in cmp.speed_line(comp)


def test_results_are_deterministic_for_a_seed():
    base, cand = make_record(median_ms=1.0, seed=1), make_record(median_ms=0.9, seed=2)
    a = cmp.compare([base], [cand], seed=7).comparisons[0].ratios
    b = cmp.compare([base], [cand], seed=7).comparisons[0].ratios
    assert a == b


def test_slower_candidate_line():
    comp = cmp.compare([make_record(median_ms=1.0, seed=1)], [make_record(median_ms=1.25, seed=2)]).comparisons[0]
    assert "candidate ran 1.2" in cmp.speed_line(comp) and "times slower than baseline" in cmp.speed_line(comp)


def test_matching_newest_and_unmatched_are_reported():
    base = [make_record(workload="a", seed=1), make_record(workload="b", seed=2),
            make_record(workload="a", seed=3, created_at="2026-12-05T00:00:00+00:00")]
    cand = [make_record(workload="a", seed=4), make_record(workload="c", seed=5)]
    result = cmp.compare(base, cand)
    (comp,) = result.comparisons
    assert comp.baseline.id == base[2].id
    assert any("baseline: 2 records" in n and "newest" in n for n in result.notes)
    assert any("only in the baseline: fake b" in n for n in result.notes)
    assert any("only in the candidate: fake c" in n for n in result.notes)


def test_keys_the_selections_differ_on_are_not_matched():
    base, cand = make_record(precision="fp32", seed=1), make_record(precision="fp16", median_ms=0.5, seed=2)
    with pytest.raises(ConfigError, match="no workload can be compared"):
        cmp.compare([base], [cand])
    (comp,) = cmp.compare([base], [cand], differing=["precision"]).comparisons
    assert comp.ratios["throughput_sps"].ratio == pytest.approx(2.0, rel=0.02)


def test_fail_rules():
    assert cmp.parse_fail_on("throughput:5%,latency_p99:10%") == [cmp.FailRule("throughput_sps", 0.05),
                                                                   cmp.FailRule("latency_p99_ms", 0.10)]
    assert cmp.parse_fail_on("latency_p50_ms:2.5%") == [cmp.FailRule("latency_p50_ms", 0.025)]
    with pytest.raises(ConfigError, match="is not a metric"):
        cmp.parse_fail_on("speed:5%")
    with pytest.raises(ConfigError, match="percentage"):
        cmp.parse_fail_on("throughput:0.05")


# ---------------------------------------------------------------- the command


@pytest.fixture
def results(tmp_path):
    store = ResultsStore(tmp_path / "results")
    for workload, seed in (("a", 1), ("b", 2)):
        store.write(make_record(workload=workload, median_ms=1.0, seed=seed, tag="before", backend="cpu"))
        # the candidate is 20% slower on a, the same on b
        store.write(make_record(workload=workload, median_ms=1.25 if workload == "a" else 1.0, seed=seed + 10,
                                tag="after", backend="openvino"))
    store.write(make_record(workload="a", scenario="latency", batch_size=1, tag="latency-only", seed=30))
    store.close()
    return f"results.dir={tmp_path / 'results'}"


def test_compare_prints_a_table_and_a_line_per_workload(results, capsys):
    assert main(["compare", "tag=before", "tag=after", results]) == 0
    out = capsys.readouterr().out
    assert "baseline:  tag=before (2 record(s))" in out
    assert out.count("times slower than baseline") + out.count("times faster than baseline") == 2
    assert "fake a throughput b=8 fp32: candidate ran 1.2" in out
    assert "ratio [95% CI]" in out and "worse" in out


def test_compare_by_backend_and_run_id(results, capsys, tmp_path):
    assert main(["compare", "backend=cpu", "backend=openvino", results]) == 0
    store = ResultsStore(tmp_path / "results", create=False)
    before = [r for r in store.records() if r.tag == "before" and r.workload["name"] == "a"][0]
    after = [r for r in store.records() if r.tag == "after" and r.workload["name"] == "a"][0]
    store.close()
    capsys.readouterr()
    assert main(["compare", f"run_id={before.run_id[:10]}", f"run_id={after.run_id}", results]) == 0
    out = capsys.readouterr().out
    assert "fake a throughput" in out and "fake b" not in out


def test_fail_on_exits_1_when_significantly_worse_beyond_the_threshold(results, capsys):
    assert main(["compare", "tag=before", "tag=after", results, "--fail-on", "throughput:5%"]) == 1
    out = capsys.readouterr().out
    assert "FAIL fake a throughput b=8 fp32: throughput_sps 20" in out and "FAIL fake b" not in out
    assert main(["compare", "tag=before", "tag=after", results, "--fail-on=throughput:30%"]) == 0
    assert "ok: no workload is significantly worse" in capsys.readouterr().out
    assert main(["compare", "tag=before", "tag=after", results, "--fail-on", "latency_p99:10%"]) == 1
    # the baseline against itself reversed: the candidate is better, nothing fails
    assert main(["compare", "tag=after", "tag=before", results, "--fail-on", "throughput:1%"]) == 0


def test_two_workloads_compare_when_the_selections_differ_on_workload(results, capsys):
    assert main(["compare", "tag=before,workload=a", "tag=before,workload=b", results]) == 0
    assert "matched on suite x scenario x batch_size x precision" in capsys.readouterr().out


def test_common_filters_apply_to_both_sides(results, capsys):
    assert main(["compare", "tag=before", "tag=after", "workload=b", results]) == 0
    out = capsys.readouterr().out
    assert "fake b" in out and "fake a" not in out


BAD = [
    (["tag=before"], "takes a BASELINE and a CANDIDATE"),
    (["tag=before", "tag=nope"], "candidate: the selection tag=nope matches no record"),
    (["tag=before", "tag=after", "--fail-on", "speed:5%"], "--fail-on='speed:5%' is not a metric"),
    (["tag=before", "tag=after", "--fail-on", "throughput"], "has no threshold"),
    (["colour=red", "tag=after"], "colour='red' is not a selection key"),
    (["tag=before", "tag=after", "--resamples", "x"], "--resamples='x' is not valid"),
    (["tag=latency-only", "tag=after"], "no workload can be compared"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(results, args, message, capsys):
    assert main(["compare", *args, results]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("bench: error: ") and message in err, err


# ---------------------------------------------------------------- between processes (records with repeats)


def _repeats(throughputs, **kwargs):
    """A record of len(throughputs) fresh processes with these per-process throughputs (and latencies
    that follow them), its pooled figures from all the processes' samples."""
    return make_record(per_process=[{"throughput_sps": t, "latency_p50_ms": 1000.0 / t, "latency_p99_ms": 1200.0 / t}
                                    for t in throughputs], **kwargs)


def test_welch_ratio_of_per_process_figures():
    r = cmp.welch_ratio([100, 102, 98], [110, 112, 108], higher_is_better=True)
    assert r.method == cmp.WELCH and r.processes == (3, 3)
    assert r.ratio == pytest.approx(1.1, rel=1e-3) and r.significant and r.better
    # by hand: logs, their means and variances, Welch-Satterthwaite df, t quantile
    x, y = np.log([100, 102, 98]), np.log([110, 112, 108])
    vx, vy = x.var(ddof=1) / 3, y.var(ddof=1) / 3
    df = (vx + vy) ** 2 / (vx ** 2 / 2 + vy ** 2 / 2)
    from bench.measurement.stats import t_quantile

    half = t_quantile(0.975, df) * np.sqrt(vx + vy)
    assert r.low == pytest.approx(np.exp(y.mean() - x.mean() - half), rel=1e-9)
    assert r.high == pytest.approx(np.exp(y.mean() - x.mean() + half), rel=1e-9)
    loose = cmp.welch_ratio([100, 110, 90], [101, 111, 91], higher_is_better=True)
    assert not loose.significant and loose.low < 1.0 < loose.high
    with pytest.raises(ValueError):
        cmp.welch_ratio([100], [110, 112], True)


def test_records_with_repeats_compare_between_processes():
    base, cand = _repeats([100, 102, 98], seed=1), _repeats([110, 112, 108], seed=5)
    (comp,) = cmp.compare([base], [cand]).comparisons
    assert comp.methods == {cmp.WELCH}
    tp = comp.ratios["throughput_sps"]
    assert tp.significant and tp.ratio == pytest.approx(1.1, rel=1e-3)
    assert comp.ratios["latency_p99_ms"].ratio == pytest.approx(1 / 1.1, rel=1e-3)
    assert "between processes: Welch t, 3 v 3" in cmp.speed_line(comp)
    # the same per-process figures spread over a wider range: no significant difference
    base, cand = _repeats([100, 110, 90], seed=1), _repeats([101, 111, 91], seed=5)
    (comp,) = cmp.compare([base], [cand]).comparisons
    assert not any(r.significant for r in comp.ratios.values())
    # the bootstrap over the raw samples would call it significant: the samples alone hold no run-to-run noise
    single = cmp.ratios(make_record(median_ms=1.0, seed=1), make_record(median_ms=0.99, seed=5),
                        np.random.default_rng(0))
    assert single["latency_p50_ms"].significant and single["latency_p50_ms"].method == cmp.BOOTSTRAP


def test_one_side_with_repeats_keeps_the_bootstrap_and_says_what_it_holds():
    result = cmp.compare([make_record(seed=1)], [_repeats([100, 102, 98], seed=5)])
    (comp,) = result.comparisons
    assert comp.methods == {cmp.BOOTSTRAP}
    assert "within one process: bootstrap" in cmp.speed_line(comp)
    assert any(n.startswith("within one process: every comparison's interval is a bootstrap")
               and "not the run-to-run uncertainty" in n for n in result.notes)
    assert any("only the candidate" in n and "first process's samples" in n for n in result.notes)


def test_the_output_names_each_comparisons_method(capsys):
    import sys

    result = cmp.compare([_repeats([100, 102, 98], seed=1, workload="a"), make_record(workload="b", seed=2)],
                         [_repeats([110, 112, 108], seed=5, workload="a"), make_record(workload="b", seed=6)])
    cmp.render(result, "before", "after", sys.stdout)
    out = capsys.readouterr().out
    assert "interval" in out and "between processes: Welch t, 3 v 3" in out and "within one process: bootstrap" in out
    assert "fake a throughput b=8 fp32: candidate ran 1.10" in out
    assert "within one process: the interval of 1 comparison(s) (fake b throughput b=8 fp32)" in out


# ---------------------------------------------------------------- records in doubt: inconclusive, exit 3


def test_check_is_inconclusive_on_unconverged_or_noisy_records():
    clean_base, clean_cand = make_record(median_ms=1.0, seed=1), make_record(median_ms=1.25, seed=2)
    rules = cmp.parse_fail_on("throughput:5%")
    verdict = cmp.check(cmp.compare([clean_base], [clean_cand]), rules)
    assert len(verdict.failures) == 1 and not verdict.inconclusive and verdict.exit_code == cmp.EXIT_FAIL
    noisy = make_record(median_ms=1.25, seed=2, warnings=["cpu_steal"])
    verdict = cmp.check(cmp.compare([clean_base], [noisy]), rules)
    assert len(verdict.failures) == 1 and verdict.exit_code == cmp.EXIT_INCONCLUSIVE
    (line,) = verdict.inconclusive
    assert f"candidate record {noisy.id[:8]}" in line and "cpu_steal" in line and "not trustworthy" in line
    unconverged = make_record(median_ms=1.0, seed=3, metrics={"converged": False})
    verdict = cmp.check(cmp.compare([unconverged], [make_record(median_ms=0.9, seed=4)]), rules)
    assert not verdict.failures and verdict.exit_code == cmp.EXIT_INCONCLUSIVE
    assert "baseline record" in verdict.inconclusive[0] and "not converged" in verdict.inconclusive[0]
    # warnings that do not put the figures in doubt do not make a comparison inconclusive
    verdict = cmp.check(cmp.compare([make_record(seed=5, warnings=["slow_first_run", "energy_low_confidence"])],
                                    [make_record(seed=6)]), rules)
    assert verdict.exit_code == cmp.EXIT_OK
    # without --fail-on nothing is checked
    assert cmp.check(cmp.compare([clean_base], [noisy]), []).exit_code == cmp.EXIT_OK


def test_a_process_that_did_not_converge_is_named():
    base = _repeats([100, 102, 98], seed=1)
    cand = make_record(per_process=[{"throughput_sps": 110}, {"throughput_sps": 112, "converged": False},
                                    {"throughput_sps": 108}], seed=5)
    verdict = cmp.check(cmp.compare([base], [cand]), cmp.parse_fail_on("throughput:5%"))
    assert verdict.exit_code == cmp.EXIT_INCONCLUSIVE and "not converged (process 2 of 3)" in verdict.inconclusive[0]


@pytest.fixture
def doubtful(tmp_path):
    """Baseline clean; candidate 20% slower on a (noisy: foreign_cpu), 20% slower on b (clean), the same on
    c (not converged)."""
    store = ResultsStore(tmp_path / "results")
    for workload, seed, median, extra in (("a", 1, 1.25, {"warnings": ["foreign_cpu", "slow_first_run"]}),
                                          ("b", 2, 1.25, {}), ("c", 3, 1.0, {"metrics": {"converged": False}})):
        store.write(make_record(workload=workload, median_ms=1.0, seed=seed, tag="before"))
        store.write(make_record(workload=workload, median_ms=median, seed=seed + 10, tag="after", **extra))
    store.close()
    return f"results.dir={tmp_path / 'results'}"


def test_compare_exits_3_when_a_checked_comparison_rests_on_doubtful_records(doubtful, capsys):
    assert main(["compare", "tag=before", "tag=after", doubtful, "--fail-on", "throughput:5%"]) == 3
    out = capsys.readouterr().out
    assert "FAIL fake a throughput b=8 fp32" in out and "FAIL fake b throughput b=8 fp32" in out
    assert "INCONCLUSIVE fake a throughput b=8 fp32: candidate record" in out and "foreign_cpu" in out
    assert "the failure rests on that record and is not trustworthy" in out
    assert "INCONCLUSIVE fake c throughput b=8 fp32: candidate record" in out and "not converged" in out
    assert "INCONCLUSIVE fake b" not in out
    assert "inconclusive: 2 comparison(s) rest on unconverged or noisy records" in out and "ok:" not in out
    assert "records in doubt" in out  # the table's own listing, --fail-on or not
    # the clean workload alone: exit 1 (fails) and exit 0 (passes), as before
    assert main(["compare", "tag=before", "tag=after", "workload=b", doubtful, "--fail-on", "throughput:5%"]) == 1
    assert main(["compare", "tag=before", "tag=after", "workload=b", doubtful, "--fail-on", "throughput:30%"]) == 0
    out = capsys.readouterr().out
    assert "INCONCLUSIVE" not in out and "records in doubt" not in out
    # only the unconverged one, which would pass: exit 3, not 0
    assert main(["compare", "tag=before", "tag=after", "workload=c", doubtful, "--fail-on", "throughput:5%"]) == 3
    assert "it would pass, but the pass rests on that record" in capsys.readouterr().out
    # without --fail-on the records are named and the exit code stays 0
    assert main(["compare", "tag=before", "tag=after", doubtful]) == 0
    out = capsys.readouterr().out
    assert "records in doubt" in out and "INCONCLUSIVE" not in out
