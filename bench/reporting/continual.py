"""scenario=continual's report: what one timeline of serving under drift, with an adaptation in the
middle, says at a glance. Used by the end-of-run summary, `bench report continual` and the HTML page.

A record's block, in order: the phases (steady, drifted, adapting, adapted: span, requests, p50 and
p99 with their 95% intervals, late, dropped, the model versions that served them, p99 as a ratio to
steady's with its conservative interval); the time to adapt, drift to swap, split into the detection
delay and each stage of the adaptation (bench.results.metrics.ADAPT_STAGES) with its share; training
throughput beside serving against alone; energy per adaptation where a sensor measured it; peak
memory of the server and the trainer; and the verdict, "serves within budget (p99 <= X ms) while
adapting: yes/no", or, where that question has no answer, why: the drift was not detected, the
adaptation failed, or it finished only after serving ended. A detection before the drift (a false
alarm) is said beside the answer.

The figures are the record's flat metrics (pooled over processes where the record has repeats); the
model versions per phase and the timeline plot come from the stored timeline (``raw.continual``, the
first process's in a pooled record). The plot (matplotlib, the ``plots`` extra) is imported only when
asked for.

Each part is built once as cells and lines (``phase_rows``, ``stage_rows``, ``facts``, ``verdict``)
and laid out by each format: the terminal (rich), Markdown and the HTML page (bench.reporting.html).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, TextIO

from bench.fmt import fmt_num
from bench.measurement.continual import PHASES, phase_bounds
from bench.measurement.stats import min_samples_to_bound
from bench.results import support
from bench.results.metrics import ADAPT_STAGES, continual_run
from bench.results.records import RunRecord
from bench.results.support import load_key
from bench.reporting.terminal import Column, Out

__all__ = ["STAGE_LABELS", "PHASE_HEADER", "STAGE_HEADER", "Verdict", "TimelineMarks", "is_continual",
           "load_key", "load_text", "title", "timeline_marks", "phase_versions", "phase_rows", "stage_rows",
           "facts", "verdict", "print_block", "render_terminal", "render_markdown", "plot", "plot_paths",
           "timeline_svg"]

# What each stage of ADAPT_STAGES covers, in the words of bench.worker.continual's docstring.
STAGE_LABELS = {
    "samples_written_s": "hand-off (samples written for the trainer)",
    "train_s": "training",
    "save_s": "save",
    "reference_s": "reference outputs (PyTorch fp32)",
    "convert_s": "conversion to the serving backend",
    "trainer_overhead_s": "trainer's reply (request read, reply written)",
    "load_s": "load (adapted model prepared, inputs loaded)",
    "parity_s": "parity check",
    "swap_s": "swap",
}
PHASE_HEADER = ("phase", "span s", "requests", "p50 ms [95% CI]", "p99 ms [95% CI]", "late", "dropped", "model",
                "p99 / steady [95% CI]")
STAGE_HEADER = ("part of the time to adapt", "s", "share")
# A gap between the stages' sum and detection-to-swap smaller than this is timer resolution, not shown.
_GAP_S = 1e-3


def is_continual(record: RunRecord) -> bool:
    return record.scenario.get("name") == "continual"


def _pname(q: float) -> str:
    return f"p{q * 100:g}"


def _g(value: Any) -> str:
    """A configured number as written (20, 0.5), not measured digits."""
    return f"{float(value):g}" if isinstance(value, (int, float)) else "-"


def _s(value: Optional[float]) -> str:
    return "-" if value is None else f"{fmt_num(value)} s"


# ---------------------------------------------------------------- the record's facts


def _run(record: RunRecord) -> Optional[dict[str, Any]]:
    """The reported timeline's run (raw.continual), or None where the record holds none."""
    raw = (record.raw or {}).get("continual")
    if not isinstance(raw, dict) or not raw.get("runs"):
        return None
    return continual_run(raw)


