"""Every time series architecture exported to ONNX with a dynamic batch axis and run in ONNX Runtime at
other batch sizes, within the harness's fp32 parity tolerance; on scaled-down configs of the same code
(the export time of the LSTM decoder grows with its unrolled window), and the streaming pipeline with its
ring-buffer state as extra inputs and outputs (around USAD, which it covers). Plus one `bench run` of the suite end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

torch = pytest.importorskip("torch")

from bench.backends.base import PARITY_TOLERANCE  # noqa: E402
from bench.backends.onnx_export import export_onnx  # noqa: E402
from bench.cli.main import main  # noqa: E402
from bench.suites.models.timeseries import dlinear, lstm_ae, patchtst, tcn, tranad  # noqa: E402
from bench.suites.timeseries import SUITE  # noqa: E402

pytestmark = pytest.mark.slow


def assert_parity(model: torch.nn.Module, make_inputs: Callable[[int], tuple], path: Path,
                  batches: tuple[int, ...] = (1, 3)) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    export_onnx(model, make_inputs(2), path)
    graph = onnx.load(str(path), load_external_data=False).graph
    assert all(i.type.tensor_type.shape.dim[0].dim_param for i in graph.input), "batch axes must be symbolic"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in batches:
        inputs = make_inputs(n)
        with torch.no_grad():
            expected = model(*inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)})
        assert len(got) == len(expected)
        for k, (ref, out) in enumerate(zip(expected, got)):
            assert out.shape == tuple(ref.shape), (k, n)
            error = float((torch.from_numpy(out).double() - ref.double()).abs().max())
            scale = float(ref.double().abs().max())
            assert error <= PARITY_TOLERANCE["fp32"] * max(scale, 1e-12), f"output {k} at batch {n}: {error:.3g}"


def windows(window: int, channels: int) -> Callable[[int], tuple]:
    return lambda n: (torch.randn((n, window, channels), generator=torch.Generator().manual_seed(n)),)


SMALL = {
    "lstm_ae": (lambda: lstm_ae.build_lstm_ae(channels=4, window=3, hidden=8), windows(3, 4)),
    "tranad": (lambda: tranad.build_tranad(channels=4, window=6), windows(6, 4)),
    "tcn": (lambda: tcn.build_tcn(channels=4, hidden=8, levels=3), windows(20, 4)),
    "patchtst": (lambda: patchtst.build_patchtst(channels=3, lookback=48, horizon=8, layers=2), windows(48, 3)),
    "dlinear": (lambda: dlinear.build_dlinear(lookback=48, horizon=8), windows(48, 3)),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_onnx_parity(name, tmp_path):
    build, make_inputs = SMALL[name]
    assert_parity(build(), make_inputs, tmp_path / f"{name}.onnx")


def test_stream_pipeline_onnx_parity(tmp_path):
    """The pipeline's state (ring buffer, int64 head) goes in and comes back as tensors; around USAD,
    which this covers (at the suite's size: 12 x 25 in, about 0.4 M parameters)."""
    options = {"dataset": "psm", "boundary": "pipeline", "data_path": None}
    workload = SUITE.adapted(SUITE.get("usad"), options)
    model = SUITE.make(workload, 2, 0, options).model
    assert_parity(model, lambda n: SUITE.make(workload, n, n, options).inputs, tmp_path / "pipeline.onnx")


def test_bench_run_end_to_end(in_tmp):
    """One short `bench run` of the smallest workload through the streaming pipeline on the user's CSV."""
    import pandas as pd

    from bench.suites.series import synthetic_series

    csv = in_tmp / "line.csv"
    pd.DataFrame(synthetic_series(400, 3, 0), columns=["temp", "flow", "pressure"]).to_csv(csv, index=False)
    args = ["run", "suite=timeseries", "suite.only=[dlinear]", "suite.dataset=swat", "suite.boundary=pipeline",
            f"data.path={csv}", "scenario=latency", "scenario.warmup_iterations=1", "scenario.warmup_s=0.01",
            "scenario.min_iterations=3", "scenario.min_duration_s=0.05", "scenario.max_duration_s=0.3",
            "sensors.enabled=false"]
    assert main(args) == 0
    (record_file,) = (in_tmp / "results" / "records").rglob("*.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "ok"
    workload = record["workload"]
    assert workload["input_shape"] == [336, 3] and workload["channels"] == 3
    assert workload["input_shapes"] == [[1, 1, 3], [1, 336, 3], [1]]
    assert workload["latency_tier_ms"] == 1000 and workload["dataset"].startswith("SWaT")
    assert workload["params"] == 64_704 and workload["boundary"] == "pipeline"
    assert workload["outputs"] == ["forecast", "ring", "head"]
