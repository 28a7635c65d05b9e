"""Sensor streams for the time series suite: generated series, the user's CSV or Parquet file, and
the ``pipeline`` boundary (a ring buffer per stream, window assembly, normalisation, inference,
post-processing) as one torch module.

Generated data is seeded and shaped like plant data, not white noise: per channel a level and a
scale, a sum of sinusoids with periods from tens to thousands of samples, a slow drift and AR(1)
noise; about one channel in eight is an actuator that switches between two states (a pump or a
valve). The user's file is read with pandas before any timing (columns are channels, rows are
samples in time order); a non-numeric column or a missing value is refused in one line.
Normalisation statistics (per-channel mean and standard deviation) are fitted on the series used,
generated or the user's, as a deployment fits them on its training data. torch and pandas are
imported only when needed.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from bench.suites.base import SuiteOptionError

__all__ = ["SERIES_SUFFIXES", "synthetic_series", "read_series", "series_info", "fit_normalisation",
           "cut_windows", "ring_state", "build_stream_pipeline"]

SERIES_SUFFIXES = (".csv", ".parquet", ".pq")
_FIX_FILE = "give a CSV or Parquet file whose columns are the channels, e.g. data.path=/data/line3/sensors.csv"


def synthetic_series(length: int, channels: int, seed: int) -> Any:
    """A seeded float32 array (length, channels) in plant-like units."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    level = rng.uniform(-50.0, 200.0, channels)
    scale = np.exp(rng.uniform(np.log(0.1), np.log(20.0), channels))
    out = np.empty((length, channels), dtype=np.float64)
    for c in range(channels):
        if rng.random() < 0.125:  # an actuator: two states, switching every few hundred samples
            period = rng.uniform(50, 800)
            out[:, c] = level[c] + scale[c] * (np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)) > 0)
            continue
        signal = np.zeros(length)
        for _ in range(rng.integers(1, 4)):
            period = np.exp(rng.uniform(np.log(10.0), np.log(3000.0)))
            signal += rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        drift = np.cumsum(rng.normal(0.0, 0.01, length))
        noise = np.zeros(length)
        shocks = rng.normal(0.0, 0.1, length)
        for i in range(1, length):  # AR(1): sensor noise is correlated in time
            noise[i] = 0.8 * noise[i - 1] + shocks[i]
        out[:, c] = level[c] + scale[c] * (signal + drift + noise)
    return out.astype(np.float32)


def _check_file(path: str) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise SuiteOptionError("data.path", path, _FIX_FILE, "does not exist or is not a file")
    if file.suffix.lower() not in SERIES_SUFFIXES:
        raise SuiteOptionError("data.path", path, _FIX_FILE, f"is not a {', '.join(SERIES_SUFFIXES)} file")
    return file


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int) -> Any:
    import pandas as pd

    file = Path(path)
    try:
        frame = pd.read_csv(file) if file.suffix.lower() == ".csv" else pd.read_parquet(file)
    except Exception as exc:  # noqa: BLE001 - any parser error: one line naming the file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SuiteOptionError("data.path", str(path), _FIX_FILE, f"cannot be read ({reason})") from None
    text = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
            or pd.api.types.is_bool_dtype(frame[c])]
    if text:
        shown = ", ".join(text[:5]) + (f" and {len(text) - 5} more" if len(text) > 5 else "")
        raise SuiteOptionError("data.path", str(path), "keep only the sensor channels (drop time stamps, labels "
                               "and text columns)", f"has non-numeric columns: {shown}")
    if frame.shape[1] == 0:
        raise SuiteOptionError("data.path", str(path), _FIX_FILE, "has no columns")
    missing = [str(c) for c in frame.columns if frame[c].isna().any()]
    if missing:
        raise SuiteOptionError("data.path", str(path), "fill or drop the missing values first",
                               f"has missing values in columns: {', '.join(missing[:5])}")
    return frame.to_numpy(dtype="float32")


def read_series(path: str) -> Any:
    """The user's file as a float32 array (rows, channels); refused in one line when unusable."""
    file = _check_file(path)
    stat = os.stat(file)
    return _read(str(file.resolve()), stat.st_mtime_ns, stat.st_size)


def series_info(path: str) -> tuple[int, int]:
    """(rows, channels) of the user's file."""
    values = read_series(path)
    return int(values.shape[0]), int(values.shape[1])


def fit_normalisation(values: Any) -> tuple[Any, Any]:
    """Per-channel mean and standard deviation (a constant channel gets 1, so it is only centred)."""
    import numpy as np

    mean = values.mean(axis=0, dtype=np.float64)
    std = values.std(axis=0, dtype=np.float64)
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def cut_windows(values: Any, batch_size: int, window: int, seed: int) -> tuple[Any, Any]:
    """``batch_size`` windows of ``window`` samples at seeded offsets, and the sample after each:
    arrays (batch, window, channels) and (batch, channels). The series needs window + 1 rows."""
    import numpy as np

    rng = np.random.default_rng(seed + 7919)
    starts = rng.integers(0, values.shape[0] - window, batch_size)
    windows = np.stack([values[s:s + window] for s in starts])
    following = np.stack([values[s + window] for s in starts])
    return windows, following


def ring_state(windows: Any, seed: int) -> tuple[Any, Any]:
    """Ring buffers holding ``windows`` (batch, window, channels) with the oldest sample at a seeded
    head per stream: the buffer's slot (head + i) % window holds sample i."""
    import numpy as np

    n, window, _ = windows.shape
    head = np.random.default_rng(seed + 104729).integers(0, window, n)
    ring = np.empty_like(windows)
    for b in range(n):
        ring[b, (head[b] + np.arange(window)) % window] = windows[b]
    return ring, head.astype(np.int64)


def build_stream_pipeline(model: Any, mean: Any, std: Any, forecasting: bool) -> Any:
    """The model wrapped as one streaming step of a deployment, a torch module taking
    ``(sample (B, 1, C) raw, ring (B, W, C) raw, head (B,) int64)`` and returning
    ``(result, new_ring, new_head)``: the new sample overwrites the oldest slot, the window is copied out
    of the ring oldest first, normalised with the fitted mean and std, run through the model, and
    post-processed (anomaly models: the score; forecasting models: the forecast in the data's
    units). The state goes in and comes back as tensors, as in a streaming ONNX model, so a backend
    runs it as any other model; the harness feeds the same state every call, which costs the same."""
    import torch
    from torch import Tensor, nn

    class StreamPipeline(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.as_tensor(mean).view(1, 1, -1), persistent=False)
            self.register_buffer("std", torch.as_tensor(std).view(1, 1, -1), persistent=False)

        def forward(self, sample: Tensor, ring: Tensor, head: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            n, window, channels = ring.shape
            slots = torch.arange(window, device=ring.device)
            written = torch.where((slots.unsqueeze(0) == head.unsqueeze(1)).unsqueeze(2), sample, ring)
            new_head = torch.remainder(head + 1, window)
            order = torch.remainder(new_head.unsqueeze(1) + slots.unsqueeze(0), window)
            assembled = torch.gather(written, 1, order.unsqueeze(2).expand(n, window, channels))
            outputs = self.model((assembled - self.mean) / self.std)
            if forecasting:
                return outputs * self.std + self.mean, written, new_head
            return outputs[1], written, new_head

    return StreamPipeline().eval()
