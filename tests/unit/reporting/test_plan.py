"""bench plan's arithmetic on records built for the purpose: capacities, prices and powers whose right
plan is known by hand."""

import math

import pytest

from bench.errors import ConfigError
from bench.reporting import plan as pl
from bench.reporting.prices import HOURS_PER_MONTH, Price
from tests.recordfactory import make_record

HW = "Test box"


def sweep_record(batch=8, tp=100.0, low=95.0, high=105.0, p99=10.0, p99_high=12.0, hardware=HW, backend="cpu",
                 precision="fp32", **kw):
    metrics = {"throughput_sps": tp, "throughput_ci_low_sps": low, "throughput_ci_high_sps": high,
               "latency_p99_ms": p99, "latency_p99_ci_low_ms": p99 * 0.9, "latency_p99_ci_high_ms": p99_high,
               "converged": True, **kw.pop("metrics", {})}
    return make_record(hardware=hardware, backend=backend, precision=precision, scenario="throughput",
                       batch_size=batch, metrics=metrics, **kw)


def server_record(qps=50.0, slo=50.0, p99=30.0, p99_high=40.0, hardware=HW, backend="onnxruntime", **kw):
    metrics = {"max_qps_at_slo": qps, "slo_ms": slo, "latency_p99_ms": p99, "latency_p99_ci_low_ms": p99 * 0.9,
               "latency_p99_ci_high_ms": p99_high, **kw.pop("metrics", {})}
    metrics.pop("converged", None)
    rec = make_record(hardware=hardware, backend=backend, scenario="server", batch_size=1, metrics=metrics, **kw)
    rec.metrics.pop("converged", None)
    return rec


def request(rate=400.0, bound=50.0, headroom=0.0, **kw):
    return pl.PlanRequest(pl.demand_from(rate_qps=rate), pl.Requirement(bound), headroom=headroom, **kw)


# ---------------------------------------------------------------- demand


def test_demand_units_are_converted():
    assert pl.demand_from(streams=12, fps=30).rate_sps == 360.0
    assert pl.demand_from(rate_qps=400).rate_sps == 400.0
    assert pl.demand_from(images_per_day=2e6, peak_factor=3).rate_sps == pytest.approx(2e6 * 3 / 86400)
    assert pl.demand_from(images_per_day=86400).rate_sps == 1.0
    assert request(rate=400, headroom=0.25).target_sps == 500.0


@pytest.mark.parametrize("kwargs, match", [
    ({"rate_qps": 0}, "demand.rate_qps=0 is not a positive number"),
    ({}, "gives no demand"),
    ({"rate_qps": 1, "streams": 2, "fps": 3}, "more than one form"),
    ({"streams": 2}, "demand.fps is missing"),
    ({"fps": 30, "rate_qps": 3}, "without demand.streams"),
    ({"rate_qps": 3, "peak_factor": 2}, "daily volume only"),
])
def test_bad_demand_is_one_line(kwargs, match):
    with pytest.raises(ConfigError, match=match) as info:
        pl.demand_from(**kwargs)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- units and their interval


def test_units_interval_at_a_boundary():
    # 400/s on a capacity of 100 [95, 105]: 4 units at the optimistic end (400/105 = 3.8), 5 at the
    # pessimistic one (400/95 = 4.2); with 20% headroom 480/s: 5 and 6.
    p = pl.build_plan([sweep_record()], request(400))
    (option,) = p.planned
    assert option.sizing.units == (5, 4)
    assert option.capacity.source == "sweep" and option.not_under_load
    p = pl.build_plan([sweep_record()], request(400, headroom=0.2))
    assert p.planned[0].sizing.units == (6, 5)


def test_exact_capacity_gives_exact_units_despite_floating_point():
    # 400 x 1.2 / 120 is 4.000000000000001 in floating point: 4 units, not 5.
    p = pl.build_plan([sweep_record(tp=120.0, low=120.0, high=120.0)], request(400, headroom=0.2))
    assert p.planned[0].sizing.units == (4, 4)
    assert pl.units_for(480.0, 120.0) == 4 and pl.units_for(481.0, 120.0) == 5 and pl.units_for(1.0, 1e6) == 1


