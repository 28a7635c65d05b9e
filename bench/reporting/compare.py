"""Compare two result sets, workload by workload: the ratio candidate / baseline of throughput, p50 and
p99 latency, each with a confidence interval, and a verdict a CI job can gate on.

Records match on suite x workload x scenario x batch size x precision, less any of these keys on which
the two selections themselves differ (``precision=fp32`` against ``precision=fp16`` matches across
precisions). Where a side holds several records for one key, the newest is used (and said).

Two methods, and the output names the one each ratio used:

- Between processes (Welch), when both records hold repeats (``raw["repeats"]``, at least 2 fresh
  processes each): each process's own figure (throughput_sps, latency_p50_ms, latency_p99_ms from
  its metrics) is one observation. The log ratio is the difference of the mean log figures, its
  interval Welch's t-interval (unequal variances, degrees of freedom by Welch-Satterthwaite), and the
  ratio is its exponential: the ratio of the geometric means, with an interval that holds the
  variation between runs, the uncertainty a decision needs.
- Within one process (bootstrap), otherwise: seeded, over the raw samples of each record's loop
  (``raw["loop"]``, the first process's for a record with repeats).

  - Throughput: a block bootstrap. The samples of a run are cut into blocks of consecutive
    iterations (block length n^(1/3), at least 1), blocks are drawn with replacement, and throughput
    is the work of the drawn blocks over their time. Blocks keep the short-range correlation of
    consecutive iterations (warm caches, clock boosts, a neighbour's burst) that resampling single
    samples would wrongly treat as independent.
  - Latency percentiles: resampling of single samples. It is computed exactly without materialising
    resamples: a resample of n values from the sample is x_(ceil(n U_i)) for independent uniforms
    U_i, so its r-th order statistic is x_(ceil(n U_(r))), where U_(r) ~ Beta(r, n + 1 - r), and the
    next one is U_(r+1) = U_(r) + (1 - U_(r)) Beta(1, n - r). Drawing those two gives the resample's
    percentile (linear interpolation between order statistics, as bench.measurement.stats) at O(1) cost per
    resample, the same distribution as sorting n resampled values.
  - Baseline and candidate are resampled independently; the interval is the percentile interval of
    the ratio over the resamples (2000 by default).

  This interval holds the noise within one process only, not the variation between runs (another
  process, boot, thermal state), and the output says so.

A difference is significant when the interval excludes 1. ``--fail-on`` fails a comparison whose
candidate is significantly worse beyond a threshold; when a record behind a comparison is unconverged
or noisy (bench.results.support), the comparison is inconclusive, whatever its verdict, and ``check`` says
which record and why (exit code EXIT_INCONCLUSIVE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, TextIO

import numpy as np

from bench.results import support
from bench.errors import ConfigError
from bench.reporting.ratios import (BOOTSTRAP, CONFIDENCE, METRICS, RESAMPLES, WELCH, Ratio, bootstrap_percentile,
                                    bootstrap_throughput, ratios, welch_ratio)
from bench.results.records import RunRecord
from bench.reporting.terminal import Column, Out

__all__ = ["METRICS", "MATCH_KEYS", "Ratio", "Comparison", "CompareResult", "FailRule", "Check", "parse_fail_on",
           "compare", "compare_indexed", "bootstrap_throughput", "bootstrap_percentile", "welch_ratio", "check", "render",
           "speed_line", "EXIT_OK", "EXIT_FAIL", "EXIT_USAGE", "EXIT_INCONCLUSIVE", "BOOTSTRAP", "WELCH"]

# bench compare's exit codes
EXIT_OK = 0  # no --fail-on rule tripped (or none given)
EXIT_FAIL = 1  # the candidate is significantly worse beyond a --fail-on threshold, on clean records
EXIT_USAGE = 2  # bad input: one line `bench: error: ...`
EXIT_INCONCLUSIVE = 3  # with --fail-on: a record behind a comparison is unconverged or noisy
MATCH_KEYS = ("suite", "workload", "scenario", "batch_size", "precision")


@dataclass
class Comparison:
    key: dict[str, object]
    baseline: RunRecord
    candidate: RunRecord
    ratios: dict[str, Ratio]

    @property
    def name(self) -> str:
        k = self.key
        return " ".join(str(k[m]) if m != "batch_size" else f"b={k[m]}" for m in MATCH_KEYS if m in k)

    def doubts(self) -> list[tuple[str, RunRecord, list[str]]]:
        """(side, record, reasons) for each record behind the comparison that is unconverged or noisy."""
        out = []
        for side, record in (("baseline", self.baseline), ("candidate", self.candidate)):
            reasons = support.doubts(record)
            if reasons:
                out.append((side, record, reasons))
        return out

    @property
    def methods(self) -> set[str]:
        return {r.method for r in self.ratios.values()}


@dataclass
class CompareResult:
    comparisons: list[Comparison]
    notes: list[str] = field(default_factory=list)
    match_keys: tuple[str, ...] = MATCH_KEYS
    verdict: Optional["Check"] = None  # what --fail-on concluded, where bench.compare was asked (check())


@dataclass(frozen=True)
class FailRule:
    metric: str
    threshold: float  # a fraction: 0.05 for 5%

    def __str__(self) -> str:
        return f"{METRICS[self.metric][1]}:{self.threshold * 100:g}%"


def parse_fail_on(text: str) -> list[FailRule]:
    """``throughput:5%``, ``latency_p99:10%`` (several joined by commas)."""
    rules = []
    names = {short: name for name, (_, short) in METRICS.items()} | {name: name for name in METRICS}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        metric, _, amount = part.partition(":")
        if metric not in names:
            raise ConfigError("--fail-on", part, f"name one of {', '.join(m[1] for m in METRICS.values())}, "
                              "e.g. --fail-on throughput:5%", "is not a metric")
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", amount)
        if not match:
            raise ConfigError("--fail-on", part, "give a percentage, e.g. --fail-on throughput:5%",
                              "has no threshold")
        rules.append(FailRule(names[metric], float(match.group(1)) / 100.0))
    if not rules:
        raise ConfigError("--fail-on", text, "e.g. --fail-on throughput:5%", "is empty")
    return rules


# ---------------------------------------------------------------- matching


def _value(record: RunRecord, key: str) -> object:
    return {"suite": record.workload.get("suite"), "workload": record.workload.get("name"),
            "scenario": record.scenario.get("name"), "batch_size": record.workload.get("batch_size"),
            "precision": record.backend.get("precision")}[key]


def _newest(records: Sequence[Any], keys: Sequence[str], side: str, notes: list[str],
            value: Any = _value) -> dict[tuple[object, ...], Any]:
    """The newest of each key's records (or index rows, with ``value`` = getattr)."""
    out: dict[tuple[object, ...], Any] = {}
    counts: dict[tuple[object, ...], int] = {}
    for r in records:
        k = tuple(value(r, m) for m in keys)
        counts[k] = counts.get(k, 0) + 1
        if k not in out or (r.created_at, r.id) > (out[k].created_at, out[k].id):
            out[k] = r
    for k, n in counts.items():
        if n > 1:
            notes.append(f"{side}: {n} records for {' '.join(map(str, k))}; the newest ({out[k].id[:8]}, "
                         f"{out[k].created_at}) is used")
    return out