@dataclass(frozen=True)
class TimelineMarks:
    """The timeline's events in seconds from its start; None where it did not happen."""

    duration_s: Optional[float]
    drift_s: Optional[float]
    detected_s: Optional[float]
    swapped_s: Optional[float]
    failed_s: Optional[float]  # the adaptation's failure (parity failed, or an error)
    served_until_s: Optional[float]


def timeline_marks(record: RunRecord) -> TimelineMarks:
    """From the stored timeline, else from the metrics (a record stripped of its raw samples)."""
    m = record.metrics
    run = _run(record)
    if run is not None:
        marks = run["timeline"].get("marks_ns") or {}
        get = lambda name: None if marks.get(name) is None else marks[name] / 1e9  # noqa: E731
        failed = get("parity_failed") if get("parity_failed") is not None else get("adaptation_failed")
        until = run.get("served_until_ns")
        return TimelineMarks(int(run["duration_ns"]) / 1e9, get("drift"), get("detected"), get("swapped"), failed,
                             None if until is None else until / 1e9)
    drift = m.get("drifted_start_s", m.get("steady_end_s"))
    delay, tta = m.get("detection_delay_s"), m.get("time_to_adapt_s")
    duration = record.scenario.get("duration_s")
    return TimelineMarks(None if duration is None else float(duration), drift,
                         None if drift is None or delay is None else drift + delay,
                         None if drift is None or tta is None else drift + tta, None, None)


def load_text(record: RunRecord) -> str:
    kind, a, b = load_key(record)
    if kind == "find_peak":
        return "peak search (scenario.find_peak)"
    if kind == "streams":
        return f"{a:g} streams x {b:g} fps"
    return f"{a:g} requests/s (Poisson)"


def title(record: RunRecord) -> str:
    w, b = record.workload, record.backend
    device = "" if b.get("device") in (None, b.get("name")) else f" {b.get('device')}"
    return (f"{w.get('name')} | {b.get('name')}{device} {b.get('precision')} | {record.system.get('hardware')} | "
            f"{load_text(record)}")


def phase_versions(record: RunRecord) -> dict[str, list[int]]:
    """The model versions that served each phase's requests (dropped ones left out)."""
    run = _run(record)
    if run is None:
        return {}
    timeline = run["timeline"]
    arrivals, versions = timeline["serve"]["arrivals_ns"], timeline["versions"]
    out = {}
    for name, (lo, hi) in phase_bounds(timeline.get("marks_ns") or {}, int(run["duration_ns"])).items():
        out[name] = sorted({int(v) for a, v in zip(arrivals, versions) if lo <= a < hi and v >= 0})
    return out


# ---------------------------------------------------------------- cells


def _bounds_text(low: Optional[float], high: Optional[float]) -> tuple[str, str]:
    return (fmt_num(low) if low is not None else "no lower bound", fmt_num(high) if high is not None else "no upper bound")


def _percentile_cell(m: dict[str, Any], phase: str, p: str) -> str:
    value = m.get(f"{phase}_latency_{p}_ms")
    if value is None:
        return "-"
    low, high = m.get(f"{phase}_latency_{p}_ci_low_ms"), m.get(f"{phase}_latency_{p}_ci_high_ms")
    lo, hi = _bounds_text(low, high)
    if low is not None and high is not None:
        return f"{fmt_num(value)} [{lo}, {hi}]"
    need = min_samples_to_bound(int(p[1:]) / 100)
    return f"{fmt_num(value)} [{lo}, {hi}: {m.get(f'{phase}_queries')} requests, {need} bound it]"


