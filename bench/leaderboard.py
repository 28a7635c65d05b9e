"""Rank hardware x backend x precision for each workload, from stored records, with honest ties.

Rules, in the order they apply:

- Only valid records (status ok and outputs matched the reference) are ranked.
- Records are grouped into tables by suite x workload x scenario x batch size. Within a table, one row
  per hardware x backend (and device) x precision: the newest record (created_at, then id); older ones
  are counted and said to be superseded.
- Each row shows throughput, p99 latency, samples per joule and cost per million samples, each with
  its 95% interval as the record holds it (cost's interval follows from the throughput interval).
- Ranking: rows are sorted by the point estimate of the ranking metric, best first. A row *ties with
  the previous row* when their intervals overlap (a missing bound counts as unbounded), and then gets
  the previous row's rank; otherwise its rank is its position (1-based, so ranks skip after a tie,
  as in sports: 1, =2, =2, 4). Tied rows are marked. Rows without the ranking figure (no energy
  sensor, no price) are listed after the ranked rows, without a rank, never as 0.
- The ranking metric is ``metric=`` when given; otherwise throughput_sps for the throughput scenario
  and latency_p99_ms for the latency scenario.

Prices come from YAML files (``conf/hardware/*.yaml`` by default): ``hardware`` (the label exactly as
in the records), ``price_per_hour`` and ``currency``. cost = price_per_hour / (throughput_sps x 3600)
x 1e6, per million samples.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, TextIO

from bench.config import CONF_DIR
from bench.errors import ConfigError
from bench.records import RunRecord

__all__ = ["METRICS", "MetricSpec", "Figure", "Row", "Group", "Leaderboard", "Price", "load_prices",
           "build", "overlaps", "render_terminal", "render_markdown", "render_csv", "PRICES_DIR"]

PRICES_DIR = CONF_DIR / "hardware"
COST = "cost_per_million_samples"
ENERGY = "samples_per_j"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    label: str  # a column heading
    unit: str
    higher_is_better: bool
    ci_keys: tuple[tuple[str, str], ...] = ()  # candidate (low, high) keys in record.metrics

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
}
SHOWN = ("throughput_sps", "latency_p99_ms", ENERGY, COST)  # the columns of every table
# server and multistream rank by their search's answer where the records have one (else by p99).
DEFAULT_METRIC = {"throughput": "throughput_sps", "latency": "latency_p99_ms", "training": "throughput_sps",
                  "server": "max_qps_at_slo", "multistream": "max_streams_at_slo"}


def check_metric(name: str) -> MetricSpec:
    if name not in METRICS:
        raise ConfigError("metric", name, f"use one of {', '.join(METRICS)}", "is not a metric")
    return METRICS[name]


@dataclass(frozen=True)
class Price:
    hardware: str
    price_per_hour: float
    currency: str
    source: str


def load_prices(where: Optional[Path] = None) -> dict[str, Price]:
    """Hourly prices by hardware label from a folder of YAML files (or one file)."""
    import yaml

    where = PRICES_DIR if where is None else Path(where)
    if where.is_file():
        files = [where]
    elif where.is_dir():
        files = sorted(where.glob("*.yaml")) + sorted(where.glob("*.yml"))
    elif where == PRICES_DIR:
        return {}
    else:
        raise ConfigError("prices", str(where), "give a folder of price files or one YAML file", "does not exist")
    prices: dict[str, Price] = {}
    fix = "write hardware: \"<label as in the records>\", price_per_hour: 1.23, currency: USD"
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError("", "", fix, f"{path} is not readable YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict) or not isinstance(data.get("hardware"), str) or not data["hardware"]:
            raise ConfigError("", "", fix, f"{path} names no hardware label")
        price = data.get("price_per_hour")
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not price > 0 or math.isinf(price):
            raise ConfigError("", "", fix, f"{path}: price_per_hour={price!r} is not a positive number")
        currency = data.get("currency")
        if not isinstance(currency, str) or not currency.strip():
            raise ConfigError("", "", fix, f"{path} names no currency")
        label = data["hardware"]
        if label in prices:
            raise ConfigError("", "", "keep one price per hardware label",
                              f"{path} prices {label!r} again (first in {prices[label].source})")
        prices[label] = Price(label, float(price), currency.strip(), str(path))
    return prices


@dataclass
class Figure:
    value: Optional[float] = None
    low: Optional[float] = None  # None: unbounded (or not known)
    high: Optional[float] = None
    note: str = ""  # why there is no value ("no energy sensor", "no price")
    has_ci: bool = True


def overlaps(a: Figure, b: Figure) -> bool:
    """Whether two intervals overlap; a missing bound is unbounded on its side."""
    a_lo = -math.inf if a.low is None else a.low
    a_hi = math.inf if a.high is None else a.high
    b_lo = -math.inf if b.low is None else b.low
    b_hi = math.inf if b.high is None else b.high
    return a_lo <= b_hi and b_lo <= a_hi


def _num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _figure(record: RunRecord, spec: MetricSpec) -> Figure:
    m = record.metrics
    value = _num(m.get(spec.name))
    if value is None:
        return Figure(note="no energy sensor" if spec.name == ENERGY else "not measured")
    for low_key, high_key in spec.ci_keys:
        if low_key in m or high_key in m:
            return Figure(value, _num(m.get(low_key)), _num(m.get(high_key)))
    return Figure(value, value, value, has_ci=False)


def _cost(throughput: Figure, price: Optional[Price]) -> Figure:
    if price is None:
        return Figure(note="no price")
    if not throughput.value:
        return Figure(note="no throughput")

    def per_million(tp: Optional[float]) -> Optional[float]:
        return None if tp is None or tp <= 0 else price.price_per_hour / (tp * 3600.0) * 1e6

    # Cost falls as throughput rises: the ends swap. An unbounded throughput end gives cost 0.
    high = per_million(throughput.low)
    low = per_million(throughput.high) if throughput.high is not None else 0.0
    return Figure(per_million(throughput.value), low, high, has_ci=throughput.has_ci)


@dataclass
class Row:
    record: RunRecord
    hardware: str
    backend: str
    device: str
    precision: str
    figures: dict[str, Figure]
    price: Optional[Price] = None
    seen: int = 1  # records of this row's key; the newest is shown
    rank: Optional[int] = None
    tie: bool = False

    @property
    def rank_text(self) -> str:
        if self.rank is None:
            return "-"
        return f"={self.rank}" if self.tie else str(self.rank)

    @property
    def backend_text(self) -> str:
        return self.backend if self.device in ("", self.backend) else f"{self.backend} ({self.device})"


@dataclass
class Group:
    suite: str
    workload: str
    scenario: str
    batch_size: Optional[int]
    metric: MetricSpec
    rows: list[Row] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.suite} / {self.workload} / {self.scenario} / batch {self.batch_size}"


@dataclass
class Leaderboard:
    groups: list[Group]
    source: str  # where the records came from (URL masked)
    selection: str
    notes: list[str] = field(default_factory=list)


def _key(r: RunRecord) -> tuple[str, ...]:
    w, b = r.workload, r.backend
    return (str(w.get("suite")), str(w.get("name")), str(r.scenario.get("name")), str(w.get("batch_size")),
            str(r.system.get("hardware")), str(b.get("name")), str(b.get("device")), str(b.get("precision")))


def rank_rows(rows: list[Row], spec: MetricSpec) -> list[Row]:
    """Ranked rows first (best first, ties sharing a rank), then rows without the figure."""
    ranked = [r for r in rows if r.figures[spec.name].value is not None]
    rest = [r for r in rows if r.figures[spec.name].value is None]
    sign = -1.0 if spec.higher_is_better else 1.0
    ranked.sort(key=lambda r: (sign * r.figures[spec.name].value, r.hardware, r.backend, r.precision))  # type: ignore[operator]
    for i, row in enumerate(ranked):
        row.rank, row.tie = i + 1, False
        if i and overlaps(row.figures[spec.name], ranked[i - 1].figures[spec.name]):
            prev = ranked[i - 1]
            row.rank, row.tie, prev.tie = prev.rank, True, True
    rest.sort(key=lambda r: (r.hardware, r.backend, r.precision))
    for row in rest:
        row.rank, row.tie = None, False
    return ranked + rest


def build(records: Sequence[RunRecord], metric: Optional[str] = None, prices: Optional[dict[str, Price]] = None,
          source: str = "", selection: str = "") -> Leaderboard:
    prices = prices or {}
    spec_asked = check_metric(metric) if metric else None
    valid = [r for r in records if r.valid]
    notes = []
    if len(valid) < len(records):
        notes.append(f"{len(records) - len(valid)} record(s) left out: not valid (failed, skipped, or outputs "
                     "differ from the reference)")
    if not valid:
        raise ConfigError("", "", "select records of runs that succeeded (status ok, parity ok)",
                          f"the selection {selection or 'all records'} matches {len(records)} record(s), none valid")
    newest: dict[tuple[str, ...], RunRecord] = {}
    seen: dict[tuple[str, ...], int] = {}
    for r in valid:
        k = _key(r)
        seen[k] = seen.get(k, 0) + 1
        if k not in newest or (r.created_at, r.id) > (newest[k].created_at, newest[k].id):
            newest[k] = r
    superseded = len(valid) - len(newest)
    if superseded:
        notes.append(f"{superseded} older record(s) superseded: for each hardware x backend x precision x workload "
                     "x scenario x batch, the newest record is used")
    groups: dict[tuple[str, ...], Group] = {}
    for k, r in newest.items():
        gk = k[:4]
        if gk not in groups:
            scenario = k[2]
            default = DEFAULT_METRIC.get(scenario, "throughput_sps")
            if default not in r.metrics:
                default = "latency_p99_ms"
            spec = spec_asked or METRICS[default]
            groups[gk] = Group(k[0], k[1], scenario, r.workload.get("batch_size"), spec)
        names = dict.fromkeys((*SHOWN, groups[gk].metric.name))
        figures = {name: _figure(r, METRICS[name]) for name in names if name != COST}
        price = prices.get(k[4])
        figures[COST] = _cost(figures["throughput_sps"], price)
        groups[gk].rows.append(Row(r, k[4], k[5], k[6], k[7], figures, price, seen[k]))
    ordered = [groups[k] for k in sorted(groups, key=lambda k: (k[0], k[1], k[2], int(k[3]) if k[3].isdigit() else 0))]
    for g in ordered:
        if g.metric.name == COST:
            currencies = sorted({row.price.currency for row in g.rows if row.price})
            if len(currencies) > 1:
                raise ConfigError("metric", COST, "give every price in one currency",
                                  f"cannot rank {g.title}: prices in {', '.join(currencies)}")
        g.rows = rank_rows(g.rows, g.metric)
    if any(not f.has_ci for g in ordered for row in g.rows for f in row.figures.values() if f.value is not None):
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


# ---------------------------------------------------------------- rendering


def fmt_figure(f: Figure, digits: int = 4) -> str:
    from bench.fmt import fmt_ci, fmt_num

    if f.value is None:
        return f.note or "-"
    star = "" if f.has_ci else " *"
    if not f.has_ci:
        return f"{fmt_num(f.value, digits)}{star}"
    return f"{fmt_num(f.value, digits)} {fmt_ci(f.low, f.high, digits)}"


def cell(row: Row, name: str) -> str:
    text = fmt_figure(row.figures[name])
    if name == COST and row.price is not None and row.figures[name].value is not None:
        text = f"{text} {row.price.currency}"
    return text


HEADINGS = {"throughput_sps": "samples/s [95% CI]", "latency_p99_ms": "p99 ms [95% CI]",
            ENERGY: "samples/J [95% CI]", COST: "cost per 1M samples [95% CI]"}
LEGEND = ("rank =N: tied, the 95% intervals of this row and the row next to it overlap; "
          "rows without the ranked figure are listed unranked")


def shown(group: Group) -> tuple[str, ...]:
    """The figures of a group's table: the usual ones, and the ranked-by metric if it is another."""
    return SHOWN if group.metric.name in SHOWN else (group.metric.name, *SHOWN)


