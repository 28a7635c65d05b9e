"""backend.streams in the torch backends, here on the CPU: the eager backend refuses streams it
cannot serve rather than serving one, and cuda-compiled hands the stream pool to the compiled model
(after compiling) or refuses its CUDA-graph modes before compiling. torch.compile is replaced by a
recorder: what is tested is the wiring, not inductor. (The streams have not yet run on a GPU.)"""

from __future__ import annotations

import pytest

from bench.backends.base import PrepareContext
from bench.backends.torch_compiled import CompiledBackend, CompiledSession
from bench.backends.torch_eager import TorchBackend, TorchSession
from bench.config.schema import CompiledBackendConfig, TorchBackendConfig

torch = pytest.importorskip("torch")

SERVER = PrepareContext(scenario="server")


def _inputs():
    return [torch.ones(1, 3, 4, 4)]


@pytest.mark.parametrize("device, scenario", [("cpu", "server"), ("cpu", "multistream"), ("cuda", "latency"),
                                              ("cuda:1", "throughput")])
def test_the_eager_backend_refuses_streams_it_cannot_serve(device, scenario):
    backend = TorchBackend(TorchBackendConfig(name="x", impl="bench.backends.torch_eager:TorchBackend",
                                              device=device, streams=2))
    with pytest.raises(ValueError, match=f"backend.streams=2 needs a CUDA device .*scenario={scenario}"):
        backend.streams_for(torch.device(device), PrepareContext(scenario=scenario))
    one = TorchBackend(TorchBackendConfig(name="x", impl="bench.backends.torch_eager:TorchBackend", device=device))
    assert one.streams_for(torch.device(device), PrepareContext(scenario=scenario)) == 1


def test_the_eager_backend_on_the_cpu_with_streams_fails_rather_than_serving_one():
    backend = TorchBackend(TorchBackendConfig(name="cpu", impl="bench.backends.torch_eager:TorchBackend", streams=3))
    with pytest.raises(ValueError, match="backend.streams=3"):
        backend.prepare(torch.nn.Conv2d(3, 2, 1), _inputs(), SERVER)


@pytest.fixture
def compiled(monkeypatch):
    """CompiledBackend's prepare with torch.compile recorded (the module itself runs), and
    backend.streams=2 granted on this CPU: the calls, in order, and the sessions given streams."""
    import torch._inductor.config as inductor_config

    calls: list[str] = []
    given: list[tuple[object, int]] = []
    monkeypatch.setattr(inductor_config, "freezing", inductor_config.freezing)  # prepare sets it

    def recording_compile(model, **kwargs):
        calls.append(f"compile {kwargs['mode']}")

        def first_and_later_calls(*args):
            calls.append("run")
            return model(*args)
        return first_and_later_calls

    monkeypatch.setattr(torch, "compile", recording_compile)
    monkeypatch.setattr(TorchBackend, "streams_for", lambda self, device, context: int(self.settings.streams))
    monkeypatch.setattr(TorchSession, "use_streams",
                        lambda self, streams: (calls.append("use_streams"), given.append((self, streams))))
    return calls, given


def _backend(**kw):
    return CompiledBackend(CompiledBackendConfig(name="cuda-compiled", impl="bench.backends.torch_compiled:CompiledBackend",
                                                 **kw))


@pytest.mark.parametrize("mode", ["default", "max-autotune-no-cudagraphs"])
def test_cuda_compiled_serves_its_streams_with_the_compiled_model(compiled, mode):
    calls, given = compiled
    session = _backend(streams=2, compile_mode=mode).prepare(torch.nn.Conv2d(3, 2, 1), _inputs(), SERVER)
    # The compiled session gets the pool, once, after its first (compiling) call; no eager session
    # was given one to leak.
    assert isinstance(session, CompiledSession) and given == [(session, 2)]
    assert calls == [f"compile {mode}", "run", "use_streams"]
    assert session.compile_info["mode_options"].get("triton.cudagraphs") is None


def test_cuda_compiled_with_one_stream_has_no_pool(compiled):
    calls, given = compiled
    _backend().prepare(torch.nn.Conv2d(3, 2, 1), _inputs(), SERVER)
    assert given == [] and "use_streams" not in calls


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_cuda_graph_modes_with_streams_are_refused_before_compiling(compiled, mode):
    calls, given = compiled
    with pytest.raises(ValueError, match=f"backend.streams=2 cannot serve backend.compile_mode={mode}: it replays "
                                         "CUDA graphs"):
        _backend(streams=2, compile_mode=mode).prepare(torch.nn.Conv2d(3, 2, 1), _inputs(), SERVER)
    assert calls == [] and given == []
