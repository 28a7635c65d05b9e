"""LoadGen's logs as data: the summary (``mlperf_log_summary.txt``) and the detail log
(``mlperf_log_detail.txt``)."""

from __future__ import annotations

import json
import re
from typing import Any, Optional

__all__ = ["parse_summary", "parse_detail"]


_KEY_VALUE = re.compile(r"^\s*(?P<key>[^:]+?)\s*:\s*(?P<value>.*?)\s*$")
_PERCENTILE = re.compile(r"^(?P<p>\d+(?:\.\d+)?)(?:th)? percentile latency \(ns\)$")
_EARLY_ESTIMATE = re.compile(r"Early stopping (?P<p>\d+(?:\.\d+)?)th percentile estimate: (?P<v>\d+)")
_COUNT_LINE = re.compile(r"^(?:(?P<n>\d+)|No) (?P<what>warnings?|errors?|ERRORS?) encountered", re.IGNORECASE)
_CHECKS = {"Performance constraints satisfied": "performance_constraints", "Min duration satisfied": "min_duration",
           "Min queries satisfied": "min_queries", "Early stopping satisfied": "early_stopping"}
_HEADLINE = {"Samples per second": "result_samples_per_s", "Tokens per second": "result_tokens_per_s",
             "Completed samples per second": "result_completed_samples_per_s",
             "Scheduled samples per second": "result_scheduled_samples_per_s"}
_STATS = {"Min latency (ns)": "latency_min_ns", "Max latency (ns)": "latency_max_ns",
          "Mean latency (ns)": "latency_mean_ns"}


def _number(text: str) -> Optional[float | int]:
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return None


def _percentile_name(p: str) -> str:
    return "p" + f"{float(p):g}".replace(".", "_")


def _snake(key: str) -> str:
    key = key.replace("w/o", "without").replace("w/", "with").replace("(ns)", "ns").replace("(ms)", "ms")
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def parse_summary(text: str) -> dict[str, Any]:
    """mlperf_log_summary.txt as data.

    Returns scenario, mode, valid (the "Result is" line; None if absent), checks (each "... satisfied"
    line as True/False, None for "Skipped"), result (the figures as numbers, units in the names; the
    scenario's headline figure is prefixed ``result_``; MultiStream's per-query latencies are
    ``query_latency_*``), metric (the headline's key), invalid_reasons, parameters ("Test Parameters
    Used"), and the counts of warnings and errors LoadGen reports.
    """
    out: dict[str, Any] = {"scenario": None, "mode": None, "valid": None, "checks": {}, "result": {},
                           "metric": None, "invalid_reasons": [], "parameters": {}, "warnings": 0, "errors": 0}
    result, checks = out["result"], out["checks"]
    section = "results"
    block: Optional[str] = None  # "recommendations", "early_stopping" or None
    bullets: dict[str, list[str]] = {"recommendations": [], "early_stopping": []}
    per_query = False
    check_lines: dict[str, str] = {}  # as LoadGen printed them, e.g. "Early stopping satisfied: NO"
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("====="):
            title = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if title == "Additional Stats":
                section = "stats"
            elif title == "Test Parameters Used":
                section = "parameters"
            block = None
            continue
        if not stripped:
            block = None
            continue
        if block is not None and line[:1].isspace():
            if stripped.startswith("* "):
                bullets[block].append(stripped[2:].strip())
            elif bullets[block]:  # a wrapped line of the bullet above
                bullets[block][-1] += " " + stripped
            continue
        block = None
        if stripped == "Recommendations:":
            block = "recommendations"
            continue
        if stripped.endswith("Early Stopping Result:"):
            block = "early_stopping"
            continue
        if stripped.startswith("Per-query latency"):
            per_query = True
            continue
        count = _COUNT_LINE.match(stripped)
        if count:
            kind = "warnings" if count["what"].lower().startswith("warning") else "errors"
            out[kind] = int(count["n"] or 0)
            continue
        match = _KEY_VALUE.match(line)
        if not match:
            continue
        key, value = match["key"], match["value"]
        if section == "parameters":
            number = _number(value)
            out["parameters"][_snake(key)] = number if number is not None else value
            continue
        if key == "Scenario":
            out["scenario"] = value
        elif key == "Mode":
            out["mode"] = value
        elif key == "Result is":
            out["valid"] = value.upper() == "VALID"
        elif key in _CHECKS:
            checks[_CHECKS[key]] = None if value.lower() == "skipped" else value.lower() == "yes"
            check_lines[_CHECKS[key]] = stripped
        elif key == "SUT name":
            continue
        else:
            number = _number(value)
            if number is None:
                continue
            percentile = _PERCENTILE.match(key)
            prefix = "query_" if per_query else ""
            if section == "results":
                prefix = "query_" if out["scenario"] == "MultiStream" else ""
                name = _HEADLINE.get(key) or (f"result_{prefix}latency_{_percentile_name(percentile['p'])}_ns"
                                              if percentile else "result_" + _snake(key))
                out["metric"] = out["metric"] or name
            elif percentile:
                name = f"{prefix}latency_{_percentile_name(percentile['p'])}_ns"
            elif key in _STATS:
                name = prefix + _STATS[key]
            else:
                name = _snake(key.replace(" per second", "_per_s"))
            result[name] = number
    for bullet in bullets["early_stopping"]:
        estimate = _EARLY_ESTIMATE.search(bullet)
        if estimate:
            result[f"early_stopping_latency_{_percentile_name(estimate['p'])}_ns"] = int(estimate["v"])
    if out["valid"] is False:
        reasons = out["invalid_reasons"]
        reasons.extend(check_lines[name] for name, ok in checks.items() if ok is False)
        reasons.extend(bullets["recommendations"])
        if checks.get("early_stopping") is False:
            reasons.extend(f"Early stopping: {b}" for b in bullets["early_stopping"])
    return out


def parse_detail(text: str) -> dict[str, Any]:
    """mlperf_log_detail.txt (``:::MLLOG {json}`` lines) as {"values": {key: last value},
    "errors": [...], "warnings": [...]}, each message as "key: value"."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    warnings: list[str] = []
    for line in text.splitlines():
        start = line.find("{")
        if not line.startswith(":::MLLOG") or start < 0:
            continue
        try:
            entry = json.loads(line[start:])
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
        key, value = entry.get("key"), entry.get("value")
        values[key] = value
        meta = entry.get("metadata") or {}
        if meta.get("is_error"):
            errors.append(f"{key}: {value}")
        elif meta.get("is_warning"):
            warnings.append(f"{key}: {value}")
    return {"values": values, "errors": errors, "warnings": warnings}
