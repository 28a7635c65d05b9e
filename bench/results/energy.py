"""Energy, power and memory figures from the sampler's samples over the measured window, each with
how it was known.

Energy of a domain is the counter's difference over the window where the sensor has a counter
(method "counter": RAPL, NVML's total energy), with wrap-around unwrapped; otherwise the trapezoidal
integral of sampled power over the window (method "integrated"). Readings at the window's edges are
linearly interpolated between the samples around them. A window shorter than a few of the sensor's
update periods, or holding too few samples, is flagged low-confidence. Where no power sensor runs,
energy figures are absent and the reason is said: never zero, never guessed. A TDP-based estimate
exists only when asked for, under names that say "estimated".
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

__all__ = ["unwrap", "value_at", "integrate", "span_rates", "energy_summary", "DOMAIN_GROUPS"]

# A window must span this many update periods of the sensor and hold this many samples.
MIN_PERIODS = 5
MIN_SAMPLES = 3
# Peak power from a counter is the highest mean power over any span of at least this long (and of
# PEAK_SPAN_PERIODS update periods): a counter read twice within one update step shows a burst of
# twice the true power (seen on an H200: 1086 W "peak" from 50 ms differences, under a 700 W limit).
PEAK_SPAN_S = 1.0
PEAK_SPAN_PERIODS = 10
DOMAIN_GROUPS = ("gpu", "cpu_package", "dram")


def unwrap(values: Sequence[float], wrap: Optional[float]) -> list[float]:
    """A wrapping counter as a monotonic one: each drop is a wrap of ``wrap`` units."""
    out: list[float] = []
    offset = 0.0
    for i, v in enumerate(values):
        if i and v < values[i - 1]:
            if not wrap:
                raise ValueError("a counter went backwards and its wrap range is unknown")
            offset += wrap
        out.append(v + offset)
    return out


def value_at(times: Sequence[float], values: Sequence[float], t: float) -> Optional[float]:
    """Linear interpolation at ``t``; None outside the samples."""
    if not times or t < times[0] or t > times[-1]:
        return None
    for i in range(1, len(times)):
        if times[i] >= t:
            t0, t1 = times[i - 1], times[i]
            if t1 == t0:
                return values[i]
            return values[i - 1] + (values[i] - values[i - 1]) * (t - t0) / (t1 - t0)
    return values[-1]


def integrate(times: Sequence[float], values: Sequence[float], start: float, end: float) -> Optional[float]:
    """Trapezoidal integral of a sampled signal over [start, end] (seconds x value)."""
    lo, hi = value_at(times, values, start), value_at(times, values, end)
    if lo is None or hi is None:
        return None
    points = [(start, lo)] + [(t, v) for t, v in zip(times, values) if start < t < end] + [(end, hi)]
    return sum((t1 - t0) * (v0 + v1) / 2.0 for (t0, v0), (t1, v1) in zip(points, points[1:]))


def span_rates(times: Sequence[float], values: Sequence[float], start: float, end: float,
               span: float) -> list[float]:
    """Mean rates of a counter over every span from one sample to the first sample at least ``span``
    seconds later, within [start, end]; none when the window is shorter than the span."""
    inside = [(t, v) for t, v in zip(times, values) if start <= t <= end]
    rates, j = [], 0
    for i, (t0, v0) in enumerate(inside):
        j = max(j, i + 1)
        while j < len(inside) and inside[j][0] - t0 < span:
            j += 1
        if j == len(inside):
            break
        t1, v1 = inside[j]
        rates.append((v1 - v0) / (t1 - t0))
    return rates


def _series(samples: list[dict[str, Any]], sensor: str, channel: str) -> tuple[list[float], list[float]]:
    times, values = [], []
    for s in samples:
        if s.get("s") == sensor and channel in (s.get("v") or {}):
            times.append(s["t"] / 1e9)
            values.append(float(s["v"][channel]))
    return times, values


def _group(domain: str) -> str:
    for group in DOMAIN_GROUPS:
        if domain.startswith(group):
            return group
    return domain


def _gpu_activity(samples: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """Per GPU over the window: mean utilisation, SM clock range, peak temperature, and every
    clock-event (throttle) reason seen, as NVML's bit mask OR-ed over the samples."""
    out: dict[str, Any] = {}
    for s in samples:
        if s.get("s") != "nvml" or not start <= s["t"] / 1e9 <= end:
            continue
        for key, value in (s.get("v") or {}).items():
            gpu, _, name = key.partition("_")
            entry = out.setdefault(gpu, {"utilization": [], "sm_clock_mhz": [], "temperature_c": [], "reasons": 0})
            if name in ("utilization", "sm_clock_mhz", "temperature_c"):
                entry[name].append(value)
            elif name == "clock_event_reasons":
                entry["reasons"] |= int(value)
    summary = {}
    for gpu, e in out.items():
        summary[gpu] = {
            "utilization_mean_pct": sum(e["utilization"]) / len(e["utilization"]) if e["utilization"] else None,
            "sm_clock_min_mhz": min(e["sm_clock_mhz"], default=None),
            "sm_clock_max_mhz": max(e["sm_clock_mhz"], default=None),
            "temperature_max_c": max(e["temperature_c"], default=None),
            "clock_event_reasons_mask": e["reasons"],
        }
    return summary


