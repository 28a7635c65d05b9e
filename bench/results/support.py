"""How well a record supports its figures: converged or not, its warnings, how many fresh processes
its intervals span, and, among several records of one configuration, which one a table should show.

The leaderboard and compare read these, so both judge a record by the same rules:

- converged: ``metrics["converged"]`` (True, False, or None where the scenario has no stopping rule,
  as the load scenarios); a record with repeats is unconverged when any of its processes is.
- noisy: a warning among NOISY_CODES (the warnings that say the figures themselves may be off,
  not those about the first request or energy).
- scope of the intervals: ``metrics["ci_scope"]`` is "repeats" when the intervals include the
  variation between ``metrics["repeats"]`` fresh worker processes, "process" (or absent, as in
  records made before repeats existed) when they hold the noise within one process only.
- best supported: valid, then converged, then intervals over repeats, then fewest warnings, then
  newest (created_at, then id).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from bench.results.records import RunRecord

__all__ = ["NOISY_CODES", "converged", "warning_codes", "noisy_codes", "warnings_text", "repeats", "ci_scope",
           "process_metrics", "doubts", "support_key", "best_supported", "why_not_newest", "load_key"]

# Warnings that put a record's figures in doubt (bench.results.diagnostics.Code values).
NOISY_CODES = ("not_converged", "high_variation", "outliers", "foreign_cpu", "speed_drift", "cpu_steal",
               "noise_limited", "tail_unbounded")


def process_metrics(record: RunRecord) -> list[dict[str, Any]]:
    """Each fresh process's own metrics, where the record holds several (``raw["repeats"]``)."""
    out = []
    for item in (record.raw or {}).get("repeats") or []:
        metrics = item.get("metrics") if isinstance(item, dict) else None
        out.append(metrics if isinstance(metrics, dict) else {})
    return out


def repeats(record: RunRecord) -> int:
    """How many fresh processes measured the record (1 for a record without repeats)."""
    n = record.metrics.get("repeats")
    if isinstance(n, int) and not isinstance(n, bool) and n >= 1:
        return n
    return max(1, len(process_metrics(record)))


def ci_scope(record: RunRecord) -> str:
    """"repeats" or "process"; records made before repeats existed are "process"."""
    return "repeats" if record.metrics.get("ci_scope") == "repeats" else "process"


def converged(record: RunRecord) -> Optional[bool]:
    """True or False as the record says (False if any of its processes did not converge); None when the
    record's scenario has no stopping rule."""
    flags = [record.metrics.get("converged"), *(m.get("converged") for m in process_metrics(record))]
    said = [f for f in flags if isinstance(f, bool)]
    if not said:
        return None
    return all(said)


def warning_codes(record: RunRecord) -> list[str]:
    """The codes of the record's warnings, in the record's order."""
    return [str(w.get("code", "?")) if isinstance(w, dict) else str(w) for w in record.warnings]


def noisy_codes(record: RunRecord) -> list[str]:
    return [c for c in dict.fromkeys(warning_codes(record)) if c in NOISY_CODES]


def warnings_text(record: RunRecord) -> str:
    """``0``, or the count and the codes: ``2: foreign_cpu;not_converged``."""
    codes = warning_codes(record)
    return f"{len(codes)}: {';'.join(codes)}" if codes else "0"


def doubts(record: RunRecord) -> list[str]:
    """Why the record's figures are in doubt (empty when they are not): not converged, and each
    noisy warning with its message."""
    out = []
    flag = converged(record)
    if flag is False:
        failed = [i + 1 for i, m in enumerate(process_metrics(record)) if m.get("converged") is False]
        if failed and record.metrics.get("converged") is not False:
            out.append(f"not converged (process {', '.join(map(str, failed))} of {len(process_metrics(record))})")
        else:
            out.append("not converged")
    seen = set()
    for w in record.warnings:
        code = str(w.get("code", "")) if isinstance(w, dict) else str(w)
        if code not in NOISY_CODES or code in seen or (code == "not_converged" and flag is False):
            continue
        seen.add(code)
        message = w.get("message") if isinstance(w, dict) else None
        out.append(f"{code} ({message})" if message else code)
    return out


def support_key(record: RunRecord) -> tuple[Any, ...]:
    """Sorts best supported last: valid, converged, intervals over repeats, fewest warnings, newest."""
    return (record.valid, converged(record) is True, ci_scope(record) == "repeats", -len(record.warnings),
            record.created_at, record.id)


def best_supported(records: Sequence[RunRecord], newest: bool = False) -> RunRecord:
    """The record a row shows: the best supported, or with ``newest`` the newest (created_at, then id)."""
    if newest:
        return max(records, key=lambda r: (r.created_at, r.id))
    return max(records, key=support_key)


def why_not_newest(chosen: RunRecord, newer: RunRecord) -> str:
    """Why ``chosen`` was shown rather than the newer record: the first rule of support_key that differs."""
    if chosen.valid and not newer.valid:
        return "is not valid"
    if converged(chosen) is True and converged(newer) is not True:
        return "did not converge" if converged(newer) is False else "does not say whether it converged"
    if ci_scope(chosen) == "repeats" and ci_scope(newer) != "repeats":
        return "has intervals within one process only"
    return f"has more warnings ({warnings_text(newer)} against {warnings_text(chosen)})"


def load_key(record: RunRecord) -> tuple[str, float, float]:
    """The load a record served at: ("poisson", rate, 0), ("streams", streams, fps), or ("find_peak", 0, 0)
    for a peak search (its timeline's rate is the search's answer, not a load it was given)."""
    m = record.metrics
    if m.get("max_qps_while_adapting") is not None or (((record.raw or {}).get("continual") or {}).get("search")):
        return ("find_peak", 0.0, 0.0)
    if m.get("streams"):
        return ("streams", float(m["streams"]), float(m.get("fps") or 0.0))
    return ("poisson", float(m.get("rate_qps") or 0.0), 0.0)
