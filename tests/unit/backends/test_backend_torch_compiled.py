"""torch.compile (inductor) backends: cpu-compiled runs here (compiles with this machine's g++);
cuda-compiled is tested for its unavailable path only."""

from __future__ import annotations

import io

import numpy as np
import pytest

from bench.backends.base import PARITY_TOLERANCE, PrepareContext
from bench.backends.torch_compiled import COMPILE_MODES, CompiledBackend, find_cxx
from bench.config.schema import CompiledBackendConfig


pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")

FAST = [
    "scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=5",
    "scenario.min_duration_s=0.05", "scenario.max_duration_s=0.5",
]


def settings(**kw) -> CompiledBackendConfig:
    name = kw.pop("name", "cpu-compiled")
    return CompiledBackendConfig(name=name, impl="bench.backends.torch_compiled:CompiledBackend", **kw)


class TinyNet(torch.nn.Module):
    """Two convolutions returning (map, score), like the anomaly models."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, x):
        anomaly_map = self.conv2(torch.relu(self.conv1(x)))
        return anomaly_map, anomaly_map.amax(dim=(1, 2, 3))


@pytest.fixture
def inductor_freezing():
    """prepare() sets inductor's process-wide freezing flag; give the next test the old value back."""
    import torch._inductor.config as config

    old = config.freezing
    yield
    config.freezing = old


def test_cpu_compiled_matches_eager_and_reports_what_it_compiled(inductor_freezing):
    import torch._inductor.config as config

    torch.manual_seed(0)
    model = TinyNet().eval()
    inputs = (torch.randn(2, 3, 32, 32),)
    with torch.inference_mode():
        reference = [t.numpy() for t in model(*inputs)]
    session = CompiledBackend(settings(freezing=True)).prepare(model, inputs, PrepareContext(batch_size=2))
    outputs = session.to_numpy(session.run(session.load_inputs(inputs)))
    session.synchronize()
    for out, ref in zip(outputs, reference):
        assert out.shape == ref.shape
        assert float(np.abs(out - ref).max() / np.abs(ref).max()) <= PARITY_TOLERANCE["fp32"]
    eff = session.effective_settings()
    assert eff["compiler"] == "torch.compile" and eff["compile_backend"] == "inductor"
    assert eff["inductor"]["freezing"] is True and config.freezing is True
    assert eff["compile_mode"] == "default" and eff["dynamic"] is False and eff["mode_options"] == {}
    assert eff["compile_s"] > 0 and eff["conversion"]["compile_s"] == eff["compile_s"]
    assert eff["graphs_compiled"] >= 1 and eff["graph_breaks"] == 0
    assert eff["device"] == "cpu" and eff["dtype"] == "float32"  # the eager session's placement, reused


def test_cpu_available_here_and_refusals():
    assert find_cxx() is not None, "this machine has g++; inductor needs it"
    assert CompiledBackend.available(settings()).ok
    bad_mode = CompiledBackend.available(settings(compile_mode="fastest"))
    assert not bad_mode.ok and "compile_mode" in bad_mode.reason
    assert all(m in bad_mode.install for m in COMPILE_MODES)


def test_cpu_without_a_compiler_is_refused(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    answer = CompiledBackend.available(settings())
    assert not answer.ok and "C++ compiler" in answer.reason and "g++" in answer.install


def test_cuda_compiled_is_unavailable_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    answer = CompiledBackend.available(settings(name="cuda-compiled", device="cuda"))
    assert not answer.ok and answer.reason and answer.install
    assert "CUDA" in answer.reason or "cuda" in answer.reason


def test_cuda_compiled_is_refused_before_any_work(in_tmp):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    from bench.config.compose import check_runnable, compose, to_config
    from bench.errors import BackendUnavailable

    cfg = to_config(compose(["backend=cuda-compiled", f"results.dir={in_tmp / 'results'}"]))
    with pytest.raises(BackendUnavailable, match="cuda-compiled"):
        check_runnable(cfg)


def test_autoencoder_through_the_runner_matches_the_torch_reference(in_tmp):
    """One real workload end to end: worker process, compile in prepare, parity, measurement."""
    from bench.config.compose import compose, to_config
    from bench.reporting.progress import ProgressDisplay
    from bench.orchestration.runner import Runner, WorkItem, run_worker
    from bench.results.store import ResultsStore

    cfg = to_config(compose(["backend=cpu-compiled", "suite.only=[autoencoder]",
                             f"results.dir={in_tmp / 'results'}", *FAST]))
    runner = Runner(cfg, ResultsStore(cfg.results.dir), {}, ProgressDisplay(io.StringIO(), plain=True))
    item = WorkItem("autoencoder", 1, "latency")
    outcome = run_worker(runner.item_request(item), 600.0)
    assert outcome.error is None, outcome.error
    result = outcome.result
    assert result["parity"]["ok"], result["parity"]
    assert result["parity"]["max_rel_error"] <= PARITY_TOLERANCE["fp32"]
    eff = result["backend"]["effective"]
    assert eff["inductor"]["freezing"] is True and eff["compile_s"] > 0
    # Compilation happens in prepare, so it is part of the setup time, not of the first inference.
    assert result["setup"]["prepare_s"] >= eff["compile_s"]
    record = runner.make_record(item, outcome, {})
    assert record.status == "ok" and record.valid