def energy_summary(sensors: dict[str, Any], window_ns: tuple[int, int], samples_processed: int,
                   idle_window_ns: Optional[tuple[int, int]] = None,
                   estimate: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """{"metrics": {...}, "energy": provenance per domain and overall} for one measured window."""
    start, end = window_ns[0] / 1e9, window_ns[1] / 1e9
    window = end - start
    probes = sensors.get("probes") or []
    samples = sensors.get("samples") or []
    domains: dict[str, dict[str, Any]] = {}
    metrics: dict[str, Any] = {}
    for probe in probes:
        if not probe.get("available"):
            continue
        channels = {c["name"]: c for c in probe.get("channels", [])}
        for name, channel in channels.items():
            domain = channel["domain"]
            if channel["unit"] not in ("J", "W") or domain in domains:
                continue
            counter = channels.get(f"{domain}_energy")
            times, values = _series(samples, probe["name"], counter["name"] if counter else f"{domain}_power")
            if counter:
                values = unwrap(values, counter.get("wrap"))
                lo, hi = value_at(times, values, start), value_at(times, values, end)
                energy = None if lo is None or hi is None else hi - lo
                method, period = "counter", counter["update_period_s"]
                rates = span_rates(times, values, start, end, max(PEAK_SPAN_S, PEAK_SPAN_PERIODS * period))
            else:
                energy = integrate(times, values, start, end)
                method, period = "integrated", channels[f"{domain}_power"]["update_period_s"]
                rates = [v for t, v in zip(times, values) if start <= t <= end]
            if energy is None:
                domains[domain] = {"sensor": probe["name"], "method": method,
                                   "error": "the samples do not cover the measured window"}
                continue
            inside = sum(1 for t in times if start <= t <= end)
            low = window < MIN_PERIODS * period or inside < MIN_SAMPLES
            entry = {"sensor": probe["name"], "method": method, "energy_j": energy,
                     "mean_power_w": energy / window if window > 0 else None,
                     "peak_power_w": max(rates) if rates else None, "samples_in_window": inside,
                     "update_period_s": period, "low_confidence": low}
            if idle_window_ns is not None:
                i0, i1 = idle_window_ns[0] / 1e9, idle_window_ns[1] / 1e9
                if counter:
                    a, b = value_at(times, values, i0), value_at(times, values, i1)
                    idle_energy = None if a is None or b is None else b - a
                else:
                    idle_energy = integrate(times, values, i0, i1)
                if idle_energy is not None and i1 > i0:
                    entry["idle_power_w"] = idle_energy / (i1 - i0)
                    entry["net_energy_j"] = energy - entry["idle_power_w"] * window
            domains[domain] = entry
    measured = {d: e for d, e in domains.items() if "energy_j" in e}
    summary: dict[str, Any] = {"window_s": window, "domains": domains}
    if not measured:
        reasons = [f"{p['name']}: {p.get('reason')}" for p in probes if not p.get("available")]
        summary["available"] = False
        summary["reason"] = "no power sensor here (" + "; ".join(reasons) + ")" if reasons else "no sensor ran"
    else:
        total = sum(e["energy_j"] for e in measured.values())
        summary.update(available=True, energy_j=total,
                       method=sorted({e["method"] for e in measured.values()}),
                       sensors=sorted({e["sensor"] for e in measured.values()}),
                       low_confidence=any(e["low_confidence"] for e in measured.values()),
                       domains_summed=sorted(measured))
        metrics["energy_j"] = total
        if samples_processed and total > 0:
            metrics["energy_per_sample_mj"] = total * 1000.0 / samples_processed
            metrics["samples_per_j"] = samples_processed / total
        if all("net_energy_j" in e for e in measured.values()):
            net = sum(e["net_energy_j"] for e in measured.values())
            metrics["energy_net_j"] = net
            if samples_processed:
                metrics["energy_net_per_sample_mj"] = net * 1000.0 / samples_processed
        for group in DOMAIN_GROUPS:
            members = [e for d, e in measured.items() if _group(d) == group]
            if members:
                metrics[f"power_mean_w_{group}"] = sum(e["mean_power_w"] or 0.0 for e in members)
                peaks = [e["peak_power_w"] for e in members if e["peak_power_w"] is not None]
                if peaks:
                    metrics[f"power_peak_w_{group}"] = sum(peaks)
    # Memory over the window, from the sampled resident set and the device's memory.
    rss_times, rss = _series(samples, "process_memory", "host_rss")
    in_window = [v for t, v in zip(rss_times, rss) if start <= t <= end]
    if in_window:
        metrics["sampled_rss_peak_mib"] = max(in_window)
    device = [v for s in samples if s.get("s") == "nvml" for k, v in (s.get("v") or {}).items()
              if k.endswith("_memory_used") and start <= s["t"] / 1e9 <= end]
    if device:
        metrics["peak_device_mib"] = max(device)
    gpu = _gpu_activity(samples, start, end)
    if gpu:
        summary["gpu_activity"] = gpu
    if estimate:
        tdp, utilisation = estimate.get("tdp_w"), estimate.get("cpu_utilisation")
        if tdp and utilisation is not None and window > 0:
            est = tdp * utilisation * window
            metrics["energy_estimated_j"] = est
            if samples_processed:
                metrics["energy_per_sample_estimated_mj"] = est * 1000.0 / samples_processed
            summary["estimate"] = {"method": "estimated: TDP x CPU utilisation x window", "tdp_w": tdp,
                                   "cpu_utilisation": utilisation, "energy_j": est}
    return {"metrics": metrics, "energy": summary}
