"""Energy from samples, exactly: constant, ramp and step power, counters with a wrap, provenance."""

from __future__ import annotations

import pytest

from bench.results.energy import energy_summary, integrate, span_rates, unwrap, value_at

S = 1_000_000_000  # ns per second


def power_probe(period: float = 0.05) -> dict:
    return {"name": "fake", "available": True, "channels": [
        {"name": "gpu0_power", "unit": "W", "kind": "gauge", "domain": "gpu0", "scope": "board",
         "update_period_s": period, "wrap": None}]}


def counter_probe(wrap: float | None = None) -> dict:
    return {"name": "rapl", "available": True, "channels": [
        {"name": "cpu_package0_energy", "unit": "J", "kind": "counter", "domain": "cpu_package0",
         "scope": "package", "update_period_s": 0.001, "wrap": wrap}]}


def power_samples(fn, start=0.0, end=10.0, step=0.05):
    n = int(round((end - start) / step))
    return [{"t": int((start + i * step) * S), "s": "fake", "v": {"gpu0_power": fn(start + i * step)}}
            for i in range(n + 1)]


def test_constant_power_integrates_exactly():
    out = energy_summary({"probes": [power_probe()], "samples": power_samples(lambda t: 100.0)},
                         (2 * S, 7 * S), samples_processed=1000)
    assert out["metrics"]["energy_j"] == pytest.approx(500.0)
    assert out["metrics"]["energy_per_sample_mj"] == pytest.approx(500.0)
    assert out["metrics"]["samples_per_j"] == pytest.approx(2.0)
    assert out["metrics"]["power_mean_w_gpu"] == pytest.approx(100.0)
    domain = out["energy"]["domains"]["gpu0"]
    assert domain["method"] == "integrated" and domain["sensor"] == "fake" and not domain["low_confidence"]


def test_ramp_power_integrates_exactly():
    # P(t) = 10 t: the energy from 2 s to 6 s is 5 (36 - 4) = 160 J; trapezoids are exact on a line.
    out = energy_summary({"probes": [power_probe()], "samples": power_samples(lambda t: 10.0 * t)},
                         (2 * S, 6 * S), samples_processed=1)
    assert out["metrics"]["energy_j"] == pytest.approx(160.0)
    assert out["metrics"]["power_peak_w_gpu"] == pytest.approx(60.0)


def test_step_power_between_samples():
    times = [0.0, 1.0, 2.0, 3.0]
    values = [50.0, 50.0, 150.0, 150.0]  # the step happens between the samples at 1 s and 2 s
    assert integrate(times, values, 0.0, 3.0) == pytest.approx(50 + 100 + 150)
    assert integrate(times, values, 0.5, 1.5) == pytest.approx(25 + 0.5 * (50 + 100) / 2)
    assert integrate(times, values, -1.0, 2.0) is None  # not covered: no guess


def test_counter_with_a_wrap():
    assert unwrap([90.0, 95.0, 3.0, 8.0], wrap=100.0) == [90.0, 95.0, 103.0, 108.0]
    with pytest.raises(ValueError):
        unwrap([5.0, 1.0], wrap=None)
    samples = [{"t": int(t * S), "s": "rapl", "v": {"cpu_package0_energy": e}}
               for t, e in [(0, 90.0), (1, 95.0), (2, 3.0), (3, 8.0)]]
    out = energy_summary({"probes": [counter_probe(wrap=100.0)], "samples": samples}, (0, 3 * S), 10)
    assert out["metrics"]["energy_j"] == pytest.approx(18.0)
    assert out["energy"]["domains"]["cpu_package0"]["method"] == "counter"


def test_value_at_interpolates():
    assert value_at([0.0, 2.0], [0.0, 10.0], 0.5) == pytest.approx(2.5)
    assert value_at([0.0, 2.0], [0.0, 10.0], 3.0) is None


def test_short_window_is_low_confidence():
    out = energy_summary({"probes": [power_probe(period=0.1)], "samples": power_samples(lambda t: 1.0)},
                         (int(1.0 * S), int(1.2 * S)), samples_processed=1)
    assert out["energy"]["domains"]["gpu0"]["low_confidence"] and out["energy"]["low_confidence"]


