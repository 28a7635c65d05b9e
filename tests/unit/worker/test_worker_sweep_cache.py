"""What a batch sweep asks the backend to build: the worker's run_item, in this process, for every
point of a sweep 1..16 on backend=onnxruntime, with a counter on the ONNX export. The sweep's largest
batch reaches PrepareContext, the first point converts, and the others are served from the cache."""

from __future__ import annotations

import pytest

from bench.config.compose import compose, to_config
from bench.orchestration.protocol import ItemRequest, Progress, decode
from bench.orchestration.sweep import sweep_batches
from tests.conftest import ROOT

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow  # imports torch and exports a model

SHORT = ["scenario=throughput", "scenario.warmup_iterations=1", "scenario.warmup_s=0.01",
         "scenario.min_iterations=2", "scenario.min_duration_s=0.01", "scenario.max_duration_s=0.05",
         "sensors.enabled=false"]


def test_a_sweep_over_1_to_16_converts_once_and_each_point_gets_the_sweeps_range(tmp_path, monkeypatch):
    import bench.backends.onnx_export as onnx_export
    from bench.backends.onnxruntime_backend import OrtBackend
    from bench.worker.process import run_item

    cfg = to_config(compose(["suite=fake", "backend=onnxruntime", "sweep=batch", "sweep.max_batch=16",
                             f"results.dir={tmp_path / 'results'}", f"cache.dir={tmp_path / 'cache'}", *SHORT],
                            config_dirs=[str(ROOT / "tests" / "conf")]))
    exports, contexts = [], []
    real_export, real_prepare = onnx_export.export_onnx, OrtBackend.prepare

    def counting_export(model, example_inputs, path, *args, **kwargs):
        exports.append(int(example_inputs[0].shape[0]))
        return real_export(model, example_inputs, path, *args, **kwargs)

    def recording_prepare(self, model, example_inputs, context):
        contexts.append(context)
        return real_prepare(self, model, example_inputs, context)

    monkeypatch.setattr(onnx_export, "export_onnx", counting_export)
    monkeypatch.setattr(OrtBackend, "prepare", recording_prepare)
    batches = sweep_batches(cfg.sweep.start, cfg.sweep.factor, cfg.sweep.max_batch)
    assert batches == [1, 2, 4, 8, 16]
    results, events = [], []
    for batch in batches:
        # Through the wire, as the parent sends it.
        item = decode(ItemRequest.from_config(cfg, "tiny", batch, "run1").to_wire())
        results.append(run_item(item, events.append))
    assert len(exports) == 1  # one ONNX export for the whole sweep
    assert [(c.batch_size, c.max_batch_size) for c in contexts] == [(b, 16) for b in batches]
    assert len({c.model_key for c in contexts}) == 1  # the model key holds no batch size
    conversions = [r["backend"]["effective"]["conversion"] for r in results]
    assert [c["cache_hit"] for c in conversions] == [False, True, True, True, True]
    assert conversions[0]["build_s"] > 0 and all(c["build_s"] == 0.0 for c in conversions[1:])
    assert len({c["stages"]["onnx"]["artifact_key"] for c in conversions}) == 1
    # Served from the cache and still what is measured: each point's shapes and parity.
    for batch, result in zip(batches, results):
        assert result["workload"]["input_shapes"] == [[batch, 16]]
        assert result["parity"]["ok"], result["parity"]
    assert events and all(isinstance(e, Progress) for e in events)


def test_another_model_is_not_served_the_sweeps_export(tmp_path):
    """The batch left the key, nothing else did: another seed or another sample shape is another export."""
    import torch

    from bench.backends.artifacts import cached_onnx
    from bench.backends.base import PrepareContext
    from bench.suites.base import load_suite
    from bench.worker.process import model_key

    suite = load_suite("tests.fakes:SUITE")
    workload = suite.get("tiny")
    model = suite.make(workload, 2, 0, {}).model
    x = lambda batch, width=16: [torch.randn(batch, width)]  # noqa: E731
    key = lambda batch, seed=0, width=16: model_key("tests.fakes:SUITE", seed, {}, workload, x(batch, width))  # noqa: E731
    assert key(1) == key(16) != key(1, seed=1)
    assert key(1) != key(1, width=8)
    context = PrepareContext(batch_size=1, max_batch_size=16, cache_dir=str(tmp_path), model_key=key(1))
    _, first = cached_onnx(model, x(1), context)
    _, again = cached_onnx(model, x(16), PrepareContext(batch_size=16, max_batch_size=16, cache_dir=str(tmp_path),
                                                         model_key=key(16)))
    assert not first.cache_hit and again.cache_hit and again.key == first.key
    with pytest.raises(ValueError, match="MAX_BATCH"):
        cached_onnx(model, x(1), PrepareContext(batch_size=1, max_batch_size=10**6, cache_dir=str(tmp_path),
                                                model_key=key(1)))


def test_the_worker_lets_a_backend_draw_more_of_the_workloads_inputs(tmp_path, monkeypatch):
    """PrepareContext.calibration_inputs(i): the workload's inputs at the batch measured, drawn as the
    measured ones are, with seed suite.seed + 1 + i (what TensorRT's Q/DQ int8 calibrates on)."""
    import torch

    from bench.backends.onnxruntime_backend import OrtBackend
    from bench.suites.base import load_suite
    from bench.worker.process import run_item

    cfg = to_config(compose(["suite=fake", "backend=onnxruntime", "batch_size=3", "suite.seed=5",
                             f"results.dir={tmp_path / 'results'}", f"cache.dir={tmp_path / 'cache'}", *SHORT],
                            config_dirs=[str(ROOT / "tests" / "conf")]))
    seen = {}
    real_prepare = OrtBackend.prepare

    def recording_prepare(self, model, example_inputs, context):
        seen["measured"], seen["more"] = example_inputs, [context.calibration_inputs(i) for i in range(2)]
        return real_prepare(self, model, example_inputs, context)

    monkeypatch.setattr(OrtBackend, "prepare", recording_prepare)
    run_item(decode(ItemRequest.from_config(cfg, "tiny", 3, "run1").to_wire()), lambda event: None)
    suite = load_suite("tests.fakes:SUITE")
    for i, drawn in enumerate(seen["more"]):
        expected = suite.make(suite.get("tiny"), 3, 5 + 1 + i, {}).inputs
        assert len(drawn) == len(expected) and all(torch.equal(a, b) for a, b in zip(drawn, expected))
        assert drawn[0].shape == seen["measured"][0].shape and not torch.equal(drawn[0], seen["measured"][0])
