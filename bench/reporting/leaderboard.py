"""Rank hardware x backend x precision for each workload, from stored records, with honest ties.

Rules, in the order they apply:

- Only valid records (status ok and outputs matched the reference) are ranked.
- Records are grouped into tables by suite x workload x scenario x batch size. Within a table, one row
  per hardware x backend (and device) x precision: the best-supported record of that combination
  (bench.results.support: converged, then intervals over repeats, then fewest warnings, then newest), or
  with ``newest=True`` the newest; the others are counted and said.
- Each row shows throughput, p99 latency, samples per joule and cost per million samples, each with
  its 95% interval as the record holds it (cost's interval follows from the throughput interval),
  whether the record converged, its warnings, and how many processes its intervals span.
- Ranking: rows are sorted by the point estimate of the ranking metric, best first. A row *ties with
  the previous row* when both have a bounded interval (both ends known) and the intervals overlap,
  and then gets the previous row's rank; otherwise its rank is its position (1-based, so ranks skip
  after a tie, as in sports: 1, =2, =2, 4). A row whose interval lacks an end (too few samples to
  bound a tail percentile) is ranked by its point estimate alone, never tied, and marked ``3?``,
  with a note under its table saying how many samples it has and how many would bound it; the tie
  rule passes over it (the next bounded row is compared with the last bounded row before it).
  Rows without the ranking figure (no energy sensor, no price) are listed after the ranked rows,
  without a rank, never as 0.
- The ranking metric is ``metric=`` when given; otherwise throughput_sps for the throughput scenario
  and latency_p99_ms for the latency scenario.
- scenario=continual records are ranked among themselves only, and only against records at the same
  load (the group key adds the Poisson rate, or streams x fps; a peak search is a load of its own,
  ranked by max_qps_while_adapting): by the time to adapt, drift to swap, lower is better, with its
  interval where the record pools repeats (``time_to_adapt_ci_low_s``/``_ci_high_s``) and "one run"
  otherwise (ranked by its point, as ``*`` figures are). Each row says whether it serves within its
  budget while adapting, its p99 degradation while adapting and its training slowdown. A record
  that did not adapt to the drift under that load (no detection, a failed adaptation, a swap only
  after serving ended, a false alarm) has no rank: it is listed last with the reason, and a note
  under its table gives the whole verdict (bench.reporting.continual).

Prices come from YAML files (``conf/hardware/*.yaml`` by default): ``hardware`` (the label exactly as
in the records), ``price_per_hour`` and ``currency``. cost = price_per_hour / (throughput_sps x 3600)
x 1e6, per million samples.

The tables are drawn by bench.reporting.leaderboard_render (terminal, Markdown, CSV) and
bench.reporting.html (the page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from bench.results import support
from bench.errors import ConfigError
from bench.reporting import continual
from bench.reporting.prices import PRICES_DIR, Price, load_prices
from bench.results.records import RunRecord

__all__ = ["METRICS", "MetricSpec", "Figure", "Row", "Group", "Leaderboard", "Price", "load_prices",
           "build", "build_indexed", "index_key", "overlaps", "PRICES_DIR", "CONTINUAL_SHOWN", "VERDICT"]

COST = "cost_per_million_samples"
ENERGY = "samples_per_j"
UNBOUNDED_MARK = "?"  # after a rank: the ranked figure's interval lacks an end
PROCESS_MARK = "§"  # after a repeats count: the intervals hold the noise within one process only


@dataclass(frozen=True)
class MetricSpec:
    name: str
    label: str  # a column heading
    unit: str
    higher_is_better: bool
    ci_keys: tuple[tuple[str, str], ...] = ()  # candidate (low, high) keys in record.metrics
    one_run: str = ""  # said of a one-process record's figure without interval ("one run"), instead of *

    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


def _latency(p: str) -> MetricSpec:
    return MetricSpec(f"latency_{p}_ms", f"{p} latency ms", "ms", False,
                      ((f"latency_{p}_ci_low_ms", f"latency_{p}_ci_high_ms"),))


METRICS: dict[str, MetricSpec] = {
    "throughput_sps": MetricSpec("throughput_sps", "samples/s", "samples/s", True,
                                 (("throughput_ci_low_sps", "throughput_ci_high_sps"),)),
    "latency_p50_ms": _latency("p50"),
    "latency_p90_ms": _latency("p90"),
    "latency_p95_ms": _latency("p95"),
    "latency_p99_ms": _latency("p99"),
    ENERGY: MetricSpec(ENERGY, "samples/J", "samples/J", True,
                       (("samples_per_j_ci_low", "samples_per_j_ci_high"),
                        ("samples_per_ci_low_j", "samples_per_ci_high_j"))),
    COST: MetricSpec(COST, "cost per 1M samples", "per 1M samples", False),
    # The load scenarios' searches: no interval (one search per record).
    "max_qps_at_slo": MetricSpec("max_qps_at_slo", "max qps at SLO", "requests/s", True),
    "max_streams_at_slo": MetricSpec("max_streams_at_slo", "max streams at SLO", "streams", True),
    # scenario=continual: one timeline per process; repeats=N pools them with a prediction interval.
    "time_to_adapt_s": MetricSpec("time_to_adapt_s", "time to adapt s", "s", False,
                                  (("time_to_adapt_ci_low_s", "time_to_adapt_ci_high_s"),), one_run="one run"),
    "max_qps_while_adapting": MetricSpec("max_qps_while_adapting", "max qps while adapting", "requests/s", True,
                                         (("max_qps_while_adapting_ci_low", "max_qps_while_adapting_ci_high"),),
                                         one_run="one search"),
    "adapting_degradation_p99": MetricSpec("adapting_degradation_p99", "p99 adapting / steady", "x", False,
                                           (("adapting_degradation_p99_ci_low", "adapting_degradation_p99_ci_high"),)),
    "train_slowdown": MetricSpec("train_slowdown", "training slowdown", "x", False),
}
SHOWN = ("throughput_sps", "latency_p99_ms", ENERGY, COST)  # the columns of every table
VERDICT = "serves_within_budget_while_adapting"  # a text column of the continual tables, not a figure
# The columns of a scenario=continual table (VERDICT: the row's verdict, not a figure).
CONTINUAL_SHOWN = ("time_to_adapt_s", VERDICT, "adapting_degradation_p99", "train_slowdown")
CONTINUAL_METRICS = ("time_to_adapt_s", "max_qps_while_adapting", "adapting_degradation_p99", "train_slowdown")
# server and multistream rank by their search's answer where the records have one (else by p99).
DEFAULT_METRIC = {"throughput": "throughput_sps", "latency": "latency_p99_ms", "training": "throughput_sps",
                  "server": "max_qps_at_slo", "multistream": "max_streams_at_slo", "continual": "time_to_adapt_s"}


def check_metric(name: str) -> MetricSpec:
    if name not in METRICS:
        raise ConfigError("metric", name, f"use one of {', '.join(METRICS)}", "is not a metric")
    return METRICS[name]


@dataclass
class Figure:
    value: Optional[float] = None
    low: Optional[float] = None  # None: no bound on this side (the record's sample could not give one)
    high: Optional[float] = None
    note: str = ""  # why there is no value ("no energy sensor", "no price")
    has_ci: bool = True
    why: str = ""  # why an end is missing, in words: "n=53 samples; 368 bound it"

    @property
    def bounded(self) -> bool:
        """Both ends of the interval known (a figure without interval, ``*``, is its own point)."""
        return self.value is not None and self.low is not None and self.high is not None

    @property
    def unbounded(self) -> bool:
        """A figure with an interval of which an end is missing."""
        return self.value is not None and self.has_ci and not self.bounded


def overlaps(a: Figure, b: Figure) -> bool:
    """Whether two intervals overlap (closed intervals). An interval with a missing end overlaps
    nothing: a tie must rest on two bounds that exist, never on an assumed infinite one."""
    if not (a.bounded and b.bounded):
        return False
    return a.low <= b.high and b.low <= a.high  # type: ignore[operator]


def _num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _count(value: Any) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 else None


def _why_unbounded(record: RunRecord, spec: MetricSpec) -> str:
    """Why an end of a figure's interval is missing, with the numbers a reader can act on."""
    from bench.measurement.stats import PERCENTILES, min_samples_to_bound

    m = record.metrics
    if spec.name.endswith("_degradation_p99"):
        phase = spec.name[: -len("_degradation_p99")]
        open_ = [f"{p} (n={m.get(f'{p}_queries')})" for p in ("steady", phase)
                 if m.get(f"{p}_latency_p99_ci_low_ms") is None or m.get(f"{p}_latency_p99_ci_high_ms") is None]
        return f"p99 unbounded in {' and '.join(open_)}; {min_samples_to_bound(0.99, 0.95)} bound it" if open_ \
            else "its record holds none"
    # A load scenario's percentiles are over every query (dropped ones too); a loop's over its clock samples.
    n = _count(m.get("queries")) if record.scenario.get("name") in ("server", "multistream") else None
    n = n if n is not None else _count(m.get("samples"))
    n_text = "n unknown" if n is None else f"n={n}"
    if spec.name.startswith("latency_") and spec.name[len("latency_"):-len("_ms")] in PERCENTILES:
        q = PERCENTILES[spec.name[len("latency_"):-len("_ms")]]
        block = _count(((record.raw or {}).get("loop") or {}).get("block"))
        if block and block > 1 and record.scenario.get("name") not in ("server", "multistream"):
            n_text += f" samples of {block} requests"
        return f"{n_text}; {min_samples_to_bound(q, 0.95)} bound it"
    if spec.name == "throughput_sps":
        if n is not None and n < 2:
            return f"{n_text}; 2 bound it"
        return f"{n_text}; its blocks vary too much to bound it, measure longer"
    return "its record holds none"