def _ratio_cell(m: dict[str, Any], phase: str) -> str:
    """p99 in ``phase`` over steady's, with the interval continual_metrics derives (the phase's low over
    steady's high, its high over steady's low); a missing end says which p99 is unbounded."""
    if phase == "steady":
        return "1 (reference)"
    ratio = m.get(f"{phase}_degradation_p99")
    if ratio is None:
        return "-"
    low, high = m.get(f"{phase}_degradation_p99_ci_low"), m.get(f"{phase}_degradation_p99_ci_high")
    if low is not None and high is not None:
        return f"{fmt_num(ratio)} [{fmt_num(low)}, {fmt_num(high)}]"
    # The p99 column says how many requests each phase has and how many would bound it.
    open_ = [name for name in ("steady", phase)
             if m.get(f"{name}_latency_p99_ci_low_ms") is None or m.get(f"{name}_latency_p99_ci_high_ms") is None]
    why = f"{' and '.join(open_)} p99 unbounded" if open_ else "unbounded"
    if low is None and high is None:
        return f"{fmt_num(ratio)} [no interval: {why}]"
    lo, hi = _bounds_text(low, high)
    return f"{fmt_num(ratio)} [{lo}, {hi}: {why}]"


def phase_rows(record: RunRecord) -> list[list[str]]:
    """One row per phase that happened, PHASE_HEADER's columns."""
    m = record.metrics
    versions = phase_versions(record)
    rows = []
    for name in PHASES:
        if f"{name}_queries" not in m:
            continue
        served = versions.get(name)
        model = "-" if served is None else (", ".join(f"v{v}" for v in served) or "none served")
        rows.append([name, f"{fmt_num(m.get(f'{name}_start_s'))}-{fmt_num(m.get(f'{name}_end_s'))}",
                     str(m.get(f"{name}_queries")), _percentile_cell(m, name, "p50"), _percentile_cell(m, name, "p99"),
                     str(m.get(f"{name}_late_queries", "-")), str(m.get(f"{name}_dropped_queries", "-")), model,
                     _ratio_cell(m, name)])
    return rows


def _interval_note(record: RunRecord, stem: str, unit: str = "_s") -> str:
    """" [13.2, 15.9] (95% prediction interval over 5 processes)", or " (one run)"."""
    m = record.metrics
    low, high = m.get(f"{stem}_ci_low{unit}"), m.get(f"{stem}_ci_high{unit}")
    n = support.repeats(record)
    if low is not None and high is not None:
        return f" [{fmt_num(low)}, {fmt_num(high)}] (95% prediction interval over {n} processes)"
    return " (one run)" if n <= 1 else f" (mean of {n} processes, no interval)"


def stage_rows(record: RunRecord) -> list[list[str]]:
    """The detection delay, each stage of the adaptation that ran, the adaptation (detection to swap)
    and the time to adapt (drift to swap), each with its share of the time to adapt. Empty where
    nothing was detected."""
    m = record.metrics
    delay = m.get("detection_delay_s")
    if delay is None:
        return []
    total = m.get("time_to_adapt_s")
    # After a false alarm (detection before the drift) drift-to-swap is not the sum of its parts: no shares.
    shares = bool(total) and delay >= 0
    share = lambda s: "-" if not shares or s is None else f"{100.0 * s / total:.1f}%"  # noqa: E731
    rows = [["detection delay (drift to detection)" if delay >= 0 else
             "detection before the drift (a false alarm)", fmt_num(delay), share(delay)]]
    stages = [(key, m.get(f"adapt_{key}")) for key in ADAPT_STAGES]
    for key, seconds in stages:
        if seconds is not None:
            rows.append([f"  {STAGE_LABELS[key]}", fmt_num(seconds), share(seconds)])
    adapt = m.get("adapt_total_s")
    if adapt is not None:
        gap = adapt - sum(s for _, s in stages if s is not None)
        if abs(gap) >= _GAP_S:
            rows.append(["  between the stages (not in a timer)", fmt_num(gap), share(gap)])
        rows.append(["adaptation (detection to swap)", fmt_num(adapt), share(adapt)])
    if total is not None:
        rows.append(["time to adapt (drift to swap)", fmt_num(total) + _interval_note(record, "time_to_adapt"),
                     "100%" if shares else "-"])
    return rows


def _energy_reason(record: RunRecord) -> str:
    reason = str((record.energy or {}).get("reason") or "no power sensor")
    return reason.split(" (")[0].split(": ")[0]