def test_the_pessimistic_plan_never_loads_a_unit_past_a_rate_that_met_the_requirement():
    records = [sweep_record(batch=b, tp=40.0 * b, low=38.0 * b, high=42.0 * b, p99=5.0 * b, p99_high=6.0 * b, seed=b)
               for b in (1, 2, 4, 8, 16)]
    records.append(server_record(qps=70.0, p99=20.0, p99_high=25.0, hardware="Other"))
    for bound in (7.0, 13.0, 30.0, 60.0, 200.0):
        for rate in (1.0, 37.0, 400.0, 5000.0):
            req = request(rate, bound, headroom=0.1)
            for o in pl.build_plan(records, req).planned:
                cap, (pess, opt) = o.capacity, o.sizing.units
                assert req.target_sps / pess <= cap.low + 1e-9
                assert cap.latency_high_ms <= bound
                assert opt <= pess


def test_sweep_uses_the_largest_batch_meeting_the_requirement_at_its_high_end():
    records = [sweep_record(batch=1, tp=50.0, low=48.0, high=52.0, p99=5.0, p99_high=6.0),
               sweep_record(batch=4, tp=150.0, low=140.0, high=160.0, p99=18.0, p99_high=19.0),
               # p99 meets 20 ms at its point but not at its interval's high end: not taken
               sweep_record(batch=8, tp=250.0, low=240.0, high=260.0, p99=19.0, p99_high=21.0)]
    (o,) = pl.build_plan(records, request(300, bound=20.0)).planned
    assert o.batch_size == 4 and o.sizing.units == (3, 2)  # 300/140 = 2.1, 300/160 = 1.9
    assert "ignores queueing" in o.capacity.text


# ---------------------------------------------------------------- load records


def test_server_capacity_wins_over_the_sweep_and_a_multistream_counts_frames():
    records = [sweep_record(), server_record(qps=50.0, backend="cpu")]
    (o,) = pl.build_plan(records, request(400, bound=50.0)).planned
    assert o.capacity.source == "server" and not o.not_under_load
    assert o.sizing.units == (8, 8)  # one search: no interval, the point at both ends, flagged
    assert o.capacity.flagged and any("no interval" in n for n in o.notes)
    ms = make_record(hardware="Cam box", scenario="multistream", batch_size=1,
                     metrics={"max_streams_at_slo": 5, "fps": 30.0, "slo_ms": 50.0, "latency_p99_ms": 20.0,
                              "latency_p99_ci_high_ms": 30.0})
    req = pl.PlanRequest(pl.demand_from(streams=12, fps=30), pl.Requirement(50.0), headroom=0.0)
    (o,) = pl.build_plan([ms], req).planned
    assert o.capacity.point == 150.0 and o.sizing.units == (3, 3)  # 12 streams / 5 per unit


def test_server_repeats_give_a_prediction_interval():
    from bench.results.repeats import prediction_interval

    rec = server_record(qps=50.0, per_process=[{"max_qps_at_slo": 45.0}, {"max_qps_at_slo": 50.0},
                                                {"max_qps_at_slo": 55.0}])
    rec.metrics.update(max_qps_at_slo=50.0, slo_ms=50.0, latency_p99_ms=30.0, latency_p99_ci_high_ms=40.0)
    (o,) = pl.build_plan([rec], request(400)).planned
    low, high = prediction_interval([45.0, 50.0, 55.0], 0.95, 50.0)
    assert (o.capacity.low, o.capacity.high) == (pytest.approx(max(low, 0)), pytest.approx(high))
    assert not o.capacity.flagged
    assert o.sizing.units[1] == math.ceil(400 / high)


def test_load_records_measured_for_another_requirement_are_refused_with_the_reason():
    looser = server_record(qps=80.0, slo=100.0)
    (o,) = pl.build_plan([looser], request(400, bound=50.0)).refused
    assert "looser than the p99 <= 50 ms asked" in o.refused
    tail = server_record(qps=80.0, slo=50.0, p99=45.0, p99_high=55.0)
    (o,) = pl.build_plan([tail], request(400, bound=50.0)).refused
    assert "reaches 55 ms" in o.refused and "pessimistic" in o.refused
    # A p99 without upper bound (a short probe): planned at the search's verdict, and said.
    (o,) = pl.build_plan([server_record(qps=80.0, slo=50.0, p99=45.0, p99_high=None)], request(400)).planned
    assert any("no 95% upper bound" in n and "368 bound it" in n for n in o.notes)
    # A tighter measurement serves a looser requirement.
    assert pl.build_plan([server_record(slo=20.0, p99=10.0, p99_high=15.0)], request(400, bound=50.0)).planned