def _figure(record: RunRecord, spec: MetricSpec) -> Figure:
    m = record.metrics
    value = _num(m.get(spec.name))
    if value is None:
        return Figure(note="no energy sensor" if spec.name == ENERGY else "not measured")
    for low_key, high_key in spec.ci_keys:
        if low_key in m or high_key in m:
            low, high = _num(m.get(low_key)), _num(m.get(high_key))
            why = "" if low is not None and high is not None else _why_unbounded(record, spec)
            return Figure(value, low, high, why=why)
    one_run = spec.one_run if support.repeats(record) <= 1 else ""
    return Figure(value, value, value, has_ci=False, why=one_run)


def _continual_figure(record: RunRecord, spec: MetricSpec, verdict: "continual.Verdict") -> Figure:
    """The time to adapt where the record adapted to the drift under its load; else no figure, and
    the reason as its note (the row is listed last, unranked)."""
    from bench.fmt import fmt_num

    figure = _figure(record, spec)
    if spec.name != "time_to_adapt_s" or verdict.ranked:
        if spec.name == "max_qps_while_adapting" and figure.value is None:
            return Figure(note="no probe within budget while adapting")
        return figure
    tta = "" if figure.value is None else f"{fmt_num(figure.value)} s, "
    reasons = {"no_detection": "did not adapt: drift not detected",
               "failed": "did not adapt: the adaptation failed",
               "after_serving": f"{tta}after serving ended: not ranked",
               "false_alarm": f"{tta}after a false alarm: not ranked"}
    return Figure(note=reasons.get(verdict.kind, "did not adapt"))