def facts(record: RunRecord) -> list[str]:
    """The lines beside the tables: the events, training throughput, energy, memory, the search and notes."""
    m = record.metrics
    t = timeline_marks(record)
    lines = []
    events = [f"drift at {_s(t.drift_s)}"]
    if t.detected_s is not None:
        detail = f"{m['detector_checks']} checks" if m.get("detector_checks") is not None else ""
        if m.get("detection_p_value") is not None:
            detail += f"{', ' if detail else ''}p = {m['detection_p_value']:.2g}"
        events.append(f"detected at {_s(t.detected_s)}" + (f" ({detail})" if detail else ""))
    else:
        events.append("not detected")
    if t.swapped_s is not None:
        events.append(f"adapted model swapped in at {_s(t.swapped_s)}")
    elif t.failed_s is not None:
        events.append(f"adaptation failed at {_s(t.failed_s)}")
    served = f"; {_s(t.duration_s)} of arrivals" if t.duration_s is not None else ""
    lines.append("timeline: " + ", ".join(events) + served)
    colocated, alone = m.get("train_sps_colocated"), m.get("train_sps_alone")
    if colocated is not None:
        text = f"training: {fmt_num(colocated)} samples/s beside serving"
        if alone is not None:
            text += f", {fmt_num(alone)} alone"
            if m.get("train_slowdown") is not None:
                text += f": {fmt_num(m['train_slowdown'], 3)} times slower beside serving"
        if m.get("train_sps_reference") is not None:
            text += (f"; the scenario=training record {str(m.get('train_reference_record'))[:8]}: "
                     f"{fmt_num(m['train_sps_reference'])} samples/s")
        if m.get("colocated") is not None:
            text += " (trainer and server share the device)" if m["colocated"] else " (trainer and server apart)"
        lines.append(text)
    elif m.get("adapted") is False and m.get("detection_delay_s") is not None:
        lines.append("training: no throughput (the adaptation did not complete its training)")
    if m.get("energy_per_adaptation_j") is not None:
        text = f"energy per adaptation: {fmt_num(m['energy_per_adaptation_j'])} J (detection to swap, serving included)"
        if m.get("energy_per_adaptation_extra_j") is not None:
            text += f"; {fmt_num(m['energy_per_adaptation_extra_j'])} J beyond steady serving's power"
        lines.append(text)
    elif m.get("adapted"):
        lines.append(f"energy per adaptation: not measured ({_energy_reason(record)})")
    memory = []
    if m.get("peak_rss_mib") is not None:
        memory.append(f"server {fmt_num(m['peak_rss_mib'])} MiB")
    if m.get("peak_device_mib") is not None:
        memory.append(f"server's device {fmt_num(m['peak_device_mib'])} MiB")
    if m.get("trainer_peak_rss_mib") is not None:
        memory.append(f"trainer {fmt_num(m['trainer_peak_rss_mib'])} MiB")
    if m.get("trainer_peak_device_mib") is not None:
        memory.append(f"trainer's device {fmt_num(m['trainer_peak_device_mib'])} MiB")
    if memory:
        lines.append("peak memory (resident): " + ", ".join(memory))
    raw = (record.raw or {}).get("continual") or {}
    if raw.get("search") is not None or "max_qps_while_adapting" in m:
        best = m.get("max_qps_while_adapting")
        if best is not None:
            lines.append(f"max rate within budget while adapting (scenario.find_peak): {fmt_num(best)} requests/s"
                         f"{_interval_note(record, 'max_qps_while_adapting', '')}; the timeline shown is that probe's")
        else:
            lines.append(f"max rate within budget while adapting (scenario.find_peak): none of the probes met it; "
                         f"the timeline shown is the last probe's ({fmt_num(m.get('rate_qps'))} requests/s)")
    run = _run(record)
    parity = ((run or {}).get("adaptation") or {}).get("parity") or {}
    if m.get("adapted") and parity and not parity.get("ok", True):
        lines.append(f"note: the adapted model was swapped in although its parity check failed (scenario.require_parity="
                     f"false; max relative error {parity.get('max_rel_error')})")
    if support.repeats(record) > 1:
        lines.append(f"note: figures pooled over {support.repeats(record)} processes; the model versions and the "
                     "timeline are the first process's")
    if not record.valid:
        lines.append("note: INVALID record: the served model's outputs differ from the reference")
    return lines