# ---------------------------------------------------------------- quality


@pytest.mark.parametrize("kw, reason", [
    ({"parity_ok": False}, "parity failed"),
    ({"metrics": {"converged": False}}, "not converged"),
    ({"warnings": ["high_variation"]}, "high_variation"),
])
def test_records_in_doubt_are_refused_with_the_reason(kw, reason):
    p = pl.build_plan([sweep_record(**kw)], request())
    assert not p.planned and reason in p.refused[0].refused
    assert "refused" in p.empty_reason


def test_a_requirement_below_every_measured_latency_is_an_empty_plan_that_says_why():
    p = pl.build_plan([sweep_record(p99=10.0, p99_high=12.0), server_record(slo=50.0)], request(bound=1.0))
    assert not p.planned and p.chosen is None
    assert "no option can serve 400 requests/s within p99 <= 1 ms" in p.empty_reason
    assert all(o.refused for o in p.options)


# ---------------------------------------------------------------- energy and cost


def test_hourly_cost_and_measured_energy_by_hand():
    rec = sweep_record(metrics={"energy_per_sample_mj": 100.0, "power_mean_w_cpu": 9.5})
    price = Price(HW, 1.0, "USD", "test", power_price_per_kwh=0.2, idle_power_w=10.0)
    (o,) = pl.build_plan([rec], request(400), {HW: price}).planned
    assert o.energy_source == "measured" and o.power_w == 9.5
    active = 400 * 0.1 * HOURS_PER_MONTH / 1000  # 40 W on average all month: 29.2 kWh
    pess = active + 5 * 10.0 * (1 - 400 / (5 * 95.0)) * HOURS_PER_MONTH / 1000
    opt = active + 4 * 10.0 * (1 - 400 / (4 * 105.0)) * HOURS_PER_MONTH / 1000
    assert o.sizing.energy_kwh_month == (pytest.approx(pess), pytest.approx(opt))
    assert o.sizing.cost_month == (pytest.approx(5 * 730 + pess * 0.2), pytest.approx(4 * 730 + opt * 0.2))
    assert o.sizing.cost_total[0] == pytest.approx(o.sizing.cost_month[0] * 36)


def test_purchase_cost_over_the_lifetime_and_a_labelled_tdp_estimate():
    price = Price(HW, 900 / (36 * 730), "USD", "test", purchase_price=900.0, lifetime_months=36.0,
                  power_price_per_kwh=0.25, tdp_w=30.0)
    (o,) = pl.build_plan([sweep_record()], request(400), {HW: price}).planned
    assert o.energy_source == "estimated (TDP)"
    kwh = (5 * 30 * 0.73, 4 * 30 * 0.73)
    assert o.sizing.energy_kwh_month == (pytest.approx(kwh[0]), pytest.approx(kwh[1]))
    assert o.sizing.cost_month[0] == pytest.approx(5 * 25.0 + kwh[0] * 0.25)
    assert o.sizing.cost_total[1] == pytest.approx((4 * 25.0 + kwh[1] * 0.25) * 36)
    (o,) = pl.build_plan([sweep_record()], request(400), {HW: Price(HW, 1.0, "USD", "t")}).planned
    assert o.energy_source == "unmeasured" and o.sizing.energy_kwh_month is None
    (o,) = pl.build_plan([sweep_record()], request(400, tdp_w=100.0), {HW: Price(HW, 1.0, "USD", "t")}).planned
    assert o.energy_source == "estimated (TDP)" and o.sizing.energy_kwh_month == (pytest.approx(5 * 73.0),
                                                                                 pytest.approx(4 * 73.0))