def _cost(throughput: Figure, price: Optional[Price]) -> Figure:
    if price is None:
        return Figure(note="no price")
    if not throughput.value:
        return Figure(note="no throughput")

    def per_million(tp: Optional[float]) -> Optional[float]:
        return None if tp is None or tp <= 0 else price.price_per_hour / (tp * 3600.0) * 1e6

    # Cost falls as throughput rises: the ends swap. A missing throughput end leaves the cost's other
    # end missing too (not 0: a bound no measurement supports would let the row tie).
    why = f"throughput: {throughput.why}" if throughput.why else ""
    return Figure(per_million(throughput.value), per_million(throughput.high), per_million(throughput.low),
                  has_ci=throughput.has_ci, why=why)


@dataclass
class Row:
    record: RunRecord
    hardware: str
    backend: str
    device: str
    precision: str
    figures: dict[str, Figure]
    price: Optional[Price] = None
    seen: int = 1  # records of this row's key; one of them is shown
    rank: Optional[int] = None
    tie: bool = False
    unbounded: bool = False  # the ranked figure's interval lacks an end: ranked by its point estimate
    newest: bool = False  # chosen as the newest (--newest) rather than the best supported
    verdict: str = ""  # scenario=continual: serves within budget while adapting (yes, no, or why not asked)

    @property
    def rank_text(self) -> str:
        if self.rank is None:
            return "-"
        if self.unbounded:
            return f"{self.rank}{UNBOUNDED_MARK}"
        return f"={self.rank}" if self.tie else str(self.rank)

    @property
    def backend_text(self) -> str:
        return self.backend if self.device in ("", self.backend) else f"{self.backend} ({self.device})"

    @property
    def label(self) -> str:
        return f"{self.hardware} / {self.backend_text} / {self.precision}"

    @property
    def converged_text(self) -> str:
        flag = support.converged(self.record)
        return "n/a" if flag is None else ("yes" if flag else "no")

    @property
    def repeats_text(self) -> str:
        """The processes the intervals span: ``3``, or ``1 §`` where they hold one process's noise only."""
        n = support.repeats(self.record)
        return f"{n} {PROCESS_MARK}" if support.ci_scope(self.record) == "process" else str(n)

    @property
    def record_text(self) -> str:
        text = f"{self.record.id[:8]} {self.record.created_at[:10]}"
        if self.seen > 1:
            text += f" ({'newest' if self.newest else 'best-supported'} of {self.seen})"
        return text