# ---------------------------------------------------------------- the verdict


@dataclass(frozen=True)
class Verdict:
    """kind: yes, no (the answer), or why there is none: no_detection, failed, after_serving,
    no_requests (none arrived while adapting); or false_alarm (the answer, for an adaptation the drift
    did not cause). ``short`` is a table cell."""

    kind: str
    short: str
    line: str

    @property
    def ranked(self) -> bool:
        """Whether the record's time to adapt is a time to adapt to the drift, under its load."""
        return self.kind in ("yes", "no", "no_requests")


def verdict(record: RunRecord) -> Verdict:
    m = record.metrics
    q = float(m.get("percentile") or 0.99)
    head = f"serves within budget ({_pname(q)} <= {_g(m.get('slo_ms'))} ms) while adapting: "
    t = timeline_marks(record)
    if m.get("detection_delay_s") is None and t.detected_s is None:
        return Verdict("no_detection", "not tested: drift not detected",
                       head + f"not tested: the drift at {_s(t.drift_s)} was not detected before serving ended "
                       f"({_s(t.duration_s)} of arrivals), so no adaptation started")
    if not m.get("adapted"):
        error = m.get("adaptation_error") or "it ended without a swap and without an error"
        when = "" if t.failed_s is None or t.detected_s is None else f" {_s(t.failed_s - t.detected_s)} after detection"
        return Verdict("failed", "not tested: adaptation failed",
                       head + f"not tested: the adaptation failed{when}: {error}; v0 served to the end")
    if m.get("adapted_within_run") is False:
        end = t.served_until_s if t.served_until_s is not None else t.duration_s
        return Verdict("after_serving", "not tested: adapted after serving ended",
                       head + f"not tested: the adaptation finished only after serving ended (swap at "
                       f"{_s(t.swapped_s)}, serving ended at {_s(end)})")
    ok = m.get("serves_within_budget_while_adapting")
    n, late, dropped = m.get("adapting_queries"), m.get("adapting_late_queries"), m.get("adapting_dropped_queries")
    if not n:
        return Verdict("no_requests", "not tested: no request while adapting",
                       head + f"not tested: no request arrived during the adaptation ({_s(m.get('adapt_total_s'))} "
                       "from detection to swap); raise the rate to judge it")
    answer = "yes" if ok else "no"
    if n:
        from bench.measurement.load.dispatch import allowed_late

        allowed = allowed_late(int(n), q)
        drops = f", {dropped} of them dropped" if dropped else ""
        limit = (f"none allowed: a {_pname(q)} of fewer than {math.ceil(1 / (1 - q))} requests allows none"
                 if allowed == 0 else f"at most {allowed} allowed")
        detail = f" ({late} of {n} requests late{drops}; {limit})"
    else:
        detail = " (no request arrived while adapting)"
    if m.get("serves_within_budget_steady") is False:
        detail += (f"; steady serving was out of budget too ({m.get('steady_late_queries')} of "
                   f"{m.get('steady_queries')} late)")
    if m.get("false_alarm"):
        return Verdict("false_alarm", f"{answer} (false alarm)",
                       head + answer + detail + f"; but the detector fired at {_s(t.detected_s)}, before the drift at "
                       f"{_s(t.drift_s)} (a false alarm)")
    return Verdict(answer, answer, head + answer + detail)


# ---------------------------------------------------------------- terminal and Markdown