def test_ranking_by_objective_ties_and_constraints():
    cheap = sweep_record(hardware="A", tp=100.0, low=95.0, high=105.0, metrics={"power_mean_w_cpu": 200.0})
    dear = sweep_record(hardware="B", tp=100.0, low=99.0, high=101.0, seed=3, metrics={"power_mean_w_cpu": 50.0})
    prices = {"A": Price("A", 1.0, "USD", "t"), "B": Price("B", 2.0, "USD", "t")}
    p = pl.build_plan([cheap, dear], request(400), prices)
    assert [(o.hardware, o.rank_text) for o in p.planned] == [("A", "1"), ("B", "2")]
    assert p.chosen.hardware == "A"
    # units: A needs 4..5, B 4..5: their intervals overlap, a tie
    p = pl.build_plan([cheap, dear], request(400, objective="units"), prices)
    assert [o.rank_text for o in p.planned] == ["=1", "=1"]
    p = pl.build_plan([cheap, dear], request(400, max_power_w=100.0), prices)
    assert [o.hardware for o in p.planned] == ["B"] and "over max_power_w=100" in p.refused[0].refused
    racked = {"A": Price("A", 1.0, "USD", "t", rack_units=2.0), "B": Price("B", 2.0, "USD", "t", rack_units=1.0)}
    p = pl.build_plan([cheap, dear], request(400, max_rack_units=8.0), racked)  # A: 5 x 2U, B: 5 x 1U
    assert [o.hardware for o in p.planned] == ["B"] and "5 x 2 = 10 rack units" in p.refused[0].refused
    p = pl.build_plan([cheap, sweep_record(hardware="C", precision="fp16")], request(400, precisions=("fp16",)))
    assert [o.precision for o in p.options] == ["fp16"]


def test_a_price_file_without_the_hardware_is_an_error_when_given():
    with pytest.raises(ConfigError, match="prices none of the selected records' hardware"):
        pl.build_plan([sweep_record()], request(), {"X": Price("X", 1.0, "USD", "x.yaml")}, prices_given=True)
    p = pl.build_plan([sweep_record()], request(), {"X": Price("X", 1.0, "USD", "x.yaml")})
    assert p.planned[0].sizing.cost_month is None and any("no price" in n for n in p.notes)


def test_scaling_and_pareto():
    a = sweep_record(hardware="A", metrics={"energy_per_sample_mj": 10.0})
    b = sweep_record(hardware="B", seed=2, metrics={"energy_per_sample_mj": 5.0})
    c = sweep_record(hardware="C", seed=3, metrics={"energy_per_sample_mj": 20.0})
    prices = {"A": Price("A", 1.0, "USD", "t"), "B": Price("B", 2.0, "USD", "t"), "C": Price("C", 3.0, "USD", "t")}
    p = pl.build_plan([a, b, c], request(400), prices)
    assert [o.hardware for o in pl.pareto(p)] == ["A", "B"]  # C costs more and uses more energy
    rows = dict((o.hardware, s) for o, s in pl.scaling(p))
    assert [s.units for s in rows["A"]] == [(1, 1), (1, 1), (3, 2), (5, 4), (9, 8), (22, 20), (43, 39)]


def test_not_measured_under_load_names_the_command():
    p = pl.build_plan([sweep_record()], request(400, bound=50.0, results_args=("results.dir=/tmp/r",)))
    assert p.planned[0].command == ("bench run suite=fake 'suite.only=[tiny]' backend=cpu backend.precision=fp32 "
                                    "scenario=server scenario.find_peak=true scenario.slo_ms=50 "
                                    "scenario.percentile=0.99 results.dir=/tmp/r")
    req = pl.PlanRequest(pl.demand_from(streams=4, fps=15), pl.Requirement(50.0))
    assert "scenario=multistream scenario.fps=15" in pl.build_plan([sweep_record()], req).planned[0].command


# ---------------------------------------------------------------- outputs


def _mixed_plan():
    a = sweep_record(hardware="A <b>", metrics={"energy_per_sample_mj": 10.0})
    b = server_record(hardware="B", metrics={"energy_per_sample_mj": 5.0})
    c = sweep_record(hardware="C", p99_high=80.0)
    prices = {"A <b>": Price("A <b>", 1.0, "USD", "t"), "B": Price("B", 2.0, "USD", "t")}
    return pl.build_plan([a, b, c], request(400, results_args=("results.dir=/tmp/x",)), prices, source="/tmp/x")