@dataclass
class Group:
    suite: str
    workload: str
    scenario: str
    batch_size: Optional[int]
    metric: MetricSpec
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # shown under the group's table
    load: str = ""  # scenario=continual: the load every row of the table served at

    @property
    def title(self) -> str:
        load = f" / {self.load}" if self.load else ""
        return f"{self.suite} / {self.workload} / {self.scenario} / batch {self.batch_size}{load}"


@dataclass
class Leaderboard:
    groups: list[Group]
    source: str  # where the records came from (URL masked)
    selection: str
    notes: list[str] = field(default_factory=list)


def _key(r: RunRecord) -> tuple[str, ...]:
    """suite, workload, scenario, batch, load (scenario=continual's; else ""), hardware, backend, device,
    precision: the first five make a table, the rest a row."""
    w, b = r.workload, r.backend
    load = repr(continual.load_key(r)) if continual.is_continual(r) else ""
    return (str(w.get("suite")), str(w.get("name")), str(r.scenario.get("name")), str(w.get("batch_size")), load,
            str(r.system.get("hardware")), str(b.get("name")), str(b.get("device")), str(b.get("precision")))


def rank_rows(rows: list[Row], spec: MetricSpec) -> list[Row]:
    """Ranked rows first (best first, ties sharing a rank), then rows without the figure.

    Two rows tie only when both intervals have both ends and they overlap. A row whose interval lacks
    an end takes its position as its rank, is never tied and is marked; the tie rule passes over it,
    comparing the next bounded row with the last bounded row before it."""
    ranked = [r for r in rows if r.figures[spec.name].value is not None]
    rest = [r for r in rows if r.figures[spec.name].value is None]
    sign = -1.0 if spec.higher_is_better else 1.0
    ranked.sort(key=lambda r: (sign * r.figures[spec.name].value, r.hardware, r.backend, r.precision))  # type: ignore[operator]
    last_bounded: Optional[Row] = None
    for i, row in enumerate(ranked):
        figure = row.figures[spec.name]
        row.rank, row.tie, row.unbounded = i + 1, False, figure.unbounded
        if row.unbounded:
            continue
        if last_bounded is not None and overlaps(figure, last_bounded.figures[spec.name]):
            row.rank, row.tie, last_bounded.tie = last_bounded.rank, True, True
        last_bounded = row
    rest.sort(key=lambda r: (r.hardware, r.backend, r.precision))
    for row in rest:
        row.rank, row.tie, row.unbounded = None, False, False
    return ranked + rest


def unbounded_note(row: Row, spec: MetricSpec) -> str:
    from bench.fmt import fmt_num

    f = row.figures[spec.name]
    ends = " or ".join(side for side, end in (("lower", f.low), ("upper", f.high)) if end is None)
    return (f"{row.rank_text} {row.label}: {spec.name} {fmt_num(f.value)} has no {ends} bound ({f.why}); "
            "ranked by its point estimate alone, tied with no row")


def build(records: Sequence[RunRecord], metric: Optional[str] = None, prices: Optional[dict[str, Price]] = None,
          source: str = "", selection: str = "", newest: bool = False) -> Leaderboard:
    """The tables; ``newest`` shows the newest record of each combination instead of the best supported."""
    valid = [r for r in records if r.valid]
    by_key: dict[tuple[str, ...], list[RunRecord]] = {}
    for r in valid:
        by_key.setdefault(_key(r), []).append(r)
    chosen = {k: support.best_supported(rs, newest) for k, rs in by_key.items()}
    newer = {k: max(rs, key=lambda x: (x.created_at, x.id)) for k, rs in by_key.items()}
    return _assemble(len(records), chosen, {k: len(rs) for k, rs in by_key.items()}, newer, metric, prices, source,
                     selection, newest)