def print_block(out: Out, record: RunRecord, heading: str = "", indent: int = 0) -> None:
    """The block on an Out (bench.reporting.terminal): title, phase table, time to adapt, facts, verdict;
    ``indent`` spaces before the facts (the summary puts the block under its own table)."""
    out.line(f"{heading}{title(record)}")
    out.table("phases", [Column(name, justify="right" if name in ("requests", "late", "dropped") else "left",
                                fold=i > 0) for i, name in enumerate(PHASE_HEADER)],
              phase_rows(record), hint="--format markdown shows every column")
    stages = stage_rows(record)
    if stages:
        out.table("stages", [Column(name, justify="left" if i == 0 else "right", fold=i > 0)
                             for i, name in enumerate(STAGE_HEADER)], stages, hint="--format markdown shows every column")
    pad = " " * (indent + 2)
    for line in facts(record):
        out.line(f"{pad}{line}")
    out.line(f"{pad}{verdict(record).line}")


def render_terminal(records: Sequence[RunRecord], stream: TextIO, width: Optional[int] = None,
                    plain: Optional[bool] = None) -> None:
    out = Out(stream, width=width, plain=plain)
    for i, record in enumerate(records):
        if i:
            out.line()
        print_block(out, record, f"continual {record.id[:8]}: ")


