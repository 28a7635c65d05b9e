"""The time series suite (bench.suites.timeseries, bench.suites.series): catalog entries, models that
follow the data set (channels, windows, budget = sampling period), generated series, the streaming
ring-buffer pipeline, the user's CSV and Parquet files, and bad input refused in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from bench.cli.main import main  # noqa: E402
from bench.suites.base import SuiteOptionError  # noqa: E402
from bench.suites.cost import workload_cost  # noqa: E402
from bench.suites.series import (build_stream_pipeline, cut_windows, fit_normalisation, read_series,  # noqa: E402
                                 ring_state, synthetic_series)
from bench.suites.timeseries import DATASETS, LOOKBACK, SUITE, check_options  # noqa: E402


def opts(**kw):
    base = {"dataset": "", "boundary": "model", "tile_size": 256, "data_path": None}
    base.update(kw)
    return base


def test_every_catalog_entry_is_filled():
    assert set(SUITE.names()) == {"lstm_ae", "usad", "tranad", "tcn", "patchtst", "dlinear"}
    for workload in SUITE.workloads:
        entry = workload.catalog()
        for key in ("task", "domain", "category", "licence", "dataset_licence", "reference", "description",
                    "preprocessing", "dataset", "family"):
            assert entry[key], (workload.name, key)
        assert entry["min_resolution"] == ""  # a sensor window has no resolution
        assert entry["latency_tier_ms"] == 60_000  # SMD, the default: one sample a minute
        assert entry["task"] in ("anomaly detection", "forecasting")


@pytest.mark.parametrize("key", sorted(DATASETS))
def test_models_follow_the_data_set(key):
    dataset = DATASETS[key]
    for workload in SUITE.workloads:
        adapted = SUITE.adapted(workload, opts(dataset=key))
        window, channels = adapted.input_shape
        assert channels == dataset.channels
        assert dict(adapted.builder_args)["channels"] == dataset.channels
        assert adapted.latency_tier_ms == round(dataset.period_s * 1000)
        fixed = {"usad": 12, "tranad": 10, "patchtst": LOOKBACK, "dlinear": LOOKBACK}
        assert window == fixed.get(workload.name, dataset.window)
        info = SUITE.workload_info(workload, opts(dataset=key))
        assert info["channels"] == dataset.channels and info["dataset_licence"] == dataset.licence


def test_published_shapes_of_the_data_sets():
    channels = {k: d.channels for k, d in DATASETS.items()}
    assert channels == {"smd": 38, "swat": 51, "psm": 25, "msl": 55, "smap": 25, "etth1": 7, "tep": 52}
    assert DATASETS["swat"].period_s == 1.0 and DATASETS["tep"].period_s == 180.0
    assert DATASETS["etth1"].period_s == 3600.0 and DATASETS["etth1"].window == 336
    assert all(DATASETS[k].window == 100 for k in ("smd", "swat", "psm", "msl", "smap"))


def test_cost_is_counted_on_meta_with_the_data_sets_channels():
    workload = SUITE.adapted(SUITE.get("usad"), opts(dataset="swat"))
    cost = workload_cost(workload)
    assert cost["counted_on"] == "meta"
    w, z = 12 * 51, 1200
    assert cost["params"] == (w * 306 + 306 + 306 * 153 + 153 + 153 * z + z) + 2 * (
        z * 153 + 153 + 153 * 306 + 306 + 306 * w + w)
    assert SUITE.adapted(SUITE.get("usad"), opts()).builder_args != workload.builder_args


def test_generated_series_is_seeded_and_shaped_like_sensor_data():
    a, b, c = synthetic_series(3000, 12, seed=0), synthetic_series(3000, 12, seed=0), synthetic_series(3000, 12, 1)
    assert a.shape == (3000, 12) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # Not white noise: consecutive samples are strongly correlated in every channel.
    lag1 = [np.corrcoef(a[:-1, i], a[1:, i])[0, 1] for i in range(12)]
    assert min(lag1) > 0.5
    # Channels have their own levels and scales, as raw plant units do.
    assert np.ptp(a.mean(axis=0)) > 10 and a.std(axis=0).max() / a.std(axis=0).min() > 3


class Identity(torch.nn.Module):
    def forward(self, x):
        return x


def test_pipeline_appends_to_the_ring_and_assembles_the_slid_window():
    values = synthetic_series(400, 5, seed=3)
    mean, std = fit_normalisation(values)
    windows, following = cut_windows(values, 4, 30, seed=0)
    ring, head = ring_state(windows, seed=0)
    assert len(set(head.tolist())) > 1  # streams are at different points of their rings
    pipeline = build_stream_pipeline(Identity(), mean, std, forecasting=True)
    sample = torch.from_numpy(following[:, None, :])
    with torch.no_grad():
        window, new_ring, new_head = pipeline(sample, torch.from_numpy(ring), torch.from_numpy(head))
    # The identity "forecast" de-normalised is the assembled window: the old one slid by one sample.
    expected = np.concatenate([windows[:, 1:], following[:, None]], axis=1)
    np.testing.assert_allclose(window.numpy(), expected, rtol=1e-5, atol=1e-3)
    assert new_head.tolist() == ((head + 1) % 30).tolist()
    for b in range(4):
        np.testing.assert_array_equal(new_ring[b, head[b]].numpy(), following[b])
    # An anomaly model's score is computed on the normalised window.
    scorer = build_stream_pipeline(ScoreOfMean(), mean, std, forecasting=False)
    with torch.no_grad():
        score, _, _ = scorer(sample, torch.from_numpy(ring), torch.from_numpy(head))
    np.testing.assert_allclose(score.numpy(), ((expected - mean) / std).mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)


class ScoreOfMean(torch.nn.Module):
    def forward(self, x):
        return x, x.mean(dim=(1, 2))


@pytest.mark.parametrize("boundary", ["model", "pipeline"])
def test_instances_at_both_boundaries(boundary):
    options = opts(dataset="psm", boundary=boundary)
    workload = SUITE.adapted(SUITE.get("usad"), options)
    instance = SUITE.make(workload, 3, 0, options)
    if boundary == "model":
        (x,) = instance.inputs
        assert x.shape == (3, 12, 25)
        assert abs(float(x.mean())) < 1.5  # normalised with the series' statistics
    else:
        sample, ring, head = instance.inputs
        assert sample.shape == (3, 1, 25) and ring.shape == (3, 12, 25) and head.dtype == torch.int64
        score, _, _ = instance.model(*instance.inputs)
        assert score.shape == (3,)
    assert instance.info["sample"] and instance.info["channels"] == 25


def write_csv(path, rows=400, channels=3, seed=0, **extra):
    frame = pd.DataFrame(synthetic_series(rows, channels, seed), columns=[f"s{i}" for i in range(channels)])
    for name, column in extra.items():
        frame[name] = column
    frame.to_csv(path, index=False)
    return path


def test_user_csv_and_parquet_set_the_channels(tmp_path):
    csv = write_csv(tmp_path / "plant.csv", channels=3)
    parquet = tmp_path / "plant.parquet"
    pd.read_csv(csv).to_parquet(parquet)
    for path in (csv, parquet):
        options = opts(dataset="swat", boundary="pipeline", data_path=str(path))
        check_options(SUITE, options)
        workload = SUITE.adapted(SUITE.get("dlinear"), options)
        assert workload.input_shape == (LOOKBACK, 3)
        assert workload.latency_tier_ms == 1000  # the data set's period still sets the budget
        instance = SUITE.make(workload, 2, 0, options)
        assert instance.inputs[1].shape == (2, LOOKBACK, 3)
        np.testing.assert_allclose(read_series(str(path)), pd.read_csv(csv).to_numpy(np.float32), rtol=1e-6)


@pytest.mark.parametrize(
    "options, key, problem",
    [
        (opts(dataset="ucr"), "suite.dataset", "is not a known data set"),
        (opts(boundary="edge"), "suite.boundary", "is not a measurement boundary"),
        (opts(data_path="/does/not/exist.csv"), "data.path", "does not exist"),
    ],
)
def test_bad_options_are_refused(options, key, problem):
    with pytest.raises(SuiteOptionError) as info:
        check_options(SUITE, options)
    assert info.value.key == key and problem in str(info.value)


def test_bad_files_are_refused(tmp_path):
    def refused(path):
        with pytest.raises(SuiteOptionError) as info:
            check_options(SUITE, opts(data_path=str(path)))
        assert info.value.key == "data.path"
        return str(info.value)

    text = write_csv(tmp_path / "text.csv", time=[f"2024-01-01 00:{i:02d}" for i in range(400)], state="run")
    assert "has non-numeric columns: time, state" in refused(text)
    short = write_csv(tmp_path / "short.csv", rows=50)
    assert "has 50 rows" in refused(short) and "at least 337" in refused(short)
    holes = write_csv(tmp_path / "holes.csv")
    frame = pd.read_csv(holes)
    frame.loc[5, "s1"] = np.nan
    frame.to_csv(holes, index=False)
    assert "missing values in columns: s1" in refused(holes)
    (tmp_path / "data.xlsx").write_bytes(b"x")
    assert "is not a .csv, .parquet, .pq file" in refused(tmp_path / "data.xlsx")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    assert "cannot be read" in refused(tmp_path / "bad.parquet")


@pytest.mark.parametrize(
    "args, message",
    [
        (["suite.dataset=ucr"], "suite.dataset='ucr' is not a known data set"),
        (["data.path=/does/not/exist.csv"], "data.path='/does/not/exist.csv' does not exist"),
    ],
)
def test_bad_options_through_the_cli(args, message, in_tmp, capsys):
    assert main(["run", "suite=timeseries", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert list(in_tmp.iterdir()) == []


def test_non_numeric_file_through_the_cli(in_tmp, capsys):
    write_csv(in_tmp / "log.csv", label=["ok"] * 400)
    assert main(["run", "suite=timeseries", f"data.path={in_tmp / 'log.csv'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has non-numeric columns: label" in err[0] and "drop time stamps" in err[0]
    assert [p.name for p in in_tmp.iterdir()] == ["log.csv"]