def compare(baseline: Sequence[RunRecord], candidate: Sequence[RunRecord], differing: Sequence[str] = (),
            seed: int = 0, resamples: int = RESAMPLES, confidence: float = CONFIDENCE) -> CompareResult:
    """Match valid records of both sides and estimate every ratio; ``differing`` are selection keys
    on which the two sides differ on purpose (left out of the match)."""
    keys = tuple(k for k in MATCH_KEYS if k not in differing)
    notes: list[str] = []
    base, cand = (_choose(records, keys, side, notes) for side, records in (("baseline", baseline),
                                                                             ("candidate", candidate)))
    return _compare_chosen(base, cand, keys, notes, seed, resamples, confidence)


def _choose(records: Sequence[Any], keys: Sequence[str], side: str, notes: list[str],
            value: Any = _value) -> dict[tuple[object, ...], Any]:
    valid = [r for r in records if r.valid]
    if len(valid) < len(records):
        notes.append(f"{side}: {len(records) - len(valid)} record(s) left out: not valid (failed, skipped, "
                     "or outputs differ from the reference)")
    return _newest(valid, keys, side, notes, value)


def compare_indexed(baseline: Sequence[Any], candidate: Sequence[Any], load: Any, differing: Sequence[str] = (),
                    seed: int = 0, resamples: int = RESAMPLES, confidence: float = CONFIDENCE) -> CompareResult:
    """compare() from each side's index rows (ResultsStore.index): the same record chosen per key by
    the columns, and only those loaded, whole (their raw samples), by ``load(ids)``."""
    keys = tuple(k for k in MATCH_KEYS if k not in differing)
    notes: list[str] = []
    base_rows, cand_rows = (_choose(rows, keys, side, notes, getattr) for side, rows in (("baseline", baseline),
                                                                                          ("candidate", candidate)))
    shared = set(base_rows) & set(cand_rows)
    records = {r.id: r for r in load(sorted({rows[k].id for rows in (base_rows, cand_rows) for k in shared}))}
    base = {k: records.get(row.id, row) for k, row in base_rows.items()}
    cand = {k: records.get(row.id, row) for k, row in cand_rows.items()}
    return _compare_chosen(base, cand, keys, notes, seed, resamples, confidence)