def test_no_sensor_means_no_energy_figures_and_a_reason():
    probes = [{"name": "powercap", "available": False, "reason": "no powercap here", "channels": []}]
    out = energy_summary({"probes": probes, "samples": []}, (0, S), samples_processed=10)
    assert "energy_j" not in out["metrics"] and "samples_per_j" not in out["metrics"]
    assert out["energy"]["available"] is False and "no powercap here" in out["energy"]["reason"]


def test_idle_baseline_gives_net_energy():
    fn = lambda t: 20.0 if t < 2.0 else 120.0  # noqa: E731 - idle at 20 W, busy at 120 W
    out = energy_summary({"probes": [power_probe()], "samples": power_samples(fn)}, (3 * S, 5 * S), 100,
                         idle_window_ns=(0, int(1.5 * S)))
    assert out["metrics"]["energy_j"] == pytest.approx(240.0)
    assert out["metrics"]["energy_net_j"] == pytest.approx(240.0 - 2 * 20.0)


def test_estimate_only_when_asked_and_labelled():
    probes = [{"name": "powercap", "available": False, "reason": "none", "channels": []}]
    out = energy_summary({"probes": probes, "samples": []}, (0, 2 * S), 100,
                         estimate={"tdp_w": 65.0, "cpu_utilisation": 0.5})
    assert "energy_j" not in out["metrics"]
    assert out["metrics"]["energy_estimated_j"] == pytest.approx(65.0)
    assert out["energy"]["estimate"]["method"].startswith("estimated")


def test_gpu_activity_is_summarised_over_the_window():
    samples = [{"t": int(t * S), "s": "nvml", "v": {"gpu0_power": 100.0, "gpu0_utilization": u,
                                                     "gpu0_sm_clock_mhz": c, "gpu0_temperature_c": temp,
                                                     "gpu0_clock_event_reasons": r}}
               for t, u, c, temp, r in [(0, 0, 500, 40, 0), (1, 90, 1980, 60, 0), (2, 100, 1800, 70, 4),
                                        (3, 10, 600, 50, 1)]]
    probe = {"name": "nvml", "available": True, "channels": [
        {"name": "gpu0_power", "unit": "W", "kind": "gauge", "domain": "gpu0", "scope": "board",
         "update_period_s": 0.1, "wrap": None}]}
    out = energy_summary({"probes": [probe], "samples": samples}, (S, 2 * S), 10)
    gpu = out["energy"]["gpu_activity"]["gpu0"]
    assert gpu["utilization_mean_pct"] == 95.0 and gpu["sm_clock_min_mhz"] == 1800
    assert gpu["temperature_max_c"] == 70 and gpu["clock_event_reasons_mask"] == 4  # samples at 1 s and 2 s only


def test_counter_peak_is_a_span_mean_not_a_step_burst():
    """A counter that steps every 100 ms, read every 50 ms, shows 2x its true power between two reads
    that straddle one step; the peak over 1-second spans is the true 300 W."""
    probe = {"name": "nvml", "available": True, "channels": [
        {"name": "gpu0_energy", "unit": "J", "kind": "counter", "domain": "gpu0", "scope": "board",
         "update_period_s": 0.1, "wrap": None}]}
    samples = []
    for i in range(201):  # 10 s at 50 ms
        t = i * 0.05
        stepped = 300.0 * (int(round(t * 1000)) // 100) * 0.1  # energy updated every 100 ms
        samples.append({"t": int(t * S), "s": "nvml", "v": {"gpu0_energy": stepped}})
    naive = max((b["v"]["gpu0_energy"] - a["v"]["gpu0_energy"]) / 0.05 for a, b in zip(samples, samples[1:]))
    assert naive == pytest.approx(600.0)
    out = energy_summary({"probes": [probe], "samples": samples}, (0, 10 * S), 100)
    entry = out["energy"]["domains"]["gpu0"]
    assert entry["mean_power_w"] == pytest.approx(300.0, rel=0.01)
    assert entry["peak_power_w"] == pytest.approx(300.0, rel=0.11)  # one step of 100 ms in a 1 s span
    assert out["metrics"]["power_peak_w_gpu"] <= 330.0


def test_span_rates():
    times = [0.0, 0.5, 1.0, 1.5, 2.0]
    values = [0.0, 1.0, 4.0, 5.0, 6.0]
    assert span_rates(times, values, 0.0, 2.0, 1.0) == [4.0, 4.0, 2.0]
    assert span_rates(times, values, 0.0, 2.0, 5.0) == []  # window shorter than the span
