"""Industrial process automation: multivariate sensor streams from machines and process plants.
Anomaly detection on windows of the streams (LSTM-ED, USAD, TranAD, a TCN) and forecasting for
process control (PatchTST, DLinear), on inputs shaped like the public data sets engineers compare on.
Builders are import paths; torch is imported only in the worker (and by `bench list` to count).

Options: ``dataset`` (smd, swat, psm, msl, smap, etth1, tep): the channel count of every model, the
window of the window-agnostic anomaly models, and the latency budget, which is the data set's
sampling period (a streaming detector must score each new sample before the next one arrives).
``boundary``: ``model`` (a normalised window in, score or forecast out; one sample is one window)
or ``pipeline`` (one new raw sample of one stream in: ring-buffer append, window assembly,
normalisation, inference, post-processing; see bench.suites.series). ``data_path``: the user's CSV or
Parquet file (columns are channels), at either boundary; its column count replaces the data set's.

How the scenarios read here: ``scenario=latency`` at batch 1 at the pipeline boundary is the
latency per new sample of a sliding window with stride 1; ``scenario=multistream scenario.fps=<the
data set's rate>`` is N machines each sending at its sampling rate, and searches the most machines
whose p99 meets the sampling period; ``scenario=throughput batch_size=256`` (or more) is backfill,
windows per second over a stored history.

Run on the CPU backends (torch, ONNX Runtime); not yet run on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

from bench.suites.base import Instance, Suite, SuiteOptionError, Workload, choose

__all__ = ["SUITE", "DATASETS", "DataSet", "BOUNDARIES", "DEFAULT_DATASET", "LOOKBACK", "HORIZON"]

BOUNDARIES = ("model", "pipeline")
LOOKBACK, HORIZON = 336, 96  # PatchTST's and DLinear's ETTh1 setting (look-back 336, horizon 96)


@dataclass(frozen=True)
class DataSet:
    key: str
    name: str
    channels: int
    period_s: float  # sampling period: the latency budget of a streaming model
    window: int  # the anomaly models' window where a model does not fix its own
    source: str  # the paper, and where the window and period come from
    licence: str

    @property
    def budget_ms(self) -> int:
        return int(round(self.period_s * 1000))

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.name, "dataset_key": self.key, "channels": self.channels,
                "sampling_period_s": self.period_s, "dataset_window": self.window,
                "native_sizes": f"{self.channels} channels every {self.period_s:g} s",
                "dataset_source": self.source, "dataset_licence": self.licence}


_AT = "window 100 as Anomaly Transformer (Xu et al., ICLR 2022) uses for SMD, PSM, MSL, SMAP and SWaT"
DATASETS = {
    "smd": DataSet("smd", "SMD (Server Machine Dataset)", 38, 60.0, 100,
                   f"Su et al., OmniAnomaly, KDD 2019: 28 machines, 38 metrics each at 1-minute intervals; {_AT}",
                   "MIT (NetManAIOps/OmniAnomaly)"),
    "swat": DataSet("swat", "SWaT (Secure Water Treatment)", 51, 1.0, 100,
                    f"Goh et al., CRITIS 2016: a 6-stage water treatment testbed, 51 sensors and actuators at 1 Hz; {_AT}",
                    "iTrust, SUTD: free on request for research, no redistribution"),
    "psm": DataSet("psm", "PSM (Pooled Server Metrics)", 25, 60.0, 100,
                   f"Abdulaal et al., RANSynCoders, KDD 2021 (eBay): 25 features at 1-minute intervals; {_AT}",
                   "CC BY 4.0 (eBay/RANSynCoders data)"),
    "msl": DataSet("msl", "MSL (Mars Science Laboratory rover)", 55, 60.0, 100,
                   "Hundman et al., Telemanom, KDD 2018: telemetry aggregated into one-minute windows (time "
                   f"stamps anonymised in the release); 55 dimensions; {_AT}",
                   "NASA telemetry released with khundman/telemanom (Apache-2.0)"),
    "smap": DataSet("smap", "SMAP (Soil Moisture Active Passive satellite)", 25, 60.0, 100,
                    "Hundman et al., Telemanom, KDD 2018: telemetry aggregated into one-minute windows (time "
                    f"stamps anonymised in the release); 25 dimensions; {_AT}",
                    "NASA telemetry released with khundman/telemanom (Apache-2.0)"),
    "etth1": DataSet("etth1", "ETTh1 (Electricity Transformer Temperature, hourly)", 7, 3600.0, LOOKBACK,
                     "Zhou et al., Informer, AAAI 2021: oil temperature and 6 load features, hourly; window = the "
                     "look-back of 336 of PatchTST (Nie et al., ICLR 2023) and DLinear (Zeng et al., AAAI 2023)",
                     "CC BY-ND 4.0 (zhouhaoyi/ETDataset)"),
    "tep": DataSet("tep", "Tennessee Eastman process", 52, 180.0, 100,
                   "Downs & Vogel, Comput. Chem. Eng. 1993: 22 measured and 19 composition variables and 11 "
                   "manipulated variables, sampled every 3 minutes (Braatz group data); no window in the paper: "
                   "100 samples (5 h) as the other anomaly sets",
                   "free to download (Braatz group, MIT; Rieth et al. 2017 extension on Harvard Dataverse)"),
}
DEFAULT_DATASET = "smd"

_TS = dict(domain="industrial process automation", min_resolution="")
_AD, _FC = "anomaly detection", "forecasting"


@dataclass(frozen=True)
class _Shape:
    """How a workload's input follows the data set: its own fixed window (None: the data set's),
    whether the builder takes the window, and whether the model forecasts."""

    window: Optional[int]
    passes_window: bool
    forecasting: bool = False


_SHAPES = {
    "lstm_ae": _Shape(None, True),
    "tcn": _Shape(None, True),
    "usad": _Shape(12, True),
    "tranad": _Shape(10, True),
    "patchtst": _Shape(LOOKBACK, False, True),
    "dlinear": _Shape(LOOKBACK, False, True),
}

_TEMPLATES = (
    Workload(
        name="lstm_ae", family="LSTM-ED", builder="bench.suites.models.timeseries.lstm_ae:build_lstm_ae",
        input_shape=(100, 38), dataset="", preprocessing="", latency_tier_ms=0,
        licence="Apache-2.0 (this project's implementation; the paper published no code)",
        reference="Malhotra et al., LSTM-based Encoder-Decoder for Multi-sensor Anomaly Detection, ICML 2016 "
                  "AD workshop (arXiv:1607.00148)",
        outputs=("reconstruction", "score"), task=_AD, category="RNN",
        description="LSTM encoder, LSTM decoder reconstructing the window in reverse from its own outputs "
                    "(hidden 64); mean squared reconstruction error", **_TS),
    Workload(
        name="usad", family="USAD", builder="bench.suites.models.timeseries.usad:build_usad",
        input_shape=(12, 38), dataset="", preprocessing="", latency_tier_ms=0,
        licence="no licence file (manigalati/usad reference code)",
        reference="Audibert et al., USAD: UnSupervised Anomaly Detection on Multivariate Time Series, KDD 2020; "
                  "manigalati/usad",
        outputs=("reconstruction", "score"), task=_AD, category="MLP",
        description="fully connected encoder and two adversarially trained decoders on a 12-sample window "
                    "(latent 100 per sample); 0.5/0.5 mix of both reconstruction errors", **_TS),
    Workload(
        name="tranad", family="TranAD", builder="bench.suites.models.timeseries.tranad:build_tranad",
        input_shape=(10, 38), dataset="", preprocessing="", latency_tier_ms=0,
        licence="BSD-3-Clause (imperial-qore/TranAD)",
        reference="Tuli et al., TranAD: Deep Transformer Networks for Anomaly Detection in Multivariate Time "
                  "Series Data, VLDB 2022; imperial-qore/TranAD",
        outputs=("reconstruction", "score"), task=_AD, category="transformer",
        description="transformer encoder and two decoders on a 10-sample window, width 2 x channels, one head "
                    "per channel; two-phase self-conditioned reconstruction of the newest sample", **_TS),
    Workload(
        name="tcn", family="TCN", builder="bench.suites.models.timeseries.tcn:build_tcn",
        input_shape=(100, 38), dataset="", preprocessing="", latency_tier_ms=0,
        licence="MIT (locuslab/TCN)",
        reference="Bai, Kolter & Koltun, An Empirical Evaluation of Generic Convolutional and Recurrent "
                  "Networks for Sequence Modeling, arXiv:1803.01271, 2018; locuslab/TCN",
        outputs=("forecast", "score"), task=_AD, category="CNN",
        description="6 residual blocks of dilated causal convolutions (64 channels, kernel 3); next-sample "
                    "prediction error of the newest sample", **_TS),
    Workload(
        name="patchtst", family="PatchTST", builder="bench.suites.models.timeseries.patchtst:build_patchtst",
        input_shape=(LOOKBACK, 38), dataset="", preprocessing="", latency_tier_ms=0,
        licence="Apache-2.0 (yuqinie98/PatchTST)",
        reference="Nie et al., A Time Series is Worth 64 Words: Long-term Forecasting with Transformers, ICLR "
                  "2023; yuqinie98/PatchTST",
        outputs=("forecast",), task=_FC, category="transformer",
        description="channel-independent patches (16, stride 8), RevIN, 3 encoder layers (width 16, 4 heads, "
                    "BatchNorm), look-back 336, horizon 96", **_TS),
    Workload(
        name="dlinear", family="DLinear", builder="bench.suites.models.timeseries.dlinear:build_dlinear",
        input_shape=(LOOKBACK, 38), dataset="", preprocessing="", latency_tier_ms=0,
        licence="Apache-2.0 (cure-lab/LTSF-Linear)",
        reference="Zeng et al., Are Transformers Effective for Time Series Forecasting?, AAAI 2023; "
                  "cure-lab/LTSF-Linear",
        outputs=("forecast",), task=_FC, category="linear",
        description="moving-average trend / remainder split, one shared linear layer each over time; look-back "
                    "336, horizon 96 (the tiny baseline)", **_TS),
)


def _options(options: dict[str, Any]) -> tuple[DataSet, str, Optional[str]]:
    dataset = DATASETS.get(options.get("dataset") or DEFAULT_DATASET, DATASETS[DEFAULT_DATASET])
    return dataset, options.get("boundary") or "model", options.get("data_path") or None


def adapt(workload: Workload, options: dict[str, Any]) -> Workload:
    """The workload on the chosen data set (or the user's file): channels, window and latency budget."""
    dataset, _, data_path = _options(options)
    channels = dataset.channels
    if data_path:
        from bench.suites.series import series_info

        try:
            channels = series_info(data_path)[1]
        except SuiteOptionError:
            pass  # check_options refuses the file in one line; a listing shows the data set's channels
    shape = _SHAPES[workload.name]
    window = shape.window or dataset.window
    args: tuple[tuple[str, Any], ...] = (("channels", channels),)
    if shape.passes_window:
        args += (("window", window),)
    what = f"look-back {window}, horizon {HORIZON}" if shape.forecasting else f"window {window}"
    return replace(
        workload, input_shape=(window, channels), builder_args=args, dataset=dataset.name,
        dataset_licence=dataset.licence, latency_tier_ms=dataset.budget_ms,
        preprocessing=f"sliding {what} (stride 1), {channels} channels; per-channel mean/std",
    )


WORKLOADS = tuple(adapt(t, {}) for t in _TEMPLATES)


def check_options(suite: Suite, options: dict[str, Any]) -> None:
    key = choose("suite.dataset", options.get("dataset"), DEFAULT_DATASET, DATASETS, "is not a known data set")
    choose("suite.boundary", options.get("boundary"), "model", BOUNDARIES, "is not a measurement boundary")
    data_path = options.get("data_path")
    if data_path:
        from bench.suites.series import series_info

        rows, _ = series_info(data_path)
        need = max(DATASETS[key].window, LOOKBACK) + 1
        if rows < need:
            raise SuiteOptionError("data.path", data_path, f"give at least {need} rows (the longest window, "
                                   "plus the new sample)", f"has {rows} rows")


def describe(workload: Workload, options: dict[str, Any]) -> dict[str, Any]:
    dataset, boundary, data_path = _options(options)
    info: dict[str, Any] = {**dataset.describe(), "boundary": boundary, "window": workload.input_shape[0],
                            "channels": workload.input_shape[1],
                            "latency_budget": f"the sampling period, {dataset.period_s:g} s"}
    forecasting = _SHAPES[workload.name].forecasting
    if forecasting:
        info["horizon"] = HORIZON
    if boundary == "pipeline":  # the stream's state comes back beside the result
        info["outputs"] = ["forecast" if forecasting else "score", "ring", "head"]
    if data_path:
        info["data_path"] = data_path
    return info


def instantiate(workload: Workload, batch_size: int, seed: int, options: dict[str, Any]) -> Instance:
    import torch

    from bench.suites.series import (build_stream_pipeline, cut_windows, fit_normalisation, read_series,
                                     ring_state, synthetic_series)

    _, boundary, data_path = _options(options)
    window, channels = workload.input_shape
    model = workload.build(seed)
    info = describe(workload, options)
    if data_path:
        values = read_series(data_path)
    else:
        values = synthetic_series(window + 1 + max(2048, batch_size), channels, seed)
    mean, std = fit_normalisation(values)
    windows, following = cut_windows(values, batch_size, window, seed)
    info["model_runs_per_sample"] = 1
    if boundary == "model":
        info["sample"] = "one normalised window"
        return Instance(model, (torch.from_numpy((windows - mean) / std),), info)
    # The ring holds a full window; the new sample (the one after it) overwrites its oldest slot, so
    # the model sees the window slid by one: windows[1:] then the new sample.
    ring, head = ring_state(windows, seed)
    pipeline = build_stream_pipeline(model, mean, std, _SHAPES[workload.name].forecasting)
    info["sample"] = "one new raw sample of one stream (ring buffer, window, normalisation, model, score or forecast)"
    inputs = (torch.from_numpy(following[:, None, :].copy()), torch.from_numpy(ring), torch.from_numpy(head))
    return Instance(pipeline, inputs, info)


SUITE = Suite(
    name="timeseries",
    description="Industrial process automation: multivariate sensor streams (SMD, SWaT, PSM, MSL, SMAP, ETTh1, "
                "Tennessee Eastman)",
    workloads=WORKLOADS,
    instantiate=instantiate,
    check_options=check_options,
    describe=describe,
    adapt=adapt,
)