def _row_cells(row: Row, names: tuple[str, ...] = SHOWN) -> list[str]:
    return [row.rank_text, row.hardware, row.backend_text, row.precision, *(cell(row, n) for n in names),
            f"{row.record.id[:8]} {row.record.created_at[:10]}" + (f" (newest of {row.seen})" if row.seen > 1 else "")]


def columns(group: Group) -> list[str]:
    return ["rank", "hardware", "backend", "precision",
            *(HEADINGS.get(n, f"{METRICS[n].label} [95% CI]") for n in shown(group)), "record"]


COLUMNS = ["rank", "hardware", "backend", "precision", *(HEADINGS[n] for n in SHOWN), "record"]


def render_terminal(board: Leaderboard, stream: TextIO) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from bench.progress import use_plain_output

    plain = use_plain_output(stream)
    console = Console(file=stream, no_color=plain, highlight=False, soft_wrap=False, width=240 if plain else None)
    console.print(Text(f"bench leaderboard: {board.selection or 'all records'} from {board.source}"))
    for g in board.groups:
        table = Table(box=box.SIMPLE_HEAD, title_justify="left",
                      title=Text(f"{g.title}: ranked by {g.metric.name} ({g.metric.direction()})"))
        for name in columns(g):
            table.add_column(name, justify="right" if name == "rank" else "left")
        for row in g.rows:
            table.add_row(*(Text(c) for c in _row_cells(row, shown(g))))
        console.print(table)
    console.print(Text(LEGEND))
    for note in board.notes:
        console.print(Text(f"note: {note}"))