def _compare_chosen(base: dict[tuple[object, ...], Any], cand: dict[tuple[object, ...], Any], keys: Sequence[str],
                    notes: list[str], seed: int, resamples: int, confidence: float) -> CompareResult:
    rng = np.random.default_rng(seed)
    comparisons = []
    for k in sorted(set(base) & set(cand), key=lambda t: tuple(str(v) for v in t)):
        if base[k].id == cand[k].id:
            notes.append(f"{' '.join(map(str, k))}: the same record ({base[k].id[:8]}) is on both sides; skipped")
            continue
        r = ratios(base[k], cand[k], rng, resamples, confidence)
        if r is None:
            notes.append(f"{' '.join(map(str, k))}: no raw samples in a record; skipped")
            continue
        comparisons.append(Comparison(dict(zip(keys, k, strict=True)), base[k], cand[k], r))
    if any(WELCH in c.methods for c in comparisons):
        notes.append("between processes: the baseline and candidate values are the geometric means of the "
                     "processes' own figures, and the ratio theirs")
    within = [c for c in comparisons if BOOTSTRAP in c.methods]
    if within:
        which = ("every comparison's interval" if len(within) == len(comparisons) else
                 f"the interval of {len(within)} comparison(s) ({'; '.join(c.name for c in within)})")
        notes.append(f"within one process: {which} is a bootstrap over one process's samples: it holds "
                     "the noise within that process only, not the run-to-run uncertainty (another process, boot "
                     "or thermal state); record both sides with repeats=N (N >= 2) for an interval between "
                     "processes")
    for comp in within:
        for side, record in (("baseline", comp.baseline), ("candidate", comp.candidate)):
            n = len(support.process_metrics(record))
            if n >= 2:
                notes.append(f"{comp.name}: only the {side} ({record.id[:8]}) holds repeats ({n} processes); "
                             "the bootstrap uses its first process's samples")
    for side, only in (("baseline", set(base) - set(cand)), ("candidate", set(cand) - set(base))):
        for k in sorted(only, key=lambda t: tuple(str(v) for v in t)):
            notes.append(f"only in the {side}: {' '.join(map(str, k))}")
    if not comparisons:
        raise ConfigError("", "", "select result sets that hold the same workloads (match on "
                          f"{' x '.join(keys)})", "no workload can be compared")
    return CompareResult(comparisons, notes, keys)


@dataclass
class Check:
    """What --fail-on found: failures (significantly worse beyond a threshold) and inconclusive
    comparisons (a record behind them unconverged or noisy, so neither a pass nor a failure holds)."""

    failures: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.inconclusive:
            return EXIT_INCONCLUSIVE
        return EXIT_FAIL if self.failures else EXIT_OK


def _doubt_text(side: str, record: RunRecord, reasons: list[str]) -> str:
    return f"{side} record {record.id[:8]} ({_side(record)}): {'; '.join(reasons)}"