def test_terminal_markdown_json_and_html():
    import json

    from bench.reporting import plan_render as pr

    p = _mixed_plan()
    text = pr.render(p, "terminal")
    assert "chosen: A <b> / cpu / fp32 / tiny, 4..5 unit(s)" in text
    assert "NOT MEASURED UNDER LOAD" in text and "what is missing" in text and "refused:" in text
    assert "Pareto front of cost (per month) against energy (kWh/month)" in text
    assert "x10" in text and "39..43" in text  # scaling: 4000/s on [95, 105]
    md = pr.render(p, "markdown")
    assert "| 1 | A &lt;b&gt; / cpu / fp32 |" in md and "## What is missing" in md
    data = json.loads(pr.render(p, "json"))
    first = data["options"][0]
    assert first["units"] == {"pessimistic": 5, "optimistic": 4} and first["not_measured_under_load"]
    assert first["command"].startswith("bench run ") and data["options"][2]["refused"]
    assert data["pareto"]["front"] and len(data["scaling"][0]["points"]) == len(pl.SCALING_FACTORS)
    page = pr.render(p, "html")
    assert page.startswith("<!DOCTYPE html>") and "A &lt;b&gt;" in page and "A <b>" not in page
    assert "<script" not in page and 'src="http' not in page and 'href="http' not in page  # self-contained
    pytest.importorskip("matplotlib")
    assert "<svg" in page


def test_an_empty_plan_renders_why():
    from bench.reporting import plan_render as pr

    p = pl.build_plan([sweep_record()], request(bound=1.0))
    for fmt in pr.FORMATS:
        assert "no option can serve" in pr.render(p, fmt)


def test_equal_units_rank_the_larger_capacity_first_and_an_unbounded_latency_is_compared_by_its_point():
    slow = server_record(hardware="S", qps=17.6, slo=200.0, p99=182.0, p99_high=None)
    fast = server_record(hardware="F", qps=22.9, slo=200.0, p99=153.0, p99_high=None)
    p = pl.build_plan([slow, fast], request(20, bound=200.0, headroom=0.2))
    assert [(o.hardware, o.rank_text, o.sizing.units) for o in p.planned] == [("F", "=1", (2, 2)), ("S", "=1", (2, 2))]
    assert [o.hardware for o in pl.pareto(p, "units", "latency")] == ["F"]


def test_the_plan_over_plan_views_is_the_plan_over_the_records():
    """bench plan keeps each record as plan_view trims it (what the plan reads): the same plan, every
    format, as over the whole records (repeats, load searches, doubts, prices, energy, commands)."""
    from bench.reporting import plan_render as pr

    rec = server_record(qps=50.0, per_process=[{"max_qps_at_slo": 45.0}, {"max_qps_at_slo": 55.0}])
    rec.metrics.update(max_qps_at_slo=50.0, slo_ms=50.0, latency_p99_ms=30.0, latency_p99_ci_high_ms=40.0)
    records = [sweep_record(hardware="A", metrics={"energy_per_sample_mj": 10.0}), sweep_record(hardware="C", p99_high=80.0),
               server_record(hardware="B"), rec, sweep_record(hardware="D", warnings=["foreign_cpu"]),
               sweep_record(hardware="E", batch=16, tp=190.0, low=180.0, high=200.0)]
    prices = {"A": Price("A", 1.0, "USD", "t"), "B": Price("B", 2.0, "USD", "t")}
    whole = pl.build_plan(records, request(400), prices, source="s")
    viewed = pl.build_plan([pl.plan_view(r) for r in records], request(400), prices, source="s")
    for fmt in ("terminal", "markdown", "json"):
        assert pr.render(viewed, fmt) == pr.render(whole, fmt)
    assert whole.planned and any(o.refused for o in whole.options)
    small = pl.plan_view(rec)
    assert small.noise == {} and set(small.system) == {"hardware"} and len(small.raw["repeats"]) == 2