def index_key(row: Any) -> tuple[str, ...]:
    """_key of a store's index row or Choice (ResultsStore.index, .choices): the same key from the columns."""
    return (str(row.suite), str(row.workload), str(row.scenario), str(row.batch_size), row.load_key or "",
            str(row.hardware), str(row.backend), str(row.device), str(row.precision))


def build_indexed(choose: Callable[[set[str]], tuple[int, Sequence[Any]]], load: Callable[[list[str]], list[RunRecord]],
                  metric: Optional[str] = None, prices: Optional[dict[str, Price]] = None, source: str = "",
                  selection: str = "", newest: bool = False) -> Leaderboard:
    """build() from the choices a store makes in its database (ResultsStore.choices, whose rule is
    build's: support.support_key's maximum, or with ``newest`` the newest): ``choose(exclude)`` gives the
    number of records selected and the Choices, less the records of ids ``exclude``; then ``load(ids)``
    (the records of those ids) is called for the shown records and, where another is newer, that newer
    one. The same tables without reading every record. A record that cannot be read (``load`` warns of
    it, and leaves it out) is left out and the choice made again, as build's caller leaves it out."""
    loaded: dict[str, RunRecord] = {}
    unreadable: set[str] = set()
    while True:
        total, choices = choose(unreadable)
        seen, chosen_ids, newer_ids = _merge_choices(choices, newest)
        wanted = (set(chosen_ids.values()) | set(newer_ids.values())) - set(loaded)
        loaded.update((r.id, r) for r in load(sorted(wanted)))
        if not wanted - set(loaded):
            break
        unreadable |= wanted - set(loaded)
    chosen = {k: loaded[rid] for k, rid in chosen_ids.items()}
    newer = {k: loaded[rid] for k, rid in newer_ids.items()}
    return _assemble(total, chosen, seen, newer, metric, prices, source, selection, newest)


def _merge_choices(choices: Sequence[Any], newest: bool) -> tuple[dict[tuple[str, ...], int], dict[tuple[str, ...], str],
                                                                    dict[tuple[str, ...], str]]:
    """Per _key of the choices (columns that _key's text makes equal, such as a NULL and an empty
    load_key, merged): how many valid records, the id of the one shown (the best supported, or with
    ``newest`` the newest) and of the newest; keys in the order of their oldest record, as build orders
    them."""
    merged: dict[tuple[str, ...], list[Any]] = {}
    for c in choices:
        k = index_key(c)
        best = (c.best_rank, *c.best)
        entry = merged.get(k)
        if entry is None:
            merged[k] = [c.count, c.first, c.newest, best]
        else:
            entry[0] += c.count
            entry[1], entry[2], entry[3] = min(entry[1], c.first), max(entry[2], c.newest), max(entry[3], best)
    order = sorted(merged, key=lambda k: merged[k][1])
    seen = {k: merged[k][0] for k in order}
    newer = {k: merged[k][2][1] for k in order}
    chosen = dict(newer) if newest else {k: merged[k][3][2] for k in order}
    return seen, chosen, newer


