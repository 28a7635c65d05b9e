"""`bench plan`: which hardware, runtime and precision, how many units, what it costs and how it scales,
for a demand and a latency requirement, from stored records (bench.reporting.plan does the arithmetic,
bench.reporting.plan_render the outputs).

Every argument is KEY=VALUE; the plan's own keys are below, ``results.*`` names the store as in every
results command, and any other key selects records as in `bench leaderboard` (hardware=, backend=,
precision=, tag=, ...). Bad input is one line naming key, value and fix (exit 2); a plan in which no
option can serve the demand says why (exit 1).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from bench.cli.args import check_output, one_flag, parse_args, write_output
from bench.errors import ConfigError

__all__ = ["plan_command", "USAGE", "KEYS"]

USAGE = """\
  bench plan workload=NAME | suite=NAME [task=TASK]  DEMAND  slo.p99_ms=MS  [KEY=VALUE...]
             [--format terminal|markdown|json|html] [--output FILE]
                                    which hardware x backend x precision x batch, how many units, what it
                                    costs per month and over the lifetime, with the energy, as intervals
                                    (optimistic..pessimistic) from the records' 95% intervals; a Pareto
                                    front and units and cost against demand x0.1..x10
    DEMAND: demand.streams=N demand.fps=F | demand.rate_qps=R | demand.images_per_day=N [demand.peak_factor=F (default 1)]
    slo.p50_ms|p90_ms|p95_ms|p99_ms=MS (or slo.ms=MS slo.percentile=0.99)   headroom=0.2 (sizes for demand x 1.2)
    objective=cost|energy|units|latency   pareto=cost,energy (the front's pair)   max_power_w=W   max_rack_units=U   precisions=[fp32,fp16]
    horizon_months=36   tdp_w=W (an estimate of one unit's power where no sensor measured it; labelled estimated)
    prices=FILE|FOLDER (default conf/hardware/: price_per_hour, or purchase_price and lifetime_months;
    power_price_per_kwh, idle_power_w, tdp_w, rack_units)
    Capacity per unit: server max_qps_at_slo or multistream max_streams_at_slo x fps where measured for
    a requirement at least as strict, else a sweep's largest batch whose p99 meets the requirement at its
    interval's high end (labelled: ignores queueing; the `bench run` line that measures it under load is
    listed). Unconverged, invalid or noisy records are refused with the reason. Exit 1: no option can
    serve the demand (the plan says why)."""

KEYS = ("task", "demand.streams", "demand.fps", "demand.rate_qps", "demand.images_per_day", "demand.peak_factor",
        "slo.ms", "slo.percentile", "slo.p50_ms", "slo.p90_ms", "slo.p95_ms", "slo.p99_ms", "headroom", "objective",
        "max_power_w", "max_rack_units", "precisions", "prices", "horizon_months", "tdp_w", "pareto")


def _number(options: dict[str, str], key: str, fix: str) -> Optional[float]:
    text = options.get(key)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(key, text, fix, "is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(key, text, fix, "is not a finite number")
    return value


def _optional_positive(options: dict[str, str], key: str, fix: str, fix_positive: str) -> Optional[float]:
    """An optional number that must be > 0 when given: a constraint or estimate of `bench plan`."""
    value = _number(options, key, fix)
    if value is not None and value <= 0:
        raise ConfigError(key, options[key], fix_positive, "is not positive")
    return value


def _requirement(options: dict[str, str]):  # noqa: ANN202
    from bench.reporting.plan import PERCENTILE_NAMES, Requirement

    names = {name: q for q, name in PERCENTILE_NAMES.items()}
    given = [k for k in options if k.startswith("slo.") and k.endswith("_ms") and k != "slo.ms"]
    if "slo.ms" in options:
        given.append("slo.ms")
    if len(given) != 1:
        raise ConfigError("slo", ", ".join(given) or None, "give one latency requirement, e.g. slo.p99_ms=50",
                          "names no latency requirement" if not given else "names more than one requirement")
    key = given[0]
    fix = "give the bound in milliseconds, e.g. slo.p99_ms=50"
    bound = _number(options, key, fix)
    if bound is None or bound <= 0:
        raise ConfigError(key, options[key], fix, "is not a positive number")
    q_text = options.get("slo.percentile")
    q = None
    if q_text is not None:
        q_fix = f"use one of {', '.join(f'{q:g}' for q in PERCENTILE_NAMES)} (or p50, p90, p95, p99)"
        q = names.get(q_text)
        if q is None:
            try:
                q = float(q_text)
            except ValueError:
                q = None
            q = q / 100 if q is not None and q > 1 else q
        if q not in PERCENTILE_NAMES:
            raise ConfigError("slo.percentile", q_text, q_fix, "is not a percentile bench measures")
    if key != "slo.ms":
        at_key = names[key[len("slo."):-len("_ms")]] if key[len("slo."):-len("_ms")] in names else None
        if at_key is None:
            raise ConfigError(key, options[key], "use slo.p50_ms, slo.p90_ms, slo.p95_ms or slo.p99_ms",
                              "is not a percentile bench measures")
        if q is not None and q != at_key:
            raise ConfigError("slo.percentile", q_text, f"drop it, or write slo.ms={options[key]}",
                              f"disagrees with {key}")
        q = at_key
    return Requirement(bound, 0.99 if q is None else q)


def _request(options: dict[str, str], results: list[str]):  # noqa: ANN202
    from bench.reporting.plan import OBJECTIVES, PlanRequest, demand_from

    num = lambda key, fix: _number(options, key, fix)  # noqa: E731
    demand = demand_from(streams=num("demand.streams", "give a number of streams, e.g. demand.streams=12"),
                         fps=num("demand.fps", "give frames per second, e.g. demand.fps=30"),
                         rate_qps=num("demand.rate_qps", "give requests per second, e.g. demand.rate_qps=400"),
                         images_per_day=num("demand.images_per_day", "give images per day, e.g. 2e6"),
                         peak_factor=num("demand.peak_factor", "give the peak over the mean rate, e.g. 3"))
    headroom = num("headroom", "give a fraction, e.g. headroom=0.2 (20% spare)")
    if headroom is not None and not 0 <= headroom <= 10:
        raise ConfigError("headroom", options["headroom"], "give a fraction between 0 and 10, e.g. 0.2",
                          "is out of range")
    objective = options.get("objective", "cost")
    if objective not in OBJECTIVES:
        raise ConfigError("objective", objective, f"use one of {', '.join(OBJECTIVES)}", "is not an objective")
    max_power = _optional_positive(options, "max_power_w", "give watts per unit, e.g. max_power_w=75",
                                   "give watts per unit, e.g. 75")
    rack = _optional_positive(options, "max_rack_units", "give the rack units all units may take, e.g. "
                              "max_rack_units=8", "give rack units, e.g. 8")
    tdp = _optional_positive(options, "tdp_w", "give one unit's power in watts, e.g. tdp_w=65", "give watts, e.g. 65")
    horizon = _optional_positive(options, "horizon_months", "give months, e.g. horizon_months=36",
                                 "give months, e.g. 36")
    precisions: tuple[str, ...] = ()
    if "precisions" in options:
        from bench.precision import PRECISION_ORDER as PRECISIONS

        precisions = tuple(p.strip() for p in options["precisions"].strip("[]").split(",") if p.strip())
        unknown = [p for p in precisions if p not in PRECISIONS]
        if not precisions or unknown:
            raise ConfigError("precisions", options["precisions"], f"list some of {', '.join(PRECISIONS)}, "
                              "e.g. precisions=[fp32,fp16]", "names no precision bench knows")
    pareto: tuple[str, ...] = ()
    if "pareto" in options:
        pareto = tuple(p.strip() for p in options["pareto"].strip("[]").split(","))
        if len(pareto) != 2 or pareto[0] == pareto[1] or not set(pareto) <= set(OBJECTIVES):
            raise ConfigError("pareto", options["pareto"], f"name two of {', '.join(OBJECTIVES)}, e.g. "
                              "pareto=cost,energy", "is not a pair of objectives")
    return PlanRequest(demand, _requirement(options), 0.2 if headroom is None else headroom, objective, max_power,
                       precisions, rack, tdp, 36.0 if horizon is None else horizon, tuple(results), pareto)


def plan_command(args: list[str]) -> int:
    from bench.config.catalog import workloads_by_task
    from bench.config.location import open_store
    from bench.reporting import plan as pl
    from bench.reporting import plan_render as pr
    from bench.reporting.prices import load_prices
    from bench.results.query import Selection, chunks

    parsed = parse_args(args, "plan", ("--format", "--output"), options=KEYS)
    fmt = one_flag(parsed, "--format", "terminal")
    if fmt not in pr.FORMATS:
        raise ConfigError("--format", fmt, f"use one of {', '.join(pr.FORMATS)}", "is not a plan format")
    output = one_flag(parsed, "--output")
    check_output("--output", output)
    named = {t.partition("=")[0] for t in parsed.terms}
    for key in sorted(k for k in named if "." in k):  # selections have no dotted keys: a mistyped plan key
        raise ConfigError(key, dict(t.partition("=")[::2] for t in parsed.terms)[key],
                          f"use one of {', '.join(k for k in KEYS if '.' in k)} (bench plan --help)",
                          "is not a key of `bench plan`")
    if not named & {"workload", "suite"} and "task" not in parsed.options:
        raise ConfigError("workload", None, "name what to deploy: workload=NAME, or suite=NAME (with task=TASK) to "
                          "let the plan choose the model", "is missing")
    request = _request(parsed.options, parsed.results)
    if parsed.options.get("prices") == "":
        raise ConfigError("prices", "", "give a folder of price files or one YAML file, e.g. prices=conf/hardware",
                          "is empty")
    prices_given = "prices" in parsed.options
    prices = load_prices(Path(parsed.options["prices"]).expanduser() if prices_given else None)
    selection = Selection.parse(parsed.terms)
    store = open_store(parsed.results)
    try:
        # Read chunk by chunk and kept as the plan reads them (plan_view): memory grows with what the plan
        # uses of each record, not with whole summaries.
        records = [pl.plan_view(r) for chunk in chunks(store, selection, "bench plan") for r in chunk]
    finally:
        store.close()
    task = parsed.options.get("task")
    unmeasured: list[str] = []
    if task:
        suites = sorted({t.partition("=")[2] for t in parsed.terms if t.partition("=")[0] == "suite"})
        catalog = {name: (suite, of) for suite in suites for name, of in workloads_by_task(suite).items()}
        if suites and task not in {of for _, of in catalog.values()}:
            tasks = sorted({of for _, of in catalog.values() if of})
            raise ConfigError("task", task, f"use one of {', '.join(tasks)} (bench list suite={suites[0]})",
                              f"is not a task of suite {', '.join(suites)}")
        kept = [r for r in records if r.workload.get("task") == task]
        measured = {str(r.workload.get("name")) for r in kept}
        # The plan chooses among the catalog's models of this task: those without a record are listed
        # with the command that measures them.
        unmeasured = [pl.measure_command(catalog[name][0], name, request) for name in sorted(catalog)
                      if catalog[name][1] == task and name not in measured]
        if not kept and not unmeasured:
            tasks = sorted({str(r.workload.get("task")) for r in records if r.workload.get("task")})
            raise ConfigError("task", task, f"use one of {', '.join(tasks)}" if tasks else
                              "select by workload= instead (these records do not name their task)",
                              f"matches none of the {len(records)} selected record(s)")
        records = kept
    plan = pl.build_plan(records, request, prices, source=store.display_url, selection=str(selection),
                         prices_given=prices_given)
    plan.notes.extend(f"not measured yet ({task}): {command}" for command in unmeasured)
    write_output(pr.render(plan, str(fmt)), output)
    return 0 if plan.planned else 1