def _md(text: str) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\|*_`[]":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(_md(c) for c in header) + " |", "|" + " --- |" * len(header),
            *("| " + " | ".join(_md(c.strip()) for c in row) + " |" for row in rows)]


def render_markdown(records: Sequence[RunRecord]) -> str:
    lines = ["# bench report continual", ""]
    for record in records:
        lines += [f"## {_md(title(record))}", "", f"record `{record.id}` ({record.created_at})", ""]
        lines += _md_table(PHASE_HEADER, phase_rows(record)) + [""]
        stages = stage_rows(record)
        if stages:
            lines += _md_table(STAGE_HEADER, stages) + [""]
        lines += [f"- {_md(line)}" for line in facts(record)]
        lines += [f"- **{_md(verdict(record).line)}**", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- the timeline plot


def plot_paths(records: Sequence[RunRecord], path: str | Path) -> list[Path]:
    """One file per record: ``path`` itself for one record, else ``<stem>-<record id's first 8>.<suffix>``."""
    path = Path(path)
    if len(records) == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{r.id[:8]}{path.suffix}") for r in records]


def plot(records: Sequence[RunRecord], path: str | Path) -> list[Path]:
    """Each record's timeline (see ``_figure``) to its file of ``plot_paths``; PNG or SVG by the suffix."""
    out = []
    for record, target in zip(records, plot_paths(records, path)):
        target.parent.mkdir(parents=True, exist_ok=True)
        _figure(record, target)
        out.append(target)
    return out


def timeline_svg(record: RunRecord) -> str:
    """The timeline plot as inline SVG text, for the HTML page."""
    import io

    buffer = io.StringIO()
    _figure(record, buffer, fmt="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: the page is HTML


_PHASE_COLOURS = {"steady": "#adb5bd", "drifted": "#fab005", "adapting": "#fa5252", "adapted": "#40c057"}
_VERSION_COLOURS = ("#1c7ed6", "#f76707", "#7048e8", "#0ca678", "#c2255c")
_RASTER_POINTS = 3000  # more points than this are drawn as an image inside the SVG (its size stays small)


def _figure(record: RunRecord, target: Any, fmt: Optional[str] = None) -> None:
    """Every request's latency (ms, log scale) against its arrival (s), coloured by the model version
    that served it; dropped requests marked at their censored latency (a lower bound); the phases
    shaded and named; drift, detection and swap (or failure) as vertical lines; the latency
    requirement as a horizontal line."""
    from bench.reporting.scaling import require_matplotlib

    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt
    import numpy as np

    import textwrap

    from matplotlib.ticker import FuncFormatter, LogLocator

    m = record.metrics
    run = _run(record)
    fig, ax = plt.subplots(figsize=(11, 5.5), constrained_layout=True)
    fig.suptitle(title(record), fontsize="medium")
    ax.set_title("\n".join(textwrap.wrap(verdict(record).line, 120)), fontsize="small", color="#343a40")
    if run is None:
        ax.text(0.5, 0.5, "this record holds no timeline", ha="center", va="center", transform=ax.transAxes)
        _save(fig, target, fmt)
        return
    timeline = run["timeline"]
    serve = timeline["serve"]
    arrivals = np.asarray(serve["arrivals_ns"], dtype=np.float64) / 1e9
    latencies = np.asarray(serve["latencies_ns"], dtype=np.float64) / 1e6
    versions = np.asarray(timeline["versions"], dtype=np.int64)
    dropped = np.zeros(arrivals.size, dtype=bool)
    dropped[np.asarray((serve.get("extra") or {}).get("unserved", []), dtype=np.int64)] = True
    positive = latencies[latencies > 0]
    floor = float(positive.min()) if positive.size else 1e-3
    latencies = np.maximum(latencies, floor)  # a censored 0 of a dropped request stays on the log axis
    raster = arrivals.size > _RASTER_POINTS
    t = timeline_marks(record)
    end = max(v for v in (t.duration_s, t.swapped_s, t.failed_s, float(arrivals.max()) if arrivals.size else 0.0)
              if v is not None)
    for name, (lo, hi) in phase_bounds(timeline.get("marks_ns") or {}, int(run["duration_ns"])).items():
        ax.axvspan(lo / 1e9, hi / 1e9, color=_PHASE_COLOURS[name], alpha=0.12, linewidth=0)
        ax.text((lo + hi) / 2e9, 0.98, name, transform=ax.get_xaxis_transform(), ha="center", va="top",
                fontsize="small", color="#343a40")
    for version in sorted({int(v) for v in versions[~dropped]}):
        sel = (versions == version) & ~dropped
        label = f"v{version} ({'original' if version == 0 else 'adapted'}): {int(sel.sum())} requests"
        ax.scatter(arrivals[sel], latencies[sel], s=6, color=_VERSION_COLOURS[version % len(_VERSION_COLOURS)],
                   label=label, rasterized=raster, linewidths=0)
    if dropped.any():
        ax.scatter(arrivals[dropped], latencies[dropped], s=22, marker="x", color="#e03131", rasterized=raster,
                   label=f"dropped: {int(dropped.sum())} (latency censored at the stop: a lower bound)")
    events = [(t.drift_s, "drift", "#495057", "--"), (t.detected_s, "detection", "#7048e8", "-."),
              (t.swapped_s, "swap", "#2b8a3e", "-"), (t.failed_s, "adaptation failed", "#e03131", ":")]
    for at, name, colour, style in events:
        if at is not None:
            ax.axvline(at, color=colour, linestyle=style, linewidth=1.3, label=f"{name} at {fmt_num(at)} s")
    if t.swapped_s is not None and t.duration_s is not None and t.swapped_s > t.duration_s:
        ax.axvline(t.duration_s, color="#868e96", linestyle=(0, (1, 1)), linewidth=1, label="arrivals ended")
    if m.get("slo_ms"):
        q = float(m.get("percentile") or 0.99)
        ax.axhline(float(m["slo_ms"]), color="#c92a2a", linestyle="--", linewidth=1,
                   label=f"requirement {_pname(q)} <= {_g(m['slo_ms'])} ms")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlim(0, end * 1.01 if end > 0 else 1.0)
    ax.set_xlabel("arrival time (s from the start of serving)")
    ax.set_ylabel("latency (ms, log scale)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    _save(fig, target, fmt)


def _save(fig: Any, target: Any, fmt: Optional[str]) -> None:
    """Text as text (not glyph paths whose ids would repeat between two plots of one page), and no
    metadata block (it names web addresses; the page refers to none)."""
    import matplotlib
    import matplotlib.pyplot as plt

    svg = fmt == "svg" or (fmt is None and str(target).lower().endswith(".svg"))
    meta = {"Creator": None, "Date": None, "Format": None, "Type": None} if svg else None
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(target, format=fmt, metadata=meta)
    plt.close(fig)