def _md(text: str) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\|*_`[]":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", " ")


def render_markdown(board: Leaderboard) -> str:
    lines = ["# bench leaderboard", "", f"{_md(board.selection or 'all records')} from `{board.source}`", ""]
    for g in board.groups:
        lines += [f"## {_md(g.title)}", "", f"Ranked by `{g.metric.name}` ({g.metric.direction()}).", "",
                  "| " + " | ".join(_md(c) for c in columns(g)) + " |",
                  "| " + " | ".join("---:" if c == "rank" else "---" for c in columns(g)) + " |"]
        for row in g.rows:
            lines.append("| " + " | ".join(_md(c) for c in _row_cells(row, shown(g))) + " |")
        lines.append("")
    lines.append(_md(LEGEND))
    lines += [""] + [f"- {_md(n)}" for n in board.notes]
    return "\n".join(lines) + "\n"


CSV_FIELDS = ["suite", "workload", "scenario", "batch_size", "ranked_by", "rank", "tie", "hardware", "backend",
              "device", "precision"]


def render_csv(board: Leaderboard) -> str:
    out = io.StringIO()
    fields = list(CSV_FIELDS)
    every = tuple(dict.fromkeys(n for g in board.groups for n in shown(g)))
    for name in every:
        fields += [name, f"{name}_ci_low", f"{name}_ci_high", f"{name}_note"]
    fields += ["currency", "price_per_hour", "record_id", "created_at", "records_seen"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for g in board.groups:
        for row in g.rows:
            data: dict[str, Any] = {
                "suite": g.suite, "workload": g.workload, "scenario": g.scenario, "batch_size": g.batch_size,
                "ranked_by": g.metric.name, "rank": row.rank if row.rank is not None else "", "tie": row.tie,
                "hardware": row.hardware, "backend": row.backend, "device": row.device, "precision": row.precision,
                "currency": row.price.currency if row.price else "",
                "price_per_hour": row.price.price_per_hour if row.price else "",
                "record_id": row.record.id, "created_at": row.record.created_at, "records_seen": row.seen,
            }
            for name in shown(g):
                f = row.figures[name]
                data[name] = "" if f.value is None else repr(f.value)
                data[f"{name}_ci_low"] = "" if f.value is None or f.low is None or not f.has_ci else repr(f.low)
                data[f"{name}_ci_high"] = "" if f.value is None or f.high is None or not f.has_ci else repr(f.high)
                data[f"{name}_note"] = f.note
            writer.writerow(data)
    return out.getvalue()