def _assemble(total: int, chosen: dict[tuple[str, ...], RunRecord], seen: dict[tuple[str, ...], int],
              newer: dict[tuple[str, ...], RunRecord], metric: Optional[str], prices: Optional[dict[str, Price]],
              source: str, selection: str, newest: bool) -> Leaderboard:
    """The tables of the records ``chosen`` per key (in the order of each key's first record), ``seen``
    records of each key, ``newer`` each key's newest, out of ``total`` records selected."""
    prices = prices or {}
    spec_asked = check_metric(metric) if metric else None
    n_valid = sum(seen.values())
    notes = []
    if n_valid < total:
        notes.append(f"{total - n_valid} record(s) left out: not valid (failed, skipped, or outputs "
                     "differ from the reference)")
    if not n_valid:
        raise ConfigError("", "", "select records of runs that succeeded (status ok, parity ok)",
                          f"the selection {selection or 'all records'} matches {total} record(s), none valid")
    others = n_valid - len(chosen)
    if others and newest:
        notes.append(f"{others} older record(s) not shown (--newest): for each hardware x backend x precision x "
                     "workload x scenario x batch, the newest record is shown")
    elif others:
        notes.append(f"{others} other record(s) not shown: for each hardware x backend x precision x workload x "
                     "scenario x batch, the best-supported record is shown (converged, then intervals over "
                     "repeats, then fewest warnings, then newest); --newest shows the newest instead")
    key_of = {r.id: k for k, r in chosen.items()}
    groups: dict[tuple[str, ...], Group] = {}
    loads: dict[tuple[str, ...], tuple[str, float, float]] = {}  # a continual table's load, to order by
    for k, r in chosen.items():
        gk = k[:5]
        is_continual = k[2] == "continual"
        if gk not in groups:
            scenario = k[2]
            if is_continual:
                default = "max_qps_while_adapting" if continual.load_key(r)[0] == "find_peak" else "time_to_adapt_s"
                spec = spec_asked if spec_asked and spec_asked.name in CONTINUAL_METRICS else METRICS[default]
            else:
                default = DEFAULT_METRIC.get(scenario, "throughput_sps")
                if default not in r.metrics:
                    default = "latency_p99_ms"
                spec = spec_asked or METRICS[default]
            groups[gk] = Group(k[0], k[1], scenario, r.workload.get("batch_size"), spec,
                               load=continual.load_text(r) if is_continual else "")
            loads[gk] = continual.load_key(r) if is_continual else ("", 0.0, 0.0)
        verdict = continual.verdict(r) if is_continual else None
        names = dict.fromkeys((*SHOWN, *(CONTINUAL_METRICS if is_continual else ()), groups[gk].metric.name))
        figures = {name: _continual_figure(r, METRICS[name], verdict) if verdict else _figure(r, METRICS[name])
                   for name in names if name != COST}
        price = prices.get(k[5])
        figures[COST] = _cost(figures["throughput_sps"], price)
        row = Row(r, k[5], k[6], k[7], k[8], figures, price, seen[k], newest=newest,
                  verdict=verdict.short if verdict else "")
        groups[gk].rows.append(row)
        if verdict is not None and not verdict.ranked and groups[gk].metric.name == "time_to_adapt_s":
            groups[gk].notes.append(f"{row.label}: not ranked: {verdict.line}")
    ordered = [groups[k] for k in sorted(groups, key=lambda k: (k[0], k[1], k[2], int(k[3]) if k[3].isdigit() else 0,
                                                                loads[k]))]
    for g in ordered:
        if g.metric.name == COST:
            currencies = sorted({row.price.currency for row in g.rows if row.price})
            if len(currencies) > 1:
                raise ConfigError("metric", COST, "give every price in one currency",
                                  f"cannot rank {g.title}: prices in {', '.join(currencies)}")
        g.rows = rank_rows(g.rows, g.metric)
        g.notes += [unbounded_note(row, g.metric) for row in g.rows if row.unbounded]
        for row in g.rows:
            r, newest_r = row.record, newer[key_of[row.record.id]]
            if newest_r.id != r.id:
                g.notes.append(f"{row.label}: shows {r.id[:8]} ({r.created_at}) rather than the newer "
                               f"{newest_r.id[:8]} ({newest_r.created_at}), which "
                               f"{support.why_not_newest(r, newest_r)}")
    if any(g.scenario == "continual" for g in ordered):
        notes.append("continual: ranked by the time to adapt, drift to swap (lower is better), among records at "
                     "the same load only; \"one run\": one timeline, no interval (repeats=N gives one); a record "
                     "that did not adapt to the drift under that load is listed last, unranked, with the reason")
    if any(not f.has_ci and not f.why for g in ordered for row in g.rows for f in row.figures.values()
           if f.value is not None):
        notes.append("figures marked * carry no interval in their record; they rank by the point estimate alone")
    if not any(row.figures[ENERGY].value is not None for g in ordered for row in g.rows):
        notes.append("no record has an energy figure (no energy sensor): samples/J is not ranked")
    used = sorted({(row.price.hardware, row.price.price_per_hour, row.price.currency, row.price.source)
                   for g in ordered for row in g.rows if row.price})
    for label, per_hour, currency, price_file in used:
        notes.append(f"cost of {label!r} from {per_hour:g} {currency}/h ({price_file})")
    if not prices:
        notes.append(f"no hardware prices: put hardware, price_per_hour, currency in {PRICES_DIR}/*.yaml "
                     "(or prices=FOLDER) for the cost column")
    return Leaderboard(ordered, source, selection, notes)