def check(result: CompareResult, rules: Sequence[FailRule]) -> Check:
    """Failures: the candidate significantly worse than the baseline by more than a rule's threshold
    (throughput ratio below 1 - t, latency ratio above 1 + t, and the interval excluding 1).
    Inconclusive: every checked comparison whose baseline or candidate record is unconverged or noisy,
    failing or not; a failure on such records is said to be untrustworthy."""
    out = Check()
    if not rules:
        return out
    for comp in result.comparisons:
        failed = False
        for rule in rules:
            r = comp.ratios[rule.metric]
            worse_by = (1.0 - r.ratio) if r.higher_is_better else (r.ratio - 1.0)
            if r.significant and not r.better and worse_by > rule.threshold:
                failed = True
                out.failures.append(f"{comp.name}: {rule.metric} {worse_by:.1%} worse (ratio {r.ratio:.3f}, "
                                    f"95% CI {r.low:.3f} … {r.high:.3f}; {r.method_text}), beyond --fail-on {rule}")
        doubts = comp.doubts()
        if doubts:
            them = "that record" if len(doubts) == 1 else "those records"
            verdict = (f"it fails, but the failure rests on {them} and is not trustworthy" if failed
                       else f"it would pass, but the pass rests on {them} and is not trustworthy")
            out.inconclusive.append(f"{comp.name}: {'; '.join(_doubt_text(*d) for d in doubts)}; {verdict}")
    return out


# ---------------------------------------------------------------- output


def speed_line(comp: Comparison) -> str:
    """hyperfine's relative line, from the throughput ratio."""
    r = comp.ratios["throughput_sps"]
    if r.ratio >= 1.0:
        factor, lo, hi, word = r.ratio, r.low, r.high, "faster"
    else:
        factor, lo, hi, word = 1.0 / r.ratio, 1.0 / r.high, 1.0 / r.low, "slower"
    half = (hi - lo) / 2
    significance = "significant" if r.significant else "not significant"
    return (f"{comp.name}: candidate ran {factor:.2f} ± {half:.2f} times {word} than baseline "
            f"(95% CI {lo:.2f} … {hi:.2f}; {r.method_text}; {significance})")


def _side(record: RunRecord) -> str:
    b = record.backend
    return f"{record.system.get('hardware')} {b.get('name')} {b.get('precision')}"


COMPARE_COLUMNS = [Column("workload"), Column("baseline", fold=True), Column("candidate", fold=True), Column("metric"),
                   Column("baseline value", drop=6), Column("candidate value", drop=6), Column("ratio [95% CI]", fold=True),
                   Column("interval", fold=True, drop=7, optional=True), Column("verdict", fold=True)]


def compare_rows(result: CompareResult) -> list[list[str]]:
    """The comparison table's rows: one per workload x metric, the workload and sides on its first."""
    from bench.fmt import fmt_num

    rows = []
    for comp in result.comparisons:
        for i, (metric, r) in enumerate(comp.ratios.items()):
            first = i == 0
            rows.append([comp.name if first else "", _side(comp.baseline) if first else "",
                         _side(comp.candidate) if first else "", metric, fmt_num(r.baseline), fmt_num(r.candidate),
                         f"{r.ratio:.3f} [{r.low:.3f}, {r.high:.3f}]", r.method_text, r.verdict])
    return rows


def render(result: CompareResult, baseline_desc: str, candidate_desc: str, stream: TextIO,
           width: Optional[int] = None, plain: Optional[bool] = None) -> None:
    """The comparison on a terminal (fitted to ``width``, the terminal's unless given) or, piped, plain."""
    out = Out(stream, width=width, plain=plain)
    out.line(f"baseline:  {baseline_desc}")
    out.line(f"candidate: {candidate_desc}")
    out.table(f"candidate / baseline, 95% intervals (matched on {' x '.join(result.match_keys)})", COMPARE_COLUMNS,
              compare_rows(result), hint="--format markdown shows every column")
    for comp in result.comparisons:
        out.line(speed_line(comp))
    doubtful = [(comp, d) for comp in result.comparisons for d in comp.doubts()]
    if doubtful:
        out.line("records in doubt (unconverged or noisy; their comparisons are not conclusive):")
        for comp, d in doubtful:
            out.line(f"  {comp.name}: {_doubt_text(*d)}")
    for note in result.notes:
        out.line(f"note: {note}")


def check_lines(verdict: Check, rules: Sequence[FailRule]) -> list[str]:
    """What --fail-on concluded, a line each: FAIL ..., INCONCLUSIVE ..., then the conclusion."""
    lines = [f"FAIL {failure}" for failure in verdict.failures]
    lines += [f"INCONCLUSIVE {line}" for line in verdict.inconclusive]
    if verdict.inconclusive:
        lines.append(f"inconclusive: {len(verdict.inconclusive)} comparison(s) rest on unconverged or noisy records; "
                     f"rerun them (exit code {EXIT_INCONCLUSIVE})")
    elif rules and not verdict.failures:
        lines.append(f"ok: no workload is significantly worse beyond {', '.join(map(str, rules))}")
    return lines


COMPARE_JSON_VERSION = 1


def _record_ref(record: RunRecord) -> dict[str, Any]:
    b = record.backend
    return {"id": record.id, "created_at": record.created_at, "hardware": record.system.get("hardware"),
            "backend": b.get("name"), "device": b.get("device"), "precision": b.get("precision")}


def compare_json(result: CompareResult, baseline_desc: str, candidate_desc: str, verdict: Check,
                 rules: Sequence[FailRule]) -> dict[str, Any]:
    """The comparison as one JSON document (COMPARE_JSON_VERSION): per matched workload both records and
    every metric's ratio candidate / baseline with its 95% interval, then what --fail-on concluded."""
    return {
        "version": COMPARE_JSON_VERSION, "baseline": baseline_desc, "candidate": candidate_desc,
        "match_keys": list(result.match_keys), "confidence": CONFIDENCE,
        "comparisons": [{
            "name": comp.name, "key": dict(comp.key), "baseline": _record_ref(comp.baseline),
            "candidate": _record_ref(comp.candidate),
            "ratios": {metric: {"baseline": float(r.baseline), "candidate": float(r.candidate),
                                "ratio": float(r.ratio), "low": float(r.low), "high": float(r.high),
                                "higher_is_better": bool(r.higher_is_better), "method": r.method,
                                "processes": [int(p) for p in r.processes], "significant": bool(r.significant),
                                "better": bool(r.better), "verdict": r.verdict}
                       for metric, r in comp.ratios.items()},
            "summary": speed_line(comp),
            "doubts": [{"side": side, "record_id": record.id, "reasons": reasons}
                       for side, record, reasons in comp.doubts()],
        } for comp in result.comparisons],
        "notes": list(result.notes),
        "check": {"rules": [str(r) for r in rules], "failures": list(verdict.failures),
                  "inconclusive": list(verdict.inconclusive), "exit_code": verdict.exit_code},
    }


def render_json(result: CompareResult, baseline_desc: str, candidate_desc: str, verdict: Check,
                rules: Sequence[FailRule]) -> str:
    import json

    return json.dumps(compare_json(result, baseline_desc, candidate_desc, verdict, rules), indent=1,
                      allow_nan=False) + "\n"


def _md(text: str) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\|*_`[]":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", " ")


def render_markdown(result: CompareResult, baseline_desc: str, candidate_desc: str, verdict: Check,
                    rules: Sequence[FailRule]) -> str:
    """A comment ready to post on a pull request: the conclusion first, then the table and the notes."""
    lines = ["## bench compare", ""]
    conclusion = check_lines(verdict, rules)
    if conclusion:
        lines += [f"**{_md(conclusion[-1])}**", ""] + [f"- {_md(line)}" for line in conclusion[:-1]]
        lines += [""] if len(conclusion) > 1 else []
    lines += [f"- baseline: {_md(baseline_desc)}", f"- candidate: {_md(candidate_desc)}", "",
              f"candidate / baseline, 95% intervals (matched on {_md(' x '.join(result.match_keys))})", "",
              "| " + " | ".join(c.heading for c in COMPARE_COLUMNS) + " |",
              "|" + "---|" * len(COMPARE_COLUMNS)]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in compare_rows(result)]
    lines.append("")
    lines += [f"- {_md(speed_line(comp))}" for comp in result.comparisons]
    doubtful = [(comp, d) for comp in result.comparisons for d in comp.doubts()]
    if doubtful:
        lines += ["", "Records in doubt (unconverged or noisy; their comparisons are not conclusive):", ""]
        lines += [f"- {_md(comp.name)}: {_md(_doubt_text(*d))}" for comp, d in doubtful]
    if result.notes:
        lines += [""] + [f"- note: {_md(note)}" for note in result.notes]
    return "\n".join(lines) + "\n"
